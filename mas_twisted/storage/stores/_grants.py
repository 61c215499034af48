# SPDX-License-Identifier: AGPL-3.0-only
"""What the authorization code grant (RFC 6749 §4.1) and device authorization grant (RFC 8628)
stores share: exchanging a grant for a new session and its first tokens."""

from __future__ import annotations

from typing import Any

from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.stores._common import update_one_if_txn
from mas_twisted.storage.stores.oauth2_sessions import add_oauth2_session_txn
from mas_twisted.storage.stores.refresh_tokens import add_token_pair_txn
from mas_twisted.types.oauth2 import AccessToken, OAuth2Session, RefreshToken


def exchange_grant_txn(
    txn: LoggingTransaction,
    table: str,
    id_column: str,
    exchangeable: str,
    grant: Any,
    session: OAuth2Session,
    access_token: AccessToken,
    refresh_token: RefreshToken | None,
) -> bool:
    """Write ``grant`` (already exchanged in memory, at ``grant.exchanged_at``) with its new
    ``session`` and tokens, in the caller's transaction; ``False`` writes nothing.

    The grant is claimed before anything is created: ``exchanged_at`` is set only where the
    SQL condition ``exchangeable`` still holds, so a concurrent exchange waits for this row
    (PostgreSQL's row lock, SQLite's write lock) and then finds it claimed.
    """
    claim = {"exchanged_at": grant.exchanged_at}
    if not update_one_if_txn(txn, table, (id_column, grant.id), claim, exchangeable):
        return False
    add_oauth2_session_txn(txn, session)
    txn.execute(f"UPDATE {table} SET oauth2_session_id = ? WHERE {id_column} = ?", (session.id, grant.id))
    add_token_pair_txn(txn, access_token, refresh_token)
    return True
