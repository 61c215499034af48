# SPDX-License-Identifier: AGPL-3.0-only
"""Users, passwords and emails through ``UserHandler`` and the stores (both engines)."""

from __future__ import annotations

from typing import Any

from mas_twisted.handlers.users import (
    InvalidEmailError,
    InvalidUsernameError,
    PasswordTooWeakError,
    Registration,
    UserNotFoundError,
)
from mas_twisted.server import MasServer
from mas_twisted.types.users import BrowserSession, User, UserEmail
from tests.handlers._helpers import use_threadless_password_manager
from tests.unittest import MasTestCase, override_config


class UserHandlerTests(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: MasServer) -> None:
        self.passwords = use_threadless_password_manager(server, reactor)
        self.handler = server.get_user_handler()
        self.stores = server.get_stores()

    def register(self, username: str, password: str | None = None, **kwargs: Any) -> User:
        hashed = self.get_success(self.handler.hash_password(password)) if password is not None else None
        return self.get_success(
            self.handler.register_user(Registration(username=username, hashed_password=hashed, **kwargs))
        )

    def test_register_user_with_password_and_emails(self) -> None:
        user = self.register(
            "alice",
            "correct horse battery staple",
            emails=("alice@example.org", "a@example.net"),
            can_request_admin=True,
        )
        self.assertEqual(user.username, "alice")
        self.assertEqual(user.created_at, self.clock.time_msec())
        self.assertTrue(user.can_request_admin)
        self.assertTrue(user.is_valid)
        self.assertEqual(self.get_success(self.stores.users.get_user(user.id)), user)
        password = self.get_success(self.stores.user_passwords.get_active_user_password(user.id))
        assert password is not None
        self.assertEqual(password.version, 1)
        self.assertTrue(
            self.get_success(
                self.passwords.verify(1, "correct horse battery staple", password.hashed_password)
            )
        )
        emails = self.get_success(self.stores.user_emails.list_user_emails(user.id))
        self.assertEqual([e.email for e in emails], ["alice@example.org", "a@example.net"])

    def test_usernames_are_normalized_and_checked(self) -> None:
        self.assertEqual(
            self.get_success(self.handler.check_and_normalize_username("@bob:example.com")), "bob"
        )
        self.assertEqual(self.get_success(self.handler.check_and_normalize_username("carol")), "carol")
        for bad in ("", "@", "@:example.com", "Bob", "bob smith", "_bob", "bob!", "b" * 250):
            self.get_failure(self.handler.check_and_normalize_username(bad), InvalidUsernameError)

    def test_taken_usernames_in_any_case(self) -> None:
        self.register("alice")
        failure = self.get_failure(
            self.handler.register_user(Registration(username="alice")), InvalidUsernameError
        )
        self.assertEqual(failure.value.msg, "User already exists")
        self.assertTrue(self.get_success(self.stores.users.user_exists("ALICE")))
        self.assertFalse(self.get_success(self.stores.users.user_exists("bob")))

    def test_bad_email_writes_nothing(self) -> None:
        self.get_failure(
            self.handler.register_user(Registration(username="dave", emails=("not-an-email",))),
            InvalidEmailError,
        )
        self.assertIsNone(self.get_success(self.stores.users.find_user_by_username("dave")))

    def test_find_by_username_prefers_the_exact_case(self) -> None:
        tokens = self.server.get_token_generator()
        now = self.clock.time_msec()
        lower = User(id=tokens.ulid(), username="eve", created_at=now)
        upper = User(id=tokens.ulid(), username="Eve", created_at=now)
        self.get_success(self.stores.users.add_user(lower))
        self.assertEqual(self.get_success(self.stores.users.find_user_by_username("EVE")), lower)
        self.get_success(self.stores.users.add_user(upper))
        self.assertEqual(self.get_success(self.stores.users.find_user_by_username("eve")), lower)
        self.assertEqual(self.get_success(self.stores.users.find_user_by_username("Eve")), upper)
        # Several casings and none exact: nobody.
        self.assertIsNone(self.get_success(self.stores.users.find_user_by_username("EVE")))

    def test_email_lookup_needs_a_single_owner(self) -> None:
        alice = self.register("alice", emails=("shared@example.org", "Alice@Example.org"))
        self.register("bob", emails=("shared@example.org",))
        found = self.get_success(self.stores.user_emails.find_user_email_by_email("ALICE@example.ORG"))
        assert found is not None
        self.assertEqual(found.user_id, alice.id)
        self.assertIsNone(
            self.get_success(self.stores.user_emails.find_user_email_by_email("shared@example.org"))
        )
        self.assertIsNotNone(
            self.get_success(self.stores.user_emails.find_user_email(alice.id, "shared@EXAMPLE.org"))
        )

    def test_set_password_adds_a_new_current_password(self) -> None:
        user = self.register("alice", "correct horse battery staple")
        first = self.get_success(self.stores.user_passwords.get_active_user_password(user.id))
        self.reactor.advance(1)
        self.get_success(self.handler.set_password("alice", "another fine long passphrase"))
        current = self.get_success(self.stores.user_passwords.get_active_user_password(user.id))
        assert first is not None and current is not None
        self.assertNotEqual(current.id, first.id)
        self.assertTrue(
            self.get_success(
                self.passwords.verify(
                    current.version, "another fine long passphrase", current.hashed_password
                )
            )
        )

    def test_set_password_errors(self) -> None:
        self.register("alice", "correct horse battery staple")
        self.get_failure(
            self.handler.set_password("nobody", "correct horse battery staple"), UserNotFoundError
        )
        self.get_failure(self.handler.set_password("alice", "password"), PasswordTooWeakError)
        # Nothing was written by the refused change.
        current = self.get_success(
            self.stores.user_passwords.get_active_user_password(
                self.get_success(self.stores.users.find_user_by_username("alice")).id
            )
        )
        self.assertTrue(
            self.get_success(
                self.passwords.verify(1, "correct horse battery staple", current.hashed_password)
            )
        )
        self.reactor.advance(1)
        self.get_success(self.handler.set_password("alice", "password", ignore_complexity=True))

    @override_config({"passwords": {"minimum_complexity": 0}})
    def test_complexity_floor_from_config(self) -> None:
        self.handler.check_password_complexity("a")

    def test_lock_unlock_deactivate(self) -> None:
        user = self.register("alice")
        locked = self.get_success(self.stores.users.lock_user(user, 1234))
        self.assertEqual(locked.locked_at, 1234)
        self.assertFalse(locked.is_valid)
        self.assertTrue(locked.is_valid_actor)
        self.assertEqual(self.get_success(self.stores.users.get_user(user.id)), locked)
        unlocked = self.get_success(self.stores.users.unlock_user(locked))
        self.assertTrue(unlocked.is_valid)
        deactivated = self.get_success(self.stores.users.deactivate_user(unlocked, 5678))
        self.assertFalse(deactivated.is_valid_actor)
        admin = self.get_success(self.stores.users.set_can_request_admin(deactivated, True))
        self.assertEqual(self.get_success(self.stores.users.get_user(user.id)), admin)

    def test_browser_sessions(self) -> None:
        user = self.register("alice")
        tokens = self.server.get_token_generator()
        now = self.clock.time_msec()
        session = BrowserSession(
            id=tokens.ulid(), user=user, created_at=now, user_agent="UA", last_active_ip="192.0.2.1"
        )
        self.get_success(self.stores.browser_sessions.add_browser_session(session))
        loaded = self.get_success(self.stores.browser_sessions.get_browser_session(session.id))
        self.assertEqual(loaded, session)
        self.assertTrue(loaded.active)
        self.assertEqual(
            self.get_success(self.stores.browser_sessions.count_active_browser_sessions(user.id)), 1
        )
        finished = self.get_success(self.stores.browser_sessions.finish_browser_session(session, now + 5))
        self.assertEqual(finished.finished_at, now + 5)
        self.assertFalse(finished.active)
        # Finishing again keeps the first end time.
        again = self.get_success(self.stores.browser_sessions.finish_browser_session(session, now + 9))
        self.assertEqual(again.finished_at, now + 5)
        self.assertEqual(
            self.get_success(self.stores.browser_sessions.count_active_browser_sessions(user.id)), 0
        )
        # A session of a locked user is not active.
        other = BrowserSession(id=tokens.ulid(), user=user, created_at=now)
        self.get_success(self.stores.browser_sessions.add_browser_session(other))
        self.get_success(self.stores.users.lock_user(user, now))
        reloaded = self.get_success(self.stores.browser_sessions.get_browser_session(other.id))
        self.assertFalse(reloaded.active)
        self.assertEqual(
            self.get_success(self.stores.browser_sessions.finish_browser_sessions_for_user(user.id, now)), 1
        )
        self.assertIsNone(
            self.get_success(self.stores.browser_sessions.get_browser_session("01H0000000000000000000NONE"))
        )

    def test_user_email_model(self) -> None:
        user = self.register("alice")
        email = UserEmail(
            id=self.server.get_token_generator().ulid(), user_id=user.id, email="x@example.org", created_at=1
        )
        self.get_success(self.stores.user_emails.add_user_email(email))
        self.assertEqual(self.get_success(self.stores.user_emails.list_user_emails(user.id)), [email])
        self.assertTrue(self.get_success(self.stores.user_emails.remove_user_email(email.id)))
        self.assertFalse(self.get_success(self.stores.user_emails.remove_user_email(email.id)))
