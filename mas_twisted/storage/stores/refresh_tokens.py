# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for OAuth 2.0 refresh tokens and their rotation (RFC 6749 §6; MAS's ``oauth2_refresh_tokens``).

A refresh at the token endpoint is one transaction, :meth:`RefreshTokenStore.rotate_refresh_token`:
consume the presented token (recording its successor), revoke the access token issued with
it, and add the new pair. MAS tolerates a *double refresh*, where a client lost the answer to
its first refresh and presents the consumed token again: if the successor is still unused,
it is revoked and the consumed token is rotated once more (``lost_successor``). The
conditional ``UPDATE``s make two concurrent refreshes of one token produce exactly one pair.

Cleanup follows MAS's jobs: revoked tokens are deleted an hour after revocation; a consumed
token is kept while its successor is unconsumed (it may still be presented in a double
refresh) and deleted afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.introspection import TokenSessionUser
from mas_twisted.storage.stores._common import (
    cleanup_by_timestamp_txn,
    delete_selected_txn,
    select_model,
    select_model_txn,
    transition,
    update_one_if_txn,
)
from mas_twisted.storage.stores.access_tokens import add_access_token_txn, revoke_access_token_txn
from mas_twisted.types.oauth2 import AccessToken, OAuth2Session, RefreshToken, RefreshTokenIntrospection

logger = logging.getLogger(__name__)

TABLE = "oauth2_refresh_tokens"
_ID = "oauth2_refresh_token_id"

#: A refresh token that can still be used or revoked.
_VALID = "consumed_at IS NULL AND revoked_at IS NULL"

#: The token, its session and the session's user (``None`` for sessions without one).
REFRESH_TOKEN_JOIN: TokenSessionUser[RefreshToken, OAuth2Session] = TokenSessionUser(
    token_table=TABLE,
    token_model=RefreshToken,
    token_column="refresh_token",
    session_table="oauth2_sessions",
    session_key="oauth2_session_id",
    session_model=OAuth2Session,
    user_optional=True,
)


class RaceLostError(Exception):
    """Raised inside a transaction to roll it back when a concurrent request changed a row first."""


def add_refresh_token_txn(txn: LoggingTransaction, token: RefreshToken) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, token.to_row())


def add_token_pair_txn(
    txn: LoggingTransaction, access_token: AccessToken, refresh_token: RefreshToken | None
) -> None:
    """Insert an access token and, if given, the refresh token issued with it."""
    add_access_token_txn(txn, access_token)
    if refresh_token is not None:
        add_refresh_token_txn(txn, refresh_token)


def get_refresh_token_txn(txn: LoggingTransaction, token_id: str) -> RefreshToken | None:
    return select_model_txn(txn, TABLE, {_ID: token_id}, RefreshToken)


def revoke_session_refresh_tokens_txn(txn: LoggingTransaction, session_id: str, at: int) -> int:
    """Revoke every valid (neither consumed nor revoked) refresh token of a session; how many."""
    txn.execute(
        f"UPDATE {TABLE} SET revoked_at = ? WHERE oauth2_session_id = ? AND {_VALID}", (at, session_id)
    )
    return txn.rowcount


def rotate_refresh_token_txn(
    txn: LoggingTransaction,
    old: RefreshToken,
    new_access: AccessToken,
    new_refresh: RefreshToken,
    lost_successor: RefreshToken | None = None,
    user_agent: str | None = None,
) -> bool:
    """See :meth:`RefreshTokenStore.rotate_refresh_token`.

    Raises:
        RaceLostError: a concurrent request won after this transaction had written (the
            caller's transaction must roll back).
    """
    at = new_refresh.created_at
    # Claim the old token first: the row lock makes a concurrent rotation wait, and then
    # find the condition false.
    condition_args: tuple[Any, ...] = ()
    if lost_successor is None:
        condition = "consumed_at IS NULL"
    else:
        condition, condition_args = "next_oauth2_refresh_token_id = ?", (lost_successor.id,)
    if not update_one_if_txn(
        txn, TABLE, (_ID, old.id), {"consumed_at": at}, f"revoked_at IS NULL AND {condition}", condition_args
    ):
        return False

    if lost_successor is not None:
        # Double refresh: the successor pair must still be unused, and is revoked.
        if not update_one_if_txn(txn, TABLE, (_ID, lost_successor.id), {"revoked_at": at}, _VALID):
            raise RaceLostError(f"refresh token {lost_successor.id} was used or revoked meanwhile")
        if lost_successor.access_token_id is not None and not update_one_if_txn(
            txn,
            "oauth2_access_tokens",
            ("oauth2_access_token_id", lost_successor.access_token_id),
            {"revoked_at": at},
            "first_used_at IS NULL AND revoked_at IS NULL",
        ):
            # Gone (cleaned up) counts as unused, as in MAS; used or revoked does not.
            txn.execute(
                "SELECT 1 FROM oauth2_access_tokens WHERE oauth2_access_token_id = ?",
                (lost_successor.access_token_id,),
            )
            if txn.fetchone() is not None:
                raise RaceLostError(f"access token {lost_successor.access_token_id} was used meanwhile")

    add_token_pair_txn(txn, new_access, new_refresh)
    txn.execute(
        f"UPDATE {TABLE} SET next_oauth2_refresh_token_id = ? WHERE {_ID} = ?", (new_refresh.id, old.id)
    )
    if old.access_token_id is not None:
        # Already revoked in a double refresh: nothing to do then.
        revoke_access_token_txn(txn, old.access_token_id, at)
    if user_agent is not None:
        txn.execute(
            "UPDATE oauth2_sessions SET user_agent = ? WHERE oauth2_session_id = ?",
            (user_agent, old.session_id),
        )
    return True


class RefreshTokenStore(SQLBaseStore):
    async def add_refresh_token(self, token: RefreshToken) -> None:
        """Insert a new token (its session, and access token if any, must exist)."""
        await self.db_pool.runInteraction("add_refresh_token", add_refresh_token_txn, token)

    async def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        return await self.db_pool.runInteraction("get_refresh_token", get_refresh_token_txn, token_id)

    async def find_refresh_token_by_token(self, refresh_token: str) -> RefreshToken | None:
        """The token whose text is ``refresh_token``, whatever its state, or ``None``."""
        return await select_model(
            self.db_pool, "find_refresh_token_by_token", TABLE, {"refresh_token": refresh_token}, RefreshToken
        )

    async def find_refresh_token_with_session(
        self, refresh_token: str
    ) -> tuple[RefreshToken, OAuth2Session] | None:
        """The token whose text is ``refresh_token`` (whatever its state) and its session, in one
        read outside a transaction; ``None`` if the token is unknown."""
        return await self.db_pool.run_read(
            "find_refresh_token_with_session",
            REFRESH_TOKEN_JOIN.lookup_txn,
            refresh_token,
            lambda token, session, _owner: (token, session),
        )

    async def consume_refresh_token(self, token: RefreshToken, next_refresh_token_id: str) -> RefreshToken:
        """Mark ``token`` consumed now, replaced by ``next_refresh_token_id`` (which must exist).

        Raises:
            InvalidTransitionError: the token is revoked, or changed meanwhile.
        """
        consumed = token.consume(self._clock.time_msec(), next_refresh_token_id)
        # The row must still be in the state the caller saw.
        condition_args: list[Any] = []
        if token.consumed_at is None:
            condition = "consumed_at IS NULL"
        elif token.next_refresh_token_id is None:
            condition = "consumed_at = ? AND next_oauth2_refresh_token_id IS NULL"
            condition_args.append(token.consumed_at)
        else:
            condition = "next_oauth2_refresh_token_id = ?"
            condition_args.append(token.next_refresh_token_id)
        await transition(
            self.db_pool,
            "consume_refresh_token",
            TABLE,
            (_ID, token.id),
            {"consumed_at": consumed.consumed_at, "next_oauth2_refresh_token_id": next_refresh_token_id},
            f"revoked_at IS NULL AND {condition}",
            f"refresh token {token.id} changed meanwhile",
            condition_args,
        )
        return consumed

    async def revoke_refresh_token(self, token: RefreshToken) -> RefreshToken:
        """Revoke a valid token now and return it revoked.

        Raises:
            InvalidTransitionError: it is consumed or revoked (here or in the database).
        """
        revoked = token.revoke(self._clock.time_msec())
        await transition(
            self.db_pool,
            "revoke_refresh_token",
            TABLE,
            (_ID, token.id),
            {"revoked_at": revoked.revoked_at},
            _VALID,
            f"refresh token {token.id} is no longer valid",
        )
        return revoked

    async def rotate_refresh_token(
        self,
        old: RefreshToken,
        new_access: AccessToken,
        new_refresh: RefreshToken,
        *,
        lost_successor: RefreshToken | None = None,
        user_agent: str | None = None,
    ) -> bool:
        """Refresh: consume ``old`` in favour of ``new_refresh``, revoke ``old``'s access token,
        add the new pair and, if given, record ``user_agent`` on the session, in one
        transaction at ``new_refresh.created_at``.

        Args:
            old: the presented token, as read before the call.
            lost_successor: for MAS's double refresh, ``old``'s current successor (``old`` is
                consumed and ``old.next_refresh_token_id == lost_successor.id``). It must still
                be valid and its access token unused; both are revoked.

        Returns:
            ``False`` if a concurrent request got there first (``old`` was consumed or revoked
            meanwhile, or the lost successor was used): nothing is written then.
        """
        if lost_successor is not None and old.next_refresh_token_id != lost_successor.id:
            raise ValueError(f"refresh token {lost_successor.id} is not the successor of {old.id}")
        if new_refresh.access_token_id != new_access.id or new_refresh.session_id != old.session_id:
            raise ValueError("the new refresh token must belong to the new access token and the old session")
        try:
            return await self.db_pool.runInteraction(
                "rotate_refresh_token",
                rotate_refresh_token_txn,
                old,
                new_access,
                new_refresh,
                lost_successor,
                user_agent,
            )
        except RaceLostError as e:
            logger.info("Refresh of token %s lost a race: %s", old.id, e)
            return False

    async def lookup_refresh_token_for_introspection(
        self, refresh_token: str
    ) -> RefreshTokenIntrospection | None:
        """The token with its session and user, in one query; ``None`` if the token is unknown."""

        return await self.db_pool.run_read(
            "lookup_refresh_token_for_introspection",
            REFRESH_TOKEN_JOIN.lookup_txn,
            refresh_token,
            RefreshTokenIntrospection,
        )

    async def cleanup_revoked_refresh_tokens(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` tokens revoked in ``[since, until)``; ``(count, last revoked_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_revoked_refresh_tokens",
            cleanup_by_timestamp_txn,
            TABLE,
            _ID,
            "revoked_at",
            since,
            until,
            limit,
        )

    async def cleanup_consumed_refresh_tokens(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` tokens consumed in ``[since, until)`` whose successor is gone or
        consumed too (an unconsumed successor keeps its predecessor for a double refresh);
        ``(count, last consumed_at)``."""

        def _cleanup_txn(txn: LoggingTransaction) -> tuple[int, int | None]:
            where = "old.consumed_at IS NOT NULL AND old.consumed_at < ?"
            args: list[Any] = [until]
            if since is not None:
                where += " AND old.consumed_at >= ?"
                args.append(since)
            txn.execute(
                "SELECT old.oauth2_refresh_token_id, old.consumed_at FROM oauth2_refresh_tokens AS old"
                " LEFT JOIN oauth2_refresh_tokens AS nxt"
                " ON nxt.oauth2_refresh_token_id = old.next_oauth2_refresh_token_id"
                f" WHERE {where}"
                " AND (old.next_oauth2_refresh_token_id IS NULL OR nxt.consumed_at IS NOT NULL)"
                " ORDER BY old.consumed_at LIMIT ?",
                args + [limit],
            )
            return delete_selected_txn(txn, TABLE, _ID)

        return await self.db_pool.runInteraction("cleanup_consumed_refresh_tokens", _cleanup_txn)
