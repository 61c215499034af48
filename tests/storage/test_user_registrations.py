# SPDX-License-Identifier: AGPL-3.0-only
"""The registration store on both engines: completing a registration writes the user and all
that comes with it in one transaction, or nothing (completed twice, username taken meanwhile,
registration token no longer valid), and a token's uses never exceed its limit."""

from __future__ import annotations

from typing import Any

from mas_twisted.storage.stores.user_registrations import CompletionOutcome
from mas_twisted.types.registrations import UserRegistration, UserRegistrationToken
from mas_twisted.types.users import BrowserSession, User, UserEmail
from tests.unittest import MasTestCase

USER_TABLES = ("users", "user_emails", "user_sessions", "user_terms")


class RegistrationStoreTests(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.store = server.get_stores().user_registrations
        self.tokens = server.get_token_generator()

    def now(self) -> int:
        return self.clock.time_msec()

    def count(self, table: str) -> int:
        return int(self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}"))[0][0])

    def token(self, **fields: Any) -> UserRegistrationToken:
        token = UserRegistrationToken(
            id=self.tokens.ulid(), token=self.tokens.alphanumeric(12), created_at=self.now(), **fields
        )
        self.get_success(self.store.add_registration_token(token))
        return token

    def registration(self, username: str, **fields: Any) -> UserRegistration:
        registration = UserRegistration(
            id=self.tokens.ulid(),
            username=username,
            created_at=self.now(),
            terms_url="https://example.com/tos",
            **fields,
        )
        self.get_success(self.store.add_registration(registration))
        return registration

    def complete(
        self, registration: UserRegistration, token: UserRegistrationToken | None = None
    ) -> CompletionOutcome:
        now = self.now()
        user = User(id=self.tokens.ulid(), username=registration.username, created_at=now)
        session = BrowserSession(id=self.tokens.ulid(), user=user, created_at=now)
        email = UserEmail(
            id=self.tokens.ulid(),
            user_id=user.id,
            email=f"{registration.username}@example.org",
            created_at=now,
        )
        return self.get_success(
            self.store.complete_registration(
                registration,
                user=user,
                session=session,
                authentication=None,
                password=None,
                emails=[email],
                terms_id=self.tokens.ulid(),
                token_id=token.id if token is not None else None,
                now=now,
            )
        )

    def test_complete_once(self) -> None:
        registration = self.registration("zoe")
        self.assertIs(self.complete(registration), CompletionOutcome.COMPLETED)
        for table in USER_TABLES:
            self.assertEqual(self.count(table), 1, table)
        stored = self.get_success(self.store.get_registration(registration.id))
        assert stored is not None
        self.assertEqual(stored.completed_at, self.now())
        self.assertIs(self.complete(registration), CompletionOutcome.ALREADY_COMPLETED)
        for table in USER_TABLES:
            self.assertEqual(self.count(table), 1, table)
        # A completed registration takes no more changes.
        self.assertFalse(self.get_success(self.store.set_display_name(registration.id, "Z")))

    def test_username_taken_meanwhile_writes_nothing(self) -> None:
        first = self.registration("zoe")
        second = self.registration("ZOE")
        self.assertIs(self.complete(first), CompletionOutcome.COMPLETED)
        self.assertIs(self.complete(second), CompletionOutcome.USERNAME_TAKEN)
        self.assertEqual(self.count("users"), 1)
        stored = self.get_success(self.store.get_registration(second.id))
        assert stored is not None
        self.assertIsNone(stored.completed_at)

    def test_token_uses_never_exceed_the_limit(self) -> None:
        token = self.token(usage_limit=2)
        outcomes = [self.complete(self.registration(f"user{i}"), token) for i in range(3)]
        self.assertEqual(
            outcomes,
            [CompletionOutcome.COMPLETED, CompletionOutcome.COMPLETED, CompletionOutcome.TOKEN_INVALID],
        )
        self.assertEqual(self.count("users"), 2)
        used = self.get_success(self.store.get_registration_token(token.id))
        assert used is not None
        self.assertEqual((used.times_used, used.last_used_at), (2, self.now()))
        self.assertFalse(used.is_valid(self.now()))

    def test_expired_and_revoked_tokens_are_not_used(self) -> None:
        expired = self.token(expires_at=self.now())
        self.assertIs(self.complete(self.registration("one"), expired), CompletionOutcome.TOKEN_INVALID)
        revoked = self.token()
        self.assertTrue(self.get_success(self.store.revoke_registration_token(revoked.id, self.now())))
        self.assertFalse(self.get_success(self.store.revoke_registration_token(revoked.id, self.now())))
        self.assertIs(self.complete(self.registration("two"), revoked), CompletionOutcome.TOKEN_INVALID)
        unlimited = self.token()
        for i in range(3):
            self.assertIs(
                self.complete(self.registration(f"many{i}"), unlimited), CompletionOutcome.COMPLETED
            )
        self.assertEqual(self.count("users"), 3)

    def test_validity(self) -> None:
        now = self.now()
        token = UserRegistrationToken(id="x", token="t", created_at=now, usage_limit=1, expires_at=now + 10)
        self.assertTrue(token.is_valid(now + 9))
        self.assertFalse(token.is_valid(now + 10))
        self.assertFalse(
            UserRegistrationToken(id="x", token="t", created_at=now, usage_limit=1, times_used=1).is_valid(
                now
            )
        )
        self.assertFalse(
            UserRegistrationToken(id="x", token="t", created_at=now, revoked_at=now).is_valid(now)
        )
        self.assertTrue(
            UserRegistrationToken(
                id="x", token="t", created_at=now, usage_limit=None, times_used=99
            ).is_valid(now)
        )
