# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for OAuth 2.0 access tokens (RFC 6749 §1.4; MAS's ``oauth2_access_tokens``).

Introspection reads a token, its session and the session's user in **one** ``SELECT``
through the unique ``access_token`` index, several tokens at once for the requests that
arrive together (:data:`ACCESS_TOKEN_QUERY`), on the
:class:`~mas_twisted.storage.introspection.IntrospectionReader` this store is given.

State changes are conditional ``UPDATE``s: revoking a token that is already revoked (or
changed under us) raises :class:`~mas_twisted.types.oauth2.InvalidTransitionError` and
writes nothing. Cleanup follows MAS's jobs: revoked tokens are deleted an hour after
revocation, expired ones 30 days after expiry, each in batches of ``limit`` rows from a
``since`` cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.introspection import IntrospectionQuery, TokenSessionUser
from mas_twisted.storage.stores._common import (
    cleanup_by_timestamp_txn,
    select_model,
    select_model_txn,
    transition,
    update_one_if_txn,
)
from mas_twisted.types.oauth2 import (
    AccessToken,
    AccessTokenIntrospection,
    OAuth2Session,
)

if TYPE_CHECKING:
    from mas_twisted.storage.introspection import IntrospectionReader
    from mas_twisted.util.clock import Clock

logger = logging.getLogger(__name__)

TABLE = "oauth2_access_tokens"
_ID = "oauth2_access_token_id"

#: The token, its session and the session's user (``None`` for client_credentials).
ACCESS_TOKEN_JOIN: TokenSessionUser[AccessToken, OAuth2Session] = TokenSessionUser(
    token_table=TABLE,
    token_model=AccessToken,
    token_column="access_token",
    session_table="oauth2_sessions",
    session_key="oauth2_session_id",
    session_model=OAuth2Session,
    user_optional=True,
)

#: OAuth 2.0 access tokens (``mat_``) for introspection.
ACCESS_TOKEN_QUERY = IntrospectionQuery.of(
    "mas_introspect_access_tokens", ACCESS_TOKEN_JOIN, AccessTokenIntrospection
)


def add_access_token_txn(txn: LoggingTransaction, token: AccessToken) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, token.to_row())


def get_access_token_txn(txn: LoggingTransaction, token_id: str) -> AccessToken | None:
    return select_model_txn(txn, TABLE, {_ID: token_id}, AccessToken)


def revoke_access_token_txn(txn: LoggingTransaction, token_id: str, at: int) -> bool:
    """Revoke one token if it is not revoked yet; whether it was."""
    return update_one_if_txn(txn, TABLE, (_ID, token_id), {"revoked_at": at}, "revoked_at IS NULL")


def revoke_session_access_tokens_txn(txn: LoggingTransaction, session_id: str, at: int) -> int:
    """Revoke every unrevoked access token of a session; how many."""
    txn.execute(
        "UPDATE oauth2_access_tokens SET revoked_at = ? WHERE oauth2_session_id = ? AND revoked_at IS NULL",
        (at, session_id),
    )
    return txn.rowcount


def mark_access_tokens_used_txn(txn: LoggingTransaction, first_used: dict[str, int]) -> int:
    """Set ``first_used_at`` of the tokens ``{token_id: at}`` that have none yet; how many were set.

    One ``UPDATE … FROM (VALUES …)`` per 500 tokens (both engines name the ``VALUES``
    columns ``column1``, ``column2``).
    """
    updated = 0
    items = sorted(first_used.items())
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        values = ", ".join("(?, ?)" for _ in chunk)
        args: list[Any] = []
        for token_id, at in chunk:
            args.extend((token_id, at))
        txn.execute(
            "UPDATE oauth2_access_tokens SET first_used_at = t.column2"
            f" FROM (VALUES {values}) AS t"
            " WHERE oauth2_access_tokens.oauth2_access_token_id = t.column1"
            " AND oauth2_access_tokens.first_used_at IS NULL",
            args,
        )
        updated += txn.rowcount
    return updated


class AccessTokenStore(SQLBaseStore):
    def __init__(self, db_pool: DatabasePool, clock: Clock, introspection: IntrospectionReader):
        super().__init__(db_pool, clock)
        self._introspection = introspection

    async def add_access_token(self, token: AccessToken) -> None:
        """Insert a new token (its session must exist)."""
        await self.db_pool.runInteraction("add_access_token", add_access_token_txn, token)

    async def get_access_token(self, token_id: str) -> AccessToken | None:
        return await self.db_pool.runInteraction("get_access_token", get_access_token_txn, token_id)

    async def find_access_token_by_token(self, access_token: str) -> AccessToken | None:
        """The token whose text is ``access_token``, whatever its state, or ``None``."""
        return await select_model(
            self.db_pool, "find_access_token_by_token", TABLE, {"access_token": access_token}, AccessToken
        )

    async def revoke_access_token(self, token: AccessToken) -> AccessToken:
        """Revoke ``token`` now and return it revoked.

        Raises:
            InvalidTransitionError: it was already revoked (here or in the database).
        """
        revoked = token.revoke(self._clock.time_msec())
        await transition(
            self.db_pool,
            "revoke_access_token",
            TABLE,
            (_ID, token.id),
            {"revoked_at": revoked.revoked_at},
            "revoked_at IS NULL",
            f"access token {token.id} is already revoked or gone",
        )
        return revoked

    async def mark_access_token_first_used(self, token: AccessToken) -> AccessToken:
        """Record the token's first use now; a token already used is returned unchanged.

        A concurrent first use keeps whichever time was written first.
        """
        if token.is_used:
            return token
        used = token.mark_used(self._clock.time_msec())
        await self.db_pool.runInteraction(
            "mark_access_token_first_used", mark_access_tokens_used_txn, {token.id: used.first_used_at}
        )
        return used

    async def lookup_access_tokens_for_introspection(
        self, access_tokens: Sequence[str]
    ) -> dict[str, AccessTokenIntrospection]:
        """The tokens with their session and user, in one round trip (a statement per
        :data:`~mas_twisted.storage.introspection.INTROSPECTION_BATCH_MAX` tokens):
        ``{token: result}``, unknown tokens left out. The caller decides whether each is
        active (:meth:`AccessTokenIntrospection.is_active`). Introspection batches the requests
        that arrive together; see :class:`~mas_twisted.storage.introspection.IntrospectionReader`
        for where the statement runs."""
        return await self._introspection.lookup(list(access_tokens), ACCESS_TOKEN_QUERY)

    async def cleanup_revoked_access_tokens(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` tokens revoked in ``[since, until)``; ``(count, last revoked_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_revoked_access_tokens",
            cleanup_by_timestamp_txn,
            TABLE,
            _ID,
            "revoked_at",
            since,
            until,
            limit,
        )

    async def cleanup_expired_access_tokens(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` tokens that expired in ``[since, until)``; ``(count, last expires_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_expired_access_tokens",
            cleanup_by_timestamp_txn,
            TABLE,
            _ID,
            "expires_at",
            since,
            until,
            limit,
        )
