# SPDX-License-Identifier: AGPL-3.0-only
"""The job queue's model (MAS's ``queue_jobs`` and schedules): a job attempt as stored, a
schedule's state, and what the leader enqueues for a schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from mas_twisted.types.columns import INT, JSON, Row, column, mapped

#: Job statuses (MAS's ``queue_job_status`` enum).
AVAILABLE = "available"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
SCHEDULED = "scheduled"
LOST = "lost"


@mapped(to_row=False)
@attrs.frozen
class QueueJob(Row):
    """One attempt of a job (a row of ``queue_jobs``)."""

    id: str = attrs.field(metadata=column("queue_job_id"))
    queue_name: str
    status: str
    payload: Any = attrs.field(metadata=column(codec=JSON))
    metadata: Any = attrs.field(metadata=column(codec=JSON))
    attempt: int = attrs.field(metadata=column(codec=INT))
    created_at: int
    scheduled_at: int | None = None
    started_at: int | None = None
    started_by: str | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    failed_reason: str | None = None
    next_attempt_id: str | None = None
    schedule_name: str | None = None


@attrs.frozen
class ScheduleStatus:
    """A cron schedule's state: when its job last became due, and whether that job is over
    (completed, or failed or lost without a further attempt; ``None``: no such job any more,
    or never scheduled)."""

    schedule_name: str
    last_scheduled_at: int | None
    last_scheduled_job_completed: bool | None


@attrs.frozen
class DueSchedule:
    """What the leader enqueues for a schedule: the job, due at ``next_tick``."""

    schedule_name: str
    queue_name: str
    payload: Any
    next_tick: Callable[[int], int]
