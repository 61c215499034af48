# SPDX-License-Identifier: AGPL-3.0-only
"""Expiring inactive sessions (MAS's ``crates/tasks/src/sessions.rs``), with
``experimental.inactive_session_expiration``: every 15 minutes (at :30 s) the leader's
``expire-inactive-sessions`` job schedules one job per kind of session to expire, with the
threshold ``now - ttl``:

- ``expire-inactive-oauth-sessions``: valid OAuth 2.0 sessions of dynamically registered
  clients (static clients' sessions never expire this way) last active before the threshold;
- ``expire-inactive-compat-sessions``: valid compatibility sessions likewise;
- ``expire-inactive-user-sessions``: valid browser sessions likewise.

Each handles 100 sessions, oldest id first, and schedules itself again for the next 100
(``after`` the last id) in the same transaction as it finishes them (the store's
``expire_inactive_sessions_page``, given the jobs to schedule). For each user whose
devices change, ``sync-devices`` is scheduled, the first a minute later and each next one 10 s
after the previous, so that a large expiry does not hit the homeserver all at once. A
session that was never active (no ``last_active_at``) is left alone, as in MAS.
"""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mas_twisted.queue.base import Job, JobContext, JobError, enqueue_txn

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.storage.stores import Stores
    from mas_twisted.storage.stores.browser_sessions import BrowserSessionStore
    from mas_twisted.storage.stores.compat_sessions import CompatSessionStore
    from mas_twisted.storage.stores.oauth2_sessions import OAuth2SessionStore

    _ExpiringStore = OAuth2SessionStore | CompatSessionStore | BrowserSessionStore

logger = logging.getLogger(__name__)

PAGE = 100
FIRST_SYNC_DELAY_MS = 60_000
SYNC_SPACING_MS = 10_000


@attrs.frozen
class ExpireInactiveSessionsJob(Job):
    QUEUE_NAME = "expire-inactive-sessions"

    @classmethod
    def from_payload(cls, payload: Any) -> Job:
        return cls()

    async def run(self, server: MasServer, context: JobContext) -> None:
        config = server.config.experimental.inactive_session_expiration
        if config is None:
            return
        threshold = server.get_clock().time_msec() - config.ttl * 1000
        jobs: list[Job] = []
        if config.expire_oauth_sessions:
            jobs.append(ExpireInactiveOAuthSessionsJob(threshold=threshold))
        if config.expire_compat_sessions:
            jobs.append(ExpireInactiveCompatSessionsJob(threshold=threshold))
        if config.expire_user_sessions:
            jobs.append(ExpireInactiveUserSessionsJob(threshold=threshold))

        def _txn(txn: LoggingTransaction) -> None:
            for job in jobs:
                enqueue_txn(txn, server, job)

        try:
            await server.get_stores().queue.schedule_in_transaction("expire_inactive_sessions", _txn)
        except Exception as e:
            raise JobError.retryable(e)


class _ExpirePage(Job):
    """Finish one page of sessions last active before ``threshold`` and schedule the next."""

    SYNC_DEVICES: ClassVar[bool] = True
    WHAT: ClassVar[str]

    threshold: int
    after: str | None

    @abc.abstractmethod
    def store(self, stores: Stores) -> _ExpiringStore:
        """The store of this kind of session."""

    def next_page(self, after: str) -> _ExpirePage:
        """The same job for the sessions after ``after`` (each subclass is an attrs class)."""
        return attrs.evolve(self, after=after)  # type: ignore[misc]

    async def run(self, server: MasServer, context: JobContext) -> None:
        from mas_twisted.queue.jobs.matrix import SyncDevicesJob

        now = server.get_clock().time_msec()

        def _also(txn: LoggingTransaction, rows: list[tuple[str, str | None]]) -> None:
            if len(rows) == PAGE:
                enqueue_txn(txn, server, self.next_page(rows[-1][0]))
            if not self.SYNC_DEVICES:
                return
            synced: set[str] = set()
            delay = FIRST_SYNC_DELAY_MS
            for _session_id, user_id in rows:
                if user_id is not None and user_id not in synced:
                    synced.add(user_id)
                    enqueue_txn(txn, server, SyncDevicesJob(user_id=user_id), at=now + delay)
                    delay += SYNC_SPACING_MS

        try:
            rows = await self.store(server.get_stores()).expire_inactive_sessions_page(
                self.threshold, self.after, PAGE, now, _also
            )
        except Exception as e:
            raise JobError.retryable(e)
        if rows:
            logger.info("Expired %d inactive %s", len(rows), self.WHAT)


@attrs.frozen
class ExpireInactiveOAuthSessionsJob(_ExpirePage):
    QUEUE_NAME = "expire-inactive-oauth-sessions"
    WHAT = "OAuth 2.0 sessions"
    threshold: int
    after: str | None = None

    def store(self, stores: Stores) -> _ExpiringStore:
        return stores.oauth2_sessions


@attrs.frozen
class ExpireInactiveCompatSessionsJob(_ExpirePage):
    QUEUE_NAME = "expire-inactive-compat-sessions"
    WHAT = "compatibility sessions"
    threshold: int
    after: str | None = None

    def store(self, stores: Stores) -> _ExpiringStore:
        return stores.compat_sessions


@attrs.frozen
class ExpireInactiveUserSessionsJob(_ExpirePage):
    QUEUE_NAME = "expire-inactive-user-sessions"
    SYNC_DEVICES = False
    WHAT = "browser sessions"
    threshold: int
    after: str | None = None

    def store(self, stores: Stores) -> _ExpiringStore:
        return stores.browser_sessions
