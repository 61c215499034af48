# SPDX-License-Identifier: AGPL-3.0-only
"""The encrypted cookies (MAS's ``axum-utils`` ``cookies.rs``/``session.rs``/``csrf.rs``)."""

from __future__ import annotations

import base64

from mas_twisted.rest._cookies import PERMANENT_MAX_AGE, CsrfError, SessionInfo
from tests.rest.human._base import HumanTestCase, csrf_from
from tests.unittest import override_config

PASSWORD = "correct horse battery staple"


class CookieTests(HumanTestCase):
    def signed_in_cookie(self) -> str:
        self.factory.user()
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        return self.jar["session"]

    def test_values_are_sealed(self) -> None:
        cookies = self.server.get_cookie_manager()
        sealed = cookies.seal("session", {"current": "01H00000000000000000000000"})
        self.assertNotIn("01H0", sealed)
        self.assertEqual(cookies.unseal("session", sealed), {"current": "01H00000000000000000000000"})
        # Sealed anew each time (fresh nonce).
        self.assertNotEqual(sealed, cookies.seal("session", {"current": "01H00000000000000000000000"}))
        # Bound to the cookie name.
        self.assertRaises(ValueError, cookies.unseal, "csrf", sealed)

    def test_session_cookie_attributes(self) -> None:
        self.factory.user()
        channel = self.login("alice", PASSWORD)
        morsel = channel.set_cookies["session"]
        self.assertEqual(morsel["path"], "/")
        self.assertTrue(morsel["httponly"])
        self.assertTrue(morsel["secure"])
        self.assertEqual(morsel["samesite"].lower(), "lax")
        self.assertEqual(morsel["max-age"], str(PERMANENT_MAX_AGE))
        csrf = self.make_request("GET", "/login").set_cookies["csrf"]
        self.assertTrue(csrf["httponly"])
        # Every cookie is Secure when public_base is https (the test config's is).
        self.assertTrue(csrf["secure"])
        self.assertEqual(csrf["samesite"].lower(), "lax")
        self.assertEqual(csrf["max-age"], "")  # gone with the browser session

    @override_config({"http": {"public_base": "http://localhost:8080/"}})
    def test_no_secure_flag_over_plain_http(self) -> None:
        channel = self.make_request("GET", "/login")
        self.assertFalse(channel.set_cookies["csrf"]["secure"])
        # Still HttpOnly and SameSite.
        self.assertTrue(channel.set_cookies["csrf"]["httponly"])
        self.assertEqual(channel.set_cookies["csrf"]["samesite"].lower(), "lax")
        self.factory.user()
        session = self.login("alice", PASSWORD).set_cookies["session"]
        self.assertFalse(session["secure"])
        self.assertTrue(session["httponly"])

    def test_tampered_session_cookie_is_ignored(self) -> None:
        value = self.signed_in_cookie()
        raw = bytearray(base64.b64decode(value))
        raw[20] ^= 0x01
        self.jar["session"] = base64.b64encode(bytes(raw)).decode()
        body = self.browse("GET", "/").text_body
        self.assertNotIn("You are signed in", body)
        self.assertIn('href="/login">Sign in</a>', body)

    def test_garbage_and_foreign_cookies_are_ignored(self) -> None:
        self.signed_in_cookie()
        cookies = self.server.get_cookie_manager()
        for value in (
            "not base64!",
            "",
            base64.b64encode(b"x" * 40).decode(),
            cookies.seal("csrf", {"current": None}),
        ):
            self.jar["session"] = value
            self.assertNotIn("You are signed in", self.browse("GET", "/").text_body)

    def test_cookie_from_another_key_is_ignored(self) -> None:
        from mas_twisted.jose.encrypter import Encrypter

        session_id = self.server.get_cookie_manager().unseal("session", self.signed_in_cookie())["current"]
        other = Encrypter(b"\x01" * 32)
        self.jar["session"] = other.encrypt_to_string("session:" + f'{{"current":"{session_id}"}}')
        self.assertNotIn("You are signed in", self.browse("GET", "/").text_body)

    def test_session_info_json(self) -> None:
        self.assertEqual(SessionInfo.from_json({"current": "a", "logged_out_at": 5}), SessionInfo("a", 5))
        self.assertEqual(SessionInfo("a").to_json(), {"current": "a"})
        for bad in ([], {"current": 1}, {"current": None, "logged_out_at": "x"}, {"logged_out_at": True}):
            self.assertRaises(ValueError, SessionInfo.from_json, bad)

    def test_csrf_checks(self) -> None:
        page = self.make_request("GET", "/login")
        token = csrf_from(page)
        cookies = self.server.get_cookie_manager()
        # A request whose answer sets no cookie of its own.
        discovery = "/.well-known/openid-configuration"
        request = self.make_request("GET", discovery, cookies={"csrf": page.cookies["csrf"]}).request
        cookies.verify_csrf(request, token)
        self.assertEqual(
            self.assertRaises(CsrfError, cookies.verify_csrf, request, token[:-1] + "A").reason,
            "CSRF token mismatch",
        )
        self.assertEqual(self.assertRaises(CsrfError, cookies.verify_csrf, request, None).code, 400)
        self.reactor.advance(3600)
        self.assertEqual(
            self.assertRaises(CsrfError, cookies.verify_csrf, request, token).reason, "CSRF token expired"
        )
        bare = self.make_request("GET", discovery).request
        self.assertEqual(
            self.assertRaises(CsrfError, cookies.verify_csrf, bare, token).reason, "Missing CSRF cookie"
        )

    def test_csrf_token_is_32_random_bytes(self) -> None:
        token = csrf_from(self.make_request("GET", "/login"))
        self.assertEqual(len(base64.urlsafe_b64decode(token + "=")), 32)
