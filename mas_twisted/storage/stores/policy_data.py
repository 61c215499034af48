# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for dynamic policy data (MAS's ``crates/storage-pg/src/policy_data.rs``).

Every update inserts a new row; the row with the highest id (ULIDs sort by creation time) is
the one in force. :meth:`PolicyDataStore.prune` keeps the ``keep`` latest rows and deletes the
others (the ``prune-stale-policy-data`` job keeps ten, as MAS).
"""

from __future__ import annotations

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.stores._common import select_model
from mas_twisted.types.policy_data import PolicyData

TABLE = "policy_data"


def _latest_txn(txn: LoggingTransaction) -> PolicyData | None:
    txn.execute(f"SELECT {', '.join(PolicyData.COLUMNS)} FROM {TABLE} ORDER BY policy_data_id DESC LIMIT 1")
    row = txn.fetchone()
    return PolicyData.from_row(row) if row else None


def _prune_txn(txn: LoggingTransaction, keep: int) -> int:
    txn.execute(
        f"SELECT policy_data_id FROM {TABLE} ORDER BY policy_data_id DESC LIMIT 1 OFFSET ?",
        (keep - 1,),
    )
    row = txn.fetchone()
    if row is None:
        return 0
    txn.execute(f"DELETE FROM {TABLE} WHERE policy_data_id < ?", (row[0],))
    return txn.rowcount


class PolicyDataStore(SQLBaseStore):
    async def get_latest(self) -> PolicyData | None:
        """The data in force: the latest row, or ``None`` when none was ever set."""
        return await self.db_pool.runInteraction("get_latest_policy_data", _latest_txn)

    async def get(self, policy_data_id: str) -> PolicyData | None:
        return await select_model(
            self.db_pool, "get_policy_data", TABLE, {"policy_data_id": policy_data_id}, PolicyData
        )

    async def add(self, policy_data: PolicyData) -> None:
        await self.db_pool.simple_insert(TABLE, policy_data.to_row(), desc="add_policy_data")

    async def prune(self, keep: int) -> int:
        """Delete every row but the ``keep`` latest (``keep`` ≥ 1); how many went."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        return await self.db_pool.runInteraction("prune_policy_data", _prune_txn, keep)
