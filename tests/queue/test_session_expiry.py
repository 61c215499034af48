# SPDX-License-Identifier: AGPL-3.0-only
"""``experimental.inactive_session_expiration`` (MAS's ``sessions.rs``), on both engines: the
scheduled job fans out per kind of session; sessions idle past the TTL are finished (OAuth 2.0
of dynamic clients, compatibility, browser), the rest are left alone, and each affected user's
devices are synced a minute later."""

from __future__ import annotations

from typing import Any

import attrs

from mas_twisted.queue.base import enqueue
from mas_twisted.queue.jobs.sessions import ExpireInactiveSessionsJob
from mas_twisted.queue.registry import JOBS
from mas_twisted.queue.worker import QueueWorker
from mas_twisted.types.compat import CompatAccessToken, CompatSession
from tests.storage._base import API_SCOPE, OAuth2StoreTestCase
from tests.unittest import override_config

TTL_S = 3600
EXPIRY = {"experimental": {"inactive_session_expiration": {"ttl": TTL_S}}}


class SessionExpiryTestCase(OAuth2StoreTestCase):
    def set_active(self, table: str, column: str, session_id: str, at: int) -> None:
        self.get_success(
            self.db_pool.execute(
                "t", f"UPDATE {table} SET last_active_at = ? WHERE {column} = ?", at, session_id
            )
        )

    def run_jobs(self) -> None:
        worker = QueueWorker(self.server, JOBS)
        self.get_success(worker.start())
        for _ in range(10):
            self.reactor.advance(1)
        self.get_success(worker.stop())

    @override_config(EXPIRY)
    def test_expiry(self) -> None:
        long_ago = self.now()
        idle, _, _ = self.start_session(scope=f"urn:matrix:client:device:IDLE {API_SCOPE}")
        recent, _, _ = self.start_session()
        never, _, _ = self.start_session()
        static = attrs.evolve(self.client, id=self.new_id(), is_static=True)
        self.get_success(self.stores.oauth2_clients.add_oauth2_client(static))
        static_session = attrs.evolve(self.make_session(), id=self.new_id(), client_id=static.id)
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session(static_session))
        compat = CompatSession(
            id=self.new_id(), user_id=self.user.id, device_id="COMPAT", created_at=self.now()
        )
        compat_token = CompatAccessToken(
            id=self.new_id(), session_id=compat.id, access_token="mct_x", created_at=self.now()
        )
        self.get_success(self.stores.compat_sessions.start_compat_session(compat, compat_token))
        for session_id in (idle.id, static_session.id):
            self.set_active("oauth2_sessions", "oauth2_session_id", session_id, long_ago)
        self.set_active("compat_sessions", "compat_session_id", compat.id, long_ago)
        self.set_active("user_sessions", "user_session_id", self.browser.id, long_ago)
        self.reactor.advance(TTL_S + 60)
        self.set_active("oauth2_sessions", "oauth2_session_id", recent.id, self.now())

        self.get_success(enqueue(self.server, ExpireInactiveSessionsJob()))
        self.run_jobs()

        self.assertIsNotNone(self.session(idle.id).finished_at)
        self.assertIsNone(self.session(recent.id).finished_at)
        self.assertIsNone(self.session(never.id).finished_at)  # never active: left alone
        self.assertIsNone(self.session(static_session.id).finished_at)  # a static client's
        self.assertIsNotNone(
            self.get_success(self.stores.compat_sessions.get_compat_session(compat.id)).finished_at
        )
        self.assertIsNotNone(
            self.get_success(self.stores.browser_sessions.get_browser_session(self.browser.id)).finished_at
        )
        jobs = self.get_success(self.stores.queue.list_jobs())
        by_queue: dict[str, list[Any]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue_name, []).append(job)
        for name in (
            "expire-inactive-sessions",
            "expire-inactive-oauth-sessions",
            "expire-inactive-compat-sessions",
            "expire-inactive-user-sessions",
        ):
            self.assertEqual([j.status for j in by_queue[name]], ["completed"], name)
        # One device sync for alice per kind that changed her devices, a minute later.
        syncs = by_queue["sync-devices"]
        self.assertEqual(len(syncs), 2)
        self.assertEqual({j.payload["user_id"] for j in syncs}, {self.user.id})
        self.assertEqual({(j.status, j.scheduled_at - j.created_at) for j in syncs}, {("scheduled", 60_000)})

    def test_off_by_default(self) -> None:
        self.get_success(enqueue(self.server, ExpireInactiveSessionsJob()))
        self.run_jobs()
        names = [j.queue_name for j in self.get_success(self.stores.queue.list_jobs())]
        self.assertEqual(names, ["expire-inactive-sessions"])
