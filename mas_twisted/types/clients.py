# SPDX-License-Identifier: AGPL-3.0-only
"""OAuth 2.0 clients (RFC 6749 §2; RFC 7591 client metadata), as stored in ``oauth2_clients``.

Array columns of MAS (``redirect_uris``, ``contacts``) are JSON arrays in ``TEXT`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from mas_twisted.types.columns import BOOL, JSON, JSON_ARRAY, Row, column, mapped


@mapped
@attrs.frozen
class OAuth2Client(Row):
    """One row of ``oauth2_clients``."""

    id: str = attrs.field(metadata=column("oauth2_client_id"))
    encrypted_client_secret: str | None = None
    redirect_uris: tuple[str, ...] = attrs.field(default=(), metadata=column(codec=JSON_ARRAY))
    grant_type_authorization_code: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    grant_type_refresh_token: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    grant_type_client_credentials: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    grant_type_device_code: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    client_name: str | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = attrs.field(default=None, metadata=column(codec=JSON))
    id_token_signed_response_alg: str | None = None
    userinfo_signed_response_alg: str | None = None
    token_endpoint_auth_method: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    initiate_login_uri: str | None = None
    application_type: str | None = None
    contacts: tuple[str, ...] = attrs.field(default=(), metadata=column(codec=JSON_ARRAY))
    #: OpenID Connect RP-Initiated Logout 1.0 §3.1: exact URIs to return to after a logout.
    post_logout_redirect_uris: tuple[str, ...] = attrs.field(default=(), metadata=column(codec=JSON_ARRAY))
    is_static: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    metadata_digest: str | None = None
    created_at: int | None = None

    @property
    def client_id(self) -> str:
        """The ``client_id`` clients send: the ULID itself."""
        return self.id

    @property
    def grant_types(self) -> tuple[str, ...]:
        """The enabled grant types, as RFC 7591 ``grant_types`` values."""
        out = []
        if self.grant_type_authorization_code:
            out.append("authorization_code")
        if self.grant_type_refresh_token:
            out.append("refresh_token")
        if self.grant_type_client_credentials:
            out.append("client_credentials")
        if self.grant_type_device_code:
            out.append("urn:ietf:params:oauth:grant-type:device_code")
        return tuple(out)
