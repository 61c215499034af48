# SPDX-License-Identifier: AGPL-3.0-only
"""OAuth 2.0 session storage: add, finish (revoking tokens), activity batches, cleanup."""

from __future__ import annotations

from mas_twisted.types.oauth2 import (
    InvalidTransitionError,
    OAuth2Session,
    RefreshToken,
)
from tests.storage._base import API_SCOPE, DAY_MS, OAuth2StoreTestCase


class OAuth2SessionStoreTestCase(OAuth2StoreTestCase):
    def test_add_and_get(self) -> None:
        session = self.make_session(scope="urn:matrix:client:device:ABCDEFGHIJ openid " + API_SCOPE)
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session(session))
        loaded = self.session(session.id)
        self.assertEqual(loaded, session)
        self.assertEqual(loaded.scope.tokens, ("openid", API_SCOPE, "urn:matrix:client:device:ABCDEFGHIJ"))
        self.assertEqual(loaded.user_id, self.user.id)
        self.assertEqual(loaded.user_session_id, self.browser.id)
        self.assertIsNone(self.get_success(self.stores.oauth2_sessions.get_oauth2_session(self.new_id())))

    def test_client_credentials_session_has_no_user(self) -> None:
        session = self.make_session(user=None, scope="urn:mas:admin")
        access, _ = self.make_pair(session)
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session_with_tokens(session, access))
        loaded = self.session(session.id)
        self.assertIsNone(loaded.user_id)
        self.assertIsNone(loaded.user_session_id)
        self.assertEqual(self.access(access.id), access)
        self.assertEqual(self.count("oauth2_refresh_tokens"), 0)

    def test_add_with_tokens_is_atomic(self) -> None:
        session = self.make_session()
        access, refresh = self.make_pair(session)
        # A refresh token clashing with an existing one makes the whole insert fail.
        first, _, first_refresh = self.start_session()
        clash = RefreshToken(
            id=refresh.id,
            session_id=session.id,
            refresh_token=first_refresh.refresh_token,
            created_at=refresh.created_at,
            access_token_id=access.id,
        )
        failure = self.get_failure(
            self.stores.oauth2_sessions.add_oauth2_session_with_tokens(session, access, clash), Exception
        )
        self.assertTrue(self.db_pool.engine.is_integrity_error(failure.value), failure)
        self.assertIsNone(self.get_success(self.stores.oauth2_sessions.get_oauth2_session(session.id)))
        self.assertIsNone(self.access(access.id))

    def test_finish_revokes_tokens(self) -> None:
        session, access, refresh = self.start_session()
        other, other_access, other_refresh = self.start_session()
        self.advance_ms(5000)
        finished = self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        self.assertEqual(finished.finished_at, self.now())
        self.assertEqual(self.session(session.id), finished)
        self.assertEqual(self.access(access.id).revoked_at, self.now())  # type: ignore[union-attr]
        self.assertEqual(self.refresh(refresh.id).revoked_at, self.now())  # type: ignore[union-attr]
        # Another session is untouched.
        self.assertTrue(self.session(other.id).is_valid)
        self.assertTrue(self.access(other_access.id).is_valid(self.now()))  # type: ignore[union-attr]
        self.assertTrue(self.refresh(other_refresh.id).is_valid)  # type: ignore[union-attr]

        # Finishing it again, from a stale copy or the finished one, is refused.
        self.get_failure(self.stores.oauth2_sessions.finish_oauth2_session(session), InvalidTransitionError)
        self.get_failure(self.stores.oauth2_sessions.finish_oauth2_session(finished), InvalidTransitionError)
        self.assertEqual(self.session(session.id).finished_at, finished.finished_at)

    def test_finish_keeps_consumed_refresh_tokens_consumed(self) -> None:
        session, access, refresh = self.start_session()
        new_access, new_refresh = self.make_pair(session)
        self.assertTrue(
            self.get_success(
                self.stores.refresh_tokens.rotate_refresh_token(refresh, new_access, new_refresh)
            )
        )
        self.advance_ms(1000)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        old = self.refresh(refresh.id)
        assert old is not None
        self.assertTrue(old.is_consumed)
        self.assertIsNone(old.revoked_at)
        self.assertTrue(self.refresh(new_refresh.id).is_revoked)  # type: ignore[union-attr]
        self.assertTrue(self.access(new_access.id).is_revoked)  # type: ignore[union-attr]

    def test_finish_by_id(self) -> None:
        session, access, _ = self.start_session()
        self.assertTrue(self.get_success(self.stores.oauth2_sessions.finish_oauth2_session_by_id(session.id)))
        self.assertFalse(
            self.get_success(self.stores.oauth2_sessions.finish_oauth2_session_by_id(session.id))
        )
        self.assertFalse(
            self.get_success(self.stores.oauth2_sessions.finish_oauth2_session_by_id(self.new_id()))
        )
        self.assertTrue(self.access(access.id).is_revoked)  # type: ignore[union-attr]

    def test_finish_for_user_and_browser_session(self) -> None:
        bob = self.add_user("bob")
        a1, a1_access, _ = self.start_session()
        a2, _, _ = self.start_session()
        b1, b1_access, _ = self.start_session(user=bob)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(a2))

        self.assertEqual(
            self.get_success(self.stores.oauth2_sessions.finish_oauth2_sessions_for_user(self.user.id)), 1
        )
        self.assertTrue(self.session(a1.id).is_finished)
        self.assertTrue(self.access(a1_access.id).is_revoked)  # type: ignore[union-attr]
        self.assertTrue(self.session(b1.id).is_valid)
        self.assertFalse(self.access(b1_access.id).is_revoked)  # type: ignore[union-attr]

        a3, _, _ = self.start_session()
        other_browser = self.add_browser_session(self.user)
        a4 = OAuth2Session(
            id=self.new_id(),
            client_id=self.client.id,
            scope="openid",
            created_at=self.now(),
            user_id=self.user.id,
            user_session_id=other_browser.id,
        )
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session(a4))
        finished = self.get_success(
            self.stores.oauth2_sessions.finish_oauth2_sessions_for_browser_session(self.browser.id)
        )
        self.assertEqual(finished, 1)
        self.assertTrue(self.session(a3.id).is_finished)
        self.assertTrue(self.session(a4.id).is_valid)

    def test_list_and_count_active_sessions(self) -> None:
        bob = self.add_user("bob")
        s1, _, _ = self.start_session()
        s2, _, _ = self.start_session()
        s3, _, _ = self.start_session()
        self.start_session(user=bob)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(s2))
        active = self.get_success(
            self.stores.oauth2_sessions.list_active_oauth2_sessions_for_user(self.user.id)
        )
        self.assertEqual([s.id for s in active], [s1.id, s3.id])
        self.assertEqual(
            self.get_success(self.stores.oauth2_sessions.count_active_oauth2_sessions_for_user(self.user.id)),
            2,
        )
        self.assertEqual(
            self.get_success(
                self.stores.oauth2_sessions.count_active_oauth2_sessions_for_user(self.new_id())
            ),
            0,
        )

    def test_user_agent_and_human_name(self) -> None:
        session, _, _ = self.start_session()
        updated = self.get_success(
            self.stores.oauth2_sessions.record_oauth2_session_user_agent(session, "Element/1.0")
        )
        self.assertEqual(updated.user_agent, "Element/1.0")
        named = self.get_success(
            self.stores.oauth2_sessions.set_oauth2_session_human_name(updated, "Element on Linux")
        )
        self.assertEqual(self.session(session.id), named)
        cleared = self.get_success(self.stores.oauth2_sessions.set_oauth2_session_human_name(named, None))
        self.assertIsNone(self.session(session.id).human_name)
        self.assertEqual(cleared.user_agent, "Element/1.0")

    def test_record_session_activity_in_one_batch(self) -> None:
        s1, a1, _ = self.start_session()
        s2, a2, _ = self.start_session()
        t = self.now()
        updated = self.get_success(
            self.stores.oauth2_sessions.record_session_activity(
                {s1.id: (t + 10, "192.0.2.1"), s2.id: (t + 20, None), self.new_id(): (t, "192.0.2.9")},
                access_tokens_first_used={a1.id: t + 10},
            )
        )
        # The unknown session is skipped.
        self.assertEqual(updated, 2)
        self.assertEqual(
            (self.session(s1.id).last_active_at, self.session(s1.id).last_active_ip), (t + 10, "192.0.2.1")
        )
        self.assertEqual(
            (self.session(s2.id).last_active_at, self.session(s2.id).last_active_ip), (t + 20, None)
        )
        self.assertEqual(self.access(a1.id).first_used_at, t + 10)  # type: ignore[union-attr]
        self.assertIsNone(self.access(a2.id).first_used_at)  # type: ignore[union-attr]

        # Older activity never moves last_active_at back; a missing address keeps the last one;
        # a token keeps its first use.
        self.get_success(
            self.stores.oauth2_sessions.record_session_activity(
                {s1.id: (t + 5, None), s2.id: (t + 30, "2001:db8::1")},
                access_tokens_first_used={a1.id: t + 99},
            )
        )
        self.assertEqual(
            (self.session(s1.id).last_active_at, self.session(s1.id).last_active_ip), (t + 10, "192.0.2.1")
        )
        self.assertEqual(
            (self.session(s2.id).last_active_at, self.session(s2.id).last_active_ip), (t + 30, "2001:db8::1")
        )
        self.assertEqual(self.access(a1.id).first_used_at, t + 10)  # type: ignore[union-attr]
        self.assertEqual(self.get_success(self.stores.oauth2_sessions.record_session_activity({})), 0)

    def test_record_session_activity_large_batch(self) -> None:
        sessions = []
        for _ in range(620):  # more than one chunk of 500
            session = self.make_session()
            sessions.append(session)
        self.get_success(
            self.db_pool.simple_insert_many(
                "oauth2_sessions",
                OAuth2Session.COLUMNS,
                [[s.to_row()[c] for c in OAuth2Session.COLUMNS] for s in sessions],
            )
        )
        t = self.now()
        batch = {s.id: (t + i, f"10.0.{i // 256}.{i % 256}") for i, s in enumerate(sessions)}
        self.assertEqual(self.get_success(self.stores.oauth2_sessions.record_session_activity(batch)), 620)
        last = self.session(sessions[-1].id)
        self.assertEqual((last.last_active_at, last.last_active_ip), (t + 619, "10.0.2.107"))

    def test_cleanup_finished_sessions(self) -> None:
        s1, a1, r1 = self.start_session()
        s2, _, _ = self.start_session()
        s3, _, _ = self.start_session()
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(s1))
        f1 = self.now()
        self.advance_ms(1000)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(s2))
        f2 = self.now()
        self.advance_ms(31 * DAY_MS)
        until = self.now() - 30 * DAY_MS

        # One at a time, oldest first, with a cursor.
        self.assertEqual(
            self.get_success(self.stores.oauth2_sessions.cleanup_finished_oauth2_sessions(None, until, 1)),
            (1, f1),
        )
        self.assertIsNone(self.get_success(self.stores.oauth2_sessions.get_oauth2_session(s1.id)))
        # Its tokens went with it.
        self.assertIsNone(self.access(a1.id))
        self.assertIsNone(self.refresh(r1.id))
        self.assertEqual(
            self.get_success(self.stores.oauth2_sessions.cleanup_finished_oauth2_sessions(f1, until, 10)),
            (1, f2),
        )
        self.assertEqual(
            self.get_success(self.stores.oauth2_sessions.cleanup_finished_oauth2_sessions(f2, until, 10)),
            (0, None),
        )
        # The valid session and its tokens stay.
        self.assertTrue(self.session(s3.id).is_valid)
        self.assertEqual(self.count("oauth2_access_tokens"), 1)

    def test_cleanup_finished_sessions_respects_until(self) -> None:
        s1, _, _ = self.start_session()
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(s1))
        self.advance_ms(29 * DAY_MS)
        until = self.now() - 30 * DAY_MS
        self.assertEqual(
            self.get_success(self.stores.oauth2_sessions.cleanup_finished_oauth2_sessions(None, until, 10)),
            (0, None),
        )
        self.assertTrue(self.session(s1.id).is_finished)

    def test_cleanup_inactive_ips(self) -> None:
        s1, _, _ = self.start_session()
        s2, _, _ = self.start_session()
        s3, _, _ = self.start_session()
        t = self.now()
        self.get_success(
            self.stores.oauth2_sessions.record_session_activity(
                {s1.id: (t, "192.0.2.1"), s2.id: (t + 1, "192.0.2.2"), s3.id: (t + 40 * DAY_MS, "192.0.2.3")}
            )
        )
        threshold = t + 30 * DAY_MS
        self.assertEqual(
            self.get_success(
                self.stores.oauth2_sessions.cleanup_inactive_oauth2_session_ips(None, threshold, 1)
            ),
            (1, t),
        )
        self.assertIsNone(self.session(s1.id).last_active_ip)
        self.assertEqual(self.session(s1.id).last_active_at, t)
        self.assertEqual(
            self.get_success(
                self.stores.oauth2_sessions.cleanup_inactive_oauth2_session_ips(t, threshold, 10)
            ),
            (1, t + 1),
        )
        self.assertEqual(
            self.get_success(
                self.stores.oauth2_sessions.cleanup_inactive_oauth2_session_ips(t + 1, threshold, 10)
            ),
            (0, None),
        )
        self.assertEqual(self.session(s3.id).last_active_ip, "192.0.2.3")

    def test_deleting_client_or_user_removes_sessions_and_tokens(self) -> None:
        bob = self.add_user("bob")
        s1, a1, _ = self.start_session()
        s2, a2, r2 = self.start_session(user=bob)
        self.get_success(self.db_pool.simple_delete("users", {"user_id": bob.id}))
        self.assertIsNone(self.get_success(self.stores.oauth2_sessions.get_oauth2_session(s2.id)))
        self.assertIsNone(self.access(a2.id))
        self.assertIsNone(self.refresh(r2.id))
        self.assertTrue(self.get_success(self.stores.oauth2_clients.delete_oauth2_client(self.client.id)))
        self.assertEqual(self.count("oauth2_sessions"), 0)
        self.assertEqual(self.count("oauth2_access_tokens"), 0)


class ActiveDevicesTestCase(OAuth2StoreTestCase):
    """What ``sync-devices`` sends the homeserver: the devices of the user's valid sessions."""

    def test_active_device_ids(self) -> None:
        from mas_twisted.storage.stores.oauth2_sessions import active_device_ids_for_user_txn

        kept, _, _ = self.start_session(scope="openid urn:matrix:client:device:KEPT " + API_SCOPE)
        self.start_session(scope="urn:matrix:org.matrix.msc2967.client:device:UNSTABLE " + API_SCOPE)
        self.start_session(scope="openid " + API_SCOPE)  # no device
        ended, _, _ = self.start_session(scope="urn:matrix:client:device:ENDED " + API_SCOPE)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session_by_id(ended.id))
        devices = self.get_success(
            self.db_pool.runInteraction("devices", active_device_ids_for_user_txn, kept.user_id)
        )
        self.assertEqual(devices, {"KEPT", "UNSTABLE"})
