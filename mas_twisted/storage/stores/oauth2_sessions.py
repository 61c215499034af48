# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for OAuth 2.0 sessions (MAS's ``oauth2_sessions``; MSC4254 logout ends one).

A session is created by a code or device-code exchange (in the grant's own transaction,
:func:`add_oauth2_session_txn`) or by a ``client_credentials`` grant
(:meth:`OAuth2SessionStore.add_oauth2_session_with_tokens`). Finishing a session also
revokes its valid access and refresh tokens, in the same transaction, so nothing issued
for it stays usable even where a caller checks only the token.

Activity (``last_active_at``/``last_active_ip``) is written in batches by
:meth:`OAuth2SessionStore.record_session_activity`, never once per request: introspection
collects it in memory and flushes it every few seconds. Cleanup follows MAS's jobs: finished
sessions are deleted 30 days after they end (tokens and grants go with them, ``ON DELETE
CASCADE``), and addresses of sessions inactive for 30 days are cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import attrs

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores._common import (
    ExpiresInactiveSessions,
    cleanup_by_timestamp_txn,
    clear_inactive_ips_txn,
    inactive_sessions_page_txn,
    record_sessions_activity_txn,
)
from mas_twisted.storage.stores.access_tokens import (
    mark_access_tokens_used_txn,
    revoke_session_access_tokens_txn,
)
from mas_twisted.storage.stores.browser_sessions import finish_browser_session_txn
from mas_twisted.storage.stores.refresh_tokens import add_token_pair_txn, revoke_session_refresh_tokens_txn
from mas_twisted.types.columns import db_json
from mas_twisted.types.oauth2 import AccessToken, InvalidTransitionError, OAuth2Session, RefreshToken

logger = logging.getLogger(__name__)

TABLE = "oauth2_sessions"
_COLUMNS = OAuth2Session.COLUMNS


def add_oauth2_session_txn(txn: LoggingTransaction, session: OAuth2Session) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, session.to_row())


def get_oauth2_session_txn(txn: LoggingTransaction, session_id: str) -> OAuth2Session | None:
    row = DatabasePool.simple_select_one_txn(
        txn, TABLE, {"oauth2_session_id": session_id}, _COLUMNS, allow_none=True
    )
    return OAuth2Session.from_row(row) if row else None


def finish_oauth2_session_txn(txn: LoggingTransaction, session_id: str, at: int) -> bool:
    """Finish a valid session and revoke its valid tokens; ``False`` if it was already finished or unknown."""
    txn.execute(
        "UPDATE oauth2_sessions SET finished_at = ? WHERE oauth2_session_id = ? AND finished_at IS NULL",
        (at, session_id),
    )
    if txn.rowcount != 1:
        return False
    revoke_session_access_tokens_txn(txn, session_id, at)
    revoke_session_refresh_tokens_txn(txn, session_id, at)
    return True


def _finish_sessions_where_txn(txn: LoggingTransaction, column: str, value: str, at: int) -> int:
    txn.execute(
        f"SELECT oauth2_session_id FROM oauth2_sessions WHERE {column} = ? AND finished_at IS NULL", (value,)
    )
    finished = 0
    for (session_id,) in txn.fetchall():
        if finish_oauth2_session_txn(txn, session_id, at):
            finished += 1
    return finished


def finish_client_sessions_of_browser_session_txn(
    txn: LoggingTransaction, user_session_id: str, client_id: str, at: int
) -> int:
    """Finish the valid sessions ``client_id`` got from the browser session, revoking their
    tokens; how many."""
    txn.execute(
        "SELECT oauth2_session_id FROM oauth2_sessions"
        " WHERE user_session_id = ? AND oauth2_client_id = ? AND finished_at IS NULL",
        (user_session_id, client_id),
    )
    return sum(1 for (session_id,) in txn.fetchall() if finish_oauth2_session_txn(txn, session_id, at))


def finish_oauth2_sessions_for_browser_session_txn(
    txn: LoggingTransaction, user_session_id: str, at: int
) -> int:
    """Finish the valid sessions started from a browser session, revoking their tokens; how many."""
    return _finish_sessions_where_txn(txn, "user_session_id", user_session_id, at)


def finish_oauth2_sessions_for_user_txn(txn: LoggingTransaction, user_id: str, at: int) -> int:
    """Finish every valid session of a user, revoking their tokens; how many."""
    return _finish_sessions_where_txn(txn, "user_id", user_id, at)


def count_active_oauth2_sessions_for_user_txn(txn: LoggingTransaction, user_id: str) -> int:
    txn.execute("SELECT COUNT(*) FROM oauth2_sessions WHERE user_id = ? AND finished_at IS NULL", (user_id,))
    row = txn.fetchone()
    return int(row[0]) if row else 0


def inactive_oauth2_sessions_page_txn(
    txn: LoggingTransaction, threshold: int, after: str | None, limit: int
) -> list[tuple[str, str | None]]:
    """``(session id, user id)`` of up to ``limit`` valid sessions of users with dynamically
    registered clients (a static client's sessions never expire for inactivity), last active
    before ``threshold``, by id after ``after``."""
    return inactive_sessions_page_txn(
        txn,
        TABLE,
        "oauth2_session_id",
        threshold,
        after,
        limit,
        join=" JOIN oauth2_clients AS c ON c.oauth2_client_id = s.oauth2_client_id",
        condition=" AND s.user_id IS NOT NULL AND NOT c.is_static",
    )


def active_device_ids_for_user_txn(txn: LoggingTransaction, user_id: str) -> set[str]:
    """The devices of the user's valid sessions, from their device scope tokens (stable and
    unstable prefixes), for ``sync-devices``."""
    from mas_twisted.oauth2.scope import device_id_from_scope_token

    txn.execute(
        "SELECT scope_list FROM oauth2_sessions WHERE user_id = ? AND finished_at IS NULL", (user_id,)
    )
    devices = set()
    for (scope_list,) in txn.fetchall():
        # A JSON array of scope tokens (OAuth2Session.to_row).
        for token in db_json(scope_list):
            device_id = device_id_from_scope_token(token)
            if device_id is not None:
                devices.add(device_id)
    return devices


class OAuth2SessionStore(ExpiresInactiveSessions, SQLBaseStore):
    EXPIRY = ("expire_inactive_oauth2_sessions", inactive_oauth2_sessions_page_txn, finish_oauth2_session_txn)

    async def add_oauth2_session(self, session: OAuth2Session) -> None:
        """Insert a new session (its client, user and browser session must exist)."""
        await self.db_pool.runInteraction("add_oauth2_session", add_oauth2_session_txn, session)

    async def add_oauth2_session_with_tokens(
        self, session: OAuth2Session, access_token: AccessToken, refresh_token: RefreshToken | None = None
    ) -> None:
        """Insert a session with its first tokens in one transaction (the ``client_credentials``
        grant: an access token only)."""

        def _add_txn(txn: LoggingTransaction) -> None:
            add_oauth2_session_txn(txn, session)
            add_token_pair_txn(txn, access_token, refresh_token)

        await self.db_pool.runInteraction("add_oauth2_session_with_tokens", _add_txn)

    async def get_oauth2_session(self, session_id: str) -> OAuth2Session | None:
        return await self.db_pool.runInteraction("get_oauth2_session", get_oauth2_session_txn, session_id)

    async def finish_oauth2_session(self, session: OAuth2Session) -> OAuth2Session:
        """Finish ``session`` now, revoking its tokens; the finished session.

        Raises:
            InvalidTransitionError: it was already finished (here or in the database).
        """
        at = self._clock.time_msec()
        finished = session.finish(at)

        def _finish_txn(txn: LoggingTransaction) -> None:
            if not finish_oauth2_session_txn(txn, session.id, at):
                raise InvalidTransitionError(f"session {session.id} is already finished or gone")

        await self.db_pool.runInteraction("finish_oauth2_session", _finish_txn)
        return finished

    async def finish_oauth2_session_by_id(
        self, session_id: str, also: Callable[[LoggingTransaction], object] | None = None
    ) -> bool:
        """Finish the session ``session_id`` now if it is valid; whether it was (MAS's replay defence
        and revocation finish sessions they only know by id). ``also`` runs in the same
        transaction when the session was finished (the ``sync-devices`` job)."""
        now = self._clock.time_msec()

        def _finish_txn(txn: LoggingTransaction) -> bool:
            finished = finish_oauth2_session_txn(txn, session_id, now)
            if finished and also is not None:
                also(txn)
            return finished

        return await self.db_pool.runInteraction("finish_oauth2_session_by_id", _finish_txn)

    async def finish_oauth2_sessions_for_user(self, user_id: str) -> int:
        """Finish every valid session of a user (deactivation); how many."""
        return await self.db_pool.runInteraction(
            "finish_oauth2_sessions_for_user",
            _finish_sessions_where_txn,
            "user_id",
            user_id,
            self._clock.time_msec(),
        )

    async def end_session_for_relying_party(
        self,
        user_session_id: str,
        client_id: str | None,
        at: int,
        also: Callable[[LoggingTransaction], object] | None = None,
    ) -> tuple[bool, int]:
        """RP-initiated logout in one transaction: finish the browser session and, when
        ``client_id`` is given, that client's sessions from it (``also`` runs when any was
        finished: the ``sync-devices`` job); ``(browser session finished, client sessions)``."""

        def _txn(txn: LoggingTransaction) -> tuple[bool, int]:
            ended = finish_browser_session_txn(txn, user_session_id, at)
            count = 0
            if client_id is not None:
                count = finish_client_sessions_of_browser_session_txn(txn, user_session_id, client_id, at)
                if count and also is not None:
                    also(txn)
            return ended, count

        return await self.db_pool.runInteraction("end_session_for_relying_party", _txn)

    async def finish_oauth2_sessions_for_browser_session(self, user_session_id: str) -> int:
        """Finish every valid session started from a browser session (upstream ``logout_all``); how many."""
        return await self.db_pool.runInteraction(
            "finish_oauth2_sessions_for_browser_session",
            _finish_sessions_where_txn,
            "user_session_id",
            user_session_id,
            self._clock.time_msec(),
        )

    async def list_active_oauth2_sessions_for_user(self, user_id: str) -> list[OAuth2Session]:
        """The user's valid sessions, oldest first."""
        rows = await self.db_pool.execute(
            "list_active_oauth2_sessions_for_user",
            f"SELECT {', '.join(_COLUMNS)} FROM oauth2_sessions"
            " WHERE user_id = ? AND finished_at IS NULL ORDER BY oauth2_session_id",
            user_id,
        )
        return [OAuth2Session.from_row(row) for row in rows]

    async def count_active_oauth2_sessions_for_user(self, user_id: str) -> int:
        """How many valid sessions the user has (the consent policy's session counts)."""
        return await self.db_pool.runInteraction(
            "count_active_oauth2_sessions_for_user", count_active_oauth2_sessions_for_user_txn, user_id
        )

    async def record_oauth2_session_user_agent(
        self, session: OAuth2Session, user_agent: str
    ) -> OAuth2Session:
        """Remember the client's ``User-Agent`` (MAS records it on every refresh)."""
        await self.db_pool.simple_update_one(
            TABLE,
            {"oauth2_session_id": session.id},
            {"user_agent": user_agent},
            desc="record_oauth2_session_user_agent",
        )
        return attrs.evolve(session, user_agent=user_agent)

    async def set_oauth2_session_human_name(
        self, session: OAuth2Session, human_name: str | None
    ) -> OAuth2Session:
        """Set or clear the session's display name (the device name shown to the user)."""
        await self.db_pool.simple_update_one(
            TABLE,
            {"oauth2_session_id": session.id},
            {"human_name": human_name},
            desc="set_oauth2_session_human_name",
        )
        return attrs.evolve(session, human_name=human_name)

    async def record_session_activity(
        self,
        batch: Mapping[str, tuple[int, str | None]],
        access_tokens_first_used: Mapping[str, int] | None = None,
    ) -> int:
        """Write collected activity in one transaction.

        Args:
            batch: ``{session_id: (last_active_at_ms, ip)}``. ``last_active_at`` only moves
                forward; a ``None`` address keeps the recorded one (MAS's ``GREATEST`` and
                ``COALESCE``).
            access_tokens_first_used: ``{access_token_id: at}``: first uses seen meanwhile;
                a token that already has one keeps it.

        Returns:
            How many sessions were updated (sessions deleted meanwhile are skipped).
        """
        if not batch and not access_tokens_first_used:
            return 0
        return await self.db_pool.runInteraction(
            "record_session_activity", _record_activity_txn, dict(batch), dict(access_tokens_first_used or {})
        )

    async def cleanup_finished_oauth2_sessions(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` sessions finished in ``[since, until)``, with their tokens and
        grants; ``(count, last finished_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_finished_oauth2_sessions",
            cleanup_by_timestamp_txn,
            TABLE,
            "oauth2_session_id",
            "finished_at",
            since,
            until,
            limit,
        )

    async def cleanup_inactive_oauth2_session_ips(
        self, since: int | None, threshold: int, limit: int
    ) -> tuple[int, int | None]:
        """Clear the address of up to ``limit`` sessions last active in ``[since, threshold)``;
        ``(count, last last_active_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_inactive_oauth2_session_ips",
            clear_inactive_ips_txn,
            "oauth2_sessions",
            "oauth2_session_id",
            since,
            threshold,
            limit,
        )


def _record_activity_txn(
    txn: LoggingTransaction, batch: dict[str, tuple[int, str | None]], first_used: dict[str, int]
) -> int:
    updated = record_sessions_activity_txn(txn, TABLE, "oauth2_session_id", batch)
    if first_used:
        mark_access_tokens_used_txn(txn, first_used)
    return updated
