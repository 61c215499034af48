# SPDX-License-Identifier: AGPL-3.0-only
"""Rate-limit state shared across processes on PostgreSQL (beyond MAS, whose limits live in
each process's memory: ``crates/handlers/src/rate_limit.rs``).

One row per limit and key holds the GCRA theoretical arrival time (TAT, nanoseconds since the
epoch). :meth:`RateLimitStore.take_cell` is one atomic ``INSERT … ON CONFLICT DO UPDATE … WHERE``:
PostgreSQL locks the row, so concurrent checks from any number of processes queue on it and
never let more than the burst through; a refused check updates nothing. Keys arrive already
hashed (``handlers/rate_limit.py`` HMACs them), so no IP or address is stored. PostgreSQL only:
on SQLite the limiter stays in memory (one process) and this table does not exist.
"""

from __future__ import annotations

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import LoggingTransaction

TABLE = "rate_limits"

# The arguments, in order: name, key, now + period (a new key's TAT after its first cell),
# now, period (the update), now, tolerance, now (the condition).
_TAKE_CELL = f"""
INSERT INTO {TABLE} AS r (limit_name, key_hash, tat) VALUES (?, ?, ?)
ON CONFLICT (limit_name, key_hash) DO UPDATE SET tat = GREATEST(r.tat, ?) + ?
WHERE GREATEST(r.tat, ?) - ? <= ?
RETURNING tat
"""


def _take_cell_txn(
    txn: LoggingTransaction, name: str, key_hash: bytes, now: int, period: int, tolerance: int
) -> int | None:
    txn.execute(_TAKE_CELL, (name, key_hash, now + period, now, period, now, tolerance, now))
    if txn.fetchone() is not None:
        return None
    # Refused: the statement left the row alone (and locked it), so this reads its TAT.
    txn.execute(f"SELECT tat FROM {TABLE} WHERE limit_name = ? AND key_hash = ?", (name, key_hash))
    row = txn.fetchone()
    tat = int(row[0]) if row is not None else now
    return max(1, tat - tolerance - now)


def _prune_txn(txn: LoggingTransaction, now: int) -> int:
    txn.execute(f"DELETE FROM {TABLE} WHERE tat <= ?", (now,))
    return txn.rowcount


def _count_txn(txn: LoggingTransaction) -> int:
    txn.execute(f"SELECT COUNT(*) FROM {TABLE}")
    row = txn.fetchone()
    return int(row[0]) if row is not None else 0


class RateLimitStore(SQLBaseStore):
    async def take_cell(
        self, name: str, key_hash: bytes, now: int, period: int, tolerance: int
    ) -> int | None:
        """Take one cell of limit ``name`` for ``key_hash`` at ``now`` (nanoseconds).

        Args:
            period: nanoseconds per cell (``1 / per_second``).
            tolerance: ``(burst - 1) * period``.

        Returns:
            ``None`` when the cell was taken, else the nanoseconds until one is free (and
            nothing was changed).
        """
        return await self.db_pool.runInteraction(
            "take_rate_limit_cell", _take_cell_txn, name, key_hash, now, period, tolerance
        )

    async def prune(self, now: int) -> int:
        """Delete the rows whose TAT has passed (they are a full burst again); how many went."""
        return await self.db_pool.runInteraction("prune_rate_limits", _prune_txn, now)

    async def count(self) -> int:
        """How many keys have a state (for tests and metrics)."""
        return await self.db_pool.runInteraction("count_rate_limits", _count_txn)
