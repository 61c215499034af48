# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for password hashes (MAS's ``crates/storage-pg/src/user/password.rs``).

Passwords are never updated in place: setting or upgrading a password adds a row, and a
user's current password is their most recent one (``created_at``, then id, descending).
"""

from __future__ import annotations

import logging

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.types.users import UserPassword

logger = logging.getLogger(__name__)

TABLE = "user_passwords"


def get_active_user_password_txn(txn: LoggingTransaction, user_id: str) -> UserPassword | None:
    txn.execute(
        f"SELECT {', '.join(UserPassword.COLUMNS)} FROM {TABLE} WHERE user_id = ?"
        " ORDER BY created_at DESC, user_password_id DESC LIMIT 1",
        (user_id,),
    )
    row = txn.fetchone()
    return UserPassword.from_row(row) if row else None


def add_user_password_txn(txn: LoggingTransaction, password: UserPassword) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, password.to_row())


class UserPasswordStore(SQLBaseStore):
    async def get_active_user_password(self, user_id: str) -> UserPassword | None:
        """The user's current password hash, or ``None`` if they never had a password."""
        return await self.db_pool.runInteraction(
            "get_active_user_password", get_active_user_password_txn, user_id
        )

    async def add_user_password(self, password: UserPassword) -> None:
        """Record a new password hash; it becomes the user's current password."""
        await self.db_pool.runInteraction("add_user_password", add_user_password_txn, password)
