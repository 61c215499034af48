# SPDX-License-Identifier: AGPL-3.0-only
"""``GET|POST /login`` (MAS's ``views/login.rs`` and its tests), through the real listener."""

from __future__ import annotations

from urllib.parse import quote

from mas_twisted.config.passwords import PasswordScheme
from mas_twisted.handlers.passwords import Hasher
from mas_twisted.rest._cookies import SESSION_COOKIE
from mas_twisted.types.users import UserPassword
from tests.rest.human._base import HumanTestCase, csrf_from
from tests.unittest import override_config

PASSWORD = "correct horse battery staple"
GRANT_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
INVALID = "That username and password do not match an account."
RATE_LIMITED = "Too many attempts."


class LoginPageTests(HumanTestCase):
    def test_form(self) -> None:
        channel = self.browse("GET", "/login")
        self.assertEqual(channel.code, 200, channel)
        self.assertEqual(channel.content_type, "text/html; charset=utf-8")
        self.assertEqual(channel.header("X-Frame-Options"), "DENY")
        body = channel.text_body
        self.assertIn('<form method="post"', body)
        self.assertIn('<label for="field-username">Username</label>', body)
        self.assertIn('autocomplete="current-password"', body)
        # The page's token is the one the csrf cookie holds.
        self.assertIn("csrf", channel.cookies)
        self.assertTrue(csrf_from(channel))

    def test_login_and_go_home(self) -> None:
        self.factory.user()
        channel = self.login("alice", PASSWORD)
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(channel.location, "/")
        self.assertIn(SESSION_COOKIE, channel.cookies)
        self.assertEqual(self.count_rows("user_sessions"), 1)
        self.assertEqual(self.count_rows("user_session_authentications"), 1)
        home = self.browse("GET", "/")
        self.assertIn("You are signed in as <strong>alice</strong>", home.text_body)
        # Signed in, the login page sends the browser on.
        again = self.browse("GET", "/login")
        self.assertEqual(again.code, 303)
        self.assertEqual(again.location, "/")

    def test_a_repeated_field_is_refused(self) -> None:
        """Our forms send each field once; a second username or password (which one would
        count?) is a 400 page, and nobody is signed in (issue 11)."""
        self.factory.user()
        page = self.browse("GET", "/login")
        for form in (
            [("csrf", csrf_from(page)), ("username", "alice"), ("username", "bob"), ("password", PASSWORD)],
            [("csrf", csrf_from(page)), ("username", "alice"), ("password", "x"), ("password", PASSWORD)],
        ):
            channel = self.browse("POST", "/login", form=form)
            self.assertEqual(channel.code, 400, channel)
            self.assertIn("text/html", channel.content_type)
            self.assertEqual(self.count_rows("user_sessions"), 0)
        self.assertEqual(self.login("alice", PASSWORD).code, 303)

    def test_session_records_the_client(self) -> None:
        user = self.factory.user()
        self.login("alice", PASSWORD, client_ip="198.51.100.7")
        rows = self.get_success(
            self.db_pool.execute("s", "SELECT user_id, user_agent, last_active_ip FROM user_sessions")
        )
        self.assertEqual(rows[0][0], user.id)
        self.assertEqual(rows[0][2], "198.51.100.7")

    def test_post_auth_action_is_carried_to_the_consent_page(self) -> None:
        self.factory.user()
        query = f"?kind=continue_authorization_grant&id={GRANT_ID}"
        page = self.browse("GET", "/login" + query)
        self.assertEqual(page.code, 200)
        channel = self.login("alice", PASSWORD, query=query)
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(channel.location, f"/consent/{GRANT_ID}")
        # Already signed in: straight on.
        again = self.browse("GET", "/login?kind=continue_device_code_grant&id=" + GRANT_ID)
        self.assertEqual(again.location, f"/device/{GRANT_ID}")

    def test_invalid_post_auth_actions_are_dropped(self) -> None:
        self.factory.user()
        channel = self.login("alice", PASSWORD, query="?kind=continue_authorization_grant&id=not-a-ulid")
        self.assertEqual(channel.location, "/")

    def test_wrong_password_unknown_user_and_no_password_look_the_same(self) -> None:
        self.factory.user()
        self.factory.user("bob", password=None)
        for username, password in (("alice", "wrong password"), ("nobody", PASSWORD), ("bob", PASSWORD)):
            channel = self.login(username, password)
            self.assertEqual(channel.code, 200, channel)
            self.assertIn(INVALID, channel.text_body)
            self.assertNotIn(SESSION_COOKIE, channel.cookies)
            # The username is shown back, never the password.
            self.assertIn(f'value="{username}"', channel.text_body)
            self.assertNotIn(password, channel.text_body)
        self.assertEqual(self.count_rows("user_sessions"), 0)

    def test_empty_fields(self) -> None:
        page = self.browse("GET", "/login")
        channel = self.browse(
            "POST", "/login", form={"csrf": csrf_from(page), "username": "", "password": ""}
        )
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.text_body.count("Fill in this field."), 2)
        self.assertIn('aria-invalid="true"', channel.text_body)

    def test_matrix_id_of_this_server(self) -> None:
        self.factory.user()
        self.assertEqual(self.login("@alice:example.com", PASSWORD).code, 303)
        self.jar.clear()
        channel = self.login("@alice:other.example", PASSWORD)
        self.assertIn(INVALID, channel.text_body)

    def test_username_is_case_insensitive(self) -> None:
        self.factory.user()
        self.assertEqual(self.login("ALICE", PASSWORD).code, 303)

    @override_config({"account": {"login_with_email_allowed": True}})
    def test_login_with_email(self) -> None:
        self.factory.user(emails=("alice@example.org",))
        page = self.browse("GET", "/login")
        self.assertIn("Username or email address", page.text_body)
        channel = self.login("Alice@Example.org", PASSWORD)
        self.assertEqual(channel.code, 303, channel)

    def test_email_login_is_off_by_default(self) -> None:
        self.factory.user(emails=("alice@example.org",))
        channel = self.login("alice@example.org", PASSWORD)
        self.assertIn(INVALID, channel.text_body)

    def test_login_hint(self) -> None:
        page = self.browse("GET", "/login?login_hint=" + quote("mxid:@alice:example.com"))
        self.assertIn('value="alice"', page.text_body)
        page = self.browse("GET", "/login?login_hint=" + quote("mxid:@alice:elsewhere.example"))
        self.assertNotIn('value="alice"', page.text_body)


class InactiveAccountTests(HumanTestCase):
    def test_locked_account(self) -> None:
        self.factory.user(locked_at=1)
        query = f"?kind=continue_authorization_grant&id={GRANT_ID}"
        channel = self.login("alice", PASSWORD, query=query)
        self.assertEqual(channel.code, 200, channel)
        body = channel.text_body
        self.assertIn("Account locked", body)
        # The button logs out and comes back to the grant.
        self.assertIn('action="/logout"', body)
        self.assertIn('name="kind" value="continue_authorization_grant"', body)
        self.assertIn(f'name="id" value="{GRANT_ID}"', body)
        self.assertNotIn(SESSION_COOKIE, channel.cookies)
        self.assertEqual(self.count_rows("user_sessions"), 0)

    def test_locked_account_with_a_wrong_password_is_not_disclosed(self) -> None:
        self.factory.user(locked_at=1)
        channel = self.login("alice", "wrong password")
        self.assertNotIn("Account locked", channel.text_body)
        self.assertIn(INVALID, channel.text_body)

    def test_deactivated_account(self) -> None:
        self.factory.user(deactivated_at=1)
        channel = self.login("alice", PASSWORD)
        self.assertIn("Account deactivated", channel.text_body)
        self.assertEqual(self.count_rows("user_sessions"), 0)
        self.jar.clear()
        self.assertNotIn("Account deactivated", self.login("alice", "wrong password").text_body)


class LoginRateLimitTests(HumanTestCase):
    def test_per_ip(self) -> None:
        self.factory.user()
        for _ in range(3):
            channel = self.login("alice", "wrong password")
            self.assertIn(INVALID, channel.text_body)
            self.assertNotIn(RATE_LIMITED, channel.text_body)
        # The right password does not help from this address any more...
        channel = self.login("alice", PASSWORD)
        self.assertEqual(channel.code, 200)
        self.assertIn(RATE_LIMITED, channel.text_body)
        self.assertNotIn(INVALID, channel.text_body)
        self.assertEqual(self.count_rows("user_sessions"), 0)
        # ...but it does from another one, and here again 20 s later.
        self.assertEqual(self.login("alice", PASSWORD, client_ip="192.0.2.99").code, 303)
        self.jar.clear()
        self.reactor.advance(20)
        self.assertEqual(self.login("alice", PASSWORD).code, 303)

    def test_unknown_users_do_not_use_the_limit(self) -> None:
        self.factory.user()
        for _ in range(5):
            self.assertIn(INVALID, self.login("nobody", "x").text_body)
        self.assertEqual(self.login("alice", PASSWORD).code, 303)

    @override_config({"rate_limiting": {"login": {"per_account": {"burst": 2, "per_second": 0.001}}}})
    def test_per_account(self) -> None:
        self.factory.user()
        self.login("alice", "wrong", client_ip="192.0.2.1")
        self.login("alice", "wrong", client_ip="192.0.2.2")
        channel = self.login("alice", PASSWORD, client_ip="192.0.2.3")
        self.assertIn(RATE_LIMITED, channel.text_body)
        self.assertEqual(self.count_rows("user_sessions"), 0)


TWO_SCHEMES = {
    "passwords": {
        "schemes": [{"version": 1, "algorithm": "bcrypt", "cost": 4}, {"version": 2, "algorithm": "argon2id"}]
    }
}


class PasswordUpgradeTests(HumanTestCase):
    def give_old_password(self) -> UserPassword:
        """alice, with a version-1 (bcrypt) hash of her password."""
        user = self.factory.user(password=None)
        old_scheme = PasswordScheme(version=1, algorithm="bcrypt", cost=4)
        password = UserPassword(
            id=self.server.get_token_generator().ulid(),
            user_id=user.id,
            hashed_password=Hasher(old_scheme).hash_blocking(PASSWORD),
            version=1,
            created_at=self.clock.time_msec(),
        )
        self.get_success(self.server.get_stores().user_passwords.add_user_password(password))
        self.reactor.advance(1)
        return password

    @override_config(TWO_SCHEMES)
    def test_upgrade_on_login(self) -> None:
        before = self.give_old_password()
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        after = self.get_success(
            self.server.get_stores().user_passwords.get_active_user_password(before.user_id)
        )
        self.assertEqual(after.version, 2)
        self.assertTrue(after.hashed_password.startswith("$argon2id$"))
        self.assertEqual(after.upgraded_from_id, before.id)
        # The session is authenticated by the password that was just written.
        auth = self.get_success(
            self.db_pool.execute("a", "SELECT user_password_id FROM user_session_authentications")
        )
        self.assertEqual(auth[0][0], after.id)
        # Logging in again needs no further upgrade, and works.
        self.jar.clear()
        self.reactor.advance(1)
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        self.assertEqual(self.count_rows("user_passwords"), 2)

    @override_config(TWO_SCHEMES)
    def test_failed_login_does_not_upgrade(self) -> None:
        self.give_old_password()
        self.assertIn(INVALID, self.login("alice", "wrong password").text_body)
        self.assertEqual(self.count_rows("user_passwords"), 1)


class PasswordLoginDisabledTests(HumanTestCase):
    @override_config({"passwords": {"enabled": False}})
    def test_post_is_refused(self) -> None:
        page = self.browse("GET", "/login")
        self.assertEqual(page.code, 200)
        self.assertNotIn('name="password"', page.text_body)
        self.assertIn("No way to sign in", page.text_body)
        channel = self.browse("POST", "/login", form={"csrf": "x", "username": "a", "password": "b"})
        self.assertEqual(channel.code, 405)

    @override_config(
        {
            "passwords": {"enabled": False},
            "upstream_oauth2": {
                "providers": [
                    {
                        "id": "01J0000000000000000000PRV1",
                        "issuer": "https://sso.example.org/",
                        "client_id": "mas",
                        "token_endpoint_auth_method": "none",
                        # No discovery: nothing leaves the fake reactor.
                        "discovery_mode": "disabled",
                        "authorization_endpoint": "https://sso.example.org/authorize",
                        "token_endpoint": "https://sso.example.org/token",
                    }
                ]
            },
        }
    )
    def test_a_single_provider_is_where_login_goes(self) -> None:
        # MAS sends the browser straight to the only provider when password login is off,
        # with the post-auth action; the provider's authorization endpoint is next.
        from mas_twisted.storage.config_sync import config_sync

        self.get_success(config_sync(self.server, prune=False, dry_run=False))
        channel = self.browse("GET", f"/login?kind=continue_authorization_grant&id={GRANT_ID}")
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(
            channel.location,
            f"/upstream/authorize/01J0000000000000000000PRV1?kind=continue_authorization_grant&id={GRANT_ID}",
        )
        upstream = self.browse("GET", channel.location)
        self.assertEqual(upstream.code, 303, upstream)
        assert upstream.location is not None
        self.assertTrue(upstream.location.startswith("https://sso.example.org/authorize?"), upstream.location)
