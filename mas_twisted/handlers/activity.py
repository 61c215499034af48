# SPDX-License-Identifier: AGPL-3.0-only
"""Session activity, collected in memory and written in batches (MAS's ``ActivityTracker``,
``crates/handlers/src/activity_tracker/``).

Every use of a token moves its session's ``last_active_at`` (and, where the caller's address
means something, ``last_active_ip``), and the first use of an access token sets its
``first_used_at``. Introspection runs for every request Synapse cannot answer from its cache,
so none of this is written per request: :class:`ActivityTracker` keeps, per session, the
latest time seen and the address of the first record since the last flush (as MAS does),
plus the first use of each access token, and writes them all in one transaction
(:meth:`~mas_twisted.storage.stores.oauth2_sessions.OAuth2SessionStore.record_session_activity`;
compatibility sessions, kept apart, with
:meth:`~mas_twisted.storage.stores.compat_sessions.CompatSessionStore.record_compat_sessions_activity`,
and personal sessions with
:meth:`~mas_twisted.storage.stores.personal_sessions.PersonalSessionStore.record_personal_sessions_activity`):

- every :attr:`ActivityTracker.flush_interval` seconds (MAS flushes every minute; this
  service every few seconds, so that ``first_used_at`` is soon visible to the token
  endpoint's double-refresh rule, which also asks :meth:`ActivityTracker.first_used_at`
  for marks not written yet);
- as soon as :data:`FLUSH_THRESHOLD` sessions are pending (MAS's ``MAX_PENDING_RECORDS``);
- and once more when the reactor shuts down.

One flush runs at a time. Records that arrive meanwhile wait for the next one; past
:data:`MAX_PENDING` pending sessions new ones are dropped, with an error in the log, so a
stalled database cannot grow the process without bound. A flush that fails keeps its
records for the next attempt.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.task import LoopingCall

    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: Seconds between two periodic flushes.
FLUSH_INTERVAL_S = 5.0
#: Pending sessions that start a flush without waiting for the next tick (MAS: 1000).
FLUSH_THRESHOLD = 1000
#: Pending sessions (or first uses) past which new records are dropped.
MAX_PENDING = 100_000


class ActivityTracker:
    """Batches session activity and first uses of access tokens (see the module docstring).

    Args:
        server: the container (clock, stores, reactor).
        flush_interval: seconds between periodic flushes.
        flush_threshold: pending sessions that trigger an early flush.
        max_pending: pending sessions or first uses past which records are dropped.
    """

    def __init__(
        self,
        server: MasServer,
        *,
        flush_interval: float = FLUSH_INTERVAL_S,
        flush_threshold: int = FLUSH_THRESHOLD,
        max_pending: int = MAX_PENDING,
    ):
        self._server = server
        self._clock = server.get_clock()
        self._sessions = server.get_stores().oauth2_sessions
        self._compat_sessions = server.get_stores().compat_sessions
        self._personal_sessions = server.get_stores().personal_sessions
        self.flush_interval = flush_interval
        self._flush_threshold = flush_threshold
        self._max_pending = max_pending
        #: ``{oauth2_session_id: [last_active_at_ms, ip]}``
        self._pending: dict[str, list[Any]] = {}
        #: ``{compat_session_id: [last_active_at_ms, ip]}``
        self._pending_compat: dict[str, list[Any]] = {}
        #: ``{personal_session_id: [last_active_at_ms, ip]}``
        self._pending_personal: dict[str, list[Any]] = {}
        #: ``{oauth2_access_token_id: first_used_at_ms}``
        self._first_used: dict[str, int] = {}
        #: What the flush in progress is writing (so that :meth:`first_used_at` still sees it).
        self._writing_first_used: dict[str, int] = {}
        self._lock = defer.DeferredLock()
        self._loop: LoopingCall | None = None
        self._shutdown_trigger: Any = None
        self._dropped = 0

    # -- recording (the hot path: no I/O, no awaiting) ------------------------------------------
    def record_oauth2_session(self, session_id: str, at: int, ip: str | None = None) -> None:
        """The session was used at ``at`` (ms) from ``ip`` (``None``: unknown or meaningless)."""
        self._record(self._pending, "oauth2", session_id, at, ip)

    def record_compat_session(self, session_id: str, at: int, ip: str | None = None) -> None:
        """The compatibility session was used at ``at`` (ms) from ``ip``."""
        self._record(self._pending_compat, "compat", session_id, at, ip)

    def record_personal_session(self, session_id: str, at: int, ip: str | None = None) -> None:
        """The personal session was used at ``at`` (ms) from ``ip``."""
        self._record(self._pending_personal, "personal", session_id, at, ip)

    def _record(
        self, pending: dict[str, list[Any]], kind: str, session_id: str, at: int, ip: str | None
    ) -> None:
        record = pending.get(session_id)
        if record is not None:
            if at > record[0]:
                record[0] = at
            return
        if len(pending) >= self._max_pending:
            self._drop(f"{kind} session {session_id}")
            return
        pending[session_id] = [at, ip]
        if self.pending_sessions >= self._flush_threshold and not self._lock.locked:
            self._flush_in_background()

    def record_access_token_used(self, token_id: str, at: int) -> None:
        """The access token was used for the first time at ``at`` (ms); later records keep the first."""
        if token_id in self._first_used or token_id in self._writing_first_used:
            return
        if len(self._first_used) >= self._max_pending:
            self._drop(f"first use of access token {token_id}")
            return
        self._first_used[token_id] = at

    def first_used_at(self, token_id: str) -> int | None:
        """A first use of the access token recorded here and possibly not written yet."""
        at = self._first_used.get(token_id)
        if at is None:
            at = self._writing_first_used.get(token_id)
        return at

    @property
    def pending_sessions(self) -> int:
        return len(self._pending) + len(self._pending_compat) + len(self._pending_personal)

    def _drop(self, what: str) -> None:
        self._dropped += 1
        if self._dropped == 1 or self._dropped % 10_000 == 0:
            logger.error(
                "Too many pending activity records (%d dropped so far, e.g. %s); is the database stalled?",
                self._dropped,
                what,
            )

    # -- flushing --------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write everything recorded so far (after any flush in progress); how many sessions were updated."""
        return await self._lock.run(lambda: defer.ensureDeferred(self._flush_locked()))

    async def _flush_locked(self) -> int:
        updated = await self._flush_compat()
        updated += await self._flush_personal()
        if not self._pending and not self._first_used:
            return updated
        batch = {session_id: (record[0], record[1]) for session_id, record in self._pending.items()}
        first_used = self._first_used
        self._pending = {}
        self._first_used = {}
        self._writing_first_used = first_used
        try:
            updated += await self._sessions.record_session_activity(batch, first_used)
        except Exception:
            logger.exception(
                "Failed to flush %d activity records; keeping them for the next flush", len(batch)
            )
            self._restore(batch, first_used)
            return 0
        finally:
            self._writing_first_used = {}
        logger.debug("Flushed activity of %d sessions and %d first uses", len(batch), len(first_used))
        return updated

    async def _flush_compat(self) -> int:
        if not self._pending_compat:
            return 0
        batch = {session_id: (record[0], record[1]) for session_id, record in self._pending_compat.items()}
        self._pending_compat = {}
        try:
            updated = await self._compat_sessions.record_compat_sessions_activity(batch)
        except Exception:
            logger.exception("Failed to flush %d compatibility activity records; keeping them", len(batch))
            for session_id, (at, ip) in batch.items():
                record = self._pending_compat.get(session_id)
                if record is None:
                    self._pending_compat[session_id] = [at, ip]
                else:
                    record[0] = max(record[0], at)
                    record[1] = ip
            return 0
        logger.debug("Flushed activity of %d compatibility sessions", len(batch))
        return updated

    async def _flush_personal(self) -> int:
        if not self._pending_personal:
            return 0
        batch = {session_id: (record[0], record[1]) for session_id, record in self._pending_personal.items()}
        self._pending_personal = {}
        try:
            updated = await self._personal_sessions.record_personal_sessions_activity(batch)
        except Exception:
            logger.exception("Failed to flush %d personal session activity records; keeping them", len(batch))
            for session_id, (at, ip) in batch.items():
                record = self._pending_personal.get(session_id)
                if record is None:
                    self._pending_personal[session_id] = [at, ip]
                else:
                    record[0] = max(record[0], at)
                    record[1] = ip
            return 0
        logger.debug("Flushed activity of %d personal sessions", len(batch))
        return updated

    def _restore(self, batch: dict[str, tuple[int, str | None]], first_used: dict[str, int]) -> None:
        """Put back the records of a failed flush, merged with what arrived meanwhile."""
        for session_id, (at, ip) in batch.items():
            record = self._pending.get(session_id)
            if record is None:
                self._pending[session_id] = [at, ip]
            else:
                record[0] = max(record[0], at)
                record[1] = ip  # the older record's address, as if it had never left
        for token_id, at in first_used.items():
            self._first_used[token_id] = min(at, self._first_used.get(token_id, at))

    def _flush_in_background(self) -> None:
        d = defer.ensureDeferred(self.flush())
        d.addErrback(self._log_flush_failure)

    @staticmethod
    def _log_flush_failure(failure: Failure) -> None:
        exc_info = (failure.type, failure.value, failure.getTracebackObject())
        logger.error("Activity flush failed", exc_info=exc_info)  # type: ignore[arg-type]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Flush every :attr:`flush_interval` seconds, and once more when the reactor shuts down."""
        if self._loop is not None:
            return
        self._loop = self._clock.looping_call(self._flush_in_background, self.flush_interval)
        reactor: Any = self._server.get_reactor()
        self._shutdown_trigger = reactor.addSystemEventTrigger("before", "shutdown", self._on_shutdown)

    def _on_shutdown(self) -> defer.Deferred[int]:
        self._shutdown_trigger = None  # fired: nothing to remove
        return self.stop()

    def stop(self) -> defer.Deferred[int]:
        """Stop the periodic flush and write what is pending (the reactor waits for it)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._shutdown_trigger is not None:
            trigger, self._shutdown_trigger = self._shutdown_trigger, None
            self._server.get_reactor().removeSystemEventTrigger(trigger)
        d = defer.ensureDeferred(self.flush())
        d.addErrback(self._log_flush_failure)
        return d
