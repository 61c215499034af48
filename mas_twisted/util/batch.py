# SPDX-License-Identifier: AGPL-3.0-only
"""Batching lookups: the keys asked for in one turn of the reactor, or while a batch is out,
are resolved by one call."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from mas_twisted.util.clock import Clock

K = TypeVar("K")
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """Resolves the keys looked up together with one call to ``fetch``.

    The first :meth:`lookup` schedules a batch for the end of the current turn of the
    reactor; the lookups of that turn join it, and the batch is one call
    ``fetch([keys])`` returning ``{key: value}`` (keys left out resolve to ``None``). A lone
    lookup waits for nothing but the end of the turn; under load, at most ``max_in_flight``
    batches are out at once and the next one takes everything that arrived meanwhile, so
    the batches grow instead of queueing up one per turn. A failed batch fails each of its
    lookups.
    """

    def __init__(
        self,
        clock: Clock,
        fetch: Callable[[list[K]], Coroutine[Any, Any, Mapping[K, V]] | defer.Deferred[Mapping[K, V]]],
        *,
        max_in_flight: int = 1,
    ):
        self._clock = clock
        self._fetch = fetch
        self._max_in_flight = max_in_flight
        self._waiting: dict[K, list[defer.Deferred[V | None]]] = {}
        self._scheduled = False
        self._in_flight = 0

    def lookup(self, key: K) -> defer.Deferred[V | None]:
        """The value of ``key``, or ``None`` if ``fetch`` did not return one."""
        d: defer.Deferred[V | None] = defer.Deferred()
        waiters = self._waiting.get(key)
        if waiters is None:
            self._waiting[key] = [d]
        else:
            waiters.append(d)
        self._schedule()
        return d

    def _schedule(self) -> None:
        if not self._scheduled and self._waiting and self._in_flight < self._max_in_flight:
            self._scheduled = True
            self._clock.call_later(0, self._run)

    def _run(self) -> None:
        batch, self._waiting, self._scheduled = self._waiting, {}, False
        self._in_flight += 1
        d: defer.Deferred[Mapping[K, V]] = defer.ensureDeferred(self._fetch(list(batch)))
        d.addBoth(self._landed)
        d.addCallbacks(self._deliver, self._fail, callbackArgs=(batch,), errbackArgs=(batch,))

    def _landed(self, result: Any) -> Any:
        self._in_flight -= 1
        self._schedule()
        return result

    @staticmethod
    def _deliver(found: Mapping[K, V], batch: dict[K, list[defer.Deferred[V | None]]]) -> None:
        for key, waiters in batch.items():
            result = found.get(key)
            for d in waiters:
                d.callback(result)

    @staticmethod
    def _fail(failure: Failure, batch: dict[K, list[defer.Deferred[V | None]]]) -> None:
        for waiters in batch.values():
            for d in waiters:
                d.errback(failure)
