# SPDX-License-Identifier: AGPL-3.0-only
"""Revocation rules (RFC 7009, inventory §2.11), through :class:`RevocationHandler`."""

from __future__ import annotations

from typing import Any

from mas_twisted.api.errors import UnauthorizedClientError, UnsupportedTokenTypeError
from mas_twisted.types.oauth2 import AccessToken, RefreshToken
from mas_twisted.types.tokens import TokenType
from tests.handlers._base import TokenFixture, compat_token


class RevocationHandlerTestCase(TokenFixture):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.handler = server.get_revocation_handler()
        self.tracker = server.get_activity_tracker()

    def revoke(self, token: str, hint: str | None = None, client: Any = None, ip: str | None = None) -> bool:
        return self.get_success(self.handler.revoke(client or self.client, token, hint, ip=ip))

    def assert_session_ended(self, session_id: str, *token_ids: str) -> None:
        session = self.session(session_id)
        self.assertEqual(session.finished_at, self.now())
        for token_id in token_ids:
            found = self.get_success(self.stores.access_tokens.get_access_token(token_id))
            if found is None:
                found = self.refresh(token_id)
            self.assertEqual(found.revoked_at, self.now(), token_id)

    def test_revoking_an_access_token_ends_the_session(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        self.advance_ms(1000)
        self.assertTrue(self.revoke(access.access_token, "access_token", ip="192.0.2.7"))
        self.assert_session_ended(session.id, access.id, refresh.id)
        # The homeserver is told to drop the device, by a job of the same transaction.
        jobs = self.get_success(self.server.get_stores().queue.list_jobs("sync-devices"))
        self.assertEqual([(j.status, j.payload) for j in jobs], [("available", {"user_id": session.user_id})])
        # Revoking again is not an error, and changes nothing.
        before = self.table_snapshot()
        self.advance_ms(1000)
        self.assertFalse(self.revoke(access.access_token, "access_token"))
        self.assertFalse(self.revoke(refresh.refresh_token))
        self.assertEqual(self.table_snapshot(), before)
        # The activity of the session was recorded, with the caller's address.
        self.get_success(self.tracker.flush())
        ended = self.session(session.id)
        self.assertEqual((ended.last_active_at, ended.last_active_ip), (self.now() - 1000, "192.0.2.7"))

    def test_revoking_a_refresh_token_ends_the_session(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        self.assertTrue(self.revoke(refresh.refresh_token))
        self.assert_session_ended(session.id, access.id, refresh.id)

    def test_rotated_tokens_revoke_nothing(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        self.advance_ms(1000)
        new_access = AccessToken(
            id=self.tokens.ulid(),
            session_id=session.id,
            access_token=self.tokens.token(TokenType.ACCESS_TOKEN),
            created_at=self.now(),
            expires_at=self.now() + 300_000,
        )
        new_refresh = RefreshToken(
            id=self.tokens.ulid(),
            session_id=session.id,
            refresh_token=self.tokens.token(TokenType.REFRESH_TOKEN),
            created_at=self.now(),
            access_token_id=new_access.id,
        )
        self.assertTrue(
            self.get_success(
                self.stores.refresh_tokens.rotate_refresh_token(refresh, new_access, new_refresh)
            )
        )
        before = self.table_snapshot()
        # The old access token was revoked by the rotation, the old refresh token consumed.
        self.assertFalse(self.revoke(access.access_token, "access_token"))
        self.assertFalse(self.revoke(refresh.refresh_token, "refresh_token"))
        self.assertEqual(self.table_snapshot(), before)
        self.assertTrue(self.session(session.id).is_valid)
        # The new refresh token ends the session.
        self.assertTrue(self.revoke(new_refresh.refresh_token, "refresh_token"))
        self.assert_session_ended(session.id, new_access.id, new_refresh.id)

    def test_expired_access_token_revokes_nothing(self) -> None:
        session, access, _ = self.start_session(ttl_ms=1000)
        self.advance_ms(1001)
        self.assertFalse(self.revoke(access.access_token))
        self.assertTrue(self.session(session.id).is_valid)

    def test_tokens_it_cannot_revoke_are_ignored(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        before = self.table_snapshot()
        for token, hint in (
            ("", None),
            ("garbage", "access_token"),
            ("garbage", "something_else"),  # malformed wins over the hint
            (self.tokens.token(TokenType.ACCESS_TOKEN), None),
            (self.tokens.token(TokenType.REFRESH_TOKEN), "refresh_token"),
            (access.access_token, "refresh_token"),  # a hint that does not fit
            (refresh.refresh_token, "access_token"),
            (compat_token("mct"), None),
            (compat_token("mcr"), "refresh_token"),
            (compat_token("mpt"), "access_token"),
        ):
            with self.subTest(token=token, hint=hint):
                self.assertFalse(self.revoke(token, hint))
        self.assertEqual(self.table_snapshot(), before)
        self.assertEqual(self.tracker.pending_sessions, 0)

    def test_unknown_hint(self) -> None:
        session, access, _ = self.start_session()
        before = self.table_snapshot()
        for hint in ("pct", "id_token", ""):
            with self.subTest(hint=hint):
                self.get_failure(
                    self.handler.revoke(self.client, access.access_token, hint), UnsupportedTokenTypeError
                )
                self.get_failure(
                    self.handler.revoke(self.client, compat_token("mct"), hint), UnsupportedTokenTypeError
                )
        self.assertEqual(self.table_snapshot(), before)

    def test_other_clients_session(self) -> None:
        other = self.add_client()
        session, access, refresh = self.start_session()
        assert refresh is not None
        before = self.table_snapshot()
        self.get_failure(self.handler.revoke(other, access.access_token), UnauthorizedClientError)
        self.get_failure(self.handler.revoke(other, refresh.refresh_token), UnauthorizedClientError)
        self.assertEqual(self.table_snapshot(), before)
        self.assertEqual(self.tracker.pending_sessions, 0)

    def test_finished_session(self) -> None:
        session, access, _ = self.start_session()
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        before = self.table_snapshot()
        self.assertFalse(self.revoke(access.access_token))
        self.assertEqual(self.table_snapshot(), before)

    def test_client_credentials_session(self) -> None:
        session, access, _ = self.start_session("urn:mas:admin", user=None, refresh=False)
        self.assertTrue(self.revoke(access.access_token))
        self.assert_session_ended(session.id, access.id)
