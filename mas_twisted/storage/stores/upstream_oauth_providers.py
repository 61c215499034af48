# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for upstream OAuth 2.0 / OpenID Connect providers (``upstream_oauth2.providers``).

Rows are written by ``config sync`` (MAS's ``upsert``, ``disable``, ``delete_by_id``): a
provider that leaves the config is disabled (``disabled_at``) so that its links survive,
and deleted only with ``--prune``. ``claims_imports`` is MAS's JSON shape
(``{"subject": {"template": …}, "localpart": {"action", "template", "on_conflict"}, …}``) and
``additional_parameters`` a JSON list of ``[name, template]`` pairs.

Tables that reference a provider (links, authorization sessions) must declare
``REFERENCES upstream_oauth_providers (upstream_oauth_provider_id) ON DELETE CASCADE``.
"""

from __future__ import annotations

import logging

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.types.columns import to_db_json
from mas_twisted.types.upstream import UpstreamOAuthProvider, UpstreamOAuthProviderParams

logger = logging.getLogger(__name__)

TABLE = "upstream_oauth_providers"


def get_upstream_oauth_provider_txn(
    txn: LoggingTransaction, provider_id: str
) -> UpstreamOAuthProvider | None:
    row = DatabasePool.simple_select_one_txn(
        txn,
        TABLE,
        {"upstream_oauth_provider_id": provider_id},
        UpstreamOAuthProvider.COLUMNS,
        allow_none=True,
    )
    return UpstreamOAuthProvider.from_row(row) if row else None


def list_upstream_oauth_providers_txn(
    txn: LoggingTransaction, *, enabled_only: bool = False
) -> list[UpstreamOAuthProvider]:
    where = " WHERE disabled_at IS NULL" if enabled_only else ""
    txn.execute(
        f"SELECT {', '.join(UpstreamOAuthProvider.COLUMNS)} FROM {TABLE}{where}"
        " ORDER BY ui_order, upstream_oauth_provider_id"
    )
    return [UpstreamOAuthProvider.from_row(row) for row in txn.fetchall()]


def upsert_upstream_oauth_provider_txn(
    txn: LoggingTransaction, provider_id: str, params: UpstreamOAuthProviderParams, now_ms: int
) -> None:
    """Insert or overwrite a provider, enabling it again (``disabled_at`` cleared); ``created_at`` is kept."""
    DatabasePool.simple_upsert_txn(
        txn,
        TABLE,
        {"upstream_oauth_provider_id": provider_id},
        {
            "issuer": params.issuer,
            "human_name": params.human_name,
            "brand_name": params.brand_name,
            "scope": params.scope,
            "token_endpoint_auth_method": params.token_endpoint_auth_method,
            "token_endpoint_signing_alg": params.token_endpoint_signing_alg,
            "id_token_signed_response_alg": params.id_token_signed_response_alg,
            "fetch_userinfo": params.fetch_userinfo,
            "userinfo_signed_response_alg": params.userinfo_signed_response_alg,
            "disabled_at": None,
            "client_id": params.client_id,
            "encrypted_client_secret": params.encrypted_client_secret,
            "claims_imports": to_db_json(dict(params.claims_imports)),
            "authorization_endpoint_override": params.authorization_endpoint_override,
            "token_endpoint_override": params.token_endpoint_override,
            "userinfo_endpoint_override": params.userinfo_endpoint_override,
            "jwks_uri_override": params.jwks_uri_override,
            "discovery_mode": params.discovery_mode,
            "pkce_mode": params.pkce_mode,
            "response_mode": params.response_mode,
            "additional_parameters": to_db_json(
                [list(p) for p in params.additional_authorization_parameters]
            ),
            "forward_login_hint": params.forward_login_hint,
            "ui_order": params.ui_order,
            "on_backchannel_logout": params.on_backchannel_logout,
            "registration_token_required": params.registration_token_required,
        },
        insertion_values={"created_at": now_ms},
    )


def disable_upstream_oauth_provider_txn(txn: LoggingTransaction, provider_id: str, now_ms: int) -> bool:
    """Mark an enabled provider disabled; ``False`` if it was not there or already disabled."""
    txn.execute(
        f"UPDATE {TABLE} SET disabled_at = ? WHERE upstream_oauth_provider_id = ? AND disabled_at IS NULL",
        (now_ms, provider_id),
    )
    return txn.rowcount == 1


def delete_upstream_oauth_provider_txn(txn: LoggingTransaction, provider_id: str) -> bool:
    """Delete a provider (and, through ``ON DELETE CASCADE``, its links and sessions)."""
    return DatabasePool.simple_delete_txn(txn, TABLE, {"upstream_oauth_provider_id": provider_id}) > 0


class UpstreamOAuthProviderStore(SQLBaseStore):
    async def get_upstream_oauth_provider(self, provider_id: str) -> UpstreamOAuthProvider | None:
        return await self.db_pool.runInteraction(
            "get_upstream_oauth_provider", get_upstream_oauth_provider_txn, provider_id
        )

    async def list_upstream_oauth_providers(
        self, *, enabled_only: bool = False
    ) -> list[UpstreamOAuthProvider]:
        """Providers in login-page order (``ui_order``), optionally only the enabled ones."""
        return await self.db_pool.runInteraction(
            "list_upstream_oauth_providers", list_upstream_oauth_providers_txn, enabled_only=enabled_only
        )

    async def upsert_upstream_oauth_provider(
        self, provider_id: str, params: UpstreamOAuthProviderParams
    ) -> None:
        await self.db_pool.runInteraction(
            "upsert_upstream_oauth_provider",
            upsert_upstream_oauth_provider_txn,
            provider_id,
            params,
            self._clock.time_msec(),
        )

    async def disable_upstream_oauth_provider(self, provider_id: str) -> bool:
        return await self.db_pool.runInteraction(
            "disable_upstream_oauth_provider",
            disable_upstream_oauth_provider_txn,
            provider_id,
            self._clock.time_msec(),
        )

    async def delete_upstream_oauth_provider(self, provider_id: str) -> bool:
        return await self.db_pool.runInteraction(
            "delete_upstream_oauth_provider", delete_upstream_oauth_provider_txn, provider_id
        )
