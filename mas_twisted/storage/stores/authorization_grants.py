# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for OAuth 2.0 authorization grants (RFC 6749 §4.1; MAS's ``oauth2_authorization_grants``).

``GET /authorize`` adds a pending grant; consent fulfils it with the browser session; the
token endpoint exchanges its code with :meth:`AuthorizationGrantStore.exchange_authorization_grant`,
which writes the grant's new stage, the new session and its first tokens in one transaction.
Every state change is a conditional ``UPDATE`` checked by its row count, so when the same
code is exchanged twice at once exactly one exchange wins, on both engines: the loser's
``UPDATE`` waits for the winner's row lock (PostgreSQL) or the write lock (SQLite), then
matches no row and writes nothing.

Grants are deleted by MAS's cleanup job 7 days after creation, by id (ULIDs sort by time;
see :func:`mas_twisted.util.ulid.max_ulid_at`).
"""

from __future__ import annotations

import logging

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.stores._common import cleanup_by_id_txn, select_model, select_model_txn, transition
from mas_twisted.storage.stores._grants import exchange_grant_txn
from mas_twisted.types.oauth2 import AccessToken, AuthorizationGrant, OAuth2Session, RefreshToken

logger = logging.getLogger(__name__)

TABLE = "oauth2_authorization_grants"
_ID = "oauth2_authorization_grant_id"

_PENDING = "fulfilled_at IS NULL AND exchanged_at IS NULL AND cancelled_at IS NULL"
_EXCHANGEABLE = "fulfilled_at IS NOT NULL AND exchanged_at IS NULL AND cancelled_at IS NULL"


def get_authorization_grant_txn(txn: LoggingTransaction, grant_id: str) -> AuthorizationGrant | None:
    return select_model_txn(txn, TABLE, {_ID: grant_id}, AuthorizationGrant)


def exchange_authorization_grant_txn(
    txn: LoggingTransaction,
    grant: AuthorizationGrant,
    session: OAuth2Session,
    access_token: AccessToken,
    refresh_token: RefreshToken | None,
) -> bool:
    """See :meth:`AuthorizationGrantStore.exchange_authorization_grant`; ``False`` writes nothing."""
    return exchange_grant_txn(txn, TABLE, _ID, _EXCHANGEABLE, grant, session, access_token, refresh_token)


class AuthorizationGrantStore(SQLBaseStore):
    async def add_authorization_grant(self, grant: AuthorizationGrant) -> None:
        """Insert a new (pending) grant."""
        await self.db_pool.simple_insert(TABLE, grant.to_row(), desc="add_authorization_grant")

    async def get_authorization_grant(self, grant_id: str) -> AuthorizationGrant | None:
        return await self.db_pool.runInteraction(
            "get_authorization_grant", get_authorization_grant_txn, grant_id
        )

    async def find_authorization_grant_by_code(self, code: str) -> AuthorizationGrant | None:
        """The grant whose authorization code is ``code``, whatever its stage, or ``None``."""
        return await select_model(
            self.db_pool,
            "find_authorization_grant_by_code",
            TABLE,
            {"authorization_code": code},
            AuthorizationGrant,
        )

    async def fulfill_authorization_grant(
        self, grant: AuthorizationGrant, browser_session_id: str
    ) -> AuthorizationGrant:
        """The user consented in ``browser_session_id``: fulfil the pending grant now.

        Raises:
            InvalidTransitionError: the grant is not pending (here or in the database).
        """
        fulfilled = grant.fulfill(self._clock.time_msec(), browser_session_id)
        await transition(
            self.db_pool,
            "fulfill_authorization_grant",
            TABLE,
            (_ID, grant.id),
            {"fulfilled_at": fulfilled.fulfilled_at, "user_session_id": browser_session_id},
            _PENDING,
            f"grant {grant.id} is no longer pending",
        )
        return fulfilled

    async def cancel_authorization_grant(self, grant: AuthorizationGrant) -> AuthorizationGrant:
        """Cancel a pending grant now.

        Raises:
            InvalidTransitionError: the grant is not pending (here or in the database).
        """
        cancelled = grant.cancel(self._clock.time_msec())
        await transition(
            self.db_pool,
            "cancel_authorization_grant",
            TABLE,
            (_ID, grant.id),
            {"cancelled_at": cancelled.cancelled_at},
            _PENDING,
            f"grant {grant.id} is no longer pending",
        )
        return cancelled

    async def exchange_authorization_grant(
        self,
        grant: AuthorizationGrant,
        session: OAuth2Session,
        access_token: AccessToken,
        refresh_token: RefreshToken | None = None,
    ) -> bool:
        """Persist an already-exchanged grant with its new session and tokens, atomically.

        Args:
            grant: the grant after :meth:`AuthorizationGrant.exchange` (``exchanged_at`` and
                ``oauth2_session_id == session.id`` set).

        Returns:
            ``False`` if a concurrent request exchanged (or the grant was otherwise no longer
            fulfilled); nothing is written then.
        """
        if not grant.is_exchanged or grant.oauth2_session_id != session.id:
            raise ValueError(f"grant {grant.id} must be exchanged into session {session.id} first")
        return await self.db_pool.runInteraction(
            "exchange_authorization_grant",
            exchange_authorization_grant_txn,
            grant,
            session,
            access_token,
            refresh_token,
        )

    async def cleanup_authorization_grants(
        self, since: str | None, until: str, limit: int
    ) -> tuple[int, str | None]:
        """Delete up to ``limit`` grants with ``since < id <= until`` (ids are ULIDs, so ``until``
        from :func:`~mas_twisted.util.ulid.max_ulid_at` means "created by then");
        ``(count, last id)``."""
        return await self.db_pool.runInteraction(
            "cleanup_authorization_grants", cleanup_by_id_txn, TABLE, _ID, since, until, limit
        )
