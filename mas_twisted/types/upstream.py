# SPDX-License-Identifier: AGPL-3.0-only
"""Upstream OAuth 2.0 / OpenID Connect providers (``upstream_oauth2.providers``), as stored in
``upstream_oauth_providers`` and as ``config sync`` writes them.

``claims_imports`` is MAS's JSON shape (``{"subject": {"template": …}, "localpart": {"action",
"template", "on_conflict"}, …}``) and ``additional_parameters`` a JSON list of ``[name,
template]`` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from mas_twisted.types.columns import db_bool, db_json


@attrs.frozen
class UpstreamOAuthProvider:
    """One row of ``upstream_oauth_providers``."""

    id: str
    issuer: str | None
    human_name: str | None
    brand_name: str | None
    scope: str
    client_id: str
    encrypted_client_secret: str | None
    token_endpoint_signing_alg: str | None
    token_endpoint_auth_method: str
    id_token_signed_response_alg: str
    userinfo_signed_response_alg: str | None
    #: ``oidc``, ``insecure`` or ``disabled``.
    discovery_mode: str
    #: ``auto``, ``s256`` or ``disabled``.
    pkce_mode: str
    #: ``query``, ``form_post`` or ``None``.
    response_mode: str | None
    fetch_userinfo: bool
    authorization_endpoint_override: str | None
    token_endpoint_override: str | None
    userinfo_endpoint_override: str | None
    jwks_uri_override: str | None
    claims_imports: Mapping[str, Any]
    additional_authorization_parameters: tuple[tuple[str, str], ...]
    forward_login_hint: bool
    #: ``do_nothing``, ``logout_browser_only`` or ``logout_all``.
    on_backchannel_logout: str
    registration_token_required: bool
    ui_order: int
    created_at: int
    disabled_at: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "upstream_oauth_provider_id",
        "issuer",
        "human_name",
        "brand_name",
        "scope",
        "client_id",
        "encrypted_client_secret",
        "token_endpoint_signing_alg",
        "token_endpoint_auth_method",
        "id_token_signed_response_alg",
        "userinfo_signed_response_alg",
        "discovery_mode",
        "pkce_mode",
        "response_mode",
        "fetch_userinfo",
        "authorization_endpoint_override",
        "token_endpoint_override",
        "userinfo_endpoint_override",
        "jwks_uri_override",
        "claims_imports",
        "additional_parameters",
        "forward_login_hint",
        "on_backchannel_logout",
        "registration_token_required",
        "ui_order",
        "created_at",
        "disabled_at",
    )

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> UpstreamOAuthProvider:
        (
            provider_id,
            issuer,
            human_name,
            brand_name,
            scope,
            client_id,
            encrypted_client_secret,
            signing_alg,
            auth_method,
            id_token_alg,
            userinfo_alg,
            discovery_mode,
            pkce_mode,
            response_mode,
            fetch_userinfo,
            authorization_override,
            token_override,
            userinfo_override,
            jwks_uri_override,
            claims_imports,
            additional_parameters,
            forward_login_hint,
            on_backchannel_logout,
            registration_token_required,
            ui_order,
            created_at,
            disabled_at,
        ) = row
        return cls(
            id=provider_id,
            issuer=issuer,
            human_name=human_name,
            brand_name=brand_name,
            scope=scope,
            client_id=client_id,
            encrypted_client_secret=encrypted_client_secret,
            token_endpoint_signing_alg=signing_alg,
            token_endpoint_auth_method=auth_method,
            id_token_signed_response_alg=id_token_alg,
            userinfo_signed_response_alg=userinfo_alg,
            discovery_mode=discovery_mode,
            pkce_mode=pkce_mode,
            response_mode=response_mode,
            fetch_userinfo=db_bool(fetch_userinfo),
            authorization_endpoint_override=authorization_override,
            token_endpoint_override=token_override,
            userinfo_endpoint_override=userinfo_override,
            jwks_uri_override=jwks_uri_override,
            claims_imports=db_json(claims_imports) or {},
            additional_authorization_parameters=tuple(
                (str(k), str(v)) for k, v in (db_json(additional_parameters) or ())
            ),
            forward_login_hint=db_bool(forward_login_hint),
            on_backchannel_logout=on_backchannel_logout,
            registration_token_required=db_bool(registration_token_required),
            ui_order=int(ui_order),
            created_at=int(created_at),
            disabled_at=None if disabled_at is None else int(disabled_at),
        )


@attrs.frozen
class UpstreamOAuthProviderParams:
    """What ``config sync`` writes for one provider (MAS's ``UpstreamOAuthProviderParams``)."""

    issuer: str | None
    human_name: str | None
    brand_name: str | None
    scope: str
    token_endpoint_auth_method: str
    token_endpoint_signing_alg: str | None
    id_token_signed_response_alg: str
    fetch_userinfo: bool
    userinfo_signed_response_alg: str | None
    client_id: str
    encrypted_client_secret: str | None
    claims_imports: Mapping[str, Any]
    authorization_endpoint_override: str | None
    token_endpoint_override: str | None
    userinfo_endpoint_override: str | None
    jwks_uri_override: str | None
    discovery_mode: str
    pkce_mode: str
    response_mode: str | None
    additional_authorization_parameters: Sequence[tuple[str, str]]
    forward_login_hint: bool
    ui_order: int
    on_backchannel_logout: str
    registration_token_required: bool
