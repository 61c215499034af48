# SPDX-License-Identifier: AGPL-3.0-only
"""Cleanup jobs, run on cron schedules by the leader (MAS's ``crates/tasks/src/cleanup/``;
``docs/development/cleanup-jobs.md``).

Each deletes in batches of 1000, one transaction per batch, from where the previous batch
stopped, until a batch comes back short: a long backlog never holds one huge transaction.
The jobs of tables this service does not have yet (upstream OAuth,
email authentications outside registrations, the JWKS cache) are registered with the features that bring
those tables. ``prune-stale-policy-data`` is not batched: it keeps the latest ten rows of a
table that grows by one row per admin update.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mas_twisted.queue.base import Job, JobContext, JobError
from mas_twisted.util.ulid import max_ulid_at

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class _BatchedCleanup(Job):
    """Calls :meth:`batch` with ``(since, until, BATCH_SIZE)`` until a batch is short."""

    #: How old a row must be (by the store's timestamp) to go.
    AGE_MS: ClassVar[int]
    #: ``until`` is a ULID (rows by id) rather than a timestamp.
    BY_ID: ClassVar[bool] = False
    WHAT: ClassVar[str]

    @classmethod
    def from_payload(cls, payload: Any) -> Job:
        return cls()

    def to_payload(self) -> dict[str, Any]:
        return {}

    @abc.abstractmethod
    def batch(self, server: MasServer) -> Callable[[Any, Any, int], Awaitable[tuple[int, Any]]]:
        """The store method deleting one batch: ``(since, until, limit) -> (count, last)``."""

    async def run(self, server: MasServer, context: JobContext) -> None:
        now = server.get_clock().time_msec()
        until: Any = now - self.AGE_MS
        if self.BY_ID:
            until = max_ulid_at(until)
        batch = self.batch(server)
        since = None
        total = 0
        while True:
            try:
                count, last = await batch(since, until, BATCH_SIZE)
            except Exception as e:
                raise JobError.retryable(e)
            total += count
            since = last
            if count != BATCH_SIZE:
                break
        if total:
            logger.info("Cleaned up %d %s", total, self.WHAT)
        else:
            logger.debug("No %s to clean up", self.WHAT)


@attrs.frozen
class CleanupRevokedOAuthAccessTokensJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-revoked-oauth-access-tokens"
    AGE_MS = HOUR_MS
    WHAT = "revoked access tokens"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().access_tokens.cleanup_revoked_access_tokens


@attrs.frozen
class CleanupExpiredOAuthAccessTokensJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-expired-oauth-access-tokens"
    AGE_MS = 30 * DAY_MS
    WHAT = "expired access tokens"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().access_tokens.cleanup_expired_access_tokens


@attrs.frozen
class CleanupRevokedOAuthRefreshTokensJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-revoked-oauth-refresh-tokens"
    AGE_MS = HOUR_MS
    WHAT = "revoked refresh tokens"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().refresh_tokens.cleanup_revoked_refresh_tokens


@attrs.frozen
class CleanupConsumedOAuthRefreshTokensJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-consumed-oauth-refresh-tokens"
    AGE_MS = HOUR_MS
    WHAT = "consumed refresh tokens"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().refresh_tokens.cleanup_consumed_refresh_tokens


@attrs.frozen
class CleanupFinishedOAuth2SessionsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-finished-oauth2-sessions"
    AGE_MS = 30 * DAY_MS
    WHAT = "finished OAuth 2.0 sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().oauth2_sessions.cleanup_finished_oauth2_sessions


@attrs.frozen
class CleanupInactiveOAuth2SessionIpsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-inactive-oauth2-session-ips"
    AGE_MS = 30 * DAY_MS
    WHAT = "IP addresses of inactive OAuth 2.0 sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().oauth2_sessions.cleanup_inactive_oauth2_session_ips


@attrs.frozen
class CleanupFinishedCompatSessionsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-finished-compat-sessions"
    AGE_MS = 30 * DAY_MS
    WHAT = "finished compatibility sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().compat_sessions.cleanup_finished_compat_sessions


@attrs.frozen
class CleanupInactiveCompatSessionIpsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-inactive-compat-session-ips"
    AGE_MS = 30 * DAY_MS
    WHAT = "IP addresses of inactive compatibility sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().compat_sessions.cleanup_inactive_compat_session_ips


@attrs.frozen
class CleanupFinishedUserSessionsJob(_BatchedCleanup):
    """Finished browser sessions, once no OAuth 2.0 or compatibility session refers to them
    (those are cleaned up first, at :10 and :15); their authentications go with them."""

    QUEUE_NAME = "cleanup-finished-user-sessions"
    AGE_MS = 30 * DAY_MS
    WHAT = "finished user sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().browser_sessions.cleanup_finished_browser_sessions


@attrs.frozen
class CleanupInactiveUserSessionIpsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-inactive-user-session-ips"
    AGE_MS = 30 * DAY_MS
    WHAT = "IP addresses of inactive user sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().browser_sessions.cleanup_inactive_browser_session_ips


@attrs.frozen
class CleanupOAuthAuthorizationGrantsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-oauth-authorization-grants"
    AGE_MS = 7 * DAY_MS
    BY_ID = True
    WHAT = "authorization grants"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().authorization_grants.cleanup_authorization_grants


@attrs.frozen
class CleanupOAuthDeviceCodeGrantsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-oauth-device-code-grants"
    AGE_MS = 7 * DAY_MS
    BY_ID = True
    WHAT = "device code grants"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().device_code_grants.cleanup_device_code_grants


@attrs.frozen
class CleanupUserRegistrationsJob(_BatchedCleanup):
    """Registrations (completed or not) 30 days after they started, with their email
    authentications and codes."""

    QUEUE_NAME = "cleanup-user-registrations"
    AGE_MS = 30 * DAY_MS
    BY_ID = True
    WHAT = "user registrations"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().user_registrations.cleanup_registrations


@attrs.frozen
class CleanupUserRecoverySessionsJob(_BatchedCleanup):
    """Recovery sessions 7 days after they started, with their tickets (MAS keeps them that
    long, past the tickets' 10 minutes, to help investigate abuse)."""

    QUEUE_NAME = "cleanup-user-recovery-sessions"
    AGE_MS = 7 * DAY_MS
    BY_ID = True
    WHAT = "user recovery sessions"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().user_recovery.cleanup_sessions


@attrs.frozen
class CleanupQueueJobsJob(_BatchedCleanup):
    QUEUE_NAME = "cleanup-queue-jobs"
    AGE_MS = 30 * DAY_MS
    BY_ID = True
    WHAT = "finished queue jobs"

    def batch(self, server: MasServer) -> Any:
        return server.get_stores().queue.cleanup_jobs


@attrs.frozen
class PruneStalePolicyDataJob(Job):
    """Delete every ``policy_data`` row but the latest ten (MAS's ``PruneStalePolicyDataJob``,
    ``crates/tasks/src/cleanup/misc.rs``): the latest is the data in force."""

    QUEUE_NAME = "prune-stale-policy-data"

    @classmethod
    def from_payload(cls, payload: Any) -> Job:
        return cls()

    def to_payload(self) -> dict[str, Any]:
        return {}

    async def run(self, server: MasServer, context: JobContext) -> None:
        from mas_twisted.handlers.policy_data import KEEP_LATEST

        try:
            count = await server.get_stores().policy_data.prune(KEEP_LATEST)
        except Exception as e:
            raise JobError.retryable(e)
        if count:
            logger.info("Pruned %d stale policy data rows", count)
        else:
            logger.debug("No stale policy data to prune")


@attrs.frozen
class DeprecatedQueueJob(Job):
    """A job of a queue MAS no longer uses (``cleanup-expired-tokens``): consumed, nothing done."""

    QUEUE_NAME = "cleanup-expired-tokens"

    @classmethod
    def from_payload(cls, payload: Any) -> Job:
        return cls()

    async def run(self, server: MasServer, context: JobContext) -> None:
        logger.warning(
            "Consumed a job from the deprecated queue %s (left from an upgrade); it did nothing",
            context.queue_name,
        )
