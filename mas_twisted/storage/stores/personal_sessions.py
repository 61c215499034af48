# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for personal sessions and their personal access tokens (MAS's ``personal_sessions``
and ``personal_access_tokens``; ``crates/storage-pg/src/personal/``).

- A session is created with its first token in one transaction
  (:meth:`PersonalSessionStore.add_personal_session_with_token`).
- Regenerating revokes the token that is not revoked and adds the new one in one transaction,
  only while the session is not revoked (:meth:`PersonalSessionStore.regenerate_token`); the
  partial unique index keeps one unrevoked token per session even against a race.
- Revoking the session revokes its tokens too (:meth:`PersonalSessionStore.revoke_personal_session`);
  a conditional ``UPDATE`` makes a second revocation a no-op that the caller sees.
- A presented token is found by its SHA-256 with its session, actor and owning user in one
  ``SELECT`` (:meth:`PersonalSessionStore.lookup_token`).
- Activity is written in batches (:meth:`PersonalSessionStore.record_personal_sessions_activity`).

The admin API's list of personal sessions (``storage/stores/admin.py``) joins the token that is not
revoked for its ``expires_at`` and expiry filters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.introspection import owner_from_columns
from mas_twisted.storage.stores._common import record_sessions_activity_txn
from mas_twisted.types.personal import (
    PersonalAccessToken,
    PersonalSession,
    PersonalSessionWithToken,
    PersonalTokenIntrospection,
)

SESSIONS = "personal_sessions"
TOKENS = "personal_access_tokens"

#: The session columns, prefixed ``s.``, then the active token's columns, prefixed ``t.``
#: (``LEFT JOIN``: a revoked session has none).
SESSION_WITH_TOKEN_SELECT = (
    ", ".join(f"s.{c}" for c in PersonalSession.COLUMNS)
    + ", "
    + ", ".join(f"t.{c}" for c in PersonalAccessToken.COLUMNS)
)
SESSION_WITH_TOKEN_FROM = (
    "personal_sessions s LEFT JOIN personal_access_tokens t"
    " ON t.personal_session_id = s.personal_session_id AND t.revoked_at IS NULL"
)
_N_SESSION = len(PersonalSession.COLUMNS)
_N_TOKEN = len(PersonalAccessToken.COLUMNS)


def session_with_token_from_row(row: Sequence[Any]) -> PersonalSessionWithToken:
    """A row of :data:`SESSION_WITH_TOKEN_SELECT`."""
    session = PersonalSession.from_row(row[:_N_SESSION])
    token_row = row[_N_SESSION : _N_SESSION + _N_TOKEN]
    token = PersonalAccessToken.from_row(token_row) if token_row[0] is not None else None
    return PersonalSessionWithToken(session, token)


_LOOKUP_SELECT = (
    "SELECT "
    + ", ".join(f"t.{c}" for c in PersonalAccessToken.COLUMNS)
    + ", "
    + ", ".join(f"s.{c}" for c in PersonalSession.COLUMNS)
    + ", a.user_id, a.username, a.locked_at, a.deactivated_at"
    + ", o.user_id, o.username, o.locked_at, o.deactivated_at"
    " FROM personal_access_tokens t"
    " JOIN personal_sessions s ON s.personal_session_id = t.personal_session_id"
    " JOIN users a ON a.user_id = s.actor_user_id"
    " LEFT JOIN users o ON o.user_id = s.owner_user_id"
    " WHERE t.access_token_sha256 = ?"
)


def add_personal_token_txn(txn: LoggingTransaction, token: PersonalAccessToken) -> None:
    DatabasePool.simple_insert_txn(txn, TOKENS, token.to_row())


def get_personal_session_txn(txn: LoggingTransaction, session_id: str) -> PersonalSessionWithToken | None:
    txn.execute(
        f"SELECT {SESSION_WITH_TOKEN_SELECT} FROM {SESSION_WITH_TOKEN_FROM} WHERE s.personal_session_id = ?",
        (session_id,),
    )
    row = txn.fetchone()
    return session_with_token_from_row(row) if row else None


def revoke_personal_session_txn(txn: LoggingTransaction, session_id: str, at: int) -> bool:
    """Revoke a valid session and its tokens; ``False`` if it was already revoked or unknown."""
    txn.execute(
        "UPDATE personal_sessions SET revoked_at = ? WHERE personal_session_id = ? AND revoked_at IS NULL",
        (at, session_id),
    )
    if txn.rowcount != 1:
        return False
    txn.execute(
        "UPDATE personal_access_tokens SET revoked_at = ? WHERE personal_session_id = ? AND revoked_at IS NULL",
        (at, session_id),
    )
    return True


def count_active_self_owned_personal_sessions_txn(txn: LoggingTransaction, user_id: str) -> int:
    """The user's valid personal sessions that they own themselves (MAS counts these, not those an
    administrator created for them, towards session limits)."""
    txn.execute(
        "SELECT COUNT(*) FROM personal_sessions"
        " WHERE actor_user_id = ? AND owner_user_id = ? AND revoked_at IS NULL",
        (user_id, user_id),
    )
    row = txn.fetchone()
    return int(row[0]) if row else 0


def revoke_personal_sessions_of_user_txn(txn: LoggingTransaction, user_id: str, at: int) -> int:
    """Revoke every valid personal session acting as the user (a deactivation); how many."""
    txn.execute(
        "SELECT personal_session_id FROM personal_sessions WHERE actor_user_id = ? AND revoked_at IS NULL",
        (user_id,),
    )
    return sum(1 for (session_id,) in txn.fetchall() if revoke_personal_session_txn(txn, session_id, at))


def active_personal_device_ids_for_user_txn(txn: LoggingTransaction, user_id: str) -> set[str]:
    """The devices named by the device scopes of the user's valid personal sessions (MAS's
    ``sync-devices`` counts them), stable and unstable prefixes."""
    from mas_twisted.oauth2.scope import device_id_from_scope_token
    from mas_twisted.types.columns import db_json

    txn.execute(
        "SELECT scope_list FROM personal_sessions WHERE actor_user_id = ? AND revoked_at IS NULL", (user_id,)
    )
    devices = set()
    for (scope_list,) in txn.fetchall():
        for token in db_json(scope_list):
            device_id = device_id_from_scope_token(token)
            if device_id is not None:
                devices.add(device_id)
    return devices


class PersonalSessionStore(SQLBaseStore):
    async def add_personal_session_with_token(
        self,
        session: PersonalSession,
        token: PersonalAccessToken,
        also: Callable[[LoggingTransaction], object] | None = None,
    ) -> None:
        """Store a new session and its first token (and run ``also`` in the same transaction)."""

        def _add_txn(txn: LoggingTransaction) -> None:
            DatabasePool.simple_insert_txn(txn, SESSIONS, session.to_row())
            add_personal_token_txn(txn, token)
            if also is not None:
                also(txn)

        await self.db_pool.runInteraction("add_personal_session_with_token", _add_txn)

    async def get_personal_session(self, session_id: str) -> PersonalSessionWithToken | None:
        """The session and its token that is not revoked, or ``None``."""
        return await self.db_pool.runInteraction("get_personal_session", get_personal_session_txn, session_id)

    async def list_personal_sessions_of_owner(self, owner_user_id: str) -> list[PersonalSessionWithToken]:
        """The sessions a user owns, newest first."""
        rows = await self.db_pool.execute(
            "list_personal_sessions_of_owner",
            f"SELECT {SESSION_WITH_TOKEN_SELECT} FROM {SESSION_WITH_TOKEN_FROM}"
            " WHERE s.owner_user_id = ? ORDER BY s.personal_session_id DESC",
            owner_user_id,
        )
        return [session_with_token_from_row(row) for row in rows]

    async def list_valid_personal_sessions_of_actor(
        self, actor_user_id: str
    ) -> list[PersonalSessionWithToken]:
        """The sessions acting as a user that are not revoked, newest first (the account pages'
        sessions list: whoever owns them, their tokens act as this user)."""
        rows = await self.db_pool.execute(
            "list_valid_personal_sessions_of_actor",
            f"SELECT {SESSION_WITH_TOKEN_SELECT} FROM {SESSION_WITH_TOKEN_FROM}"
            " WHERE s.actor_user_id = ? AND s.revoked_at IS NULL ORDER BY s.personal_session_id DESC",
            actor_user_id,
        )
        return [session_with_token_from_row(row) for row in rows]

    async def revoke_personal_session(
        self,
        session_id: str,
        at: int,
        *,
        owner_user_id: str | None = None,
        also: Callable[[LoggingTransaction], object] | None = None,
    ) -> bool:
        """Revoke the session (only one ``owner_user_id`` owns, if given) and its tokens; whether
        this revoked it. ``also`` runs in the same transaction, only then."""

        def _revoke_txn(txn: LoggingTransaction) -> bool:
            if owner_user_id is not None:
                txn.execute(
                    "SELECT 1 FROM personal_sessions WHERE personal_session_id = ? AND owner_user_id = ?",
                    (session_id, owner_user_id),
                )
                if txn.fetchone() is None:
                    return False
            if not revoke_personal_session_txn(txn, session_id, at):
                return False
            if also is not None:
                also(txn)
            return True

        return await self.db_pool.runInteraction("revoke_personal_session", _revoke_txn)

    async def regenerate_token(self, session_id: str, token: PersonalAccessToken, at: int) -> bool:
        """Revoke the session's unrevoked token and add ``token``, if the session is still valid
        and has one; whether it did."""

        def _regenerate_txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                "SELECT 1 FROM personal_sessions WHERE personal_session_id = ? AND revoked_at IS NULL",
                (session_id,),
            )
            if txn.fetchone() is None:
                return False
            txn.execute(
                "UPDATE personal_access_tokens SET revoked_at = ?"
                " WHERE personal_session_id = ? AND revoked_at IS NULL",
                (at, session_id),
            )
            if txn.rowcount != 1:
                return False
            add_personal_token_txn(txn, token)
            return True

        return await self.db_pool.runInteraction("regenerate_personal_token", _regenerate_txn)

    async def lookup_token(self, token_sha256: str) -> PersonalTokenIntrospection | None:
        """The token with this hash, its session, actor and owning user, or ``None``."""

        def _lookup_txn(txn: LoggingTransaction) -> PersonalTokenIntrospection | None:
            txn.execute(_LOOKUP_SELECT, (token_sha256,))
            row = txn.fetchone()
            if row is None:
                return None
            end = _N_TOKEN + _N_SESSION
            actor = owner_from_columns(*row[end : end + 4])
            if actor is None:
                return None
            return PersonalTokenIntrospection(
                token=PersonalAccessToken.from_row(row[:_N_TOKEN]),
                session=PersonalSession.from_row(row[_N_TOKEN:end]),
                actor=actor,
                owner=owner_from_columns(*row[end + 4 : end + 8]),
            )

        return await self.db_pool.run_read("lookup_personal_token", _lookup_txn)

    async def count_active_self_owned_personal_sessions(self, user_id: str) -> int:
        return await self.db_pool.runInteraction(
            "count_active_self_owned_personal_sessions",
            count_active_self_owned_personal_sessions_txn,
            user_id,
        )

    async def record_personal_sessions_activity(self, batch: Mapping[str, tuple[int, str | None]]) -> int:
        """Write ``{session_id: (at_ms, ip)}`` in one transaction; how many sessions moved."""
        if not batch:
            return 0
        return await self.db_pool.runInteraction(
            "record_personal_sessions_activity",
            record_sessions_activity_txn,
            SESSIONS,
            "personal_session_id",
            batch,
        )
