# SPDX-License-Identifier: AGPL-3.0-only
"""The per-user device sync lock (MAS's ``acquire_lock_for_sync``).

Whatever changes a user's devices on the homeserver holds it: the ``sync-devices`` job from
reading the user's devices until the homeserver has the list, and a login (OAuth 2.0 token
issue, compatibility login) from before its session is committed until the homeserver has
the new device. Otherwise a sync that read the devices just before a login committed could
send its stale list after the login created the device, and the homeserver would delete the
device the client was just given a token for.

MAS holds a row lock on the user for this, inside a transaction, which the database drops
with the connection of a process that dies. Here it is a short named lease in ``queue_locks``
(:meth:`~mas_twisted.storage.stores.queue.QueueStore.try_acquire_lock`), so that no database
connection is held while waiting on the homeserver. The lease lasts
:data:`SYNC_LOCK_TTL_MS` and its holder extends it every :data:`SYNC_LOCK_RENEW_S` for as
long as it holds it (a sync may take minutes on the legacy API's several calls): a process
killed while holding it (``kill -9``, a crash, the machine going down) frees it within
:data:`SYNC_LOCK_TTL_MS`, after which its user's logins and syncs go on, where a lease sized
for the longest sync would have kept them waiting, and failing, for minutes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: How long the lease lasts unless its holder extends it: how long a crashed holder keeps it.
SYNC_LOCK_TTL_MS = 10_000
#: How often the holder extends it.
SYNC_LOCK_RENEW_S = 3.0
#: How long to wait for the lease before giving up.
SYNC_LOCK_WAIT_S = 30.0
#: Between two attempts to take it.
SYNC_LOCK_POLL_S = 0.2


class DeviceSyncLockBusy(Exception):
    """The user's device sync lock stayed taken for :data:`SYNC_LOCK_WAIT_S`."""


def lock_name(user_id: str) -> str:
    return f"sync-devices:{user_id}"


@asynccontextmanager
async def device_sync_lock(server: MasServer, user_id: str, holder: str) -> AsyncIterator[None]:
    """Hold the user's device sync lock for the ``async with`` block.

    Raises:
        DeviceSyncLockBusy: it could not be taken in time.
        Whatever the database raised while taking it.
    """
    store = server.get_stores().queue
    clock = server.get_clock()
    name = lock_name(user_id)
    holder = f"{holder}:{uuid.uuid4().hex[:12]}"
    deadline = clock.time() + SYNC_LOCK_WAIT_S
    while not await store.try_acquire_lock(name, holder, SYNC_LOCK_TTL_MS):
        if clock.time() >= deadline:
            raise DeviceSyncLockBusy(f"the device sync lock of user {user_id} stayed taken")
        d: defer.Deferred[None] = defer.Deferred()
        clock.call_later(SYNC_LOCK_POLL_S, d.callback, None)
        await d
    renewal = _Renewal(server, name, holder)
    try:
        yield
    finally:
        renewal.stop()
        try:
            await store.release_lock(name, holder)
        except Exception as e:  # it expires on its own
            logger.warning("Could not release %s: %s", name, e)


class _Renewal:
    """Extends a held lease every :data:`SYNC_LOCK_RENEW_S` until :meth:`stop`."""

    def __init__(self, server: MasServer, name: str, holder: str):
        self._store = server.get_stores().queue
        self._clock = server.get_clock()
        self._name = name
        self._holder = holder
        self._stopped = False
        self._call = self._clock.call_later(SYNC_LOCK_RENEW_S, self._renew)

    def _renew(self) -> None:
        d = defer.ensureDeferred(self._store.extend_lock(self._name, self._holder, SYNC_LOCK_TTL_MS))
        d.addCallbacks(self._renewed, self._failed)

    def _renewed(self, held: bool) -> None:
        if self._stopped:
            return
        if not held:
            # Expired before we could extend it (the process stalled for longer than the
            # lease): someone else may hold it now. Nothing to undo; say so.
            logger.warning("Lost the lease %s while holding it", self._name)
            return
        self._schedule()

    def _failed(self, failure: Any) -> None:
        if self._stopped:
            return
        logger.warning("Could not extend the lease %s (trying again): %s", self._name, failure.value)
        self._schedule()

    def _schedule(self) -> None:
        if not self._stopped:
            self._call = self._clock.call_later(SYNC_LOCK_RENEW_S, self._renew)

    def stop(self) -> None:
        self._stopped = True
        if self._call.active():
            self._call.cancel()
