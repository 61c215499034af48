# SPDX-License-Identifier: AGPL-3.0-only
"""What a job is (MAS's ``crates/tasks/src/new_queue.rs`` and ``crates/storage/src/queue/tasks.rs``).

A job class has a ``QUEUE_NAME``, is built from its JSON payload (:meth:`Job.from_payload`)
and turned back into one (:meth:`Job.to_payload`), with MAS's field names, and runs with
:meth:`Job.run`. A job that fails raises :class:`JobError`: ``retry`` for what may work
later (the homeserver is down, the database is busy), ``fail`` for what never will (the
user is gone). Any other exception is a crash, retried like ``retry``.

To schedule a job in the transaction of the change that needs it::

    def _txn(txn):
        ...the change...
        enqueue_txn(txn, server, SyncDevicesJob(user_id=user.id))
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from mas_twisted.storage.stores.queue import schedule_job_later_txn, schedule_job_txn

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction

#: A failing job is retried while its attempt number (0 for the first run) is below this, so
#: it runs ``MAX_ATTEMPTS + 1`` times at most (MAS's ``MAX_ATTEMPTS``, counted as MAS does).
MAX_ATTEMPTS = 10


def retry_delay_ms(attempt: int) -> int:
    """The delay before the next attempt of a job that failed at ``attempt`` (0-based):
    5 s × 2^attempt, as MAS's ``retry_delay``."""
    return 5_000 * (2 ** min(attempt, 40))


class JobError(Exception):
    """A job failed; :attr:`retry` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.retry = retry

    @classmethod
    def retryable(cls, error: BaseException | str) -> JobError:
        return cls(_describe(error), retry=True)

    @classmethod
    def fatal(cls, error: BaseException | str) -> JobError:
        return cls(_describe(error), retry=False)


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@attrs.frozen
class JobContext:
    """About the attempt being run."""

    id: str
    queue_name: str
    attempt: int
    worker_id: str


class Job(abc.ABC):
    """Base class of every job."""

    QUEUE_NAME: ClassVar[str]

    @classmethod
    def from_payload(cls, payload: Any) -> Job:
        """Build the job from its payload; a payload that does not fit raises ``JobError``
        (not retried: it never will fit)."""
        if not isinstance(payload, dict):
            raise JobError.fatal(f"payload of {cls.QUEUE_NAME} is not an object")
        fields = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
        try:
            return cls(**{k: v for k, v in payload.items() if k in fields})
        except TypeError as e:
            raise JobError.fatal(f"bad payload for {cls.QUEUE_NAME}: {e}")

    def to_payload(self) -> dict[str, Any]:
        return attrs.asdict(self) if attrs.has(type(self)) else {}  # type: ignore[arg-type]

    @abc.abstractmethod
    async def run(self, server: MasServer, context: JobContext) -> None:
        """Do the job; raise :class:`JobError` (or anything, a crash) when it fails."""


def enqueue_txn(txn: LoggingTransaction, server: MasServer, job: Job, *, at: int | None = None) -> str:
    """Schedule ``job`` inside the caller's transaction (now, or at ``at`` ms); its id."""
    clock = server.get_clock()
    job_id = server.get_token_generator().ulid()
    now = clock.time_msec()
    if at is None or at <= now:
        schedule_job_txn(txn, job_id, now, job.QUEUE_NAME, job.to_payload())
    else:
        schedule_job_later_txn(txn, job_id, now, job.QUEUE_NAME, job.to_payload(), at)
    return job_id


async def enqueue(server: MasServer, job: Job) -> str:
    """Schedule ``job`` now, in a transaction of its own; its id."""
    job_id = server.get_token_generator().ulid()
    await server.get_stores().queue.schedule_job(job_id, job.QUEUE_NAME, job.to_payload())
    return job_id
