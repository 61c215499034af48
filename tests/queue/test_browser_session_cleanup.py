# SPDX-License-Identifier: AGPL-3.0-only
"""The housekeeping of browser sessions (MAS's ``cleanup-finished-user-sessions`` and
``cleanup-inactive-user-session-ips``), on both engines, run by the worker from the queue as
their schedules enqueue them: ``user_sessions`` and ``user_session_authentications`` stay
bounded (sessions finished over 30 days ago go with their authentications, unless an OAuth 2.0
or compatibility session still refers to them), batches page through a backlog larger than
one, and addresses of sessions idle for over 30 days are forgotten."""

from __future__ import annotations

from typing import Any
from unittest import mock

import attrs

from mas_twisted.queue import registry
from mas_twisted.queue.base import Job, enqueue
from mas_twisted.queue.jobs import cleanup
from mas_twisted.queue.registry import JOBS
from mas_twisted.queue.worker import QueueWorker
from mas_twisted.types.compat import CompatSession, CompatSsoLogin
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication
from tests.storage._base import DAY_MS, OAuth2StoreTestCase


class BrowserSessionCleanupTestCase(OAuth2StoreTestCase):
    # -- arranging -------------------------------------------------------------------------
    def browser_session(
        self, *, finished: bool = False, active_at: int | None = None, ip: str | None = None
    ) -> BrowserSession:
        """A session of alice with two authentications, finished now if ``finished``."""
        session = BrowserSession(
            id=self.new_id(),
            user=self.user,
            created_at=self.now(),
            finished_at=self.now() if finished else None,
            last_active_at=active_at,
            last_active_ip=ip,
        )
        self.get_success(self.stores.browser_sessions.add_browser_session(session))
        for _ in range(2):
            self.get_success(
                self.stores.browser_sessions.add_browser_session_authentication(
                    BrowserSessionAuthentication(
                        id=self.new_id(), user_session_id=session.id, created_at=self.now()
                    )
                )
            )
        return session

    def schedule_job(self, name: str) -> Job:
        """The job the schedule ``name`` enqueues."""
        (job_class,) = [cls for schedule, _, cls in registry.SCHEDULES if schedule == name]
        return job_class.from_payload({})

    def run_scheduled(self, name: str) -> None:
        """Enqueue the schedule's job and let a worker run it, as the leader's tick would."""
        before = len(self.get_success(self.stores.queue.list_jobs()))
        self.get_success(enqueue(self.server, self.schedule_job(name)))
        worker = QueueWorker(self.server, JOBS)
        self.get_success(worker.start())
        for _ in range(10):
            self.reactor.advance(1)
        self.get_success(worker.stop())
        jobs = self.get_success(self.stores.queue.list_jobs())
        self.assertEqual(len(jobs), before + 1)  # nothing else enqueued, no retry
        self.assertEqual({j.status for j in jobs if j.queue_name == name}, {"completed"}, name)

    # -- reading ---------------------------------------------------------------------------
    def count(self, table: str, where: str = "", *args: Any) -> int:
        rows = self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}{where}", *args))
        return int(rows[0][0])

    def exists(self, session: BrowserSession) -> bool:
        return self.get_success(self.stores.browser_sessions.get_browser_session(session.id)) is not None

    def authentications(self, session: BrowserSession) -> int:
        return self.count("user_session_authentications", " WHERE user_session_id = ?", session.id)

    # -- tests -----------------------------------------------------------------------------
    def test_schedules_as_mas(self) -> None:
        schedules = {name: (expression, cls) for name, expression, cls in registry.SCHEDULES}
        self.assertEqual(
            schedules["cleanup-finished-user-sessions"],
            ("0 20 * * * *", cleanup.CleanupFinishedUserSessionsJob),
        )
        self.assertEqual(
            schedules["cleanup-inactive-user-session-ips"],
            ("0 25 * * * *", cleanup.CleanupInactiveUserSessionIpsJob),
        )
        self.assertIs(JOBS["cleanup-finished-user-sessions"], cleanup.CleanupFinishedUserSessionsJob)
        self.assertIs(JOBS["cleanup-inactive-user-session-ips"], cleanup.CleanupInactiveUserSessionIpsJob)

    def test_finished_sessions_go_with_their_authentications(self) -> None:
        old = [self.browser_session(finished=True) for _ in range(3)]
        # Finished as long ago, but an OAuth 2.0 or a compatibility session still refers to it.
        with_oauth = self.browser_session(finished=True)
        oauth_child = attrs.evolve(self.make_session(), user_session_id=with_oauth.id)
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session(oauth_child))
        with_compat = self.browser_session(finished=True)
        compat_child = CompatSession(
            id=self.new_id(),
            user_id=self.user.id,
            device_id=None,
            created_at=self.now(),
            user_session_id=with_compat.id,
        )
        self.get_success(
            self.db_pool.simple_insert("compat_sessions", compat_child.to_row(), desc="add_compat_session")
        )
        # A compat SSO login fulfilled by an old session, never exchanged: it goes with it.
        login = CompatSsoLogin(
            id=self.new_id(),
            redirect_uri="https://client.example/",
            login_token="l" * 32,
            created_at=self.now(),
        )
        self.get_success(self.stores.compat_sessions.add_sso_login(login))
        self.assertTrue(self.get_success(self.stores.compat_sessions.fulfill_sso_login(login.id, old[0].id)))
        self.advance_ms(31 * DAY_MS)
        recent = self.browser_session(finished=True)
        active = self.browser_session()
        self.advance_ms(DAY_MS)
        self.assertEqual(self.count("user_sessions"), 8)  # with the fixture's self.browser
        self.assertEqual(self.count("user_session_authentications"), 14)

        self.run_scheduled("cleanup-finished-user-sessions")

        for session in old:
            self.assertFalse(self.exists(session))
            self.assertEqual(self.authentications(session), 0)
        self.assertIsNone(self.get_success(self.stores.compat_sessions.get_sso_login(login.id)))
        for session in (with_oauth, with_compat, recent, active, self.browser):
            self.assertTrue(self.exists(session))
        for session in (with_oauth, with_compat, recent, active):
            self.assertEqual(self.authentications(session), 2)
        self.assertEqual(self.count("user_sessions"), 5)
        self.assertEqual(self.count("user_session_authentications"), 8)

        # Once its child is cleaned up, the session goes on the next run.
        self.get_success(
            self.db_pool.execute(
                "t", "DELETE FROM oauth2_sessions WHERE oauth2_session_id = ?", oauth_child.id
            )
        )
        self.run_scheduled("cleanup-finished-user-sessions")
        self.assertFalse(self.exists(with_oauth))
        self.assertEqual(self.authentications(with_oauth), 0)
        self.assertTrue(self.exists(with_compat))

    def test_a_backlog_larger_than_a_batch(self) -> None:
        # Seven old sessions, batches of three: one run pages through all of them, as MAS's
        # loop does until a batch comes back short (3, 3, 1).
        old = []
        for _ in range(7):
            old.append(self.browser_session(finished=True))
            self.advance_ms(1000)
        self.advance_ms(31 * DAY_MS)
        recent = self.browser_session(finished=True)
        store = self.stores.browser_sessions
        real = store.cleanup_finished_browser_sessions
        calls: list[tuple[Any, int]] = []

        async def counted(since: Any, until: int, limit: int) -> tuple[int, Any]:
            result = await real(since, until, limit)
            calls.append((since, result[0]))
            return result

        with (
            mock.patch.object(cleanup, "BATCH_SIZE", 3),
            mock.patch.object(store, "cleanup_finished_browser_sessions", counted),
        ):
            self.run_scheduled("cleanup-finished-user-sessions")

        self.assertEqual([count for _, count in calls], [3, 3, 1])
        # Each batch from where the last stopped: the latest finished_at it deleted.
        self.assertEqual([since for since, _ in calls], [None, old[2].finished_at, old[5].finished_at])
        for session in old:
            self.assertFalse(self.exists(session))
        self.assertTrue(self.exists(recent))
        self.assertEqual(
            self.count("user_session_authentications", " WHERE user_session_id = ?", recent.id), 2
        )

    def test_store_pages_by_finished_at(self) -> None:
        first = self.browser_session(finished=True)
        self.advance_ms(1000)
        second = self.browser_session(finished=True)
        self.advance_ms(1000)
        third = self.browser_session(finished=True)
        store = self.stores.browser_sessions
        until = self.now() + 1
        self.assertEqual(
            self.get_success(store.cleanup_finished_browser_sessions(None, until, 2)), (2, second.finished_at)
        )
        self.assertFalse(self.exists(first))
        self.assertFalse(self.exists(second))
        self.assertEqual(
            self.get_success(store.cleanup_finished_browser_sessions(second.finished_at, until, 2)),
            (1, third.finished_at),
        )
        self.assertEqual(self.get_success(store.cleanup_finished_browser_sessions(None, until, 2)), (0, None))
        # Not yet past ``until``: kept.
        later = self.browser_session(finished=True)
        self.assertEqual(
            self.get_success(store.cleanup_finished_browser_sessions(None, later.finished_at, 2)), (0, None)
        )

    def test_inactive_session_ips_are_cleared(self) -> None:
        idle = self.browser_session(active_at=self.now(), ip="192.0.2.1")
        idle_finished = self.browser_session(finished=True, active_at=self.now(), ip="192.0.2.2")
        self.advance_ms(31 * DAY_MS)
        busy = self.browser_session(active_at=self.now(), ip="192.0.2.3")
        never = self.browser_session()
        self.advance_ms(DAY_MS)

        with mock.patch.object(cleanup, "BATCH_SIZE", 1):  # one per batch: paging as well
            self.run_scheduled("cleanup-inactive-user-session-ips")

        def ip(session: BrowserSession) -> str | None:
            found = self.get_success(self.stores.browser_sessions.get_browser_session(session.id))
            assert found is not None
            return found.last_active_ip

        self.assertIsNone(ip(idle))
        self.assertIsNone(ip(idle_finished))
        self.assertEqual(ip(busy), "192.0.2.3")
        self.assertIsNone(ip(never))
        # Only the address goes: the sessions and when they were last active stay.
        found = self.get_success(self.stores.browser_sessions.get_browser_session(idle.id))
        assert found is not None
        self.assertEqual(found.last_active_at, idle.last_active_at)
        self.assertIsNone(found.finished_at)
