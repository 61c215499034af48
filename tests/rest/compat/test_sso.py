# SPDX-License-Identifier: AGPL-3.0-only
"""Legacy Matrix SSO login (inventory §3; MAS's ``compat/login_sso_redirect.rs`` and
``login_sso_complete.rs``): ``GET /_matrix/client/{version}/login/sso/redirect`` and the
``/complete-compat-sso/<id>`` page, through HTTP as a client and a browser see them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from mas_twisted.types.compat import CompatAccessToken, CompatSession, CompatSsoLogin
from tests.rest.human._base import HumanTestCase, csrf_from
from tests.unittest import TEST_PUBLIC_BASE, override_config

PASSWORD = "correct horse battery staple"
APP = "https://app.example.com/sso/callback"
COMPLETE = re.compile(r"^/complete-compat-sso/([0-9A-HJKMNP-TV-Z]{26})$")


class CompatSsoTestCase(HumanTestCase):
    """The human pages and the compat API on one listener."""

    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"].append({"name": "compat"})
        return config

    def sso_redirect(self, query: str, path: str = "/_matrix/client/v3/login/sso/redirect") -> Any:
        return self.make_request("GET", f"{path}?{query}" if query else path)

    def start(self, redirect_url: str = APP, extra: str = "") -> tuple[str, str]:
        """Start a login for ``redirect_url``: its id, and the path of its page (with its query)."""
        channel = self.sso_redirect(f"redirectUrl={quote(redirect_url, safe='')}{extra}")
        self.assertEqual(channel.code, 303, channel)
        location = channel.location
        assert location is not None
        self.assertTrue(location.startswith(TEST_PUBLIC_BASE), location)
        parts = urlsplit(location)
        match = COMPLETE.match(parts.path)
        assert match is not None, location
        return match.group(1), parts.path + (f"?{parts.query}" if parts.query else "")

    def sso_login(self, login_id: str) -> CompatSsoLogin:
        login = self.get_success(self.server.get_stores().compat_sessions.get_sso_login(login_id))
        assert login is not None
        return login

    def count_logins(self) -> int:
        return self.count_rows("compat_sso_logins")


class RedirectTests(CompatSsoTestCase):
    def test_creates_a_pending_login(self) -> None:
        login_id, path = self.start(APP + "?state=abc")
        self.assertEqual(path, f"/complete-compat-sso/{login_id}")
        login = self.sso_login(login_id)
        self.assertEqual(login.redirect_uri, APP + "?state=abc")
        self.assertRegex(login.login_token, r"^[A-Za-z0-9]{32}$")
        self.assertTrue(login.is_pending)
        self.assertEqual(login.created_at, self.server.get_clock().time_msec())
        # Each redirect is a login of its own, with a token of its own.
        other_id, _ = self.start(APP + "?state=abc")
        self.assertNotEqual(other_id, login_id)
        self.assertNotEqual(self.sso_login(other_id).login_token, login.login_token)

    def test_path_variants(self) -> None:
        for path in (
            "/_matrix/client/r0/login/sso/redirect",
            "/_matrix/client/v3/login/sso/redirect/",
            "/_matrix/client/v3/login/sso/redirect/oidc-github",
        ):
            channel = self.sso_redirect(f"redirectUrl={quote(APP)}", path=path)
            self.assertEqual(channel.code, 303, (path, channel))
            self.assertIn("/complete-compat-sso/", channel.location)
        self.assertEqual(self.count_logins(), 3)

    def test_cors(self) -> None:
        channel = self.sso_redirect(f"redirectUrl={quote(APP)}")
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")

    def test_action(self) -> None:
        cases = {
            "&action=register": "register",
            "&action=login": "login",
            "&org.matrix.msc3824.action=register": "register",
            "&action=bogus&org.matrix.msc3824.action=register": "register",
            "&action=login&org.matrix.msc3824.action=register": "login",
            "&action=bogus": None,
            "": None,
        }
        for extra, expected in cases.items():
            _, path = self.start(extra=extra)
            query = parse_qs(urlsplit(path).query)
            if expected is None:
                self.assertEqual(query, {}, extra)
            else:
                self.assertEqual(
                    query, {"action": [expected], "org.matrix.msc3824.action": [expected]}, extra
                )

    def test_redirect_urls_kept(self) -> None:
        for url, stored in (
            ("io.element.app:/callback", "io.element.app:/callback"),
            ("element://sso/callback?x=1", "element://sso/callback?x=1"),
            ("http://localhost:8080/cb#frag", "http://localhost:8080/cb#frag"),
            ("https://[2001:db8::1]/cb", "https://[2001:db8::1]/cb"),
            # The WHATWG serialisation MAS stores: an http(s) URL has at least the path "/".
            ("https://app.example.com", "https://app.example.com/"),
            ("https://app.example.com?x=1", "https://app.example.com/?x=1"),
        ):
            login_id, _ = self.start(url)
            self.assertEqual(self.sso_login(login_id).redirect_uri, stored, url)

    def test_missing_redirect_url(self) -> None:
        for query in ("", "action=login", "redirecturl=https%3A%2F%2Fapp.example.com%2F"):
            channel = self.sso_redirect(query)
            self.assertEqual(channel.code, 400, channel)
            self.assertEqual(channel.json_body["errcode"], "M_MISSING_PARAM")
            self.assertEqual(channel.json_body["error"], "Missing redirectUrl")
        self.assertEqual(self.count_logins(), 0)

    def test_invalid_redirect_urls(self) -> None:
        for url in (
            "",
            "/relative/path",
            "app.example.com/callback",
            "https://user:secret@app.example.com/",
            "https://user@app.example.com/",
            "element://user@callback",
            "https:///no-host",
            "http://",
            "https:app.example.com",
            "https://app.example.com:99999/",
            "https://app.example.com:port/",
            "https://[::1/",
            "https://app.example.com/with space",
            "https://app.example.com/\nx",
            "1http://app.example.com/",
            # A browser goes to evil.example with these, while urlsplit sees another host.
            "https://evil.example\\.app.example.com/",
            "https://evil.example\\@app.example.com/",
            "http://ev%69l.example/",
        ):
            channel = self.sso_redirect(f"redirectUrl={quote(url, safe='')}")
            self.assertEqual(channel.code, 400, (url, channel))
            self.assertEqual(channel.header("Content-Type"), "application/json")
            self.assertEqual(
                channel.json_body, {"errcode": "M_INVALID_PARAM", "error": "Invalid redirectUrl"}, url
            )
        self.assertEqual(self.count_logins(), 0)


class CompletePageTests(CompatSsoTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.user = self.factory.user()

    def sign_in(self, login_id: str | None = None) -> Any:
        query = f"?kind=continue_compat_sso_login&id={login_id}" if login_id else ""
        channel = self.login("alice", PASSWORD, query=query)
        self.assertEqual(channel.code, 303, channel)
        return channel

    def browser_session_id(self) -> str:
        rows = self.get_success(self.db_pool.execute("sessions", "SELECT user_session_id FROM user_sessions"))
        [(session_id,)] = rows
        return session_id

    def assert_expired_page(self, channel: Any) -> None:
        self.assertEqual(channel.code, 200, channel)
        self.assertIn("compat_sso_login_expired", channel.text_body)
        self.assertIn("This login session expired.", channel.text_body)
        self.assertIsNone(channel.location)
        self.assertNotIn('action="/complete-compat-sso/', channel.text_body)

    def test_signed_out_goes_to_login_and_comes_back(self) -> None:
        login_id, path = self.start()
        channel = self.browse("GET", path)
        self.assertEqual(channel.code, 303, channel)
        target = urlsplit(channel.location)
        self.assertEqual(target.path, "/login")
        self.assertEqual(parse_qs(target.query), {"kind": ["continue_compat_sso_login"], "id": [login_id]})
        # The login page says where the user is going.
        page = self.browse("GET", channel.location)
        self.assertEqual(page.code, 200, page)
        self.assertIn("app.example.com", page.text_body)
        # Signing in comes back to this login's page.
        signed_in = self.sign_in(login_id)
        self.assertEqual(signed_in.location, f"/complete-compat-sso/{login_id}")
        confirm = self.browse("GET", signed_in.location)
        self.assertEqual(confirm.code, 200, confirm)
        self.assertTrue(self.sso_login(login_id).is_pending)

    def test_register_action_goes_to_registration(self) -> None:
        login_id, path = self.start(extra="&action=register")
        self.assertIn("action=register", path)
        channel = self.browse("GET", path)
        self.assertEqual(channel.code, 303, channel)
        target = urlsplit(channel.location)
        self.assertEqual(target.path, "/register")
        self.assertEqual(parse_qs(target.query), {"kind": ["continue_compat_sso_login"], "id": [login_id]})

    def test_signed_out_post_goes_to_login(self) -> None:
        login_id, path = self.start()
        # A CSRF cookie from any page of the service, but nobody signed in.
        page = self.browse("GET", "/login")
        channel = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(urlsplit(channel.location).path, "/login")
        self.assertTrue(self.sso_login(login_id).is_pending)

    def test_confirmation_and_fulfilment(self) -> None:
        self.sign_in()
        login_id, path = self.start(APP + "?state=abc#frag")
        page = self.browse("GET", path)
        self.assertEqual(page.code, 200, page)
        self.assertEqual(page.header("X-Frame-Options"), "DENY")
        body = page.text_body
        self.assertIn("<h1>Continue to app.example.com?</h1>", body)
        self.assertIn("@alice:", body)
        self.assertIn(f'<form method="post" action="/complete-compat-sso/{login_id}"', body)
        self.assertIn('name="kind" value="continue_compat_sso_login"', body)
        self.assertNotIn("<script", body)
        # Showing the page writes nothing.
        self.assertTrue(self.sso_login(login_id).is_pending)

        channel = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 303, channel)
        login = self.sso_login(login_id)
        # The client's own query and fragment are kept; loginToken is added to the query.
        self.assertEqual(channel.location, f"{APP}?state=abc&loginToken={login.login_token}#frag")
        self.assertEqual(login.fulfilled_at, self.server.get_clock().time_msec())
        self.assertEqual(login.user_session_id, self.browser_session_id())
        self.assertIsNone(login.exchanged_at)

    def test_login_token_on_urls_without_query(self) -> None:
        self.sign_in()
        for url in ("io.element.app:/callback", "https://app.example.com"):
            login_id, path = self.start(url)
            page = self.browse("GET", path)
            channel = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
            token = self.sso_login(login_id).login_token
            expected = {
                "io.element.app:/callback": "io.element.app:/callback",
                "https://app.example.com": "https://app.example.com/",
            }
            self.assertEqual(channel.location, f"{expected[url]}?loginToken={token}")

    def test_already_fulfilled(self) -> None:
        self.sign_in()
        login_id, path = self.start()
        page = self.browse("GET", path)
        first = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        self.assertEqual(first.code, 303, first)
        fulfilled_at = self.sso_login(login_id).fulfilled_at
        self.reactor.advance(5)
        self.assert_expired_page(self.browse("GET", path))
        self.assert_expired_page(
            self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        )
        self.assertEqual(self.sso_login(login_id).fulfilled_at, fulfilled_at)

    def test_expires_after_30_minutes(self) -> None:
        self.sign_in()
        login_id, path = self.start()
        self.reactor.advance(29 * 60)
        page = self.browse("GET", path)
        self.assertEqual(page.code, 200, page)
        self.assertIn(f'action="/complete-compat-sso/{login_id}"', page.text_body)
        self.reactor.advance(61)
        self.assert_expired_page(self.browse("GET", path))
        self.assert_expired_page(
            self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        )
        self.assertTrue(self.sso_login(login_id).is_pending)

    def test_bad_csrf(self) -> None:
        self.sign_in()
        login_id, path = self.start()
        self.browse("GET", path)
        for form in ({"csrf": "wrong"}, {}):
            channel = self.browse("POST", f"/complete-compat-sso/{login_id}", form=form)
            self.assertEqual(channel.code, 400, channel)
            self.assertIsNone(channel.location)
        # Without any CSRF cookie either.
        channel = self.make_request(
            "POST",
            f"/complete-compat-sso/{login_id}",
            form={"csrf": "x"},
            cookies={"session": self.jar["session"]} if "session" in self.jar else None,
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertTrue(self.sso_login(login_id).is_pending)

    def test_unknown_login(self) -> None:
        self.sign_in()
        for login_id in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-a-ulid"):
            channel = self.browse("GET", f"/complete-compat-sso/{login_id}")
            self.assertEqual(channel.code, 404, (login_id, channel))
        page = self.browse("GET", "/")
        channel = self.browse(
            "POST", "/complete-compat-sso/01ARZ3NDEKTSV4RRFFQ69G5FAV", form={"csrf": csrf_from(page)}
        )
        self.assertEqual(channel.code, 404, channel)

    def test_locked_user(self) -> None:
        self.sign_in()
        login_id, path = self.start()
        page = self.browse("GET", path)
        self.get_success(
            self.server.get_stores().users.lock_user(self.user, self.server.get_clock().time_msec())
        )
        for channel in (
            self.browse("GET", path),
            self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)}),
        ):
            self.assertEqual(channel.code, 200, channel)
            self.assertIsNone(channel.location)
            self.assertNotIn(f'action="/complete-compat-sso/{login_id}"', channel.text_body)
        self.assertTrue(self.sso_login(login_id).is_pending)

    @override_config({"experimental": {"session_limit": {"soft_limit": 1, "hard_limit": 3}}})
    def test_policy_soft_session_limit(self) -> None:
        self.sign_in()
        login_id, path = self.start()
        # Within the soft limit: the page is shown.
        self.assertEqual(self.browse("GET", path).code, 200)
        tokens = self.server.get_token_generator()
        now = self.server.get_clock().time_msec()
        session = CompatSession(
            id=tokens.ulid(), user_id=self.user.id, device_id="DEVICEAAAA", created_at=now
        )
        access = CompatAccessToken(
            id=tokens.ulid(), session_id=session.id, access_token="mct_x", created_at=now
        )
        self.get_success(self.server.get_stores().compat_sessions.start_compat_session(session, access))
        page = self.browse("GET", path)
        self.assertEqual(page.code, 403, page)
        self.assertIn("Device limit reached", page.text_body)
        self.assertIn("sign out of 1 of your devices", page.text_body)
        self.assertNotIn(f'action="/complete-compat-sso/{login_id}"', page.text_body)
        channel = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 403, channel)
        self.assertIsNone(channel.location)
        self.assertTrue(self.sso_login(login_id).is_pending)

    @override_config({"policy": {"data": {"requester": {"banned_ips": ["198.51.100.0/24"]}}}})
    def test_policy_banned_requester(self) -> None:
        self.sign_in()
        login_id, path = self.start()
        page = self.browse("GET", path, client_ip="198.51.100.7")
        self.assertEqual(page.code, 403, page)
        self.assertIn("198.51.100.7", page.text_body)
        self.assertIn("isn&#39;t allowed to do this action", page.text_body)
        channel = self.browse(
            "POST",
            f"/complete-compat-sso/{login_id}",
            form={"csrf": csrf_from(page)},
            client_ip="198.51.100.7",
        )
        self.assertEqual(channel.code, 403, channel)
        self.assertTrue(self.sso_login(login_id).is_pending)
        # From another address the same user may continue.
        allowed = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        self.assertEqual(allowed.code, 303, allowed)


class SsoToTokenTests(CompatSsoTestCase):
    """The whole legacy SSO login as a Matrix client and its browser go through it: the
    ``loginToken`` the page hands back is what ``POST /login`` (``m.login.token``) exchanges."""

    def test_login_token_exchanged_once(self) -> None:
        user = self.factory.user()
        login_id, path = self.start(APP)
        signed_out = self.browse("GET", path)
        self.sign_in_via(signed_out.location)
        page = self.browse("GET", f"/complete-compat-sso/{login_id}")
        channel = self.browse("POST", f"/complete-compat-sso/{login_id}", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 303, channel)
        token = parse_qs(urlsplit(channel.location).query)["loginToken"][0]

        body = {"type": "m.login.token", "token": token, "device_id": "SSODEVICE1"}
        reply = self.make_request("POST", "/_matrix/client/v3/login", json=body)
        self.assertEqual(reply.code, 200, reply.json_body)
        self.assertEqual(reply.json_body["device_id"], "SSODEVICE1")
        self.assertEqual(reply.json_body["user_id"], f"@alice:{self.server.config.matrix.homeserver}")
        self.assertTrue(reply.json_body["access_token"].startswith("mct_"))
        login = self.sso_login(login_id)
        self.assertIsNotNone(login.exchanged_at)
        session = self.get_success(
            self.server.get_stores().compat_sessions.get_compat_session(login.compat_session_id)
        )
        self.assertEqual((session.user_id, session.device_id), (user.id, "SSODEVICE1"))
        # The token is used once.
        again = self.make_request("POST", "/_matrix/client/v3/login", json=body)
        self.assertEqual(again.code, 403, again.json_body)

    def sign_in_via(self, login_page: str) -> None:
        page = self.browse("GET", login_page)
        self.assertEqual(page.code, 200, page)
        channel = self.browse(
            "POST", login_page, form={"csrf": csrf_from(page), "username": "alice", "password": PASSWORD}
        )
        self.assertEqual(channel.code, 303, channel)
