# SPDX-License-Identifier: AGPL-3.0-only
"""The base of every store: a database pool and a clock (STYLE.md §5.9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mas_twisted.storage.database import DatabasePool
    from mas_twisted.util.clock import Clock


class SQLBaseStore:
    """A store: ``async`` methods over one :class:`DatabasePool`.

    Reusable transaction pieces are module-level ``<verb>_<x>_txn(txn, ...)`` functions, so
    that a larger transaction in another store (or ``config sync``) can compose them.
    """

    def __init__(self, db_pool: DatabasePool, clock: Clock):
        self.db_pool = db_pool
        self._clock = clock
