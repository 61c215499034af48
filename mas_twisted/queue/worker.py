# SPDX-License-Identifier: AGPL-3.0-only
"""The job worker (MAS's ``QueueWorker``, ``crates/tasks/src/new_queue.rs``; inventory §9).

Every ``twistd mas`` runs one unless ``--no-worker``; ``mas-cli worker`` runs one alone. Any
number of workers, in any number of processes, share one database:

- A worker registers in ``queue_workers`` and wakes up every 0.9–1.1 s (random, so that
  workers drift apart), when a job it runs finishes, and on PostgreSQL when a job becomes
  available (``LISTEN queue_available``, fed by a trigger) or the leader steps down.
- Each wake-up is one transaction (:meth:`QueueStore.tick`): a heartbeat once a minute, the
  leader lease (5 s, extended by its holder at every tick), and up to 5 available jobs of the
  queues it knows, never more than 10 running at once.
- Jobs run concurrently on the reactor. When one ends, its outcome is recorded at once:
  ``completed``; or ``failed``, with a new attempt scheduled 5 s × 2^attempt later unless it
  failed for good or this was the 10th attempt.
- The leader, after its tick, enqueues the cron schedules that are due, declares dead the
  workers not seen for 2 minutes, marks their running jobs ``lost`` and schedules them again
  (MAS has the ``lost`` status but never sets it), and makes due scheduled jobs available.
- On stop, the worker stops taking jobs, waits for the running ones, records them, and marks
  itself shut down (giving up the lease, which wakes the others on PostgreSQL).

Differences from MAS, deliberate: a database error in a tick is logged and retried at the
next wake-up (MAS's worker stops for good); the number of jobs fetched is
``min(5, 10 - running)`` (MAS computes ``max``, which lets more than 10 run).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet import defer

from mas_twisted import metrics
from mas_twisted.queue.base import MAX_ATTEMPTS, Job, JobContext, JobError, retry_delay_ms
from mas_twisted.telemetry import tracing
from mas_twisted.types.queue import DueSchedule, QueueJob

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

MIN_SLEEP_S = 0.9
MAX_SLEEP_S = 1.1
MAX_CONCURRENT_JOBS = 10
MAX_JOBS_TO_FETCH = 5
HEARTBEAT_INTERVAL_MS = 60_000
DEAD_WORKER_AFTER_MS = 120_000
LEADER_LEASE_MS = 5_000
#: How often the leader counts the queue for ``mas_queue_jobs`` (:func:`metrics.set_queue_depth`).
QUEUE_DEPTH_INTERVAL_MS = 15_000


class QueueWorker:
    """One worker: its registration, loop, running jobs and leader duties.

    Args:
        server: the container (clock, randomness, stores, homeserver connection).
        jobs: queue name → job class (:data:`mas_twisted.queue.registry.JOBS`).
        schedules: the cron schedules the leader enqueues.
    """

    def __init__(
        self,
        server: MasServer,
        jobs: Mapping[str, type[Job]],
        schedules: Sequence[DueSchedule] = (),
    ):
        self._server = server
        self._clock = server.get_clock()
        self._rand = server.get_token_generator()
        self._store = server.get_stores().queue
        self._jobs = dict(jobs)
        self._schedules = list(schedules)
        self.worker_id = self._rand.ulid()
        self.is_leader = False
        self._last_heartbeat = 0
        self._last_depth_count: int | None = None
        self._running: dict[str, defer.Deferred[None]] = {}
        self._stopping = False
        self._wakeup: defer.Deferred[None] | None = None
        self._sleep_call: Any = None
        self._loop: defer.Deferred[None] | None = None
        self._listener: Any = None
        #: Called with each job's id and outcome ("completed", "failed", "retry"), for tests.
        self.on_job_done: Callable[[str, str], None] | None = None

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Register, set up the schedules and the wake-up listener, and start the loop."""
        await self._store.register_worker(self.worker_id)
        self._last_heartbeat = self._clock.time_msec()
        await self._store.setup_schedules([s.schedule_name for s in self._schedules])
        logger.info("Registered queue worker %s", self.worker_id)
        self._listener = await _start_listener(self._server, self.wake)
        self._loop = defer.ensureDeferred(self._run())
        self._loop.addErrback(lambda f: logger.error("The queue worker stopped: %s", f.getTraceback()))

    async def stop(self) -> None:
        """Stop taking jobs, wait for the running ones, and shut the registration down."""
        self._stopping = True
        self.wake()
        if self._loop is not None:
            await self._loop
        if self._listener is not None:
            self._listener.close()
        if self._running:
            logger.info("Waiting for %d running job(s)", len(self._running))
            await defer.DeferredList(list(self._running.values()), consumeErrors=True)
        try:
            await self._store.shutdown_worker(self.worker_id)
        except Exception as e:
            logger.warning("Could not record the shutdown of queue worker %s: %s", self.worker_id, e)
        if self.is_leader:
            self.is_leader = False
            metrics.set_queue_leader(False)
        logger.info("Queue worker %s shut down", self.worker_id)

    def wake(self, *_: Any) -> None:
        """End the current sleep now (a job ended, a notification came, stop was asked)."""
        wakeup, self._wakeup = self._wakeup, None
        if self._sleep_call is not None and self._sleep_call.active():
            self._sleep_call.cancel()
        self._sleep_call = None
        if wakeup is not None and not wakeup.called:
            wakeup.callback(None)

    async def _sleep(self) -> None:
        duration = MIN_SLEEP_S + self._rand._rng.random() * (MAX_SLEEP_S - MIN_SLEEP_S)
        self._wakeup = defer.Deferred()
        self._sleep_call = self._clock.call_later(duration, self.wake)
        await self._wakeup

    async def _run(self) -> None:
        while not self._stopping:
            await self._sleep()
            if self._stopping:
                break
            try:
                await self.tick()
            except Exception as e:
                logger.warning("Queue worker tick failed (will try again): %s", e, exc_info=True)

    # -- one wake-up ------------------------------------------------------------------------
    async def tick(self) -> list[QueueJob]:
        """One tick and, when leader, the leader's duties; the jobs started."""
        now = self._clock.time_msec()
        heartbeat = now - self._last_heartbeat >= HEARTBEAT_INTERVAL_MS
        limit = max(0, min(MAX_JOBS_TO_FETCH, MAX_CONCURRENT_JOBS - len(self._running)))
        result = await self._store.tick(
            self.worker_id,
            heartbeat=heartbeat,
            lease_ms=LEADER_LEASE_MS,
            queues=sorted(self._jobs),
            limit=limit,
        )
        if heartbeat:
            self._last_heartbeat = now
        if not result.alive:
            # Declared dead (a long pause): our jobs were recovered by the leader. Start over
            # under a new id rather than run jobs that are no longer ours.
            logger.warning("Queue worker %s was declared dead; registering again", self.worker_id)
            self.worker_id = self._rand.ulid()
            await self._store.register_worker(self.worker_id)
            self._last_heartbeat = self._clock.time_msec()
            self.is_leader = False
            metrics.set_queue_leader(False)
            return []
        if result.leader != self.is_leader:
            self.is_leader = result.leader
            metrics.set_queue_leader(result.leader)
            self._last_depth_count = None
            logger.info(
                "Queue worker %s %s the leader", self.worker_id, "is now" if result.leader else "is no longer"
            )
        for job in result.jobs:
            self._start_job(job)
        if self.is_leader:
            await self.leader_duties()
        return result.jobs

    async def leader_duties(self) -> None:
        result = await self._store.leader_duties(
            self.worker_id,
            schedules=self._schedules,
            dead_after_ms=DEAD_WORKER_AFTER_MS,
            max_attempts=MAX_ATTEMPTS,
            retry_delay_ms=retry_delay_ms,
            new_id=self._rand.ulid,
        )
        if result is None:
            self.is_leader = False
            metrics.set_queue_leader(False)
            return
        enqueued, lost, available = result
        now = self._clock.time_msec()
        if self._last_depth_count is None or now - self._last_depth_count >= QUEUE_DEPTH_INTERVAL_MS:
            self._last_depth_count = now
            metrics.set_queue_depth(await self._store.count_jobs_by_status())
        for name in enqueued:
            logger.debug("Scheduled the next job of %s", name)
        for job in lost:
            logger.warning(
                "Job %s (%s, attempt %d) was lost with worker %s; retrying",
                job.id,
                job.queue_name,
                job.attempt,
                job.started_by,
            )
        if available:
            logger.debug("%d scheduled job(s) became available", available)

    # -- running jobs -----------------------------------------------------------------------
    def _start_job(self, queue_job: QueueJob) -> None:
        d = tracing.run_job(
            queue_job.queue_name,
            queue_job.id,
            queue_job.metadata,
            lambda: defer.ensureDeferred(self._run_job(queue_job)),
        )
        self._running[queue_job.id] = d

        def _done(_: Any) -> None:
            self._running.pop(queue_job.id, None)
            self.wake()

        d.addBoth(_done)

    async def _run_job(self, queue_job: QueueJob) -> None:
        context = JobContext(
            id=queue_job.id,
            queue_name=queue_job.queue_name,
            attempt=queue_job.attempt,
            worker_id=self.worker_id,
        )
        job_class = self._jobs.get(queue_job.queue_name)
        logger.info("Running job %s (%s, attempt %d)", queue_job.id, queue_job.queue_name, queue_job.attempt)
        metrics.record_job_started(queue_job.queue_name)
        started = metrics.monotonic()
        try:
            if job_class is None:
                raise JobError.fatal(f"no handler for queue {queue_job.queue_name}")
            job = job_class.from_payload(queue_job.payload)
            await job.run(self._server, context)
        except JobError as e:
            metrics.record_job_finished(queue_job.queue_name, False, metrics.monotonic() - started)
            await self._record_failure(queue_job, str(e), e.retry)
        except Exception as e:
            metrics.record_job_finished(queue_job.queue_name, False, metrics.monotonic() - started)
            logger.exception("Job %s (%s) crashed", queue_job.id, queue_job.queue_name)
            await self._record_failure(queue_job, f"crashed: {type(e).__name__}: {e}", True)
        else:
            metrics.record_job_finished(queue_job.queue_name, True, metrics.monotonic() - started)
            logger.info("Job %s (%s) completed", queue_job.id, queue_job.queue_name)
            await self._record(self._store.mark_completed, queue_job.id)
            self._notify(queue_job.id, "completed")

    async def _record_failure(self, queue_job: QueueJob, reason: str, retry: bool) -> None:
        tracing.record_error(reason)
        retry_at = None
        if retry and queue_job.attempt < MAX_ATTEMPTS:
            delay = retry_delay_ms(queue_job.attempt)
            retry_at = (self._rand.ulid(), self._clock.time_msec() + delay)
            logger.warning(
                "Job %s (%s, attempt %d) failed, will retry in %ds: %s",
                queue_job.id,
                queue_job.queue_name,
                queue_job.attempt,
                delay // 1000,
                reason,
            )
        elif retry:
            logger.error(
                "Job %s (%s) failed too many times, abandoning: %s",
                queue_job.id,
                queue_job.queue_name,
                reason,
            )
        else:
            logger.error("Job %s (%s) failed, not retrying: %s", queue_job.id, queue_job.queue_name, reason)
        await self._record(self._store.mark_failed, queue_job.id, reason, retry_at)
        self._notify(queue_job.id, "retry" if retry_at else "failed")

    async def _record(self, method: Callable[..., Any], *args: Any) -> None:
        """Record a job's outcome; if the database fails, try again a few times (the job ran:
        losing its outcome would run it again once the leader declares it lost)."""
        for attempt in range(5):
            try:
                if not await method(*args):
                    logger.warning("Job %s was no longer running when it ended (declared lost?)", args[0])
                return
            except Exception as e:
                logger.warning("Could not record the outcome of job %s: %s", args[0], e)
                await _sleep(self._server, 0.5 * 2**attempt)
        logger.error(
            "Gave up recording the outcome of job %s: it stays running until the leader declares"
            " this worker dead or it is shut down, and then runs again",
            args[0],
        )

    def _notify(self, job_id: str, outcome: str) -> None:
        if self.on_job_done is not None:
            self.on_job_done(job_id, outcome)

    @property
    def running_jobs(self) -> int:
        return len(self._running)


async def _sleep(server: MasServer, seconds: float) -> None:
    d: defer.Deferred[None] = defer.Deferred()
    server.get_clock().call_later(seconds, d.callback, None)
    await d


class _PostgresListener:
    """``LISTEN queue_available`` and ``queue_leader_stepdown`` on a txpostgres connection of
    its own; each notification wakes the worker. Reconnects after a failure (the worker polls
    meanwhile)."""

    RECONNECT_S = 5.0

    def __init__(self, server: MasServer, on_notify: Callable[..., None]):
        self._server = server
        self._on_notify = on_notify
        self._conn: Any = None
        self._closed = False

    async def connect(self) -> None:
        engine = self._server.get_db_pool().engine
        args, kwargs = engine.connect_args()
        conn = _listener_connection_class()(reactor=self._server.get_reactor())
        conn.on_lost = self._lost
        try:
            await conn.connect(*args, **kwargs)
            conn.addNotifyObserver(self._notified)
            await conn.runOperation("LISTEN queue_available")
            await conn.runOperation("LISTEN queue_leader_stepdown")
        except Exception:
            conn.on_lost = None
            try:
                conn.close()
            except Exception:
                pass
            raise
        self._conn = conn

    def _notified(self, notify: Any) -> None:
        self._on_notify(notify)

    def _lost(self, reason: Any = None) -> None:
        if self._closed:
            return
        logger.warning("Lost the queue's LISTEN connection; polling until it is back")
        self._conn = None
        self._server.get_clock().call_later(self.RECONNECT_S, self._reconnect)

    def _reconnect(self) -> None:
        if self._closed:
            return
        d = defer.ensureDeferred(self.connect())
        d.addErrback(lambda f: self._lost())

    def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.on_lost = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


_LISTENER_CONNECTION: Any = None


def _listener_connection_class() -> Any:
    """txpostgres's connection, calling ``on_lost`` when the server goes away (txpostgres
    would otherwise leave the error to the reactor's log)."""
    global _LISTENER_CONNECTION
    if _LISTENER_CONNECTION is None:
        from txpostgres import txpostgres

        class ListenerConnection(txpostgres.Connection):
            on_lost: Any = None

            def doRead(self) -> Any:
                try:
                    super().doRead()
                except Exception as e:
                    return e  # the reactor drops the descriptor and calls connectionLost
                return None

            def connectionLost(self, reason: Any) -> None:
                try:
                    super().connectionLost(reason)
                finally:
                    callback, self.on_lost = self.on_lost, None
                    if callback is not None:
                        callback(reason)

        _LISTENER_CONNECTION = ListenerConnection
    return _LISTENER_CONNECTION


async def _start_listener(server: MasServer, on_notify: Callable[..., None]) -> Any:
    """The PostgreSQL wake-up listener, or ``None`` on SQLite (the worker polls) or when the
    reactor does not run (tests on a fake reactor)."""
    engine = server.get_db_pool().engine
    reactor = server.get_reactor()
    if engine.name != "postgres" or not getattr(reactor, "running", False):
        return None
    listener = _PostgresListener(server, on_notify)
    try:
        await listener.connect()
    except Exception as e:
        logger.warning("Could not LISTEN for queue notifications (polling instead): %s", e)
        return None
    return listener


class QueueWorkerService(Service):
    """Runs a :class:`QueueWorker` with the service (``twistd mas`` without ``--no-worker``,
    and ``mas-cli worker``)."""

    name = "queue-worker"

    def __init__(self, server: MasServer):
        self._server = server
        self.worker: QueueWorker | None = None
        self._started: defer.Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        from mas_twisted.queue.registry import build_worker

        self.worker = build_worker(self._server)
        self._started = defer.ensureDeferred(self._start())
        from mas_twisted.queue.jobs.email import probe_mailer_in_background

        probe_mailer_in_background(self._server)

    async def _start(self) -> None:
        assert self.worker is not None
        while self.running:
            try:
                await self.worker.start()
                return
            except Exception as e:
                if not self.running:
                    return
                logger.warning("Could not start the queue worker (retrying in 5 s): %s", e)
                await _sleep(self._server, 5.0)

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()

        async def _stop() -> None:
            if self._started is not None:
                await self._started
            if self.worker is not None and self.worker._loop is not None:
                await self.worker.stop()

        return defer.ensureDeferred(_stop())


def payload_summary(payload: Any) -> str:
    """A job's payload for a log line (ids only: payloads carry no secrets)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))
