# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for OAuth 2.0 clients (RFC 6749 §2; RFC 7591 client metadata).

Static clients come from the ``clients`` section through ``config sync`` (MAS's
``upsert_static``: every grant type enabled, ``is_static`` set, ``created_at`` left empty);
dynamically registered clients are added with :meth:`OAuth2ClientStore.add_oauth2_client`.
Array columns of MAS (``redirect_uris``, ``contacts``) are JSON arrays in ``TEXT`` here.

Tables that reference a client must declare ``REFERENCES oauth2_clients (oauth2_client_id)
ON DELETE CASCADE`` so that deleting a client (``config sync --prune``) removes what hangs
off it, as MAS's ``delete_by_id`` does by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction, Row
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.columns import to_db_json

logger = logging.getLogger(__name__)

TABLE = "oauth2_clients"


def get_oauth2_client_txn(txn: LoggingTransaction, client_id: str) -> OAuth2Client | None:
    row = DatabasePool.simple_select_one_txn(
        txn, TABLE, {"oauth2_client_id": client_id}, OAuth2Client.COLUMNS, allow_none=True
    )
    return OAuth2Client.from_row(row) if row else None


def list_static_oauth2_clients_txn(txn: LoggingTransaction) -> list[OAuth2Client]:
    rows: list[Row] = DatabasePool.simple_select_list_txn(
        txn, TABLE, {"is_static": True}, OAuth2Client.COLUMNS, order_by="oauth2_client_id"
    )
    return [OAuth2Client.from_row(row) for row in rows]


def upsert_static_oauth2_client_txn(
    txn: LoggingTransaction,
    client_id: str,
    *,
    client_name: str | None,
    client_uri: str | None,
    client_auth_method: str,
    encrypted_client_secret: str | None,
    jwks: Mapping[str, Any] | None,
    jwks_uri: str | None,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str] = (),
) -> None:
    """Insert or overwrite a client from the ``clients`` section (MAS's ``upsert_static``).

    Like MAS, a static client gets all four grant types (authorization code, refresh token,
    client credentials, device code); what it may really do is decided at request time.
    """
    DatabasePool.simple_upsert_txn(
        txn,
        TABLE,
        {"oauth2_client_id": client_id},
        {
            "encrypted_client_secret": encrypted_client_secret,
            "redirect_uris": to_db_json(list(redirect_uris)),
            "post_logout_redirect_uris": to_db_json(list(post_logout_redirect_uris)),
            "grant_type_authorization_code": True,
            "grant_type_refresh_token": True,
            "grant_type_client_credentials": True,
            "grant_type_device_code": True,
            "token_endpoint_auth_method": client_auth_method,
            "jwks": to_db_json(dict(jwks) if jwks is not None else None),
            "client_name": client_name,
            "client_uri": client_uri,
            "jwks_uri": jwks_uri,
            "is_static": True,
        },
    )


def delete_oauth2_client_txn(txn: LoggingTransaction, client_id: str) -> bool:
    """Delete a client (and, through ``ON DELETE CASCADE``, what references it)."""
    return DatabasePool.simple_delete_txn(txn, TABLE, {"oauth2_client_id": client_id}) > 0


class OAuth2ClientStore(SQLBaseStore):
    async def get_oauth2_client(self, client_id: str) -> OAuth2Client | None:
        """The client with this ``client_id``, or ``None``."""
        return await self.db_pool.runInteraction("get_oauth2_client", get_oauth2_client_txn, client_id)

    async def list_static_oauth2_clients(self) -> list[OAuth2Client]:
        """Every client that ``config sync`` wrote, ordered by id."""
        return await self.db_pool.runInteraction("list_static_oauth2_clients", list_static_oauth2_clients_txn)

    async def add_oauth2_client(self, client: OAuth2Client) -> None:
        """Insert a new client (dynamic registration, RFC 7591 §3)."""
        await self.db_pool.simple_insert(TABLE, client.to_row(), desc="add_oauth2_client")

    async def find_oauth2_client_by_metadata_digest(self, digest: str) -> OAuth2Client | None:
        """The dynamically registered client whose registration had this digest, or ``None``."""
        row = await self.db_pool.simple_select_one(
            TABLE,
            {"metadata_digest": digest},
            OAuth2Client.COLUMNS,
            allow_none=True,
            desc="find_oauth2_client_by_metadata_digest",
        )
        return OAuth2Client.from_row(row) if row else None

    async def add_or_find_oauth2_client_by_digest(self, client: OAuth2Client) -> tuple[OAuth2Client, bool]:
        """Insert a dynamically registered client, unless one with the same ``metadata_digest``
        exists (de-duplication of secret-less registrations, even when two race).

        Returns:
            The client in the database, and whether it was inserted now.
        """
        if client.metadata_digest is None:
            raise ValueError(f"client {client.id} has no metadata digest")

        def _add_or_find_txn(txn: LoggingTransaction) -> tuple[OAuth2Client, bool]:
            row = client.to_row()
            columns = list(row)
            txn.execute(
                f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
                " ON CONFLICT (metadata_digest) DO NOTHING",
                [row[c] for c in columns],
            )
            if txn.rowcount == 1:
                return client, True
            existing = DatabasePool.simple_select_one_txn(
                txn, TABLE, {"metadata_digest": client.metadata_digest}, OAuth2Client.COLUMNS
            )
            assert existing is not None  # the conflicting row the insert ran into
            return OAuth2Client.from_row(existing), False

        return await self.db_pool.runInteraction("add_or_find_oauth2_client_by_digest", _add_or_find_txn)

    async def delete_oauth2_client(self, client_id: str) -> bool:
        """Delete a client; ``False`` if there was none."""
        return await self.db_pool.runInteraction("delete_oauth2_client", delete_oauth2_client_txn, client_id)
