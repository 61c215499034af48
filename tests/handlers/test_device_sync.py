# SPDX-License-Identifier: AGPL-3.0-only
"""The per-user device sync lock: held as long as its holder needs it, freed soon after a
holder that died without releasing it (the kill -9 test in tests/integration found logins
waiting and failing for minutes behind such a lease)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from mas_twisted.handlers.device_sync import (
    SYNC_LOCK_POLL_S,
    SYNC_LOCK_TTL_MS,
    device_sync_lock,
    lock_name,
)
from tests.unittest import MasTestCase

USER_ID = "01JCRASHTEST0000000000USER"


class DeviceSyncLockTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.queue = server.get_stores().queue
        self.name = lock_name(USER_ID)

    def locks(self) -> list[tuple[Any, ...]]:
        return self.get_success(self.db_pool.execute("locks", "SELECT lock_name, holder FROM queue_locks"))

    def test_a_holder_keeps_it_for_longer_than_the_lease(self) -> None:
        done: defer.Deferred[None] = defer.Deferred()
        entered: list[bool] = []

        async def hold() -> None:
            async with device_sync_lock(self.server, USER_ID, "job:slow-sync"):
                entered.append(True)
                await done

        holding = defer.ensureDeferred(hold())
        self.reactor.advance(0)
        self.assertEqual(entered, [True])
        # Six leases' worth of a slow homeserver: nobody else gets it meanwhile.
        for _ in range(6 * SYNC_LOCK_TTL_MS // 1000):
            self.reactor.advance(1)
            self.assertFalse(self.get_success(self.queue.try_acquire_lock(self.name, "other", 1000)))
        done.callback(None)
        self.get_success(holding)
        self.assertEqual(self.locks(), [])
        # Released: the next one takes it at once, and no renewal of the old holder runs on.
        self.assertTrue(self.get_success(self.queue.try_acquire_lock(self.name, "other", SYNC_LOCK_TTL_MS)))
        self.reactor.advance(60)
        self.assertEqual(self.locks(), [(self.name, "other")])

    def test_a_dead_holders_lease_is_free_within_its_lifetime(self) -> None:
        # What a process killed while holding it leaves: the lease as it was taken, never
        # extended nor released.
        self.assertTrue(
            self.get_success(self.queue.try_acquire_lock(self.name, "compat-login:dead", SYNC_LOCK_TTL_MS))
        )
        start = self.clock.time()
        taken: list[float] = []

        async def take() -> None:
            async with device_sync_lock(self.server, USER_ID, "job:after-restart"):
                taken.append(self.clock.time())

        d = defer.ensureDeferred(take())
        while not taken and self.clock.time() - start < 60:
            self.reactor.advance(SYNC_LOCK_POLL_S)
        self.get_success(d)
        self.assertTrue(taken)
        self.assertLessEqual(taken[0] - start, SYNC_LOCK_TTL_MS / 1000 + 2 * SYNC_LOCK_POLL_S)
        self.assertEqual(self.locks(), [])
