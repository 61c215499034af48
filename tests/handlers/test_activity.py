# SPDX-License-Identifier: AGPL-3.0-only
"""The activity tracker: batching, periodic and early flushes, shutdown, failures, bounds."""

from __future__ import annotations

from typing import Any

from mas_twisted.handlers.activity import FLUSH_INTERVAL_S, ActivityTracker
from tests.handlers._base import TokenFixture


class ActivityTrackerTestCase(TokenFixture):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.tracker = ActivityTracker(server, flush_interval=10.0, flush_threshold=3, max_pending=5)
        self.queries: list[str] = []

    def test_batches_keep_the_latest_time_and_the_first_address(self) -> None:
        one, access, _ = self.start_session()
        two, _, _ = self.start_session()
        start = self.now()
        self.tracker.record_oauth2_session(one.id, start + 20, "192.0.2.1")
        self.tracker.record_oauth2_session(one.id, start + 10, "192.0.2.2")
        self.tracker.record_oauth2_session(two.id, start + 5, None)
        self.tracker.record_access_token_used(access.id, start + 1)
        self.tracker.record_access_token_used(access.id, start + 2)
        self.assertEqual(self.tracker.pending_sessions, 2)
        # Nothing is written before a flush.
        self.assertIsNone(self.session(one.id).last_active_at)

        self.assertEqual(self.get_success(self.tracker.flush()), 2)
        first = self.session(one.id)
        self.assertEqual((first.last_active_at, first.last_active_ip), (start + 20, "192.0.2.1"))
        second = self.session(two.id)
        self.assertEqual((second.last_active_at, second.last_active_ip), (start + 5, None))
        self.assertEqual(self.access(access.id).first_used_at, start + 1)
        self.assertEqual(self.tracker.pending_sessions, 0)
        self.assertIsNone(self.tracker.first_used_at(access.id))

        # A later batch moves the time forward and keeps the known address when it has none.
        self.tracker.record_oauth2_session(one.id, start + 30, None)
        self.tracker.record_access_token_used(access.id, start + 30)
        self.get_success(self.tracker.flush())
        first = self.session(one.id)
        self.assertEqual((first.last_active_at, first.last_active_ip), (start + 30, "192.0.2.1"))
        self.assertEqual(self.access(access.id).first_used_at, start + 1)
        # ... and never moves it back.
        self.tracker.record_oauth2_session(one.id, start + 25, "192.0.2.9")
        self.get_success(self.tracker.flush())
        first = self.session(one.id)
        self.assertEqual((first.last_active_at, first.last_active_ip), (start + 30, "192.0.2.9"))

    def test_nothing_pending_writes_nothing(self) -> None:
        self.assertEqual(self.get_success(self.tracker.flush()), 0)

    def test_periodic_flush(self) -> None:
        session, _, _ = self.start_session()
        self.tracker.start()
        self.tracker.record_oauth2_session(session.id, self.now(), "192.0.2.1")
        self.reactor.advance(9.9)
        self.assertIsNone(self.session(session.id).last_active_at)
        self.reactor.advance(0.1)
        self.assertIsNotNone(self.session(session.id).last_active_at)
        self.assertEqual(self.tracker.pending_sessions, 0)
        # Stopping writes what is left and ends the periodic flush.
        self.tracker.record_oauth2_session(session.id, self.now() + 5, None)
        self.get_success(self.tracker.stop())
        self.assertEqual(self.session(session.id).last_active_at, self.now() + 5)
        self.tracker.record_oauth2_session(session.id, self.now() + 9, None)
        self.reactor.advance(30)
        self.assertEqual(self.session(session.id).last_active_at, self.now() - 30_000 + 5)

    def test_flushes_on_reactor_shutdown(self) -> None:
        session, _, _ = self.start_session()
        self.tracker.start()
        triggers = self.reactor.triggers["before"]["shutdown"]
        self.assertEqual(len(triggers), 1)
        self.tracker.record_oauth2_session(session.id, self.now(), None)
        callable_, args, kwargs = triggers[0]
        self.get_success(callable_(*args, **kwargs))
        self.assertEqual(self.session(session.id).last_active_at, self.now())

    def test_early_flush_past_the_threshold(self) -> None:
        sessions = [self.start_session()[0] for _ in range(3)]
        for session in sessions[:2]:
            self.tracker.record_oauth2_session(session.id, self.now(), None)
        self.reactor.advance(0)
        self.assertIsNone(self.session(sessions[0].id).last_active_at)
        self.tracker.record_oauth2_session(sessions[2].id, self.now(), None)
        self.reactor.advance(0)  # no periodic flush is running: the threshold started this one
        for session in sessions:
            self.assertEqual(self.session(session.id).last_active_at, self.now())

    def test_records_past_the_bound_are_dropped(self) -> None:
        tracker = ActivityTracker(self.server, flush_threshold=100, max_pending=2)
        sessions = [self.start_session()[0] for _ in range(3)]
        for session in sessions[:2]:
            tracker.record_oauth2_session(session.id, self.now(), None)
        with self.assertLogs("mas_twisted.handlers.activity", "ERROR"):
            tracker.record_oauth2_session(sessions[2].id, self.now(), None)
        # A known session still moves forward.
        tracker.record_oauth2_session(sessions[0].id, self.now() + 1, None)
        self.assertEqual(tracker.pending_sessions, 2)
        self.get_success(tracker.flush())
        self.assertEqual(self.session(sessions[0].id).last_active_at, self.now() + 1)
        self.assertIsNone(self.session(sessions[2].id).last_active_at)

    def test_a_failed_flush_keeps_its_records(self) -> None:
        session, access, _ = self.start_session()
        store = self.stores.oauth2_sessions
        real = store.record_session_activity
        calls: list[int] = []

        async def failing(*args: Any, **kwargs: Any) -> int:
            calls.append(1)
            raise RuntimeError("database went away")

        store.record_session_activity = failing  # type: ignore[method-assign]
        self.tracker.record_oauth2_session(session.id, self.now(), "192.0.2.1")
        self.tracker.record_access_token_used(access.id, self.now())
        with self.assertLogs("mas_twisted.handlers.activity", "ERROR"):
            self.assertEqual(self.get_success(self.tracker.flush()), 0)
        self.assertEqual(calls, [1])
        # Still known (first use included) and merged with what came meanwhile.
        self.assertEqual(self.tracker.first_used_at(access.id), self.now())
        self.tracker.record_oauth2_session(session.id, self.now() + 7, "192.0.2.2")
        store.record_session_activity = real  # type: ignore[method-assign]
        self.get_success(self.tracker.flush())
        written = self.session(session.id)
        self.assertEqual((written.last_active_at, written.last_active_ip), (self.now() + 7, "192.0.2.1"))
        self.assertEqual(self.access(access.id).first_used_at, self.now())

    def test_first_use_visible_while_being_written(self) -> None:
        _, access, _ = self.start_session()
        self.tracker.record_access_token_used(access.id, self.now())
        d = self.tracker.flush()
        # The flush is in progress (its transaction waits for the reactor): still visible.
        self.assertEqual(self.tracker.first_used_at(access.id), self.now())
        self.get_success(d)
        self.assertIsNone(self.tracker.first_used_at(access.id))
        self.assertEqual(self.access(access.id).first_used_at, self.now())

    def test_service_runs_the_servers_tracker(self) -> None:
        from mas_twisted.app.service import ActivityFlushService

        tracker = self.server.get_activity_tracker()
        self.assertIs(tracker, self.server.get_activity_tracker())
        self.assertEqual(tracker.flush_interval, FLUSH_INTERVAL_S)
        service = ActivityFlushService(self.server)
        service.startService()
        self.addCleanup(service.stopService)
        session, _, _ = self.start_session()
        tracker.record_oauth2_session(session.id, self.now(), None)
        self.reactor.advance(FLUSH_INTERVAL_S)
        self.assertEqual(self.session(session.id).last_active_at, self.now() - int(FLUSH_INTERVAL_S * 1000))
