# SPDX-License-Identifier: AGPL-3.0-only
"""Upstream OAuth 2.0 / OpenID Connect providers (``upstream_oauth2.providers``), as stored in
``upstream_oauth_providers`` and as ``config sync`` writes them.

``claims_imports`` is MAS's JSON shape (``{"subject": {"template": …}, "localpart": {"action",
"template", "on_conflict"}, …}``) and ``additional_parameters`` a JSON list of ``[name,
template]`` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from mas_twisted.types.columns import BOOL, INT, JSON, OPTIONAL_INT, Codec, Row, column, db_json, mapped


def _claims_imports(value: Any) -> Mapping[str, Any]:
    return db_json(value) or {}


def _parameters(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (db_json(value) or ()))


#: ``claims_imports``: a JSON object (``NULL``: empty).
CLAIMS_IMPORTS = Codec(_claims_imports)
#: ``additional_parameters``: a JSON list of ``[name, template]`` pairs.
ADDITIONAL_PARAMETERS = Codec(_parameters)


@mapped(to_row=False)
@attrs.frozen
class UpstreamOAuthProvider(Row):
    """One row of ``upstream_oauth_providers``."""

    id: str = attrs.field(metadata=column("upstream_oauth_provider_id"))
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
    fetch_userinfo: bool = attrs.field(metadata=column(codec=BOOL))
    authorization_endpoint_override: str | None
    token_endpoint_override: str | None
    userinfo_endpoint_override: str | None
    jwks_uri_override: str | None
    claims_imports: Mapping[str, Any] = attrs.field(metadata=column(codec=CLAIMS_IMPORTS))
    additional_authorization_parameters: tuple[tuple[str, str], ...] = attrs.field(
        metadata=column("additional_parameters", codec=ADDITIONAL_PARAMETERS)
    )
    forward_login_hint: bool = attrs.field(metadata=column(codec=BOOL))
    #: ``do_nothing``, ``logout_browser_only`` or ``logout_all``.
    on_backchannel_logout: str
    registration_token_required: bool = attrs.field(metadata=column(codec=BOOL))
    ui_order: int = attrs.field(metadata=column(codec=INT))
    created_at: int = attrs.field(metadata=column(codec=INT))
    disabled_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


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
    fetch_userinfo: bool = attrs.field(metadata=column(codec=BOOL))
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


@mapped
@attrs.frozen
class UpstreamOAuthLink(Row):
    """One row of ``upstream_oauth_links``: a subject at a provider, and the local user it
    logs in (``None`` until a registration or a link attaches one)."""

    id: str = attrs.field(metadata=column("upstream_oauth_link_id"))
    provider_id: str = attrs.field(metadata=column("upstream_oauth_provider_id"))
    subject: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    user_id: str | None = None
    human_account_name: str | None = None


@mapped
@attrs.frozen
class UpstreamOAuthAuthorizationSession(Row):
    """One row of ``upstream_oauth_authorization_sessions`` (MAS's
    ``UpstreamOAuthAuthorizationSession``): pending until the callback completes it with a
    link and the provider's claims, then consumed by the one login or registration it allows."""

    id: str = attrs.field(metadata=column("upstream_oauth_authorization_session_id"))
    provider_id: str = attrs.field(metadata=column("upstream_oauth_provider_id"))
    state: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    code_challenge_verifier: str | None = None
    nonce: str | None = None
    link_id: str | None = attrs.field(default=None, metadata=column("upstream_oauth_link_id"))
    user_session_id: str | None = None
    id_token: str | None = None
    id_token_claims: Any = attrs.field(default=None, metadata=column(codec=JSON))
    userinfo: Any = attrs.field(default=None, metadata=column(codec=JSON))
    extra_callback_parameters: Any = attrs.field(default=None, metadata=column(codec=JSON))
    completed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    consumed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    unlinked_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
