# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for the job queue (MAS's ``crates/storage-pg/src/queue/{job,worker,schedule}.rs``;
inventory §9).

- Jobs are rows of ``queue_jobs``. A job is ``available`` (or ``scheduled`` with a
  ``scheduled_at``), then ``running`` once a worker reserved it, then ``completed`` or
  ``failed``. A failed job that may be retried gets a new row, ``attempt + 1``, scheduled
  later, linked from the old one by ``next_attempt_id``. A job whose worker died is
  ``lost`` and retried the same way (MAS has the status but never sets it; here the leader
  does, see :func:`recover_lost_jobs_txn`).
- :func:`schedule_job_txn` and :func:`schedule_job_later_txn` are for the transaction of
  the change that needs the job (a user registered, a session finished), so that the job
  exists exactly when the change does.
- Reserving is one statement: on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so that workers in
  several processes never take the same job and never wait on each other; on SQLite an
  ``UPDATE … RETURNING`` under the database's single write lock.
- Workers register in ``queue_workers`` and heartbeat; one holds the leader lease in
  ``queue_leader`` (an upsert that only its holder may extend). Times come from the
  service's clock, in milliseconds, as everywhere in the schema.
- ``queue_locks`` holds short named leases (:meth:`QueueStore.try_acquire_lock`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import LoggingTransaction, make_in_list_sql_clause
from mas_twisted.telemetry import tracing
from mas_twisted.types.columns import to_db_json
from mas_twisted.types.queue import (
    COMPLETED,
    FAILED,
    LOST,
    DueSchedule,
    QueueJob,
    ScheduleStatus,
)

logger = logging.getLogger(__name__)

# -- scheduling, inside someone else's transaction ----------------------------------------------


def schedule_job_txn(
    txn: LoggingTransaction, job_id: str, now: int, queue_name: str, payload: Any, metadata: Any = None
) -> None:
    """Insert an ``available`` job (MAS's ``QueueJobRepository::schedule``)."""
    txn.execute(
        "INSERT INTO queue_jobs (queue_job_id, queue_name, payload, metadata, created_at, status)"
        " VALUES (?, ?, ?, ?, ?, 'available')",
        (job_id, queue_name, to_db_json(payload), to_db_json(metadata or tracing.job_metadata() or {}), now),
    )


def schedule_job_later_txn(
    txn: LoggingTransaction,
    job_id: str,
    now: int,
    queue_name: str,
    payload: Any,
    scheduled_at: int,
    schedule_name: str | None = None,
    metadata: Any = None,
) -> None:
    """Insert a ``scheduled`` job that the leader makes available at ``scheduled_at``, and
    record it as the schedule's last job when it belongs to one (``schedule_later``)."""
    txn.execute(
        "INSERT INTO queue_jobs (queue_job_id, queue_name, payload, metadata, created_at, scheduled_at,"
        " schedule_name, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'scheduled')",
        (
            job_id,
            queue_name,
            to_db_json(payload),
            to_db_json(metadata or tracing.job_metadata() or {}),
            now,
            scheduled_at,
            schedule_name,
        ),
    )
    if schedule_name is not None:
        txn.execute(
            "UPDATE queue_schedules SET last_scheduled_at = ?, last_scheduled_job_id = ? WHERE schedule_name = ?",
            (scheduled_at, job_id, schedule_name),
        )
        if txn.rowcount != 1:
            raise LookupError(f"unknown queue schedule {schedule_name!r}")


# -- workers -----------------------------------------------------------------------------------


def register_worker_txn(txn: LoggingTransaction, worker_id: str, now: int) -> None:
    txn.execute(
        "INSERT INTO queue_workers (queue_worker_id, registered_at, last_seen_at) VALUES (?, ?, ?)",
        (worker_id, now, now),
    )


def heartbeat_txn(txn: LoggingTransaction, worker_id: str, now: int) -> bool:
    """Record that the worker is alive; ``False`` if it was declared dead meanwhile."""
    txn.execute(
        "UPDATE queue_workers SET last_seen_at = ? WHERE queue_worker_id = ? AND shutdown_at IS NULL",
        (now, worker_id),
    )
    return txn.rowcount == 1


def try_get_leader_lease_txn(txn: LoggingTransaction, worker_id: str, now: int, lease_ms: int) -> bool:
    """Take the leader lease, or extend it if this worker holds it; whether it holds it now.

    An expired lease is removed first (``remove_leader_lease_if_expired``), so that another
    worker takes over within a lease's length of the leader dying.
    """
    txn.execute("DELETE FROM queue_leader WHERE expires_at < ?", (now,))
    txn.execute(
        "INSERT INTO queue_leader (active, elected_at, expires_at, queue_worker_id) VALUES (TRUE, ?, ?, ?)"
        " ON CONFLICT (active) DO UPDATE SET expires_at = excluded.expires_at"
        " WHERE queue_leader.queue_worker_id = excluded.queue_worker_id",
        (now, now + lease_ms, worker_id),
    )
    return txn.rowcount == 1


def reserve_jobs_txn(
    txn: LoggingTransaction, worker_id: str, now: int, queues: Iterable[str], limit: int
) -> list[QueueJob]:
    """Mark up to ``limit`` available jobs of these queues ``running`` for this worker, oldest
    first, and return them (``QueueJobRepository::reserve``)."""
    queues = list(queues)
    if limit <= 0 or not queues:
        return []
    engine = txn.database_engine
    clause, args = make_in_list_sql_clause(engine, "queue_name", queues)
    returning = ", ".join(f"queue_jobs.{c}" for c in QueueJob.COLUMNS)
    if engine.supports_skip_locked:
        sql = (
            "WITH locked_jobs AS ("
            f" SELECT queue_job_id FROM queue_jobs WHERE status = 'available' AND {clause}"
            " ORDER BY queue_job_id LIMIT ? FOR UPDATE SKIP LOCKED)"
            " UPDATE queue_jobs SET status = 'running', started_at = ?, started_by = ?"
            " FROM locked_jobs WHERE queue_jobs.queue_job_id = locked_jobs.queue_job_id"
            f" RETURNING {returning}"
        )
        txn.execute(sql, (*args, limit, now, worker_id))
    else:
        sql = (
            "UPDATE queue_jobs SET status = 'running', started_at = ?, started_by = ?"
            " WHERE queue_job_id IN ("
            f" SELECT queue_job_id FROM queue_jobs WHERE status = 'available' AND {clause}"
            " ORDER BY queue_job_id LIMIT ?)"
            f" RETURNING {returning}"
        )
        txn.execute(sql, (now, worker_id, *args, limit))
    jobs = [QueueJob.from_row(row) for row in txn.fetchall()]
    jobs.sort(key=lambda job: job.id)
    return jobs


def mark_completed_txn(txn: LoggingTransaction, job_id: str, now: int) -> bool:
    """``running`` → ``completed``; ``False`` if the job was not running (declared lost)."""
    txn.execute(
        "UPDATE queue_jobs SET status = 'completed', completed_at = ? WHERE queue_job_id = ? AND status = 'running'",
        (now, job_id),
    )
    return txn.rowcount == 1


def _retry_txn(
    txn: LoggingTransaction, job_id: str, new_id: str, now: int, retry_at: int, from_status: str
) -> None:
    """A new attempt of ``job_id`` (``attempt + 1``), scheduled for ``retry_at``; the schedule
    that pointed at the old attempt points at the new one (``QueueJobRepository::retry``)."""
    txn.execute(
        "INSERT INTO queue_jobs (queue_job_id, queue_name, payload, metadata, created_at, attempt, scheduled_at,"
        " schedule_name, status)"
        " SELECT ?, queue_name, payload, metadata, ?, attempt + 1, ?, schedule_name, 'scheduled'"
        " FROM queue_jobs WHERE queue_job_id = ? AND status = ?",
        (new_id, now, retry_at, job_id, from_status),
    )
    if txn.rowcount != 1:
        raise LookupError(f"job {job_id} is not {from_status}")
    txn.execute(
        "UPDATE queue_schedules SET last_scheduled_at = ?, last_scheduled_job_id = ? WHERE last_scheduled_job_id = ?",
        (retry_at, new_id, job_id),
    )
    txn.execute("UPDATE queue_jobs SET next_attempt_id = ? WHERE queue_job_id = ?", (new_id, job_id))


def mark_failed_txn(
    txn: LoggingTransaction, job_id: str, now: int, reason: str, retry: tuple[str, int] | None
) -> bool:
    """``running`` → ``failed`` with the reason, and, when ``retry`` is ``(new_id, retry_at)``,
    the next attempt. ``False`` if the job was not running (declared lost meanwhile)."""
    txn.execute(
        "UPDATE queue_jobs SET status = 'failed', failed_at = ?, failed_reason = ?"
        " WHERE queue_job_id = ? AND status = 'running'",
        (now, reason, job_id),
    )
    if txn.rowcount != 1:
        return False
    if retry is not None:
        new_id, retry_at = retry
        _retry_txn(txn, job_id, new_id, now, retry_at, FAILED)
    return True


def shutdown_worker_txn(txn: LoggingTransaction, worker_id: str, now: int) -> bool:
    """Mark the worker shut down and give up its lease; whether it held the lease (the other
    workers are then told on PostgreSQL, ``NOTIFY queue_leader_stepdown``)."""
    txn.execute("UPDATE queue_workers SET shutdown_at = ? WHERE queue_worker_id = ?", (now, worker_id))
    txn.execute("DELETE FROM queue_leader WHERE queue_worker_id = ?", (worker_id,))
    was_leader = txn.rowcount > 0
    if was_leader and txn.database_engine.name == "postgres":
        txn.execute("NOTIFY queue_leader_stepdown")
    return was_leader


def is_leader_txn(txn: LoggingTransaction, worker_id: str, now: int) -> bool:
    """Whether this worker holds an unexpired lease. On PostgreSQL the row stays locked until
    the transaction ends, so two leaders' duties never overlap (MAS takes an advisory lock)."""
    lock = " FOR UPDATE" if txn.database_engine.name == "postgres" else ""
    txn.execute(f"SELECT queue_worker_id, expires_at FROM queue_leader{lock}", ())
    row = txn.fetchone()
    return row is not None and row[0] == worker_id and row[1] >= now


def setup_schedules_txn(txn: LoggingTransaction, names: Iterable[str]) -> None:
    """Make sure every schedule has its row (``QueueScheduleRepository::setup``)."""
    for name in names:
        txn.execute(
            "INSERT INTO queue_schedules (schedule_name) VALUES (?) ON CONFLICT (schedule_name) DO NOTHING",
            (name,),
        )


def list_schedules_txn(txn: LoggingTransaction) -> list[ScheduleStatus]:
    txn.execute(
        "SELECT s.schedule_name, s.last_scheduled_at, j.status FROM queue_schedules AS s"
        " LEFT JOIN queue_jobs AS j ON j.queue_job_id = s.last_scheduled_job_id"
        " ORDER BY s.schedule_name",
        (),
    )
    # Done is completed or failed for good (MAS's schedule.rs), and lost (a lost job that was
    # retried has handed the schedule to its next attempt; one still pointed at was not retried).
    return [
        ScheduleStatus(name, at, None if status is None else status in (COMPLETED, FAILED, LOST))
        for name, at, status in txn.fetchall()
    ]


def enqueue_due_schedules_txn(
    txn: LoggingTransaction, now: int, schedules: Sequence[DueSchedule], new_id: Callable[[], str]
) -> list[str]:
    """For each schedule whose last job is due and done (or that never ran), schedule its next
    job at its next tick after ``now``; the names scheduled (MAS's leader duties)."""
    statuses = {s.schedule_name: s for s in list_schedules_txn(txn)}
    scheduled = []
    for schedule in schedules:
        status = statuses.get(schedule.schedule_name)
        if status is None:
            logger.warning("Schedule %s was not found in the database", schedule.schedule_name)
            continue
        if status.last_scheduled_at is not None and (
            status.last_scheduled_at > now or status.last_scheduled_job_completed is False
        ):
            continue
        schedule_job_later_txn(
            txn,
            new_id(),
            now,
            schedule.queue_name,
            schedule.payload,
            schedule.next_tick(now),
            schedule.schedule_name,
        )
        scheduled.append(schedule.schedule_name)
    return scheduled


def shutdown_dead_workers_txn(txn: LoggingTransaction, now: int, threshold_ms: int) -> int:
    """Declare dead the workers not seen for ``threshold_ms``; how many."""
    txn.execute(
        "UPDATE queue_workers SET shutdown_at = ? WHERE shutdown_at IS NULL AND last_seen_at < ?",
        (now, now - threshold_ms),
    )
    return txn.rowcount


def recover_lost_jobs_txn(
    txn: LoggingTransaction,
    now: int,
    max_attempts: int,
    retry_delay_ms: Callable[[int], int],
    new_id: Callable[[], str],
) -> list[QueueJob]:
    """Jobs still ``running`` on a worker that is shut down become ``lost``, and are retried
    like a failed job (up to ``max_attempts``, after ``retry_delay_ms(attempt)``); the jobs
    marked lost."""
    cols = ", ".join(f"j.{c}" for c in QueueJob.COLUMNS)
    txn.execute(
        f"SELECT {cols} FROM queue_jobs AS j JOIN queue_workers AS w ON w.queue_worker_id = j.started_by"
        " WHERE j.status = 'running' AND w.shutdown_at IS NOT NULL ORDER BY j.queue_job_id",
        (),
    )
    lost = [QueueJob.from_row(row) for row in txn.fetchall()]
    for job in lost:
        txn.execute(
            "UPDATE queue_jobs SET status = 'lost', failed_at = ?, failed_reason = ?"
            " WHERE queue_job_id = ? AND status = 'running'",
            (now, f"worker {job.started_by} was lost", job.id),
        )
        if txn.rowcount == 1 and job.attempt < max_attempts:
            _retry_txn(txn, job.id, new_id(), now, now + retry_delay_ms(job.attempt), LOST)
    return lost


def schedule_available_jobs_txn(txn: LoggingTransaction, now: int) -> int:
    """``scheduled`` jobs that are due become ``available``; how many."""
    txn.execute(
        "UPDATE queue_jobs SET status = 'available' WHERE status = 'scheduled' AND scheduled_at <= ?", (now,)
    )
    return txn.rowcount


@attrs.frozen
class TickResult:
    alive: bool
    leader: bool
    jobs: list[QueueJob]


class QueueStore(SQLBaseStore):
    """The queue's transactions, one per call, for the worker (``mas_twisted.queue``) and the CLI."""

    async def schedule_job(self, job_id: str, queue_name: str, payload: Any) -> None:
        await self.db_pool.runInteraction(
            "schedule_job", schedule_job_txn, job_id, self._clock.time_msec(), queue_name, payload
        )

    async def schedule_in_transaction(
        self, desc: str, schedule: Callable[[LoggingTransaction], object]
    ) -> None:
        """Run ``schedule(txn)``, which schedules jobs (:func:`schedule_job_txn`), in one
        transaction of its own: all of them or none."""
        await self.db_pool.runInteraction(desc, schedule)

    async def register_worker(self, worker_id: str) -> None:
        await self.db_pool.runInteraction(
            "register_worker", register_worker_txn, worker_id, self._clock.time_msec()
        )

    async def shutdown_worker(self, worker_id: str) -> bool:
        return await self.db_pool.runInteraction(
            "shutdown_worker", shutdown_worker_txn, worker_id, self._clock.time_msec()
        )

    async def setup_schedules(self, names: Sequence[str]) -> None:
        await self.db_pool.runInteraction("setup_schedules", setup_schedules_txn, list(names))

    async def list_schedules(self) -> list[ScheduleStatus]:
        return await self.db_pool.runInteraction("list_schedules", list_schedules_txn)

    async def tick(
        self, worker_id: str, *, heartbeat: bool, lease_ms: int, queues: Sequence[str], limit: int
    ) -> TickResult:
        """One worker tick in one transaction (MAS's ``QueueWorker::tick``): the heartbeat when
        due, the leader lease, and the jobs reserved."""
        now = self._clock.time_msec()

        def _tick_txn(txn: LoggingTransaction) -> TickResult:
            alive = heartbeat_txn(txn, worker_id, now) if heartbeat else True
            if not alive:
                return TickResult(alive=False, leader=False, jobs=[])
            leader = try_get_leader_lease_txn(txn, worker_id, now, lease_ms)
            jobs = reserve_jobs_txn(txn, worker_id, now, queues, limit)
            return TickResult(alive=True, leader=leader, jobs=jobs)

        return await self.db_pool.runInteraction("queue_tick", _tick_txn)

    async def leader_duties(
        self,
        worker_id: str,
        *,
        schedules: Sequence[DueSchedule],
        dead_after_ms: int,
        max_attempts: int,
        retry_delay_ms: Callable[[int], int],
        new_id: Callable[[], str],
    ) -> tuple[list[str], list[QueueJob], int] | None:
        """The leader's duties in one transaction, ``None`` if this worker is not the leader
        (any more): enqueue due schedules, declare dead workers and recover their jobs, make
        due scheduled jobs available. Returns ``(schedules enqueued, jobs lost, jobs made
        available)``."""
        now = self._clock.time_msec()

        def _duties_txn(txn: LoggingTransaction) -> tuple[list[str], list[QueueJob], int] | None:
            if not is_leader_txn(txn, worker_id, now):
                return None
            enqueued = enqueue_due_schedules_txn(txn, now, schedules, new_id)
            shutdown_dead_workers_txn(txn, now, dead_after_ms)
            lost = recover_lost_jobs_txn(txn, now, max_attempts, retry_delay_ms, new_id)
            available = schedule_available_jobs_txn(txn, now)
            return enqueued, lost, available

        return await self.db_pool.runInteraction("queue_leader_duties", _duties_txn)

    async def count_jobs_by_status(self) -> dict[tuple[str, str], int]:
        """The jobs not completed, by ``(queue_name, status)``: for the leader's
        ``mas_queue_jobs`` gauge (:func:`mas_twisted.metrics.set_queue_depth`). Completed jobs,
        which only grow, are left out; the others are found through the status index."""

        def _count_txn(txn: LoggingTransaction) -> dict[tuple[str, str], int]:
            txn.execute(
                "SELECT queue_name, status, COUNT(*) FROM queue_jobs"
                " WHERE status IN ('available', 'scheduled', 'running', 'failed', 'lost')"
                " GROUP BY queue_name, status"
            )
            return {(row[0], row[1]): int(row[2]) for row in txn.fetchall()}

        return await self.db_pool.runInteraction("queue_count_jobs_by_status", _count_txn)

    async def mark_completed(self, job_id: str) -> bool:
        return await self.db_pool.runInteraction(
            "queue_mark_completed", mark_completed_txn, job_id, self._clock.time_msec()
        )

    async def mark_failed(self, job_id: str, reason: str, retry: tuple[str, int] | None) -> bool:
        return await self.db_pool.runInteraction(
            "queue_mark_failed", mark_failed_txn, job_id, self._clock.time_msec(), reason, retry
        )

    async def get_job(self, job_id: str) -> QueueJob | None:
        def _get_txn(txn: LoggingTransaction) -> QueueJob | None:
            txn.execute(
                f"SELECT {', '.join(QueueJob.COLUMNS)} FROM queue_jobs WHERE queue_job_id = ?", (job_id,)
            )
            row = txn.fetchone()
            return QueueJob.from_row(row) if row else None

        return await self.db_pool.runInteraction("queue_get_job", _get_txn)

    async def list_jobs(self, queue_name: str | None = None) -> list[QueueJob]:
        """Every job (of one queue), oldest first: for the CLI and tests."""

        def _list_txn(txn: LoggingTransaction) -> list[QueueJob]:
            where, args = ("WHERE queue_name = ?", (queue_name,)) if queue_name else ("", ())
            txn.execute(
                f"SELECT {', '.join(QueueJob.COLUMNS)} FROM queue_jobs {where} ORDER BY queue_job_id", args
            )
            return [QueueJob.from_row(row) for row in txn.fetchall()]

        return await self.db_pool.runInteraction("queue_list_jobs", _list_txn)

    # -- named leases -----------------------------------------------------------------------
    async def try_acquire_lock(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take the lease ``name`` for ``ttl_ms`` if nobody holds it (or the holder's expired)."""
        now = self._clock.time_msec()

        def _acquire_txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "INSERT INTO queue_locks (lock_name, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (lock_name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE queue_locks.expires_at < ?",
                (name, holder, now + ttl_ms, now),
            )
            return txn.rowcount == 1

        return await self.db_pool.runInteraction("queue_try_acquire_lock", _acquire_txn)

    async def extend_lock(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Extend ``holder``'s lease ``name`` to ``ttl_ms`` from now; whether it still held it."""
        now = self._clock.time_msec()

        def _extend_txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "UPDATE queue_locks SET expires_at = ? WHERE lock_name = ? AND holder = ?",
                (now + ttl_ms, name, holder),
            )
            return txn.rowcount == 1

        return await self.db_pool.runInteraction("queue_extend_lock", _extend_txn)

    async def release_lock(self, name: str, holder: str) -> None:
        await self.db_pool.execute(
            "queue_release_lock", "DELETE FROM queue_locks WHERE lock_name = ? AND holder = ?", name, holder
        )

    # -- cleanup ------------------------------------------------------------------------------
    async def cleanup_jobs(self, since: str | None, until: str, limit: int) -> tuple[int, str | None]:
        """Delete up to ``limit`` completed or failed jobs with ids in ``(since, until]`` (ULIDs
        sort by creation time); ``(count, last id deleted)`` (``QueueJobRepository::cleanup``).
        References from other jobs and from schedules are cleared first."""

        def _cleanup_txn(txn: LoggingTransaction) -> tuple[int, str | None]:
            txn.execute(
                "SELECT queue_job_id FROM queue_jobs WHERE status IN ('completed', 'failed', 'lost')"
                " AND (? IS NULL OR queue_job_id > ?) AND queue_job_id <= ? ORDER BY queue_job_id LIMIT ?",
                (since, since, until, limit),
            )
            ids = [row[0] for row in txn.fetchall()]
            if not ids:
                return 0, None
            clause, args = make_in_list_sql_clause(txn.database_engine, "next_attempt_id", ids)
            txn.execute(f"UPDATE queue_jobs SET next_attempt_id = NULL WHERE {clause}", args)
            clause, args = make_in_list_sql_clause(txn.database_engine, "last_scheduled_job_id", ids)
            txn.execute(f"UPDATE queue_schedules SET last_scheduled_job_id = NULL WHERE {clause}", args)
            clause, args = make_in_list_sql_clause(txn.database_engine, "queue_job_id", ids)
            txn.execute(f"DELETE FROM queue_jobs WHERE {clause}", args)
            return len(ids), ids[-1]

        return await self.db_pool.runInteraction("queue_cleanup_jobs", _cleanup_txn)
