# SPDX-License-Identifier: AGPL-3.0-only
"""``GET|POST /consent/<grant_id>`` (MAS's ``oauth2/authorization/consent.rs``): the page, the
policy, fulfilling the grant, denying it, and every refusal leaving the grant untouched."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from mas_twisted.handlers.id_token import token_hash
from mas_twisted.types.oauth2 import AuthorizationGrant
from tests.rest.human._base import API_SCOPE, PASSWORD, REDIRECT_URI, AuthorizeTestCase, csrf_from
from tests.rest.oauth2._oauth_fixtures import verify
from tests.unittest import override_config


class ConsentTests(AuthorizeTestCase):
    def start(self, *, signed_in: bool = True, **extra: str) -> tuple[str, str]:
        """Sign alice in (unless told not to), start a grant; its id and code."""
        if signed_in:
            self.user = self.factory.user()
            self.login("alice", PASSWORD)
        self.client_ = self.add_client()
        channel = self.authorize(**self.code_params(self.client_, **extra))
        self.assertEqual(channel.code, 303, channel)
        [grant] = self.grants()
        return grant[0], grant[1]

    def fulfilled_at(self) -> Any:
        return self.grants()[0][2]

    def test_page_and_allow(self) -> None:
        grant_id, code = self.start()
        page = self.browse("GET", f"/consent/{grant_id}")
        self.assertEqual(page.code, 200, page)
        self.assertEqual(page.header("X-Frame-Options"), "DENY")
        self.assertIn(f'action="/consent/{grant_id}"', page.text_body)
        self.assertIn("@alice:", page.text_body)
        # Showing the page writes nothing.
        self.assertIsNone(self.fulfilled_at())
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(channel.code, 303, channel)
        parts = urlsplit(channel.location)
        self.assertEqual(f"{parts.scheme}://{parts.netloc}{parts.path}", REDIRECT_URI)
        self.assertEqual(parse_qs(parts.query), {"state": ["st4te"], "code": [code]})
        self.assertIsNotNone(self.fulfilled_at())
        # A fulfilled grant cannot be consented to again.
        again = self.browse("GET", f"/consent/{grant_id}")
        self.assertEqual(again.code, 409, again)
        post_again = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(post_again.code, 409, post_again)

    def test_allow_with_form_post(self) -> None:
        grant_id, code = self.start(response_mode="form_post")
        page = self.browse("GET", f"/consent/{grant_id}")
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(channel.code, 200, channel)
        self.assertIn(f'action="{REDIRECT_URI}"', channel.text_body)
        self.assertIn(f'name="code" value="{code}"', channel.text_body)
        self.assertIn('name="state" value="st4te"', channel.text_body)

    def test_allow_with_fragment(self) -> None:
        grant_id, code = self.start(response_mode="fragment")
        page = self.browse("GET", f"/consent/{grant_id}")
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(parse_qs(urlsplit(channel.location).fragment), {"state": ["st4te"], "code": [code]})

    def test_allow_with_id_token(self) -> None:
        # No client can ask for `id_token` at /authorize (none has the implicit grant), but a
        # grant that records it gets an ID token with `c_hash` and `nonce`.
        self.factory.user()
        self.login("alice", PASSWORD)
        client = self.add_client()
        tokens = self.server.get_token_generator()
        grant = AuthorizationGrant(
            id=tokens.ulid(),
            client_id=client.id,
            redirect_uri=REDIRECT_URI,
            scope="openid",
            created_at=self.server.get_clock().time_msec(),
            response_mode="fragment",
            code=tokens.authorization_code(),
            state="st4te",
            nonce="n0nce",
            response_type_id_token=True,
        )
        self.get_success(self.server.get_stores().authorization_grants.add_authorization_grant(grant))
        page = self.browse("GET", f"/consent/{grant.id}")
        channel = self.browse(
            "POST", f"/consent/{grant.id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        values = parse_qs(urlsplit(channel.location).fragment)
        self.assertEqual(values["code"], [grant.code])
        header, claims = verify(self.server, values["id_token"][0])
        self.assertEqual(header["alg"], "RS256")
        self.assertEqual(claims["aud"], client.id)
        self.assertEqual(claims["nonce"], "n0nce")
        self.assertEqual(claims["c_hash"], token_hash("RS256", grant.code))
        self.assertIn("auth_time", claims)

    def test_deny(self) -> None:
        grant_id, _ = self.start()
        page = self.browse("GET", f"/consent/{grant_id}")
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "reject"}
        )
        self.assertEqual(channel.code, 303, channel)
        values = parse_qs(urlsplit(channel.location).query)
        self.assertEqual(values["error"], ["access_denied"])
        self.assertEqual(values["state"], ["st4te"])
        self.assertNotIn("code", values)
        self.assertIsNone(self.fulfilled_at())

    def test_bad_csrf(self) -> None:
        grant_id, _ = self.start()
        self.browse("GET", f"/consent/{grant_id}")
        channel = self.browse("POST", f"/consent/{grant_id}", form={"csrf": "wrong", "action": "consent"})
        self.assertEqual(channel.code, 400, channel)
        self.assertIsNone(self.fulfilled_at())

    def test_unknown_grant(self) -> None:
        self.factory.user()
        self.login("alice", PASSWORD)
        channel = self.browse("GET", "/consent/01ARZ3NDEKTSV4RRFFQ69G5FAV")
        self.assertEqual(channel.code, 404, channel)

    def test_signed_out_goes_to_login(self) -> None:
        grant_id, _ = self.start(signed_in=False)
        channel = self.browse("GET", f"/consent/{grant_id}")
        self.assertEqual(channel.code, 303, channel)
        location = urlsplit(channel.location)
        self.assertEqual(location.path, "/login")
        self.assertEqual(
            parse_qs(location.query), {"kind": ["continue_authorization_grant"], "id": [grant_id]}
        )
        page = self.browse("GET", "/login")
        post = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(post.code, 303)
        self.assertEqual(urlsplit(post.location).path, "/login")
        self.assertIsNone(self.fulfilled_at())

    def test_login_then_consent(self) -> None:
        grant_id, _ = self.start(signed_in=False)
        self.factory.user()
        channel = self.login("alice", PASSWORD, query=f"?kind=continue_authorization_grant&id={grant_id}")
        self.assertEqual(channel.location, f"/consent/{grant_id}")
        self.assertEqual(self.browse("GET", channel.location).code, 200)

    def test_locked_user_sees_the_locked_page(self) -> None:
        grant_id, _ = self.start()
        self.get_success(
            self.server.get_stores().users.lock_user(self.user, self.server.get_clock().time_msec())
        )
        channel = self.browse("GET", f"/consent/{grant_id}")
        self.assertEqual(channel.code, 200)
        self.assertNotIn(f'action="/consent/{grant_id}"', channel.text_body)
        self.assertIsNone(self.fulfilled_at())

    def test_admin_scope_refused_by_policy(self) -> None:
        grant_id, _ = self.start(scope="openid urn:synapse:admin:*")
        page = self.browse("GET", f"/consent/{grant_id}")
        self.assertEqual(page.code, 200)
        self.assertNotIn(f'action="/consent/{grant_id}"', page.text_body)
        self.assertIn("<li>", page.text_body)
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(channel.code, 200)
        self.assertIsNone(channel.location)
        self.assertIsNone(self.fulfilled_at())

    @override_config({"policy": {"data": {"admin_users": ["alice"]}}})
    def test_admin_scope_for_admin_users(self) -> None:
        grant_id, code = self.start(scope="openid urn:synapse:admin:*")
        page = self.browse("GET", f"/consent/{grant_id}")
        self.assertIn(f'action="/consent/{grant_id}"', page.text_body)
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(parse_qs(urlsplit(channel.location).query)["code"], [code])

    def test_two_device_scopes_refused(self) -> None:
        scope = f"openid {API_SCOPE} urn:matrix:client:device:AAAAAAAAAA urn:matrix:client:device:BBBBBBBBBB"
        grant_id, _ = self.start(scope=scope)
        page = self.browse("GET", f"/consent/{grant_id}")
        self.assertIn("<li>", page.text_body)
        channel = self.browse(
            "POST", f"/consent/{grant_id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(channel.code, 200)
        self.assertIn("<li>", channel.text_body)
        self.assertIsNone(self.fulfilled_at())
