# SPDX-License-Identifier: AGPL-3.0-only
"""The job queue (inventory §9) on both engines: reserving, outcomes and retries with MAS's
backoff, the leader lease, lost-job recovery, cron schedules, and the worker's loop driven
by the fake clock."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from twisted.internet import defer

from mas_twisted.queue.base import MAX_ATTEMPTS, Job, JobContext, JobError, enqueue, retry_delay_ms
from mas_twisted.queue.registry import JOBS, SCHEDULES, due_schedules, next_tick
from mas_twisted.queue.worker import DEAD_WORKER_AFTER_MS, LEADER_LEASE_MS, QueueWorker
from mas_twisted.types.queue import COMPLETED, FAILED, LOST, RUNNING, SCHEDULED, DueSchedule
from tests.unittest import MasTestCase

RUNS: list[tuple[str, Any]] = []


@attrs.frozen
class RecordJob(Job):
    """Records that it ran, with its value."""

    QUEUE_NAME: ClassVar[str] = "test-record"
    value: int = 0

    async def run(self, server: Any, context: JobContext) -> None:
        RUNS.append((context.id, self.value))


@attrs.frozen
class FlakyJob(Job):
    """Fails (retryably) until its attempt reaches ``succeed_at``."""

    QUEUE_NAME: ClassVar[str] = "test-flaky"
    succeed_at: int = 2

    async def run(self, server: Any, context: JobContext) -> None:
        RUNS.append((context.id, context.attempt))
        if context.attempt < self.succeed_at:
            raise JobError.retryable(f"not yet at attempt {context.attempt}")


@attrs.frozen
class FatalJob(Job):
    QUEUE_NAME: ClassVar[str] = "test-fatal"

    async def run(self, server: Any, context: JobContext) -> None:
        raise JobError.fatal("never going to work")


@attrs.frozen
class CrashJob(Job):
    QUEUE_NAME: ClassVar[str] = "test-crash"

    async def run(self, server: Any, context: JobContext) -> None:
        raise ZeroDivisionError("boom")


HANGING: list[defer.Deferred[None]] = []


@attrs.frozen
class HangJob(Job):
    """Runs until the test fires its Deferred (a job in progress when its worker dies)."""

    QUEUE_NAME: ClassVar[str] = "test-hang"

    async def run(self, server: Any, context: JobContext) -> None:
        d: defer.Deferred[None] = defer.Deferred()
        HANGING.append(d)
        RUNS.append((context.id, context.attempt))
        await d


TEST_JOBS = {cls.QUEUE_NAME: cls for cls in (RecordJob, FlakyJob, FatalJob, CrashJob, HangJob)}


class QueueTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        RUNS.clear()
        HANGING.clear()
        self.store = server.get_stores().queue

    def worker(self, jobs: dict[str, type[Job]] | None = None, schedules: Any = ()) -> QueueWorker:
        worker = QueueWorker(self.server, jobs or TEST_JOBS, schedules)
        self.get_success(worker.start())
        return worker

    def run_for(self, seconds: float, step: float = 0.5) -> None:
        elapsed = 0.0
        while elapsed < seconds:
            self.reactor.advance(step)
            elapsed += step

    def jobs(self, queue: str | None = None) -> list[Any]:
        return self.get_success(self.store.list_jobs(queue))

    # -- store --------------------------------------------------------------------------
    def test_each_job_reserved_once(self) -> None:
        for n in range(7):
            self.get_success(enqueue(self.server, RecordJob(value=n)))
            self.reactor.advance(0.001)  # ids (ULIDs) order by creation only across milliseconds
        self.get_success(enqueue(self.server, FatalJob()))
        self.get_success(self.store.register_worker("W1"))
        self.get_success(self.store.register_worker("W2"))
        first = self.get_success(
            self.store.tick("W1", heartbeat=False, lease_ms=5000, queues=["test-record"], limit=5)
        )
        second = self.get_success(
            self.store.tick("W2", heartbeat=False, lease_ms=5000, queues=["test-record"], limit=5)
        )
        third = self.get_success(
            self.store.tick("W2", heartbeat=False, lease_ms=5000, queues=["test-record"], limit=5)
        )
        self.assertEqual(len(first.jobs), 5)
        self.assertEqual([j.payload["value"] for j in first.jobs], [0, 1, 2, 3, 4])
        self.assertEqual([j.payload["value"] for j in second.jobs], [5, 6])
        self.assertEqual(third.jobs, [])
        # Only one of the two holds the lease.
        self.assertTrue(first.leader)
        self.assertFalse(second.leader)
        jobs = self.jobs("test-record")
        self.assertEqual({j.status for j in jobs}, {RUNNING})
        self.assertEqual({j.started_by for j in jobs[:5]}, {"W1"})
        # The job of another queue was not taken.
        self.assertEqual([j.status for j in self.jobs("test-fatal")], ["available"])

    def test_failed_job_is_retried_with_backoff(self) -> None:
        self.get_success(enqueue(self.server, RecordJob(value=1)))
        self.get_success(self.store.register_worker("W1"))
        (job,) = self.get_success(
            self.store.tick("W1", heartbeat=False, lease_ms=5000, queues=["test-record"], limit=5)
        ).jobs
        now = self.clock.time_msec()
        self.assertTrue(
            self.get_success(
                self.store.mark_failed(job.id, "nope", ("01RETRY0000000000000000000", now + 5000))
            )
        )
        old, new = self.jobs()
        self.assertEqual((old.status, old.failed_reason, old.next_attempt_id), (FAILED, "nope", new.id))
        self.assertEqual(
            (new.status, new.attempt, new.scheduled_at, new.payload), (SCHEDULED, 1, now + 5000, {"value": 1})
        )
        # Recording an outcome twice is refused (the job is no longer running).
        self.assertFalse(self.get_success(self.store.mark_completed(job.id)))
        self.assertEqual([retry_delay_ms(a) for a in range(4)], [5_000, 10_000, 20_000, 40_000])

    def test_leader_lease(self) -> None:
        self.get_success(self.store.register_worker("W1"))
        self.get_success(self.store.register_worker("W2"))
        tick = lambda w: self.get_success(
            self.store.tick(w, heartbeat=False, lease_ms=LEADER_LEASE_MS, queues=[], limit=0)
        )
        self.assertTrue(tick("W1").leader)
        self.assertFalse(tick("W2").leader)
        self.reactor.advance(4)
        self.assertTrue(tick("W1").leader)  # extended
        self.reactor.advance(4)
        self.assertFalse(tick("W2").leader)  # W1's extension still holds
        self.reactor.advance(2)
        self.assertTrue(tick("W2").leader)  # W1 stopped extending: expired, taken over
        self.assertFalse(tick("W1").leader)
        # A clean shutdown gives the lease up at once.
        self.assertTrue(self.get_success(self.store.shutdown_worker("W2")))
        self.assertTrue(tick("W1").leader)

    # -- the worker ---------------------------------------------------------------------
    def test_worker_runs_every_job_once(self) -> None:
        ids = [self.get_success(enqueue(self.server, RecordJob(value=n))) for n in range(23)]
        worker = self.worker()
        self.run_for(10)
        self.assertEqual(sorted(job_id for job_id, _ in RUNS), sorted(ids))
        self.assertEqual({j.status for j in self.jobs()}, {COMPLETED})
        self.get_success(worker.stop())

    def test_retries_until_success(self) -> None:
        self.get_success(enqueue(self.server, FlakyJob(succeed_at=2)))
        worker = self.worker()
        self.run_for(3)
        self.assertEqual([a for _, a in RUNS], [0])
        self.run_for(5)  # 5 s after the first failure
        self.assertEqual([a for _, a in RUNS], [0, 1])
        self.run_for(8)
        self.assertEqual([a for _, a in RUNS], [0, 1])  # the second retry waits 10 s
        self.run_for(4)
        self.assertEqual([a for _, a in RUNS], [0, 1, 2])
        jobs = self.jobs()
        self.assertEqual([(j.attempt, j.status) for j in jobs], [(0, FAILED), (1, FAILED), (2, COMPLETED)])
        self.assertEqual([j.next_attempt_id for j in jobs], [jobs[1].id, jobs[2].id, None])
        self.get_success(worker.stop())

    def test_gives_up_after_max_attempts(self) -> None:
        self.get_success(enqueue(self.server, FlakyJob(succeed_at=99)))
        worker = self.worker()
        self.run_for(sum(retry_delay_ms(a) for a in range(MAX_ATTEMPTS + 1)) / 1000 + 30, step=5)
        jobs = self.jobs()
        # As MAS: attempts 0 to MAX_ATTEMPTS, then abandoned.
        self.assertEqual([j.attempt for j in jobs], list(range(MAX_ATTEMPTS + 1)))
        self.assertEqual({j.status for j in jobs}, {FAILED})
        self.assertIsNone(jobs[-1].next_attempt_id)
        self.get_success(worker.stop())

    def test_fatal_error_and_crash(self) -> None:
        self.get_success(enqueue(self.server, FatalJob()))
        self.get_success(enqueue(self.server, CrashJob()))
        worker = self.worker()
        self.run_for(3)
        fatal = self.jobs("test-fatal")
        self.assertEqual([(j.status, j.failed_reason) for j in fatal], [(FAILED, "never going to work")])
        crash = self.jobs("test-crash")
        self.assertEqual([j.status for j in crash], [FAILED, SCHEDULED])  # a crash is retried
        self.assertIn("ZeroDivisionError: boom", crash[0].failed_reason)
        self.get_success(worker.stop())

    def test_unknown_queue_fails_for_good(self) -> None:
        self.get_success(self.store.schedule_job("01UNKNOWN00000000000000000", "no-such-queue", {}))
        worker = self.worker(jobs={**TEST_JOBS, "no-such-queue": RecordJob})
        worker._jobs.pop("no-such-queue")
        # Reserved only by a worker that knows the queue: this one does not any more.
        self.run_for(3)
        self.assertEqual([j.status for j in self.jobs("no-such-queue")], ["available"])
        self.get_success(worker.stop())

    def test_lost_job_is_retried_by_the_leader(self) -> None:
        job_id = self.get_success(enqueue(self.server, HangJob()))
        doomed = self.worker()
        self.run_for(2)
        self.assertEqual(len(RUNS), 1)
        self.assertEqual(self.jobs()[0].started_by, doomed.worker_id)
        # The worker's process dies: nothing of it runs any more.
        doomed._stopping = True
        doomed.wake()
        survivor = self.worker()
        self.run_for(DEAD_WORKER_AFTER_MS / 1000 + 5)
        jobs = self.jobs()
        self.assertEqual(jobs[0].id, job_id)
        self.assertEqual(jobs[0].status, LOST)
        self.assertIn(doomed.worker_id, jobs[0].failed_reason)
        self.assertEqual(jobs[0].next_attempt_id, jobs[1].id)
        self.run_for(6)
        self.assertEqual([a for _, a in RUNS], [0, 1])
        self.assertEqual(self.jobs()[1].started_by, survivor.worker_id)
        for d in HANGING:
            d.callback(None)
        self.run_for(2)
        self.assertEqual([j.status for j in self.jobs()], [LOST, COMPLETED])
        self.get_success(survivor.stop())

    def test_stop_waits_for_running_jobs(self) -> None:
        self.get_success(enqueue(self.server, HangJob()))
        worker = self.worker()
        self.run_for(2)
        stopped = defer.ensureDeferred(worker.stop())
        self.run_for(2)
        self.assertNoResult(stopped)
        HANGING[0].callback(None)
        self.run_for(1)
        self.successResultOf(stopped)
        self.assertEqual([j.status for j in self.jobs()], [COMPLETED])

    # -- schedules ----------------------------------------------------------------------
    def test_leader_enqueues_cron_schedules(self) -> None:
        worker = self.worker(jobs=JOBS, schedules=due_schedules())
        self.run_for(3)
        self.assertTrue(worker.is_leader)
        jobs = {j.schedule_name: j for j in self.jobs()}
        self.assertEqual(set(jobs), {name for name, _, _ in SCHEDULES})
        now = self.clock.time_msec()
        for name, expression, _ in SCHEDULES:
            self.assertEqual(jobs[name].status, SCHEDULED)
            self.assertGreater(jobs[name].scheduled_at, now - 3000)
            self.assertEqual(jobs[name].scheduled_at, next_tick(expression)(jobs[name].created_at))
        # Another tick schedules nothing more while those are pending.
        self.run_for(3)
        self.assertEqual(len(self.jobs()), len(SCHEDULES))
        # An hour later each hourly job has run once, and its next run is scheduled.
        self.run_for(3600, step=10)
        cleanup = self.jobs("cleanup-queue-jobs")
        self.assertEqual([j.status for j in cleanup], [COMPLETED, SCHEDULED])
        self.get_success(worker.stop())

    def test_schedule_goes_on_after_a_failed_job(self) -> None:
        # As MAS: a schedule's job that failed for good does not stop the schedule.
        schedule = DueSchedule("test-fatal-every-minute", FatalJob.QUEUE_NAME, {}, next_tick("0 * * * * *"))
        worker = self.worker(schedules=[schedule])
        self.run_for(150, step=1)
        jobs = self.jobs("test-fatal")
        self.assertEqual([j.status for j in jobs], [FAILED, FAILED, SCHEDULED])
        self.assertEqual({j.schedule_name for j in jobs}, {"test-fatal-every-minute"})
        self.get_success(worker.stop())

    def test_next_tick(self) -> None:
        # 2023-11-14T22:13:20Z → the next :55:00, and the next 4-hourly :05 (00:05 next day).
        start = int(self.START_TIME * 1000)
        self.assertEqual(next_tick("0 55 * * * *")(start) - start, (41 * 60 + 40) * 1000)
        self.assertEqual(next_tick("0 5 */4 * * *")(start) - start, (1 * 3600 + 51 * 60 + 40) * 1000)
