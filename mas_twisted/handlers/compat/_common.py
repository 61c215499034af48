# SPDX-License-Identifier: AGPL-3.0-only
"""What the compatibility handlers share: their collaborators and the ``sync-devices`` job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mas_twisted.homeserver import HomeserverConnection
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.storage.stores import Stores

logger = logging.getLogger(__name__)


class CompatHandlerBase:
    """The clock, token generator and compatibility token lifetime, and the stores and the
    homeserver resolved on use (building a listener must not open the database pool or the
    homeserver client)."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._compat_token_ttl_ms: int = server.config.experimental.compat_token_ttl * 1000

    @property
    def _stores(self) -> Stores:
        return self._server.get_stores()

    @property
    def _homeserver(self) -> HomeserverConnection:
        return self._server.get_homeserver_connection()

    def _enqueue_sync_devices(self, user_id: str) -> Callable[[LoggingTransaction], None]:
        """A transaction step scheduling ``sync-devices`` for ``user_id``."""
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.matrix import SyncDevicesJob

        def _enqueue_txn(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, SyncDevicesJob(user_id=user_id))

        return _enqueue_txn
