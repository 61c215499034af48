# SPDX-License-Identifier: AGPL-3.0-only
"""Which jobs the worker knows and which cron schedules the leader keeps (MAS's
``crates/tasks/src/lib.rs``: same queue names, same schedule names and times, in UTC).

Cron expressions have six fields, seconds first, as MAS's ``cron`` crate; ``croniter``
computes the next tick (a well-kept library rather than a hand-written cron parser).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING

from mas_twisted.queue.base import Job
from mas_twisted.queue.jobs import cleanup, email, matrix, recovery, sessions, user
from mas_twisted.types.queue import DueSchedule

if TYPE_CHECKING:
    from mas_twisted.queue.worker import QueueWorker
    from mas_twisted.server import MasServer

JOB_CLASSES: tuple[type[Job], ...] = (
    matrix.ProvisionUserJob,
    matrix.ProvisionDeviceJob,
    matrix.DeleteDeviceJob,
    matrix.SyncDevicesJob,
    user.DeactivateUserJob,
    user.ReactivateUserJob,
    email.SendEmailJob,
    recovery.SendAccountRecoveryEmailsJob,
    cleanup.CleanupRevokedOAuthAccessTokensJob,
    cleanup.CleanupExpiredOAuthAccessTokensJob,
    cleanup.CleanupRevokedOAuthRefreshTokensJob,
    cleanup.CleanupConsumedOAuthRefreshTokensJob,
    cleanup.CleanupFinishedOAuth2SessionsJob,
    cleanup.CleanupInactiveOAuth2SessionIpsJob,
    cleanup.CleanupOAuthAuthorizationGrantsJob,
    cleanup.CleanupOAuthDeviceCodeGrantsJob,
    cleanup.CleanupQueueJobsJob,
    cleanup.CleanupUserRegistrationsJob,
    cleanup.CleanupUserRecoverySessionsJob,
    cleanup.CleanupFinishedCompatSessionsJob,
    cleanup.CleanupInactiveCompatSessionIpsJob,
    cleanup.CleanupFinishedUserSessionsJob,
    cleanup.CleanupInactiveUserSessionIpsJob,
    cleanup.PruneStalePolicyDataJob,
    cleanup.DeprecatedQueueJob,
    sessions.ExpireInactiveSessionsJob,
    sessions.ExpireInactiveOAuthSessionsJob,
    sessions.ExpireInactiveCompatSessionsJob,
    sessions.ExpireInactiveUserSessionsJob,
)

#: queue name → job class.
JOBS: dict[str, type[Job]] = {cls.QUEUE_NAME: cls for cls in JOB_CLASSES}

#: (schedule name, cron expression with seconds, job class), as MAS registers them.
SCHEDULES: tuple[tuple[str, str, type[Job]], ...] = (
    ("cleanup-revoked-oauth-access-tokens", "0 0 * * * *", cleanup.CleanupRevokedOAuthAccessTokensJob),
    ("cleanup-revoked-oauth-refresh-tokens", "0 5 * * * *", cleanup.CleanupRevokedOAuthRefreshTokensJob),
    ("cleanup-consumed-oauth-refresh-tokens", "0 5 * * * *", cleanup.CleanupConsumedOAuthRefreshTokensJob),
    ("cleanup-finished-compat-sessions", "0 10 * * * *", cleanup.CleanupFinishedCompatSessionsJob),
    ("cleanup-finished-oauth2-sessions", "0 15 * * * *", cleanup.CleanupFinishedOAuth2SessionsJob),
    ("cleanup-finished-user-sessions", "0 20 * * * *", cleanup.CleanupFinishedUserSessionsJob),
    ("cleanup-inactive-oauth2-session-ips", "0 25 * * * *", cleanup.CleanupInactiveOAuth2SessionIpsJob),
    ("cleanup-inactive-compat-session-ips", "0 25 * * * *", cleanup.CleanupInactiveCompatSessionIpsJob),
    ("cleanup-inactive-user-session-ips", "0 25 * * * *", cleanup.CleanupInactiveUserSessionIpsJob),
    ("cleanup-oauth-authorization-grants", "0 30 * * * *", cleanup.CleanupOAuthAuthorizationGrantsJob),
    ("cleanup-oauth-device-code-grants", "0 35 * * * *", cleanup.CleanupOAuthDeviceCodeGrantsJob),
    ("cleanup-user-registrations", "0 45 * * * *", cleanup.CleanupUserRegistrationsJob),
    ("cleanup-user-recovery-sessions", "0 50 * * * *", cleanup.CleanupUserRecoverySessionsJob),
    ("cleanup-queue-jobs", "0 55 * * * *", cleanup.CleanupQueueJobsJob),
    ("cleanup-expired-oauth-access-tokens", "0 5 */4 * * *", cleanup.CleanupExpiredOAuthAccessTokensJob),
    ("expire-inactive-sessions", "30 */15 * * * *", sessions.ExpireInactiveSessionsJob),
    ("prune-stale-policy-data", "0 0 2 * * *", cleanup.PruneStalePolicyDataJob),
)


def next_tick(expression: str) -> Callable[[int], int]:
    """``ms → ms``: the first time strictly after ``ms`` that the cron expression matches."""
    from croniter import croniter

    def _next(now_ms: int) -> int:
        start = datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC)
        it = croniter(expression, start, second_at_beginning=True)
        return int(it.get_next(datetime.datetime).timestamp() * 1000)

    return _next


def due_schedules() -> list[DueSchedule]:
    return [
        DueSchedule(name, job.QUEUE_NAME, job().to_payload(), next_tick(expression))
        for name, expression, job in SCHEDULES
    ]


def build_worker(server: MasServer) -> QueueWorker:
    from mas_twisted.queue.worker import QueueWorker

    return QueueWorker(server, JOBS, due_schedules())
