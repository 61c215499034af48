# SPDX-License-Identifier: AGPL-3.0-only
"""The job queue's model (MAS's ``queue_jobs`` and schedules): a job attempt as stored, a
schedule's state, and what the leader enqueues for a schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs

from mas_twisted.types.columns import db_json

#: Job statuses (MAS's ``queue_job_status`` enum).
AVAILABLE = "available"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
SCHEDULED = "scheduled"
LOST = "lost"


@attrs.frozen
class QueueJob:
    """One attempt of a job (a row of ``queue_jobs``)."""

    #: Column names, in the order :meth:`from_row` expects.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "queue_job_id",
        "queue_name",
        "status",
        "payload",
        "metadata",
        "attempt",
        "created_at",
        "scheduled_at",
        "started_at",
        "started_by",
        "completed_at",
        "failed_at",
        "failed_reason",
        "next_attempt_id",
        "schedule_name",
    )

    id: str
    queue_name: str
    status: str
    payload: Any
    metadata: Any
    attempt: int
    created_at: int
    scheduled_at: int | None = None
    started_at: int | None = None
    started_by: str | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    failed_reason: str | None = None
    next_attempt_id: str | None = None
    schedule_name: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> QueueJob:
        values = dict(zip(cls.COLUMNS, row))
        return cls(
            id=values["queue_job_id"],
            queue_name=values["queue_name"],
            status=values["status"],
            payload=db_json(values["payload"]),
            metadata=db_json(values["metadata"]),
            attempt=int(values["attempt"]),
            created_at=values["created_at"],
            scheduled_at=values["scheduled_at"],
            started_at=values["started_at"],
            started_by=values["started_by"],
            completed_at=values["completed_at"],
            failed_at=values["failed_at"],
            failed_reason=values["failed_reason"],
            next_attempt_id=values["next_attempt_id"],
            schedule_name=values["schedule_name"],
        )


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
