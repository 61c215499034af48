# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for account recovery (MAS's ``crates/storage-pg/src/user/recovery.rs``).

- :meth:`UserRecoveryStore.add_session` writes the session and ``also`` (the job that will
  email its tickets) in one transaction, whether or not anyone holds the address: the request
  does the same work either way.
- :meth:`UserRecoveryStore.add_tickets` is the job's one transaction: a ticket for each user
  email row holding the session's address (ignoring case, as MAS's ``for_email`` filter), and
  ``also`` for each (the email carrying it).
- :meth:`UserRecoveryStore.recover` sets the new password: the session is consumed by a
  conditional ``UPDATE … WHERE consumed_at IS NULL`` with a rowcount check, so two tabs
  posting the same link set one password; in the same transaction the password row is added
  and the user's browser sessions are finished.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores._common import cleanup_by_id_txn, select_model_txn, update_one_if_txn
from mas_twisted.storage.stores.browser_sessions import finish_browser_sessions_for_user_txn
from mas_twisted.storage.stores.user_passwords import add_user_password_txn
from mas_twisted.types.recovery import UserRecoverySession, UserRecoveryTicket
from mas_twisted.types.users import User, UserEmail, UserPassword

logger = logging.getLogger(__name__)

SESSIONS = "user_recovery_sessions"
TICKETS = "user_recovery_tickets"

_USER_COLUMNS = ", ".join(f"u.{c}" for c in User.COLUMNS)
_EMAIL_COLUMNS = ", ".join(f"e.{c}" for c in UserEmail.COLUMNS)


class RecoveryOutcome(str, enum.Enum):
    """How :meth:`UserRecoveryStore.recover` ended."""

    RECOVERED = "recovered"
    #: The session was consumed meanwhile (the link was used in another tab).
    ALREADY_CONSUMED = "already_consumed"


def get_session_txn(txn: LoggingTransaction, session_id: str) -> UserRecoverySession | None:
    return select_model_txn(txn, SESSIONS, {"user_recovery_session_id": session_id}, UserRecoverySession)


def holders_of_txn(txn: LoggingTransaction, email: str) -> list[tuple[UserEmail, User]]:
    """Every user email row equal to ``email`` (ignoring case) and its user, oldest first."""
    txn.execute(
        f"SELECT {_EMAIL_COLUMNS}, {_USER_COLUMNS} FROM user_emails e"
        " JOIN users u ON u.user_id = e.user_id"
        " WHERE LOWER(e.email) = LOWER(?) ORDER BY e.created_at, e.user_email_id",
        (email,),
    )
    width = len(UserEmail.COLUMNS)
    return [(UserEmail.from_row(r[:width]), User.from_row(r[width:])) for r in txn.fetchall()]


class UserRecoveryStore(SQLBaseStore):
    async def add_session(
        self, session: UserRecoverySession, also: Callable[[LoggingTransaction], object]
    ) -> None:
        """Insert the session and run ``also`` (its job) in one transaction."""

        def _txn(txn: LoggingTransaction) -> None:
            DatabasePool.simple_insert_txn(txn, SESSIONS, session.to_row())
            also(txn)

        await self.db_pool.runInteraction("add_user_recovery_session", _txn)

    async def get_session(self, session_id: str) -> UserRecoverySession | None:
        return await self.db_pool.runInteraction("get_user_recovery_session", get_session_txn, session_id)

    async def add_tickets(
        self,
        session_id: str,
        new_ticket: Callable[[UserEmail], UserRecoveryTicket],
        also: Callable[[LoggingTransaction, UserRecoveryTicket, UserEmail, User], object],
    ) -> list[UserRecoveryTicket] | None:
        """One ticket per holder of the session's address, each with ``also`` (its email), in
        one transaction; ``None`` when the session is unknown or consumed (nothing written)."""

        def _txn(txn: LoggingTransaction) -> list[UserRecoveryTicket] | None:
            session = get_session_txn(txn, session_id)
            if session is None or session.consumed_at is not None:
                return None
            tickets = []
            for email, user in holders_of_txn(txn, session.email):
                ticket = new_ticket(email)
                DatabasePool.simple_insert_txn(txn, TICKETS, ticket.to_row())
                also(txn, ticket, email, user)
                tickets.append(ticket)
            return tickets

        return await self.db_pool.runInteraction("add_user_recovery_tickets", _txn)

    async def find_ticket(
        self, ticket: str
    ) -> tuple[UserRecoveryTicket, UserRecoverySession, UserEmail, User] | None:
        """The ticket with this secret, its session, its email row and that row's user."""

        def _txn(
            txn: LoggingTransaction,
        ) -> tuple[UserRecoveryTicket, UserRecoverySession, UserEmail, User] | None:
            found = select_model_txn(txn, TICKETS, {"ticket": ticket}, UserRecoveryTicket)
            if found is None:
                return None
            session = get_session_txn(txn, found.user_recovery_session_id)
            txn.execute(
                f"SELECT {_EMAIL_COLUMNS}, {_USER_COLUMNS} FROM user_emails e"
                " JOIN users u ON u.user_id = e.user_id WHERE e.user_email_id = ?",
                (found.user_email_id,),
            )
            row = txn.fetchone()
            if session is None or row is None:
                return None
            width = len(UserEmail.COLUMNS)
            return found, session, UserEmail.from_row(row[:width]), User.from_row(row[width:])

        return await self.db_pool.runInteraction("find_user_recovery_ticket", _txn)

    async def recover(self, session_id: str, password: UserPassword, now: int) -> tuple[RecoveryOutcome, int]:
        """Consume the session, add the password and finish the user's browser sessions, in
        one transaction; the outcome and how many browser sessions were finished."""

        def _txn(txn: LoggingTransaction) -> tuple[RecoveryOutcome, int]:
            if not update_one_if_txn(
                txn,
                SESSIONS,
                ("user_recovery_session_id", session_id),
                {"consumed_at": now},
                "consumed_at IS NULL",
            ):
                return RecoveryOutcome.ALREADY_CONSUMED, 0
            add_user_password_txn(txn, password)
            finished = finish_browser_sessions_for_user_txn(txn, password.user_id, now)
            return RecoveryOutcome.RECOVERED, finished

        return await self.db_pool.runInteraction("recover_user_account", _txn)

    async def cleanup_sessions(self, since: str | None, until: str, limit: int) -> tuple[int, str | None]:
        """Delete up to ``limit`` sessions with ``since < id <= until`` (their tickets go with
        them); ``(count, last id)``."""
        return await self.db_pool.runInteraction(
            "cleanup_user_recovery_sessions",
            cleanup_by_id_txn,
            SESSIONS,
            "user_recovery_session_id",
            since,
            until,
            limit,
        )
