# SPDX-License-Identifier: AGPL-3.0-only
"""Access and refresh token storage: lookups, introspection, revocation, rotation, cleanup."""

from __future__ import annotations

import time

from mas_twisted.types.oauth2 import AccessToken, InvalidTransitionError, RefreshToken
from tests.storage._base import API_SCOPE, DAY_MS, HOUR_MS, OAuth2StoreTestCase


class AccessTokenStoreTestCase(OAuth2StoreTestCase):
    def test_add_get_find(self) -> None:
        session, access, _ = self.start_session()
        self.assertEqual(self.access(access.id), access)
        found = self.get_success(self.stores.access_tokens.find_access_token_by_token(access.access_token))
        self.assertEqual(found, access)
        self.assertIsNone(
            self.get_success(self.stores.access_tokens.find_access_token_by_token("mat_unknown"))
        )
        self.assertIsNone(self.access(self.new_id()))

        another = AccessToken(
            id=self.new_id(), session_id=session.id, access_token="mat_second", created_at=self.now()
        )
        self.get_success(self.stores.access_tokens.add_access_token(another))
        self.assertEqual(self.access(another.id), another)
        # Token texts are unique.
        duplicate = AccessToken(
            id=self.new_id(), session_id=session.id, access_token="mat_second", created_at=self.now()
        )
        failure = self.get_failure(self.stores.access_tokens.add_access_token(duplicate), Exception)
        self.assertTrue(self.db_pool.engine.is_integrity_error(failure.value), failure)

    def test_revoke(self) -> None:
        _, access, _ = self.start_session()
        self.advance_ms(1234)
        revoked = self.get_success(self.stores.access_tokens.revoke_access_token(access))
        self.assertEqual(revoked.revoked_at, self.now())
        self.assertEqual(self.access(access.id), revoked)
        # Again from the revoked copy (model refuses) or from a stale copy (database refuses).
        self.get_failure(self.stores.access_tokens.revoke_access_token(revoked), InvalidTransitionError)
        self.advance_ms(10)
        self.get_failure(self.stores.access_tokens.revoke_access_token(access), InvalidTransitionError)
        self.assertEqual(self.access(access.id).revoked_at, revoked.revoked_at)  # type: ignore[union-attr]

    def test_mark_first_used(self) -> None:
        _, access, _ = self.start_session()
        self.advance_ms(500)
        used = self.get_success(self.stores.access_tokens.mark_access_token_first_used(access))
        self.assertEqual(used.first_used_at, self.now())
        self.assertEqual(self.access(access.id).first_used_at, self.now())  # type: ignore[union-attr]
        first = self.now()
        self.advance_ms(500)
        # A stale copy does not move the first use.
        self.get_success(self.stores.access_tokens.mark_access_token_first_used(access))
        self.assertEqual(self.access(access.id).first_used_at, first)  # type: ignore[union-attr]
        self.assertEqual(self.get_success(self.stores.access_tokens.mark_access_token_first_used(used)), used)

    def introspect(self, token: str):  # type: ignore[no-untyped-def]
        found = self.get_success(self.stores.access_tokens.lookup_access_tokens_for_introspection([token]))
        return found.get(token)

    def test_introspection_reads_token_session_and_user(self) -> None:
        session, access, _ = self.start_session(
            scope=f"openid {API_SCOPE} urn:matrix:client:device:ABCDEFGHIJ"
        )
        result = self.introspect(access.access_token)
        assert result is not None
        self.assertEqual(result.token, access)
        self.assertEqual(result.session, session)
        assert result.user is not None
        self.assertEqual((result.user.user_id, result.user.username), (self.user.id, "alice"))
        self.assertTrue(result.is_active(self.now()))
        # Again (on PostgreSQL this runs the statement prepared by the first call).
        self.assertEqual(self.introspect(access.access_token), result)
        self.assertIsNone(self.introspect("mat_nope"))

    def test_introspection_of_client_credentials_token(self) -> None:
        session = self.make_session(user=None, scope="urn:mas:admin")
        access, _ = self.make_pair(session)
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session_with_tokens(session, access))
        result = self.introspect(access.access_token)
        assert result is not None
        self.assertIsNone(result.user)
        self.assertIsNone(result.session.user_id)
        self.assertTrue(result.is_active(self.now()))

    def test_introspection_inactive_cases(self) -> None:
        _, expiring, _ = self.start_session()
        self.advance_ms(300_001)
        result = self.introspect(expiring.access_token)
        assert result is not None
        self.assertFalse(result.is_active(self.now()))

        session, access, _ = self.start_session()
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        result = self.introspect(access.access_token)
        assert result is not None
        self.assertTrue(result.session.is_finished and result.token.is_revoked)
        self.assertFalse(result.is_active(self.now()))

        _, access, _ = self.start_session()
        user = self.get_success(self.stores.users.lock_user(self.user, self.now()))
        result = self.introspect(access.access_token)
        assert result is not None and result.user is not None
        self.assertEqual(result.user.locked_at, self.now())
        self.assertFalse(result.is_active(self.now()))

        self.get_success(self.stores.users.unlock_user(user))
        self.assertTrue(self.introspect(access.access_token).is_active(self.now()))  # type: ignore[union-attr]
        self.get_success(self.stores.users.deactivate_user(user, self.now()))
        self.assertFalse(self.introspect(access.access_token).is_active(self.now()))  # type: ignore[union-attr]

    def test_introspection_retries_on_a_new_connection(self) -> None:
        _, access, _ = self.start_session()
        self.assertIsNotNone(self.introspect(access.access_token))
        if self.test_db.engine_name == "sqlite":
            # The one SQLite connection is in autocommit mode: the read left no transaction open.
            conn = self.db_pool._db_pool.connections
            self.assertTrue(all(not c.in_transaction for c in conn.values()))
            return
        import psycopg2

        pid = self.get_success(self.db_pool.execute("backend", "SELECT pg_backend_pid()"))[0][0]
        args, kwargs = self.db_pool.engine.connect_args()
        admin = psycopg2.connect(*args, **kwargs)
        admin.autocommit = True
        self.addCleanup(admin.close)
        cur = admin.cursor()
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(200):
            cur.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.01)
        with self.assertLogs("mas_twisted.storage.database", "WARNING"):
            result = self.introspect(access.access_token)
        self.assertEqual(result.token, access)  # type: ignore[union-attr]
        new_pid = self.get_success(self.db_pool.execute("backend", "SELECT pg_backend_pid()"))[0][0]
        self.assertNotEqual(new_pid, pid)
        # adbapi logs the failed rollback on the dead connection.
        self.flushLoggedErrors()

    def test_cleanup_revoked(self) -> None:
        _, a1, _ = self.start_session()
        _, a2, _ = self.start_session()
        _, a3, _ = self.start_session()
        self.get_success(self.stores.access_tokens.revoke_access_token(a1))
        r1 = self.now()
        self.advance_ms(10)
        self.get_success(self.stores.access_tokens.revoke_access_token(a2))
        r2 = self.now()
        self.advance_ms(HOUR_MS)
        # Exactly an hour after the second revocation: it is not older than the bound yet.
        until = self.now() - HOUR_MS
        self.assertEqual(
            self.get_success(self.stores.access_tokens.cleanup_revoked_access_tokens(None, until, 5)), (1, r1)
        )
        self.assertIsNotNone(self.access(a2.id))
        self.advance_ms(1)
        until = self.now() - HOUR_MS
        self.assertEqual(
            self.get_success(self.stores.access_tokens.cleanup_revoked_access_tokens(r1, until, 1)), (1, r2)
        )
        self.assertEqual(
            self.get_success(self.stores.access_tokens.cleanup_revoked_access_tokens(r2, until, 5)), (0, None)
        )
        self.assertIsNone(self.access(a1.id))
        self.assertIsNone(self.access(a2.id))
        self.assertIsNotNone(self.access(a3.id))

    def test_cleanup_expired_unlinks_refresh_tokens(self) -> None:
        session, a1, r1 = self.start_session()
        forever, _ = self.make_pair(session, ttl_ms=None)
        self.get_success(self.stores.access_tokens.add_access_token(forever))
        expiry = a1.expires_at
        self.advance_ms(29 * DAY_MS)
        self.assertEqual(
            self.get_success(
                self.stores.access_tokens.cleanup_expired_access_tokens(None, self.now() - 30 * DAY_MS, 10)
            ),
            (0, None),
        )
        self.advance_ms(2 * DAY_MS)
        self.assertEqual(
            self.get_success(
                self.stores.access_tokens.cleanup_expired_access_tokens(None, self.now() - 30 * DAY_MS, 10)
            ),
            (1, expiry),
        )
        self.assertIsNone(self.access(a1.id))
        self.assertIsNotNone(self.access(forever.id))
        # The refresh token issued with it stays, without its access token.
        remaining = self.refresh(r1.id)
        assert remaining is not None
        self.assertIsNone(remaining.access_token_id)
        self.assertTrue(remaining.is_valid)


class RefreshTokenStoreTestCase(OAuth2StoreTestCase):
    def test_add_get_find(self) -> None:
        session, access, refresh = self.start_session()
        self.assertEqual(self.refresh(refresh.id), refresh)
        self.assertEqual(
            self.get_success(self.stores.refresh_tokens.find_refresh_token_by_token(refresh.refresh_token)),
            refresh,
        )
        self.assertIsNone(
            self.get_success(self.stores.refresh_tokens.find_refresh_token_by_token("mar_nope"))
        )
        lone = RefreshToken(
            id=self.new_id(), session_id=session.id, refresh_token="mar_lone", created_at=self.now()
        )
        self.get_success(self.stores.refresh_tokens.add_refresh_token(lone))
        self.assertEqual(self.refresh(lone.id), lone)

    def test_consume_and_revoke(self) -> None:
        session, access, refresh = self.start_session()
        next_access, next_refresh = self.make_pair(session)
        self.get_success(self.stores.access_tokens.add_access_token(next_access))
        self.get_success(self.stores.refresh_tokens.add_refresh_token(next_refresh))
        self.advance_ms(100)
        consumed = self.get_success(
            self.stores.refresh_tokens.consume_refresh_token(refresh, next_refresh.id)
        )
        self.assertEqual(
            (consumed.consumed_at, consumed.next_refresh_token_id), (self.now(), next_refresh.id)
        )
        self.assertEqual(self.refresh(refresh.id), consumed)
        # A stale copy that still looks valid loses.
        self.get_failure(
            self.stores.refresh_tokens.consume_refresh_token(refresh, next_refresh.id), InvalidTransitionError
        )
        # Consumed tokens cannot be revoked.
        self.get_failure(self.stores.refresh_tokens.revoke_refresh_token(consumed), InvalidTransitionError)
        self.get_failure(self.stores.refresh_tokens.revoke_refresh_token(refresh), InvalidTransitionError)

        # A consumed token can be consumed again (double refresh), but only from its current state.
        third_access, third_refresh = self.make_pair(session)
        self.get_success(self.stores.access_tokens.add_access_token(third_access))
        self.get_success(self.stores.refresh_tokens.add_refresh_token(third_refresh))
        again = self.get_success(self.stores.refresh_tokens.consume_refresh_token(consumed, third_refresh.id))
        self.assertEqual(self.refresh(refresh.id), again)
        self.assertEqual(again.next_refresh_token_id, third_refresh.id)
        self.get_failure(
            self.stores.refresh_tokens.consume_refresh_token(consumed, third_refresh.id),
            InvalidTransitionError,
        )

        revoked = self.get_success(self.stores.refresh_tokens.revoke_refresh_token(next_refresh))
        self.assertEqual(self.refresh(next_refresh.id), revoked)
        self.assertTrue(revoked.is_revoked)
        self.get_failure(self.stores.refresh_tokens.revoke_refresh_token(revoked), InvalidTransitionError)
        self.get_failure(
            self.stores.refresh_tokens.consume_refresh_token(revoked, refresh.id), InvalidTransitionError
        )

    def rotate(
        self, old: RefreshToken, lost_successor: RefreshToken | None = None
    ) -> tuple[bool, AccessToken, RefreshToken]:
        new_access, new_refresh = self.make_pair(self.session(old.session_id))
        won = self.get_success(
            self.stores.refresh_tokens.rotate_refresh_token(
                old, new_access, new_refresh, lost_successor=lost_successor
            )
        )
        return won, new_access, new_refresh

    def test_rotation_chain(self) -> None:
        session, access, refresh = self.start_session()
        chain = [(access, refresh)]
        for _ in range(3):
            self.advance_ms(60_000)
            current_access, current_refresh = chain[-1]
            won, new_access, new_refresh = self.rotate(self.refresh(current_refresh.id))  # type: ignore[arg-type]
            self.assertTrue(won)
            old = self.refresh(current_refresh.id)
            assert old is not None
            self.assertEqual((old.consumed_at, old.next_refresh_token_id), (self.now(), new_refresh.id))
            self.assertEqual(self.access(current_access.id).revoked_at, self.now())  # type: ignore[union-attr]
            self.assertEqual(self.refresh(new_refresh.id), new_refresh)
            self.assertEqual(self.access(new_access.id), new_access)
            chain.append((new_access, new_refresh))
        # Only the last pair is usable.
        self.assertEqual(
            [self.refresh(r.id).is_valid for _, r in chain],  # type: ignore[union-attr]
            [False, False, False, True],
        )
        self.assertEqual(
            [self.access(a.id).is_valid(self.now()) for a, _ in chain],  # type: ignore[union-attr]
            [False, False, False, True],
        )

    def test_second_rotation_of_the_same_token_loses(self) -> None:
        _, _, refresh = self.start_session()
        won, _, _ = self.rotate(refresh)
        self.assertTrue(won)
        before = (self.count("oauth2_access_tokens"), self.count("oauth2_refresh_tokens"))
        # The caller read the token before the first rotation committed.
        won, lost_access, lost_refresh = self.rotate(refresh)
        self.assertFalse(won)
        self.assertEqual((self.count("oauth2_access_tokens"), self.count("oauth2_refresh_tokens")), before)
        self.assertIsNone(self.access(lost_access.id))

    def test_rotation_of_revoked_token_loses(self) -> None:
        session, _, refresh = self.start_session()
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        won, _, new_refresh = self.rotate(refresh)
        self.assertFalse(won)
        self.assertIsNone(self.refresh(new_refresh.id))

    def test_double_refresh_replaces_unused_successor(self) -> None:
        _, access, refresh = self.start_session()
        won, lost_access, lost_refresh = self.rotate(refresh)
        self.assertTrue(won)
        self.advance_ms(5000)
        # The client never got lost_*: it presents the consumed token again.
        consumed = self.refresh(refresh.id)
        assert consumed is not None and consumed.next_refresh_token_id == lost_refresh.id
        won, new_access, new_refresh = self.rotate(consumed, lost_successor=lost_refresh)
        self.assertTrue(won)
        self.assertEqual(self.refresh(lost_refresh.id).revoked_at, self.now())  # type: ignore[union-attr]
        self.assertEqual(self.access(lost_access.id).revoked_at, self.now())  # type: ignore[union-attr]
        again = self.refresh(refresh.id)
        assert again is not None
        self.assertEqual((again.consumed_at, again.next_refresh_token_id), (self.now(), new_refresh.id))
        self.assertTrue(self.refresh(new_refresh.id).is_valid)  # type: ignore[union-attr]
        self.assertTrue(self.access(new_access.id).is_valid(self.now()))  # type: ignore[union-attr]
        # The original access token stays revoked from the first rotation.
        self.assertTrue(self.access(access.id).is_revoked)  # type: ignore[union-attr]

    def test_double_refresh_refused_once_successor_was_used(self) -> None:
        _, _, refresh = self.start_session()
        _, lost_access, lost_refresh = self.rotate(refresh)
        # The client did get and use the new access token meanwhile.
        self.get_success(self.stores.access_tokens.mark_access_token_first_used(lost_access))
        consumed = self.refresh(refresh.id)
        before = (self.count("oauth2_access_tokens"), self.count("oauth2_refresh_tokens"))
        won, _, _ = self.rotate(consumed, lost_successor=lost_refresh)  # type: ignore[arg-type]
        self.assertFalse(won)
        self.assertEqual((self.count("oauth2_access_tokens"), self.count("oauth2_refresh_tokens")), before)
        # Nothing was revoked by the losing attempt.
        self.assertTrue(self.refresh(lost_refresh.id).is_valid)  # type: ignore[union-attr]
        self.assertFalse(self.access(lost_access.id).is_revoked)  # type: ignore[union-attr]
        self.assertEqual(self.refresh(refresh.id).next_refresh_token_id, lost_refresh.id)  # type: ignore[union-attr]

    def test_double_refresh_after_successor_access_token_was_cleaned_up(self) -> None:
        _, _, refresh = self.start_session()
        _, lost_access, lost_refresh = self.rotate(refresh)
        self.get_success(
            self.db_pool.simple_delete("oauth2_access_tokens", {"oauth2_access_token_id": lost_access.id})
        )
        won, _, _ = self.rotate(self.refresh(refresh.id), lost_successor=lost_refresh)  # type: ignore[arg-type]
        self.assertTrue(won)
        self.assertTrue(self.refresh(lost_refresh.id).is_revoked)  # type: ignore[union-attr]

    def test_rotate_argument_checks(self) -> None:
        _, _, refresh = self.start_session()
        _, other_access, other_refresh = self.start_session()
        new_access, new_refresh = self.make_pair(self.session(refresh.session_id))
        self.get_failure(
            self.stores.refresh_tokens.rotate_refresh_token(
                refresh, new_access, new_refresh, lost_successor=other_refresh
            ),
            ValueError,
        )
        self.get_failure(
            self.stores.refresh_tokens.rotate_refresh_token(refresh, other_access, new_refresh), ValueError
        )

    def test_introspection(self) -> None:
        session, _, refresh = self.start_session()
        result = self.get_success(
            self.stores.refresh_tokens.lookup_refresh_token_for_introspection(refresh.refresh_token)
        )
        assert result is not None and result.user is not None
        self.assertEqual((result.token, result.session, result.user.username), (refresh, session, "alice"))
        self.assertTrue(result.is_active)
        self.rotate(refresh)
        result = self.get_success(
            self.stores.refresh_tokens.lookup_refresh_token_for_introspection(refresh.refresh_token)
        )
        self.assertFalse(result.is_active)  # type: ignore[union-attr]
        self.assertIsNone(
            self.get_success(self.stores.refresh_tokens.lookup_refresh_token_for_introspection("mar_nope"))
        )

    def test_cleanup_revoked(self) -> None:
        session, _, refresh = self.start_session()
        self.get_success(self.stores.refresh_tokens.revoke_refresh_token(refresh))
        revoked_at = self.now()
        self.advance_ms(HOUR_MS + 1)
        until = self.now() - HOUR_MS
        self.assertEqual(
            self.get_success(self.stores.refresh_tokens.cleanup_revoked_refresh_tokens(None, until, 10)),
            (1, revoked_at),
        )
        self.assertIsNone(self.refresh(refresh.id))

    def test_cleanup_consumed_keeps_predecessor_of_unconsumed_token(self) -> None:
        _, _, r1 = self.start_session()
        _, _, r2 = self.rotate(r1)
        c1 = self.now()
        self.advance_ms(HOUR_MS + 1)
        until = self.now() - HOUR_MS
        # r1's successor r2 is unconsumed: r1 may still come back in a double refresh.
        self.assertEqual(
            self.get_success(self.stores.refresh_tokens.cleanup_consumed_refresh_tokens(None, until, 10)),
            (0, None),
        )
        self.assertIsNotNone(self.refresh(r1.id))

        _, _, r3 = self.rotate(self.refresh(r2.id))  # type: ignore[arg-type]
        c2 = self.now()
        self.advance_ms(HOUR_MS + 1)
        until = self.now() - HOUR_MS
        # Now r1 (successor consumed) goes; r2 (successor r3 unconsumed) stays.
        self.assertEqual(
            self.get_success(self.stores.refresh_tokens.cleanup_consumed_refresh_tokens(None, until, 10)),
            (1, c1),
        )
        self.assertIsNone(self.refresh(r1.id))
        self.assertIsNotNone(self.refresh(r2.id))
        self.assertTrue(self.refresh(r3.id).is_valid)  # type: ignore[union-attr]
        self.assertLess(c1, c2)
