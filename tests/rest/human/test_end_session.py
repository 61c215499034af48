# SPDX-License-Identifier: AGPL-3.0-only
"""``/oauth2/end_session`` (OpenID Connect RP-Initiated Logout 1.0) through the real listener,
on both engines, with ID tokens signed by the service's own signer. The full flow with a real
relying-party library is ``tests/integration/test_end_session_authlib.py``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from mas_twisted.types.oauth2 import OAuth2Session
from tests.factories import PASSWORD
from tests.rest.human._base import HumanTestCase, csrf_from

BYE = "https://app.example.com/bye"


class EndSessionTests(HumanTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.user = self.factory.user()
        self.client = self.factory.client(post_logout_redirect_uris=(BYE,), client_name="Bye App")
        self.other = self.factory.client(post_logout_redirect_uris=("https://other.example.com/",))

    def hint(self, client: Any = None) -> str:
        return self.server.get_id_token_signer().sign(client or self.client, sub=self.user.id)

    def end_session(self, method: str = "GET", **params: str) -> Any:
        if method == "GET":
            return self.browse("GET", "/oauth2/end_session?" + urlencode(params))
        return self.browse("POST", "/oauth2/end_session", form=params)

    def test_discovery_advertises_it(self) -> None:
        doc = self.make_request("GET", "/.well-known/openid-configuration").json_body
        self.assertEqual(doc["end_session_endpoint"], "https://auth.example.com/oauth2/end_session")

    def test_signed_out_goes_straight_back_with_state(self) -> None:
        for method in ("GET", "POST"):
            channel = self.end_session(
                method, id_token_hint=self.hint(), post_logout_redirect_uri=BYE, state="s1"
            )
            self.assertEqual(channel.code, 303, channel)
            self.assertEqual(channel.location, BYE + "?state=s1")
        # client_id alone identifies the client too.
        channel = self.end_session(client_id=self.client.id, post_logout_redirect_uri=BYE)
        self.assertEqual(channel.location, BYE)
        # Nothing to return to: the "signed out" page.
        self.assertIn("You are signed out", self.end_session().text_body)

    def test_refusals(self) -> None:
        other_hint = self.hint(self.other)
        cases = [
            {"post_logout_redirect_uri": BYE},  # no client named
            {"client_id": self.client.id, "post_logout_redirect_uri": BYE + "/"},  # not exact
            {"client_id": self.other.id, "post_logout_redirect_uri": BYE},  # another client's
            {"id_token_hint": other_hint, "post_logout_redirect_uri": BYE},
            {"id_token_hint": other_hint, "client_id": self.client.id},  # hint for another client
            {"id_token_hint": "not.a.jwt"},
            {"id_token_hint": self.hint()[:-4] + "AAAA"},  # bad signature
            {"client_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},  # unknown client
        ]
        for params in cases:
            channel = self.end_session(**params)
            self.assertEqual(channel.code, 400, (params, channel))
            self.assertIsNone(channel.location, params)
            self.assertEqual(channel.content_type, "text/html; charset=utf-8")

    def test_confirmation_ends_the_browser_session_and_optionally_the_clients(self) -> None:
        for tick in (True, False):
            self.jar = {}
            self.assertEqual(self.login("alice", PASSWORD).code, 303)
            browser_session_id = self.get_success(
                self.db_pool.execute(
                    "s", "SELECT user_session_id FROM user_sessions WHERE finished_at IS NULL"
                )
            )[0][0]
            oauth_session = OAuth2Session(
                id=self.factory.ids.ulid(),
                client_id=self.client.id,
                user_id=self.user.id,
                user_session_id=browser_session_id,
                scope="openid",
                created_at=self.clock.time_msec(),
            )
            self.get_success(self.server.get_stores().oauth2_sessions.add_oauth2_session(oauth_session))
            page = self.end_session(id_token_hint=self.hint(), post_logout_redirect_uri=BYE, state="xyz")
            self.assertEqual(page.code, 200, page)
            self.assertIn("Sign out?", page.text_body)
            self.assertIn("Also sign out of Bye App", page.text_body)
            self.assertIn("https://app.example.com", page.header("Content-Security-Policy") or "")
            fields = {
                "csrf": csrf_from(page),
                "action": "logout",
                "id_token_hint": self.hint(),
                "post_logout_redirect_uri": BYE,
                "state": "xyz",
            }
            # Without the CSRF token nothing happens.
            refused = self.browse("POST", "/oauth2/end_session", form={**fields, "csrf": "nope"})
            self.assertEqual(refused.code, 400, refused)
            if tick:
                fields["end_client_sessions"] = "on"
            done = self.browse("POST", "/oauth2/end_session", form=fields)
            self.assertEqual(done.code, 303, done)
            self.assertEqual(parse_qs(urlsplit(done.location).query), {"state": ["xyz"]})
            rows = self.get_success(
                self.db_pool.execute(
                    "f", "SELECT finished_at FROM user_sessions WHERE user_session_id = ?", browser_session_id
                )
            )
            self.assertIsNotNone(rows[0][0])
            oauth_rows = self.get_success(
                self.db_pool.execute(
                    "o",
                    "SELECT finished_at FROM oauth2_sessions WHERE oauth2_session_id = ?",
                    oauth_session.id,
                )
            )
            self.assertEqual(oauth_rows[0][0] is not None, tick)
            # Signed out: the endpoint no longer asks.
            self.assertEqual(
                self.end_session(client_id=self.client.id, post_logout_redirect_uri=BYE).code, 303
            )
