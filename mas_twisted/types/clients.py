# SPDX-License-Identifier: AGPL-3.0-only
"""OAuth 2.0 clients (RFC 6749 §2; RFC 7591 client metadata), as stored in ``oauth2_clients``.

Array columns of MAS (``redirect_uris``, ``contacts``) are JSON arrays in ``TEXT`` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from mas_twisted.types.columns import db_bool, db_json, to_db_json


@attrs.frozen
class OAuth2Client:
    """One row of ``oauth2_clients``."""

    id: str
    encrypted_client_secret: str | None = None
    redirect_uris: tuple[str, ...] = ()
    grant_type_authorization_code: bool = False
    grant_type_refresh_token: bool = False
    grant_type_client_credentials: bool = False
    grant_type_device_code: bool = False
    client_name: str | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    id_token_signed_response_alg: str | None = None
    userinfo_signed_response_alg: str | None = None
    token_endpoint_auth_method: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    initiate_login_uri: str | None = None
    application_type: str | None = None
    contacts: tuple[str, ...] = ()
    is_static: bool = False
    metadata_digest: str | None = None
    created_at: int | None = None

    #: Column names, in the order :meth:`from_row` expects.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "oauth2_client_id",
        "encrypted_client_secret",
        "redirect_uris",
        "grant_type_authorization_code",
        "grant_type_refresh_token",
        "grant_type_client_credentials",
        "grant_type_device_code",
        "client_name",
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "jwks_uri",
        "jwks",
        "id_token_signed_response_alg",
        "userinfo_signed_response_alg",
        "token_endpoint_auth_method",
        "token_endpoint_auth_signing_alg",
        "initiate_login_uri",
        "application_type",
        "contacts",
        "is_static",
        "metadata_digest",
        "created_at",
    )

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

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OAuth2Client:
        (
            client_id,
            encrypted_client_secret,
            redirect_uris,
            gt_code,
            gt_refresh,
            gt_cc,
            gt_device,
            client_name,
            logo_uri,
            client_uri,
            policy_uri,
            tos_uri,
            jwks_uri,
            jwks,
            id_token_alg,
            userinfo_alg,
            auth_method,
            auth_signing_alg,
            initiate_login_uri,
            application_type,
            contacts,
            is_static,
            metadata_digest,
            created_at,
        ) = row
        return cls(
            id=client_id,
            encrypted_client_secret=encrypted_client_secret,
            redirect_uris=tuple(db_json(redirect_uris) or ()),
            grant_type_authorization_code=db_bool(gt_code),
            grant_type_refresh_token=db_bool(gt_refresh),
            grant_type_client_credentials=db_bool(gt_cc),
            grant_type_device_code=db_bool(gt_device),
            client_name=client_name,
            logo_uri=logo_uri,
            client_uri=client_uri,
            policy_uri=policy_uri,
            tos_uri=tos_uri,
            jwks_uri=jwks_uri,
            jwks=db_json(jwks),
            id_token_signed_response_alg=id_token_alg,
            userinfo_signed_response_alg=userinfo_alg,
            token_endpoint_auth_method=auth_method,
            token_endpoint_auth_signing_alg=auth_signing_alg,
            initiate_login_uri=initiate_login_uri,
            application_type=application_type,
            contacts=tuple(db_json(contacts) or ()),
            is_static=db_bool(is_static),
            metadata_digest=metadata_digest,
            created_at=created_at,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "oauth2_client_id": self.id,
            "encrypted_client_secret": self.encrypted_client_secret,
            "redirect_uris": to_db_json(list(self.redirect_uris)),
            "grant_type_authorization_code": self.grant_type_authorization_code,
            "grant_type_refresh_token": self.grant_type_refresh_token,
            "grant_type_client_credentials": self.grant_type_client_credentials,
            "grant_type_device_code": self.grant_type_device_code,
            "client_name": self.client_name,
            "logo_uri": self.logo_uri,
            "client_uri": self.client_uri,
            "policy_uri": self.policy_uri,
            "tos_uri": self.tos_uri,
            "jwks_uri": self.jwks_uri,
            "jwks": to_db_json(self.jwks),
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
            "userinfo_signed_response_alg": self.userinfo_signed_response_alg,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "token_endpoint_auth_signing_alg": self.token_endpoint_auth_signing_alg,
            "initiate_login_uri": self.initiate_login_uri,
            "application_type": self.application_type,
            "contacts": to_db_json(list(self.contacts)),
            "is_static": self.is_static,
            "metadata_digest": self.metadata_digest,
            "created_at": self.created_at,
        }
