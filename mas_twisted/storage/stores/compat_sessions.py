# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for the compatibility layer (MAS's ``crates/storage-pg/src/compat/`` and
``app_session.rs``; inventory §3, §12): sessions, their access and refresh tokens, and SSO
logins.

Starting a session and everything it implies is one transaction
(:meth:`CompatSessionStore.start_compat_session`): the sessions that held the same device for
the user are finished first (MAS's ``finish_sessions_to_replace_device``: compatibility
sessions with that ``device_id``, OAuth 2.0 sessions with that device in their scope), then
the session and its tokens are inserted, then whatever the caller adds (the ``sync-devices``
job). State changes are conditional ``UPDATE``s: a refresh token is consumed once, an SSO
login fulfilled once and exchanged once, whatever races.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.introspection import IntrospectionQuery, TokenSessionUser
from mas_twisted.storage.stores._common import (
    ExpiresInactiveSessions,
    cleanup_by_timestamp_txn,
    clear_inactive_ips_txn,
    inactive_sessions_page_txn,
    record_sessions_activity_txn,
    select_model_txn,
)
from mas_twisted.types.columns import db_json
from mas_twisted.types.compat import (
    CompatAccessToken,
    CompatAccessTokenIntrospection,
    CompatRefreshToken,
    CompatRefreshTokenIntrospection,
    CompatSession,
    CompatSsoLogin,
)

if TYPE_CHECKING:
    from mas_twisted.storage.introspection import IntrospectionReader
    from mas_twisted.util.clock import Clock

logger = logging.getLogger(__name__)

Also = Callable[[LoggingTransaction], object] | None

#: A compatibility access token with its session and the session's user.
COMPAT_ACCESS_TOKEN_JOIN: TokenSessionUser[CompatAccessToken, CompatSession] = TokenSessionUser(
    token_table="compat_access_tokens",
    token_model=CompatAccessToken,
    token_column="access_token",
    session_table="compat_sessions",
    session_key="compat_session_id",
    session_model=CompatSession,
)
#: The same for a refresh token.
COMPAT_REFRESH_TOKEN_JOIN: TokenSessionUser[CompatRefreshToken, CompatSession] = TokenSessionUser(
    token_table="compat_refresh_tokens",
    token_model=CompatRefreshToken,
    token_column="refresh_token",
    session_table="compat_sessions",
    session_key="compat_session_id",
    session_model=CompatSession,
)


# -- transaction pieces --------------------------------------------------------------------


def finish_sessions_to_replace_device_txn(
    txn: LoggingTransaction, user_id: str, device_id: str, now: int
) -> int:
    """Finish the user's valid sessions that hold ``device_id``: compatibility sessions by
    ``device_id``, OAuth 2.0 sessions by a device scope token (stable or unstable). How many."""
    from mas_twisted.oauth2.scope import device_id_from_scope_token
    from mas_twisted.storage.stores.oauth2_sessions import finish_oauth2_session_txn

    txn.execute(
        "UPDATE compat_sessions SET finished_at = ? WHERE user_id = ? AND device_id = ? AND finished_at IS NULL",
        (now, user_id, device_id),
    )
    finished = txn.rowcount
    txn.execute(
        "SELECT oauth2_session_id, scope_list FROM oauth2_sessions WHERE user_id = ? AND finished_at IS NULL",
        (user_id,),
    )
    for session_id, scope_list in txn.fetchall():
        tokens = db_json(scope_list)
        if any(device_id_from_scope_token(t) == device_id for t in tokens) and finish_oauth2_session_txn(
            txn, session_id, now
        ):
            finished += 1
    return finished


def add_compat_session_txn(
    txn: LoggingTransaction,
    session: CompatSession,
    access_token: CompatAccessToken,
    refresh_token: CompatRefreshToken | None = None,
) -> None:
    DatabasePool.simple_insert_txn(txn, "compat_sessions", session.to_row())
    DatabasePool.simple_insert_txn(txn, "compat_access_tokens", access_token.to_row())
    if refresh_token is not None:
        DatabasePool.simple_insert_txn(txn, "compat_refresh_tokens", refresh_token.to_row())


def finish_compat_session_txn(txn: LoggingTransaction, session_id: str, now: int) -> bool:
    txn.execute(
        "UPDATE compat_sessions SET finished_at = ? WHERE compat_session_id = ? AND finished_at IS NULL",
        (now, session_id),
    )
    return txn.rowcount == 1


def finish_compat_sessions_for_user_txn(txn: LoggingTransaction, user_id: str, now: int) -> int:
    txn.execute(
        "UPDATE compat_sessions SET finished_at = ? WHERE user_id = ? AND finished_at IS NULL", (now, user_id)
    )
    return txn.rowcount


def active_compat_device_ids_for_user_txn(txn: LoggingTransaction, user_id: str) -> set[str]:
    """The devices of the user's valid compatibility sessions (for ``sync-devices``)."""
    txn.execute(
        "SELECT device_id FROM compat_sessions WHERE user_id = ? AND finished_at IS NULL AND device_id IS NOT NULL",
        (user_id,),
    )
    return {row[0] for row in txn.fetchall()}


def count_active_compat_sessions_txn(txn: LoggingTransaction, user_id: str) -> int:
    txn.execute("SELECT COUNT(*) FROM compat_sessions WHERE user_id = ? AND finished_at IS NULL", (user_id,))
    row = txn.fetchone()
    return int(row[0]) if row else 0


def inactive_compat_sessions_page_txn(
    txn: LoggingTransaction, threshold: int, after: str | None, limit: int
) -> list[tuple[str, str | None]]:
    """``(session id, user id)`` of up to ``limit`` valid sessions last active before
    ``threshold``, by id after ``after``."""
    return inactive_sessions_page_txn(txn, "compat_sessions", "compat_session_id", threshold, after, limit)


#: Compatibility access tokens for introspection, read as OAuth 2.0 access tokens are: several
#: at once, on the introspection reader (prepared on its PostgreSQL connections).
COMPAT_ACCESS_TOKEN_QUERY = IntrospectionQuery.of(
    "mas_introspect_compat_access_tokens", COMPAT_ACCESS_TOKEN_JOIN, CompatAccessTokenIntrospection
)


class CompatSessionStore(ExpiresInactiveSessions, SQLBaseStore):
    EXPIRY = ("expire_inactive_compat_sessions", inactive_compat_sessions_page_txn, finish_compat_session_txn)

    def __init__(self, db_pool: DatabasePool, clock: Clock, introspection: IntrospectionReader):
        super().__init__(db_pool, clock)
        self._introspection = introspection

    # -- sessions -------------------------------------------------------------------------
    async def start_compat_session(
        self,
        session: CompatSession,
        access_token: CompatAccessToken,
        refresh_token: CompatRefreshToken | None = None,
        also: Also = None,
    ) -> int:
        """Insert the session and its tokens, after finishing the sessions that held its device,
        in one transaction with ``also``; how many sessions were replaced."""

        def _start_txn(txn: LoggingTransaction) -> int:
            replaced = 0
            if session.device_id is not None:
                replaced = finish_sessions_to_replace_device_txn(
                    txn, session.user_id, session.device_id, session.created_at
                )
            add_compat_session_txn(txn, session, access_token, refresh_token)
            if also is not None:
                also(txn)
            return replaced

        return await self.db_pool.runInteraction("start_compat_session", _start_txn)

    async def get_compat_session(self, session_id: str) -> CompatSession | None:
        return await self.db_pool.runInteraction(
            "get_compat_session",
            select_model_txn,
            "compat_sessions",
            {"compat_session_id": session_id},
            CompatSession,
        )

    async def finish_compat_session(self, session_id: str, also: Also = None) -> bool:
        """Finish the session now if it is valid (with ``also`` in the same transaction); whether it was."""
        now = self._clock.time_msec()

        def _finish_txn(txn: LoggingTransaction) -> bool:
            finished = finish_compat_session_txn(txn, session_id, now)
            if finished and also is not None:
                also(txn)
            return finished

        return await self.db_pool.runInteraction("finish_compat_session", _finish_txn)

    async def finish_compat_sessions_for_user(self, user_id: str, also: Also = None) -> int:
        now = self._clock.time_msec()

        def _finish_txn(txn: LoggingTransaction) -> int:
            finished = finish_compat_sessions_for_user_txn(txn, user_id, now)
            if also is not None:
                also(txn)
            return finished

        return await self.db_pool.runInteraction("finish_compat_sessions_for_user", _finish_txn)

    async def list_active_compat_sessions_for_user(self, user_id: str) -> list[CompatSession]:
        rows = await self.db_pool.execute(
            "list_active_compat_sessions_for_user",
            f"SELECT {', '.join(CompatSession.COLUMNS)} FROM compat_sessions"
            " WHERE user_id = ? AND finished_at IS NULL ORDER BY compat_session_id",
            user_id,
        )
        return [CompatSession.from_row(row) for row in rows]

    async def set_compat_session_human_name(self, session_id: str, human_name: str | None) -> bool:
        """Set or clear the name the user gave the session's device; whether it is still valid."""
        rows = await self.db_pool.simple_update(
            "compat_sessions",
            {"compat_session_id": session_id, "finished_at": None},
            {"human_name": human_name},
            desc="set_compat_session_human_name",
        )
        return bool(rows)

    async def count_active_compat_sessions_for_user(self, user_id: str) -> int:
        return await self.db_pool.runInteraction(
            "count_active_compat_sessions", count_active_compat_sessions_txn, user_id
        )

    async def record_compat_session_activity(self, session_id: str, at: int, ip: str | None) -> None:
        """``last_active_at`` moves forward only; the address is kept when none is given."""
        await self.db_pool.execute(
            "record_compat_session_activity",
            "UPDATE compat_sessions SET last_active_at = ?, last_active_ip = COALESCE(?, last_active_ip)"
            " WHERE compat_session_id = ? AND (last_active_at IS NULL OR last_active_at < ?)",
            at,
            ip,
            session_id,
            at,
        )

    async def record_compat_sessions_activity(self, batch: dict[str, tuple[int, str | None]]) -> int:
        """Write the activity the tracker collected, ``{session_id: (at_ms, ip)}``, in one
        transaction (as :meth:`record_compat_session_activity` does one); how many sessions moved."""

        if not batch:
            return 0
        return await self.db_pool.runInteraction(
            "record_compat_sessions_activity",
            record_sessions_activity_txn,
            "compat_sessions",
            "compat_session_id",
            batch,
        )

    # -- tokens -------------------------------------------------------------------------------
    async def lookup_access_token_for_introspection(
        self, token: str
    ) -> CompatAccessTokenIntrospection | None:
        """The token with its session and user, in one query, or ``None``."""
        return await self.db_pool.runInteraction(
            "lookup_compat_access_token",
            COMPAT_ACCESS_TOKEN_JOIN.lookup_txn,
            token,
            CompatAccessTokenIntrospection,
        )

    async def lookup_access_tokens_for_introspection(
        self, tokens: list[str]
    ) -> dict[str, CompatAccessTokenIntrospection]:
        """:meth:`lookup_access_token_for_introspection` for several tokens in one statement,
        on the introspection reader (no trip through the pool where it can avoid one):
        ``{token: result}``, unknown tokens left out."""
        return await self._introspection.lookup(tokens, COMPAT_ACCESS_TOKEN_QUERY)

    async def lookup_refresh_token_for_introspection(
        self, token: str
    ) -> CompatRefreshTokenIntrospection | None:
        return await self.db_pool.runInteraction(
            "lookup_compat_refresh_token",
            COMPAT_REFRESH_TOKEN_JOIN.lookup_txn,
            token,
            CompatRefreshTokenIntrospection,
        )

    async def rotate_refresh_token(
        self, old: CompatRefreshToken, access_token: CompatAccessToken, refresh_token: CompatRefreshToken
    ) -> bool:
        """Consume ``old`` (once: ``False`` if it was consumed meanwhile), expire the access token
        it came with, and add the new pair (MAS's ``refresh.rs``), in one transaction."""
        now = access_token.created_at

        def _rotate_txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "UPDATE compat_refresh_tokens SET consumed_at = ? WHERE compat_refresh_token_id = ? AND consumed_at IS NULL",
                (now, old.id),
            )
            if txn.rowcount != 1:
                return False
            txn.execute(
                "UPDATE compat_access_tokens SET expires_at = ? WHERE compat_access_token_id = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (now, old.access_token_id, now),
            )
            DatabasePool.simple_insert_txn(txn, "compat_access_tokens", access_token.to_row())
            DatabasePool.simple_insert_txn(txn, "compat_refresh_tokens", refresh_token.to_row())
            return True

        return await self.db_pool.runInteraction("rotate_compat_refresh_token", _rotate_txn)

    # -- SSO logins ---------------------------------------------------------------------------
    async def add_sso_login(self, login: CompatSsoLogin) -> None:
        await self.db_pool.simple_insert("compat_sso_logins", login.to_row(), desc="add_compat_sso_login")

    async def get_sso_login(self, login_id: str) -> CompatSsoLogin | None:
        return await self.db_pool.runInteraction(
            "get_compat_sso_login",
            select_model_txn,
            "compat_sso_logins",
            {"compat_sso_login_id": login_id},
            CompatSsoLogin,
        )

    async def find_sso_login_by_token(self, login_token: str) -> CompatSsoLogin | None:
        return await self.db_pool.runInteraction(
            "find_compat_sso_login",
            select_model_txn,
            "compat_sso_logins",
            {"login_token": login_token},
            CompatSsoLogin,
        )

    async def fulfill_sso_login(self, login_id: str, user_session_id: str) -> bool:
        """Pending → fulfilled by this browser session; ``False`` if it was not pending."""
        rows = await self.db_pool.runInteraction(
            "fulfill_compat_sso_login", _fulfill_txn, login_id, user_session_id, self._clock.time_msec()
        )
        return rows == 1

    async def exchange_sso_login(
        self,
        login: CompatSsoLogin,
        session: CompatSession,
        access_token: CompatAccessToken,
        refresh_token: CompatRefreshToken | None = None,
        also: Also = None,
    ) -> bool:
        """Fulfilled → exchanged for ``session`` (once: ``False`` if exchanged meanwhile); the
        session starts as :meth:`start_compat_session` does, in the same transaction."""

        def _exchange_txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "UPDATE compat_sso_logins SET exchanged_at = ?, compat_session_id = ?"
                " WHERE compat_sso_login_id = ? AND fulfilled_at IS NOT NULL AND exchanged_at IS NULL",
                (session.created_at, None, login.id),
            )
            if txn.rowcount != 1:
                return False
            if session.device_id is not None:
                finish_sessions_to_replace_device_txn(
                    txn, session.user_id, session.device_id, session.created_at
                )
            add_compat_session_txn(txn, session, access_token, refresh_token)
            txn.execute(
                "UPDATE compat_sso_logins SET compat_session_id = ? WHERE compat_sso_login_id = ?",
                (session.id, login.id),
            )
            if also is not None:
                also(txn)
            return True

        return await self.db_pool.runInteraction("exchange_compat_sso_login", _exchange_txn)

    # -- cleanup ------------------------------------------------------------------------------
    async def cleanup_finished_compat_sessions(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` sessions finished in ``[since, until)`` (their tokens and SSO
        logins go with them); ``(count, last finished_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_finished_compat_sessions",
            cleanup_by_timestamp_txn,
            "compat_sessions",
            "compat_session_id",
            "finished_at",
            since,
            until,
            limit,
        )

    async def cleanup_inactive_compat_session_ips(
        self, since: int | None, threshold: int, limit: int
    ) -> tuple[int, int | None]:
        """Clear the address of up to ``limit`` sessions last active in ``[since, threshold)``."""
        return await self.db_pool.runInteraction(
            "cleanup_inactive_compat_session_ips",
            clear_inactive_ips_txn,
            "compat_sessions",
            "compat_session_id",
            since,
            threshold,
            limit,
        )


def _fulfill_txn(txn: LoggingTransaction, login_id: str, user_session_id: str, now: int) -> int:
    txn.execute(
        "UPDATE compat_sso_logins SET fulfilled_at = ?, user_session_id = ?"
        " WHERE compat_sso_login_id = ? AND fulfilled_at IS NULL AND exchanged_at IS NULL",
        (now, user_session_id, login_id),
    )
    return txn.rowcount
