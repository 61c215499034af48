# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for users' verified email addresses (MAS's ``crates/storage-pg/src/user/email.rs``).

Addresses are compared case-insensitively. :meth:`UserEmailStore.find_user_email_by_email`
answers only when exactly one row has the address (several users may share one, and then
it identifies nobody), as MAS's ``find_by_email`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.types.registrations import UserEmailAuthentication, UserEmailAuthenticationCode
from mas_twisted.types.users import UserEmail

logger = logging.getLogger(__name__)

TABLE = "user_emails"
_COLUMNS = ", ".join(UserEmail.COLUMNS)


def find_user_email_by_email_txn(txn: LoggingTransaction, email: str) -> UserEmail | None:
    txn.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE LOWER(email) = LOWER(?)", (email,))
    rows = txn.fetchall()
    return UserEmail.from_row(rows[0]) if len(rows) == 1 else None


def find_user_email_txn(txn: LoggingTransaction, user_id: str, email: str) -> UserEmail | None:
    txn.execute(
        f"SELECT {_COLUMNS} FROM {TABLE} WHERE user_id = ? AND LOWER(email) = LOWER(?)"
        " ORDER BY created_at, user_email_id LIMIT 1",
        (user_id, email),
    )
    row = txn.fetchone()
    return UserEmail.from_row(row) if row else None


def list_user_emails_txn(txn: LoggingTransaction, user_id: str) -> list[UserEmail]:
    txn.execute(
        f"SELECT {_COLUMNS} FROM {TABLE} WHERE user_id = ? ORDER BY created_at, user_email_id", (user_id,)
    )
    return [UserEmail.from_row(row) for row in txn.fetchall()]


def add_user_email_txn(txn: LoggingTransaction, email: UserEmail) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, email.to_row())


def replace_synced_user_email_txn(txn: LoggingTransaction, email: UserEmail, previous: str | None) -> bool:
    """An upstream provider's new address for the user (profile sync on login): added, and the
    user's ``previous`` one (the provider's old value) removed; ``False`` (nothing changed) when
    some user has the new address already."""
    txn.execute(f"SELECT 1 FROM {TABLE} WHERE LOWER(email) = LOWER(?)", (email.email,))
    if txn.fetchone() is not None:
        return False
    add_user_email_txn(txn, email)
    if previous is not None:
        txn.execute(
            f"DELETE FROM {TABLE} WHERE user_id = ? AND LOWER(email) = LOWER(?)", (email.user_id, previous)
        )
    return True


class UserEmailStore(SQLBaseStore):
    async def find_user_email_by_email(self, email: str) -> UserEmail | None:
        """The one verified address equal to ``email`` (ignoring case); ``None`` if none or several."""
        return await self.db_pool.runInteraction(
            "find_user_email_by_email", find_user_email_by_email_txn, email
        )

    async def find_user_email(self, user_id: str, email: str) -> UserEmail | None:
        """The user's address equal to ``email`` (ignoring case), or ``None``."""
        return await self.db_pool.runInteraction("find_user_email", find_user_email_txn, user_id, email)

    async def list_user_emails(self, user_id: str) -> list[UserEmail]:
        """The user's addresses, oldest first."""
        return await self.db_pool.runInteraction("list_user_emails", list_user_emails_txn, user_id)

    async def add_user_email(self, email: UserEmail) -> None:
        await self.db_pool.runInteraction("add_user_email", add_user_email_txn, email)

    async def remove_user_email(self, email_id: str) -> bool:
        """Delete one address; ``False`` if it was not there."""
        count = await self.db_pool.simple_delete(TABLE, {"user_email_id": email_id}, desc="remove_user_email")
        return count > 0

    # -- adding an address from the account page (MAS's start/completeEmailAuthentication) --
    async def start_email_authentication(
        self,
        authentication: UserEmailAuthentication,
        code: UserEmailAuthenticationCode,
        also: Callable[[LoggingTransaction], object],
    ) -> None:
        """Insert an email authentication of a browser session with its first code, and
        ``also`` (the email carrying the code), in one transaction."""
        from mas_twisted.storage.stores.user_registrations import (
            add_email_authentication_code_txn,
            add_email_authentication_txn,
        )

        def _txn(txn: LoggingTransaction) -> None:
            add_email_authentication_txn(txn, authentication)
            add_email_authentication_code_txn(txn, code)
            also(txn)

        await self.db_pool.runInteraction("start_email_authentication", _txn)

    async def complete_email_authentication_and_add(
        self, authentication_id: str, email: UserEmail, at: int, also: Callable[[LoggingTransaction], object]
    ) -> str:
        """Complete the authentication and add its address to the user, with ``also`` (the
        ``provision-user`` job), in one transaction: ``"added"``; ``"in_use"`` (completed, not
        added) when some user has the address already; ``"completed"`` when it was completed
        before (nothing done)."""
        from mas_twisted.storage.stores.user_registrations import email_in_use_txn

        def _txn(txn: LoggingTransaction) -> str:
            txn.execute(
                "UPDATE user_email_authentications SET completed_at = ?"
                " WHERE user_email_authentication_id = ? AND completed_at IS NULL",
                (at, authentication_id),
            )
            if txn.rowcount != 1:
                return "completed"
            if email_in_use_txn(txn, email.email):
                return "in_use"
            add_user_email_txn(txn, email)
            also(txn)
            return "added"

        return await self.db_pool.runInteraction("complete_email_authentication_and_add", _txn)

    async def remove_user_email_of(
        self, user_id: str, email_id: str, keep_one: bool, also: Callable[[LoggingTransaction], object]
    ) -> str:
        """Delete the user's address ``email_id`` with ``also`` in one transaction: ``"removed"``,
        ``"missing"`` (not one of theirs) or ``"last"`` (refused: ``keep_one`` and it is their only one)."""

        def _txn(txn: LoggingTransaction) -> str:
            emails = list_user_emails_txn(txn, user_id)
            if not any(e.id == email_id for e in emails):
                return "missing"
            if keep_one and len(emails) <= 1:
                return "last"
            txn.execute(f"DELETE FROM {TABLE} WHERE user_email_id = ? AND user_id = ?", (email_id, user_id))
            also(txn)
            return "removed"

        return await self.db_pool.runInteraction("remove_user_email_of", _txn)
