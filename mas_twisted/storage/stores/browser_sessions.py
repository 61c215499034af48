# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for browser sessions and their authentications (MAS's
``crates/storage-pg/src/user/session.rs``: tables ``user_sessions`` and
``user_session_authentications``).

A session is looked up together with its user (one join), because every caller needs to
know whether the user is still valid. Finishing a session is a conditional UPDATE
(``finished_at IS NULL``), so finishing twice is harmless and reports ``False``. The
cleanup jobs delete sessions finished 30 days ago (with their authentications) once no
child session refers to them, and forget the address of sessions idle for 30 days.
"""

from __future__ import annotations

import logging

import attrs

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores._common import (
    ExpiresInactiveSessions,
    clear_inactive_ips_txn,
    delete_by_ids_txn,
    inactive_sessions_page_txn,
)
from mas_twisted.storage.stores.user_passwords import add_user_password_txn
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, User, UserPassword

logger = logging.getLogger(__name__)

TABLE = "user_sessions"
AUTHENTICATIONS_TABLE = "user_session_authentications"

_SESSION_COLUMNS = ", ".join(f"s.{c}" for c in BrowserSession.COLUMNS)
_USER_COLUMNS = ", ".join(f"u.{c}" for c in User.COLUMNS)
_N_SESSION = len(BrowserSession.COLUMNS)


def get_browser_session_txn(txn: LoggingTransaction, session_id: str) -> BrowserSession | None:
    txn.execute(
        f"SELECT {_SESSION_COLUMNS}, {_USER_COLUMNS} FROM {TABLE} s"
        " JOIN users u ON u.user_id = s.user_id WHERE s.user_session_id = ?",
        (session_id,),
    )
    row = txn.fetchone()
    if row is None:
        return None
    return BrowserSession.from_row(row[:_N_SESSION], User.from_row(row[_N_SESSION:]))


def add_browser_session_txn(txn: LoggingTransaction, session: BrowserSession) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, session.to_row())


def add_browser_session_authentication_txn(
    txn: LoggingTransaction, authentication: BrowserSessionAuthentication
) -> None:
    DatabasePool.simple_insert_txn(txn, AUTHENTICATIONS_TABLE, authentication.to_row())


def finish_browser_session_txn(txn: LoggingTransaction, session_id: str, at: int) -> bool:
    txn.execute(
        f"UPDATE {TABLE} SET finished_at = ? WHERE user_session_id = ? AND finished_at IS NULL",
        (at, session_id),
    )
    return txn.rowcount == 1


def finish_browser_sessions_for_user_txn(txn: LoggingTransaction, user_id: str, at: int) -> int:
    """End every unfinished session of the user; how many were ended."""
    txn.execute(
        f"UPDATE {TABLE} SET finished_at = ? WHERE user_id = ? AND finished_at IS NULL", (at, user_id)
    )
    return txn.rowcount


def count_active_browser_sessions_txn(txn: LoggingTransaction, user_id: str) -> int:
    txn.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE user_id = ? AND finished_at IS NULL", (user_id,))
    row = txn.fetchone()
    return int(row[0]) if row else 0


def inactive_browser_sessions_page_txn(
    txn: LoggingTransaction, threshold: int, after: str | None, limit: int
) -> list[tuple[str, str | None]]:
    """``(session id, user id)`` of up to ``limit`` valid sessions last active before
    ``threshold``, by id after ``after``."""
    return inactive_sessions_page_txn(txn, TABLE, "user_session_id", threshold, after, limit)


#: The tables whose rows keep a finished browser session from being deleted: its child
#: sessions (MAS's backchannel logout walks from the session to them; MAS checks both) and,
#: here as a safety net, device code grants (no ``ON DELETE`` action on their reference; the
#: grant cleanup removes them after 7 days, long before the session's 30).
_SESSION_CHILDREN = ("oauth2_sessions", "compat_sessions", "oauth2_device_code_grant")


def cleanup_finished_browser_sessions_txn(
    txn: LoggingTransaction, since: int | None, until: int, limit: int
) -> tuple[int, int | None]:
    """Delete up to ``limit`` sessions finished in ``[since, until)`` that no child session
    refers to, oldest first, with their authentications and the compat SSO logins attached
    to them (MAS deletes those by ``ON DELETE CASCADE``).

    Returns:
        How many sessions were deleted and the latest ``finished_at`` among them.
    """
    where = "s.finished_at IS NOT NULL AND s.finished_at < ?"
    args: list[int] = [until]
    if since is not None:
        where += " AND s.finished_at >= ?"
        args.append(since)
    for child in _SESSION_CHILDREN:
        where += f" AND NOT EXISTS (SELECT 1 FROM {child} c WHERE c.user_session_id = s.user_session_id)"
    txn.execute(
        f"SELECT s.user_session_id, s.finished_at FROM {TABLE} s WHERE {where} ORDER BY s.finished_at LIMIT ?",
        [*args, limit],
    )
    rows = txn.fetchall()
    if not rows:
        return 0, None
    ids = [row[0] for row in rows]
    # The rows pointing at the sessions first: the references must be gone before them.
    delete_by_ids_txn(txn, AUTHENTICATIONS_TABLE, "user_session_id", ids)
    delete_by_ids_txn(txn, "compat_sso_logins", "user_session_id", ids)
    deleted = delete_by_ids_txn(txn, TABLE, "user_session_id", ids)
    return deleted, max(int(row[1]) for row in rows)


class BrowserSessionStore(ExpiresInactiveSessions, SQLBaseStore):
    EXPIRY = ("expire_inactive_user_sessions", inactive_browser_sessions_page_txn, finish_browser_session_txn)

    async def get_browser_session(self, session_id: str) -> BrowserSession | None:
        """The session with this id and its user (finished or not), or ``None``."""
        return await self.db_pool.runInteraction("get_browser_session", get_browser_session_txn, session_id)

    async def add_browser_session(self, session: BrowserSession) -> None:
        await self.db_pool.runInteraction("add_browser_session", add_browser_session_txn, session)

    async def start_browser_session(
        self,
        session: BrowserSession,
        authentication: BrowserSessionAuthentication,
        upgraded_password: UserPassword | None = None,
    ) -> None:
        """Insert a new session and the authentication that opened it, in one transaction.

        ``upgraded_password`` is the re-hash a password login made with a newer scheme; it is
        recorded in the same transaction, so a failed login never leaves one behind.
        """
        if authentication.user_session_id != session.id:
            raise ValueError("the authentication must belong to the new session")

        def _start_browser_session_txn(txn: LoggingTransaction) -> None:
            if upgraded_password is not None:
                add_user_password_txn(txn, upgraded_password)
            add_browser_session_txn(txn, session)
            add_browser_session_authentication_txn(txn, authentication)

        await self.db_pool.runInteraction("start_browser_session", _start_browser_session_txn)

    async def add_browser_session_authentication(self, authentication: BrowserSessionAuthentication) -> None:
        """Record one more authentication of an existing session (a re-authentication)."""
        await self.db_pool.runInteraction(
            "add_browser_session_authentication", add_browser_session_authentication_txn, authentication
        )

    async def get_last_browser_session_authentication(
        self, session_id: str
    ) -> BrowserSessionAuthentication | None:
        """The most recent authentication of the session, or ``None``."""

        def _get_last_authentication_txn(txn: LoggingTransaction) -> BrowserSessionAuthentication | None:
            txn.execute(
                f"SELECT {', '.join(BrowserSessionAuthentication.COLUMNS)} FROM {AUTHENTICATIONS_TABLE}"
                " WHERE user_session_id = ? ORDER BY created_at DESC, user_session_authentication_id DESC LIMIT 1",
                (session_id,),
            )
            row = txn.fetchone()
            return BrowserSessionAuthentication.from_row(row) if row else None

        return await self.db_pool.runInteraction(
            "get_last_browser_session_authentication", _get_last_authentication_txn
        )

    async def finish_browser_session(self, session: BrowserSession, at: int) -> BrowserSession:
        """End the session; returns it finished (unchanged if it had already ended)."""
        finished = await self.db_pool.runInteraction(
            "finish_browser_session", finish_browser_session_txn, session.id, at
        )
        if not finished:
            return session if session.finished_at is not None else await self._reload(session)
        return attrs.evolve(session, finished_at=at)

    async def _reload(self, session: BrowserSession) -> BrowserSession:
        current = await self.get_browser_session(session.id)
        return current if current is not None else session

    async def finish_browser_sessions_for_user(self, user_id: str, at: int) -> int:
        """End every unfinished session of the user; how many were ended."""

        return await self.db_pool.runInteraction(
            "finish_browser_sessions_for_user", finish_browser_sessions_for_user_txn, user_id, at
        )

    async def list_active_browser_sessions_for_user(self, user_id: str) -> list[BrowserSession]:
        """The user's unfinished sessions, newest first (the account page's list)."""

        def _list_txn(txn: LoggingTransaction) -> list[BrowserSession]:
            txn.execute(
                f"SELECT {_SESSION_COLUMNS}, {_USER_COLUMNS} FROM {TABLE} s"
                " JOIN users u ON u.user_id = s.user_id"
                " WHERE s.user_id = ? AND s.finished_at IS NULL ORDER BY s.user_session_id DESC",
                (user_id,),
            )
            return [
                BrowserSession.from_row(row[:_N_SESSION], User.from_row(row[_N_SESSION:]))
                for row in txn.fetchall()
            ]

        return await self.db_pool.runInteraction("list_active_browser_sessions_for_user", _list_txn)

    async def finish_other_browser_sessions(self, user_id: str, keep_session_id: str, at: int) -> int:
        """End every unfinished session of the user but ``keep_session_id`` ("sign out of other
        browsers"); how many were ended."""

        def _finish_txn(txn: LoggingTransaction) -> int:
            txn.execute(
                f"UPDATE {TABLE} SET finished_at = ?"
                " WHERE user_id = ? AND user_session_id <> ? AND finished_at IS NULL",
                (at, user_id, keep_session_id),
            )
            return txn.rowcount

        return await self.db_pool.runInteraction("finish_other_browser_sessions", _finish_txn)

    async def count_active_browser_sessions(self, user_id: str) -> int:
        """How many unfinished sessions the user has."""
        return await self.db_pool.runInteraction(
            "count_active_browser_sessions", count_active_browser_sessions_txn, user_id
        )

    async def record_browser_session_activity(self, session_id: str, at: int, ip: str | None) -> None:
        """Remember when and from where the session was last used."""
        await self.db_pool.simple_update(
            TABLE,
            {"user_session_id": session_id},
            {"last_active_at": at, "last_active_ip": ip},
            desc="record_browser_session_activity",
        )

    async def cleanup_finished_browser_sessions(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` sessions finished in ``[since, until)`` and without child
        sessions, with their authentications; ``(count, last finished_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_finished_browser_sessions", cleanup_finished_browser_sessions_txn, since, until, limit
        )

    async def cleanup_inactive_browser_session_ips(
        self, since: int | None, threshold: int, limit: int
    ) -> tuple[int, int | None]:
        """Clear the address of up to ``limit`` sessions last active in ``[since, threshold)``."""
        return await self.db_pool.runInteraction(
            "cleanup_inactive_browser_session_ips",
            clear_inactive_ips_txn,
            TABLE,
            "user_session_id",
            since,
            threshold,
            limit,
        )
