# SPDX-License-Identifier: AGPL-3.0-only
"""The per-user device sync lock (MAS's ``acquire_lock_for_sync``).

Whatever changes a user's devices on the homeserver holds it: the ``sync-devices`` job from
reading the user's devices until the homeserver has the list, and a login (OAuth 2.0 token
issue, compatibility login) from before its session is committed until the homeserver has
the new device. Otherwise a sync that read the devices just before a login committed could
send its stale list after the login created the device, and the homeserver would delete the
device the client was just given a token for.

MAS holds a row lock on the user for this, inside a transaction. Here it is a short named
lease in ``queue_locks`` (:meth:`~mas_twisted.storage.stores.queue.QueueStore.try_acquire_lock`),
so that no database connection is held while waiting on the homeserver; its lifetime covers
the longest sync (the legacy API's several calls, each with its own timeout).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from twisted.internet import defer

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: How long the lease lasts if its holder never releases it (a crashed process).
SYNC_LOCK_TTL_MS = 5 * 60_000
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
    try:
        yield
    finally:
        try:
            await store.release_lock(name, holder)
        except Exception as e:  # it expires on its own
            logger.warning("Could not release %s: %s", name, e)
