# SPDX-License-Identifier: AGPL-3.0-only
"""The TOTP store on both engines: a step is consumed once (an equal or earlier one is
refused), a recovery code once, and a refused second-factor login writes no session; an
enrolment is refused while a confirmed one exists; confirming twice confirms once; disabling
removes the secret and the codes together."""

from __future__ import annotations

from typing import Any

from mas_twisted.types.mfa import UserRecoveryCode, UserTotp
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, User
from tests.unittest import MasTestCase


class MfaStoreTests(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.store = server.get_stores().mfa
        self.tokens = server.get_token_generator()
        self.user: User = self.factory.user("alice", None)

    def count(self, table: str) -> int:
        return int(self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}"))[0][0])

    def totp(self) -> UserTotp:
        return UserTotp(
            id=self.tokens.ulid(), user_id=self.user.id, secret="sealed", created_at=self.clock.time_msec()
        )

    def codes(self, *hashes: str) -> list[UserRecoveryCode]:
        return [
            UserRecoveryCode(id=self.tokens.ulid(), user_id=self.user.id, code_hash=h, created_at=1)
            for h in hashes
        ]

    def confirmed(self, step: int = 100, hashes: tuple[str, ...] = ("h1", "h2")) -> UserTotp:
        totp = self.totp()
        self.assertTrue(self.get_success(self.store.start_enrolment(totp)))
        self.assertTrue(self.get_success(self.store.confirm_enrolment(totp.id, step, 5, self.codes(*hashes))))
        return totp

    def session(self) -> tuple[BrowserSession, BrowserSessionAuthentication]:
        now = self.clock.time_msec()
        session = BrowserSession(id=self.tokens.ulid(), user=self.user, created_at=now)
        auth = BrowserSessionAuthentication(
            id=self.tokens.ulid(), user_session_id=session.id, created_at=now, second_factor="totp"
        )
        return session, auth

    def test_enrolment_replaces_an_unconfirmed_secret_only(self) -> None:
        self.assertTrue(self.get_success(self.store.start_enrolment(self.totp())))
        second = self.totp()
        self.assertTrue(self.get_success(self.store.start_enrolment(second)))
        self.assertEqual(self.count("user_totp"), 1)
        self.assertTrue(self.get_success(self.store.confirm_enrolment(second.id, 7, 5, self.codes("a"))))
        # Confirming again, or enrolling over a confirmed secret: refused, nothing written.
        self.assertFalse(self.get_success(self.store.confirm_enrolment(second.id, 8, 6, self.codes("b"))))
        self.assertFalse(self.get_success(self.store.start_enrolment(self.totp())))
        stored = self.get_success(self.store.get_totp(self.user.id))
        assert stored is not None
        self.assertEqual((stored.id, stored.last_used_step, stored.confirmed_at), (second.id, 7, 5))
        self.assertEqual(self.get_success(self.store.count_unused_recovery_codes(self.user.id)), 1)

    def test_a_step_opens_one_session(self) -> None:
        self.confirmed(step=100)
        for step in (99, 100):
            session, auth = self.session()
            self.assertFalse(self.get_success(self.store.complete_login(session, auth, step=step)))
        self.assertEqual(self.count("user_sessions"), 0)
        session, auth = self.session()
        self.assertTrue(self.get_success(self.store.complete_login(session, auth, step=101)))
        session, auth = self.session()
        self.assertFalse(self.get_success(self.store.complete_login(session, auth, step=101)))
        self.assertEqual((self.count("user_sessions"), self.count("user_session_authentications")), (1, 1))
        rows = self.get_success(
            self.db_pool.execute("f", "SELECT second_factor FROM user_session_authentications")
        )
        self.assertEqual(rows[0][0], "totp")

    def test_a_recovery_code_opens_one_session(self) -> None:
        self.confirmed(hashes=("h1", "h2"))
        session, auth = self.session()
        self.assertTrue(self.get_success(self.store.complete_login(session, auth, recovery_code_hash="h1")))
        for code_hash in ("h1", "unknown"):
            session, auth = self.session()
            self.assertFalse(
                self.get_success(self.store.complete_login(session, auth, recovery_code_hash=code_hash))
            )
        self.assertEqual(self.count("user_sessions"), 1)
        self.assertEqual(self.get_success(self.store.count_unused_recovery_codes(self.user.id)), 1)

    def test_replacing_codes_and_disabling_consume_the_step(self) -> None:
        self.confirmed(step=100, hashes=("old",))
        self.assertFalse(
            self.get_success(self.store.replace_recovery_codes(self.user.id, 100, self.codes("new")))
        )
        self.assertTrue(
            self.get_success(self.store.replace_recovery_codes(self.user.id, 101, self.codes("new")))
        )
        rows = self.get_success(self.db_pool.execute("h", "SELECT code_hash FROM user_recovery_codes"))
        self.assertEqual([r[0] for r in rows], ["new"])
        self.assertFalse(self.get_success(self.store.disable(self.user.id, 101)))
        self.assertEqual(self.count("user_totp"), 1)
        self.assertTrue(self.get_success(self.store.disable(self.user.id, 102)))
        self.assertEqual((self.count("user_totp"), self.count("user_recovery_codes")), (0, 0))
