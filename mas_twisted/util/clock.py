# SPDX-License-Identifier: AGPL-3.0-only
"""Time, from the reactor, so that tests drive it with a ``MemoryReactorClock``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import task
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Clock:
    """Wall-clock time and timers, all from one reactor (Synapse's ``synapse.util.Clock``)."""

    def __init__(self, reactor: IReactorTime):
        self._reactor = reactor

    def time(self) -> float:
        """Seconds since the epoch."""
        return self._reactor.seconds()

    def time_msec(self) -> int:
        """Milliseconds since the epoch: the unit of every timestamp in the database."""
        return int(self._reactor.seconds() * 1000)

    def call_later(self, delay: float, f: Callable[..., Any], *args: Any, **kwargs: Any) -> IDelayedCall:
        return self._reactor.callLater(delay, f, *args, **kwargs)

    def looping_call(
        self, f: Callable[..., Any], interval: float, *args: Any, now: bool = False
    ) -> task.LoopingCall:
        call = task.LoopingCall(f, *args)
        call.clock = self._reactor
        call.start(interval, now=now)
        return call
