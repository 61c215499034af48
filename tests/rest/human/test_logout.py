# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /logout`` and the signed-out/locked/deactivated pages (MAS's ``views/logout.rs``,
``session.rs``)."""

from __future__ import annotations

from mas_twisted.rest._cookies import SessionInfo
from tests.rest.human._base import HumanTestCase, csrf_from

PASSWORD = "correct horse battery staple"
GRANT_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


class LogoutTests(HumanTestCase):
    def signed_in(self) -> str:
        self.factory.user()
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        session_id = self.server.get_cookie_manager().unseal("session", self.jar["session"])["current"]
        self.assertIsNotNone(session_id)
        return session_id

    def session(self, session_id: str):  # type: ignore[no-untyped-def]
        return self.get_success(self.server.get_stores().browser_sessions.get_browser_session(session_id))

    def test_logout(self) -> None:
        session_id = self.signed_in()
        home = self.browse("GET", "/")
        self.reactor.advance(5)
        channel = self.browse("POST", "/logout", form={"csrf": csrf_from(home)})
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(channel.location, "/login")
        self.assertEqual(channel.header("X-Frame-Options"), "DENY")
        self.assertEqual(self.session(session_id).finished_at, self.clock.time_msec())
        # The cookie stays, naming no session, with the time of the logout.
        info = SessionInfo.from_json(self.server.get_cookie_manager().unseal("session", self.jar["session"]))
        self.assertEqual(info, SessionInfo(current=None, logged_out_at=self.clock.time_msec()))
        home = self.browse("GET", "/")
        self.assertIn('href="/login">Sign in</a>', home.text_body)

    def test_logout_continues_the_post_auth_action(self) -> None:
        self.signed_in()
        home = self.browse("GET", "/")
        channel = self.browse(
            "POST",
            "/logout",
            form={"csrf": csrf_from(home), "kind": "continue_authorization_grant", "id": GRANT_ID},
        )
        self.assertEqual(channel.location, f"/consent/{GRANT_ID}")

    def test_logout_without_a_session_still_clears_the_cookie(self) -> None:
        page = self.browse("GET", "/login")
        channel = self.browse("POST", "/logout", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 303)
        self.assertIn("session", channel.cookies)

    def test_session_ended_elsewhere_shows_the_signed_out_page(self) -> None:
        session_id = self.signed_in()
        stores = self.server.get_stores()
        self.get_success(
            stores.browser_sessions.finish_browser_session(self.session(session_id), self.clock.time_msec())
        )
        channel = self.browse("GET", f"/login?kind=continue_authorization_grant&id={GRANT_ID}")
        self.assertEqual(channel.code, 200)
        self.assertIn("You were signed out", channel.text_body)
        self.assertIn(f'name="id" value="{GRANT_ID}"', channel.text_body)
        # Its button logs out and comes back to the grant (which will ask for a login).
        out = self.browse(
            "POST",
            "/logout",
            form={"csrf": csrf_from(channel), "kind": "continue_authorization_grant", "id": GRANT_ID},
        )
        self.assertEqual(out.location, f"/consent/{GRANT_ID}")
        self.assertIn("Sign in", self.browse("GET", "/login").text_body)

    def test_locked_while_signed_in(self) -> None:
        session_id = self.signed_in()
        user = self.session(session_id).user
        self.get_success(self.server.get_stores().users.lock_user(user, self.clock.time_msec()))
        home = self.browse("GET", "/")
        self.assertIn("Account locked", home.text_body)
        self.assertIsNone(
            self.get_success(self.server.get_cookie_manager().load_session(home.request)).active
        )

    def test_deactivated_while_signed_in(self) -> None:
        session_id = self.signed_in()
        user = self.session(session_id).user
        self.get_success(self.server.get_stores().users.deactivate_user(user, self.clock.time_msec()))
        self.assertIn("Account deactivated", self.browse("GET", "/").text_body)

    def test_cookie_naming_an_unknown_session(self) -> None:
        cookies = self.server.get_cookie_manager()
        self.jar["session"] = cookies.seal("session", {"current": "01H0000000000000000000NONE"})
        home = self.browse("GET", "/")
        self.assertEqual(home.code, 200)
        self.assertIn('href="/login">Sign in</a>', home.text_body)
        info = SessionInfo.from_json(cookies.unseal("session", self.jar["session"]))
        self.assertIsNone(info.current)


class CsrfTests(HumanTestCase):
    """Every form is refused without the token of its page: nothing is written."""

    def assert_refused(self, channel, reason: str) -> None:  # type: ignore[no-untyped-def]
        self.assertEqual(channel.code, 400, channel)
        self.assertEqual(channel.content_type, "text/html; charset=utf-8")
        self.assertIn(reason, channel.text_body)
        self.assertNotIn("session", channel.cookies)

    def test_login_without_a_csrf_cookie(self) -> None:
        self.factory.user()
        page = self.browse("GET", "/login")
        self.jar.pop("csrf")
        channel = self.browse(
            "POST", "/login", form={"csrf": csrf_from(page), "username": "alice", "password": PASSWORD}
        )
        self.assert_refused(channel, "Missing CSRF cookie")
        self.assertEqual(self.count_rows("user_sessions"), 0)

    def test_login_with_a_wrong_or_missing_token(self) -> None:
        self.factory.user()
        self.browse("GET", "/login")
        for form in ({"csrf": "x" * 43}, {}):
            channel = self.browse("POST", "/login", form={**form, "username": "alice", "password": PASSWORD})
            self.assert_refused(channel, "CSRF token mismatch")
        self.assertEqual(self.count_rows("user_sessions"), 0)

    def test_login_with_an_expired_token(self) -> None:
        self.factory.user()
        page = self.browse("GET", "/login")
        self.reactor.advance(3600)
        channel = self.browse(
            "POST", "/login", form={"csrf": csrf_from(page), "username": "alice", "password": PASSWORD}
        )
        self.assert_refused(channel, "CSRF token expired")
        self.assertEqual(self.count_rows("user_sessions"), 0)

    def test_refused_forms_do_not_use_the_rate_limit(self) -> None:
        self.factory.user()
        self.browse("GET", "/login")
        for _ in range(5):
            self.browse("POST", "/login", form={"csrf": "forged", "username": "alice", "password": "x"})
        self.assertEqual(self.login("alice", PASSWORD).code, 303)

    def test_token_of_another_browser(self) -> None:
        self.factory.user()
        other = self.make_request("GET", "/login")
        self.browse("GET", "/login")
        channel = self.browse(
            "POST", "/login", form={"csrf": csrf_from(other), "username": "alice", "password": PASSWORD}
        )
        self.assert_refused(channel, "CSRF token mismatch")

    def test_logout_without_a_valid_token(self) -> None:
        self.factory.user()
        self.login("alice", PASSWORD)
        self.browse("GET", "/")
        channel = self.browse("POST", "/logout", form={"csrf": "forged"})
        self.assertEqual(channel.code, 400)
        rows = self.get_success(self.db_pool.execute("s", "SELECT finished_at FROM user_sessions"))
        self.assertEqual(rows, [(None,)])
        self.assertIn("You are signed in as", self.browse("GET", "/").text_body)

    def test_the_token_lives_an_hour_after_each_page(self) -> None:
        self.factory.user()
        first = self.browse("GET", "/login")
        self.reactor.advance(3000)
        second = self.browse("GET", "/login")
        # The same token, its expiry pushed forward.
        self.assertEqual(csrf_from(first), csrf_from(second))
        self.reactor.advance(3000)
        channel = self.browse(
            "POST", "/login", form={"csrf": csrf_from(first), "username": "alice", "password": PASSWORD}
        )
        self.assertEqual(channel.code, 303)
