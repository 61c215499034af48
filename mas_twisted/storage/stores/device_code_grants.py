# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for device authorization grants (RFC 8628; MAS's ``oauth2_device_code_grant``).

``POST /oauth2/device`` adds a pending grant; the user finds it by ``user_code`` at ``/link``
and approves (fulfils) or denies (rejects) it; the polling device finds it by
``device_code`` and exchanges it once with
:meth:`DeviceCodeGrantStore.exchange_device_code_grant`, which writes the exchange, the new
session and its tokens in one transaction. As for authorization codes, each state change
is a conditional ``UPDATE``, so two concurrent polls yield one token pair.

Grants are deleted by MAS's cleanup job 7 days after creation, by id.
"""

from __future__ import annotations

import logging

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.stores._common import cleanup_by_id_txn, select_model, select_model_txn, transition
from mas_twisted.storage.stores._grants import exchange_grant_txn
from mas_twisted.types.oauth2 import AccessToken, DeviceCodeGrant, OAuth2Session, RefreshToken

logger = logging.getLogger(__name__)

TABLE = "oauth2_device_code_grant"
_ID = "oauth2_device_code_grant_id"

_UNDECIDED = "fulfilled_at IS NULL AND rejected_at IS NULL AND exchanged_at IS NULL"
_EXCHANGEABLE = "fulfilled_at IS NOT NULL AND rejected_at IS NULL AND exchanged_at IS NULL"


def get_device_code_grant_txn(txn: LoggingTransaction, grant_id: str) -> DeviceCodeGrant | None:
    return select_model_txn(txn, TABLE, {_ID: grant_id}, DeviceCodeGrant)


def exchange_device_code_grant_txn(
    txn: LoggingTransaction,
    grant: DeviceCodeGrant,
    session: OAuth2Session,
    access_token: AccessToken,
    refresh_token: RefreshToken | None,
) -> bool:
    """See :meth:`DeviceCodeGrantStore.exchange_device_code_grant`; ``False`` writes nothing."""
    return exchange_grant_txn(txn, TABLE, _ID, _EXCHANGEABLE, grant, session, access_token, refresh_token)


class DeviceCodeGrantStore(SQLBaseStore):
    async def add_device_code_grant(self, grant: DeviceCodeGrant) -> None:
        """Insert a new (pending) grant; its ``user_code`` and ``device_code`` must be unused."""
        await self.db_pool.simple_insert(TABLE, grant.to_row(), desc="add_device_code_grant")

    async def get_device_code_grant(self, grant_id: str) -> DeviceCodeGrant | None:
        return await self.db_pool.runInteraction("get_device_code_grant", get_device_code_grant_txn, grant_id)

    async def find_device_code_grant_by_user_code(self, user_code: str) -> DeviceCodeGrant | None:
        """The grant whose user code is exactly ``user_code`` (the caller normalises case), or ``None``."""
        return await select_model(
            self.db_pool,
            "find_device_code_grant_by_user_code",
            TABLE,
            {"user_code": user_code},
            DeviceCodeGrant,
        )

    async def find_device_code_grant_by_device_code(self, device_code: str) -> DeviceCodeGrant | None:
        return await select_model(
            self.db_pool,
            "find_device_code_grant_by_device_code",
            TABLE,
            {"device_code": device_code},
            DeviceCodeGrant,
        )

    async def fulfill_device_code_grant(
        self, grant: DeviceCodeGrant, browser_session_id: str, locale: str | None = None
    ) -> DeviceCodeGrant:
        """The user approved the device in ``browser_session_id`` (browser ``locale``), now.

        Raises:
            InvalidTransitionError: the grant is not pending (here or in the database).
        """
        fulfilled = grant.fulfill(self._clock.time_msec(), browser_session_id, locale)
        await transition(
            self.db_pool,
            "fulfill_device_code_grant",
            TABLE,
            (_ID, grant.id),
            {"fulfilled_at": fulfilled.fulfilled_at, "user_session_id": browser_session_id, "locale": locale},
            _UNDECIDED,
            f"device grant {grant.id} is no longer pending",
        )
        return fulfilled

    async def reject_device_code_grant(
        self, grant: DeviceCodeGrant, browser_session_id: str
    ) -> DeviceCodeGrant:
        """The user denied the device in ``browser_session_id``, now.

        Raises:
            InvalidTransitionError: the grant is not pending (here or in the database).
        """
        rejected = grant.reject(self._clock.time_msec(), browser_session_id)
        await transition(
            self.db_pool,
            "reject_device_code_grant",
            TABLE,
            (_ID, grant.id),
            {"rejected_at": rejected.rejected_at, "user_session_id": browser_session_id},
            _UNDECIDED,
            f"device grant {grant.id} is no longer pending",
        )
        return rejected

    async def exchange_device_code_grant(
        self,
        grant: DeviceCodeGrant,
        session: OAuth2Session,
        access_token: AccessToken,
        refresh_token: RefreshToken | None = None,
    ) -> bool:
        """Persist an already-exchanged grant with its new session and tokens, atomically.

        Args:
            grant: the grant after :meth:`DeviceCodeGrant.exchange` (``exchanged_at`` and
                ``oauth2_session_id == session.id`` set).
            refresh_token: only if the client may use the ``refresh_token`` grant (MAS).

        Returns:
            ``False`` if a concurrent poll exchanged first; nothing is written then.
        """
        if not grant.is_exchanged or grant.oauth2_session_id != session.id:
            raise ValueError(f"device grant {grant.id} must be exchanged into session {session.id} first")
        return await self.db_pool.runInteraction(
            "exchange_device_code_grant",
            exchange_device_code_grant_txn,
            grant,
            session,
            access_token,
            refresh_token,
        )

    async def cleanup_device_code_grants(
        self, since: str | None, until: str, limit: int
    ) -> tuple[int, str | None]:
        """Delete up to ``limit`` grants with ``since < id <= until``; ``(count, last id)``."""
        return await self.db_pool.runInteraction(
            "cleanup_device_code_grants", cleanup_by_id_txn, TABLE, _ID, since, until, limit
        )
