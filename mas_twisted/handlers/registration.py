# SPDX-License-Identifier: AGPL-3.0-only
"""Dynamic client registration (RFC 7591 §3, OpenID Connect Dynamic Client Registration 1.0 §3).

MAS behaviour (``crates/handlers/src/oauth2/registration.rs``, inventory §2.12) for an already
decoded JSON body:

1. the metadata is read, sorted, checked and its public suffixes refused
   (:func:`mas_twisted.oauth2.registration.prepare_registration`; the device code grant is
   dropped silently when ``oauth.device_code_grant_enabled`` is off);
2. the ``client_registration`` policy decides (a denial is ``invalid_redirect_uri`` when a
   message mentions ``redirect_uri``, else ``invalid_client_metadata``, the messages joined);
3. a secret of 20 alphanumerics is generated, and stored encrypted, only when
   ``token_endpoint_auth_method`` is explicitly ``client_secret_basic``,
   ``client_secret_post`` or ``client_secret_jwt``;
4. a client without a secret is de-duplicated: the same registration (same metadata, in any
   order) gives back the client registered first, by the SHA-256 of the sorted request;
5. the answer (HTTP 201) is ``client_id``, ``client_secret`` (when generated),
   ``client_id_issued_at`` (the client ULID's time, seconds) and the metadata as stored:
   localised names and URIs without their variants, no ``response_types``, ``contacts`` or
   other fields the service does not keep. Only the ``authorization_code``,
   ``refresh_token``, ``client_credentials`` and device code grants are stored; a newly
   registered client's answer still lists the grant types it asked for, as MAS's does.

Nothing is written when any step refuses the registration.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.oauth2 import requests as oauth2_requests
from mas_twisted.oauth2.registration import (
    ClientMetadata,
    Localized,
    policy_denial_error,
    prepare_registration,
)
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.util.ulid import ulid_ms

if TYPE_CHECKING:
    from mas_twisted.policy import Requester
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


@attrs.frozen
class RegistrationResponse:
    """The client information response (RFC 7591 §3.2.1)."""

    client_id: str
    client_id_issued_at: int
    metadata: ClientMetadata
    client_secret: str | None = attrs.field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"client_id": self.client_id}
        if self.client_secret is not None:
            body["client_secret"] = self.client_secret
        body["client_id_issued_at"] = self.client_id_issued_at
        body.update(self.metadata.to_json())
        return body


def _localized(value: str | None) -> Localized[str] | None:
    return Localized(value) if value is not None else None


def stored_metadata(client: OAuth2Client, grant_types: tuple[str, ...] | None = None) -> ClientMetadata:
    """The metadata of a stored client, as the registration response shows it (MAS's
    ``Client::into_metadata``); ``grant_types`` replaces the stored ones."""
    return ClientMetadata(
        redirect_uris=tuple(client.redirect_uris),
        grant_types=grant_types if grant_types is not None else client.grant_types,
        application_type=client.application_type,
        client_name=_localized(client.client_name),
        logo_uri=_localized(client.logo_uri),
        client_uri=_localized(client.client_uri),
        policy_uri=_localized(client.policy_uri),
        tos_uri=_localized(client.tos_uri),
        jwks_uri=client.jwks_uri,
        jwks=client.jwks,
        id_token_signed_response_alg=client.id_token_signed_response_alg,
        userinfo_signed_response_alg=client.userinfo_signed_response_alg,
        token_endpoint_auth_method=client.token_endpoint_auth_method,
        token_endpoint_auth_signing_alg=client.token_endpoint_auth_signing_alg,
        initiate_login_uri=client.initiate_login_uri,
    )


def _plain(value: Localized[str] | None) -> str | None:
    return value.value if value is not None else None


class RegistrationHandler:
    """``server.get_registration_handler()``."""

    def __init__(self, server: MasServer):
        self._config = server.config
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._policy = server.get_policy()
        self._encrypter_factory = server.get_encrypter
        self._clients = server.get_stores().oauth2_clients

    async def register(self, body: Any, *, requester: Requester) -> RegistrationResponse:
        """Register (or find again) the client ``body`` describes.

        Args:
            body: the request's decoded JSON.
            requester: for the policy.

        Raises:
            InvalidClientMetadataError, InvalidRedirectUriError: see the module docstring.
        """
        prepared = prepare_registration(
            body, device_code_grant_enabled=self._config.oauth.device_code_grant_enabled
        )
        metadata = prepared.metadata
        logger.info("Client registration: %s", metadata.to_canonical_json())

        result = self._policy.evaluate_client_registration(metadata, requester=requester)
        if not result.valid:
            raise policy_denial_error(result.messages)

        client_secret = None
        encrypted_secret = None
        if metadata.generates_client_secret:
            client_secret = self._tokens.client_secret()
            encrypted_secret = self._encrypter_factory().encrypt_to_string(client_secret)

        now = self._clock.time_msec()
        grant_types = metadata.effective_grant_types
        client = OAuth2Client(
            id=self._tokens.ulid(now),
            encrypted_client_secret=encrypted_secret,
            redirect_uris=metadata.verified_redirect_uris,
            grant_type_authorization_code=oauth2_requests.AUTHORIZATION_CODE in grant_types,
            grant_type_refresh_token=oauth2_requests.REFRESH_TOKEN in grant_types,
            grant_type_client_credentials=oauth2_requests.CLIENT_CREDENTIALS in grant_types,
            grant_type_device_code=oauth2_requests.DEVICE_CODE in grant_types,
            client_name=_plain(metadata.client_name),
            logo_uri=_plain(metadata.logo_uri),
            client_uri=_plain(metadata.client_uri),
            policy_uri=_plain(metadata.policy_uri),
            tos_uri=_plain(metadata.tos_uri),
            jwks_uri=metadata.jwks_uri,
            jwks=metadata.jwks,
            id_token_signed_response_alg=metadata.id_token_signed_response_alg,
            userinfo_signed_response_alg=metadata.userinfo_signed_response_alg,
            token_endpoint_auth_method=metadata.token_endpoint_auth_method,
            token_endpoint_auth_signing_alg=metadata.token_endpoint_auth_signing_alg,
            initiate_login_uri=metadata.initiate_login_uri,
            application_type=metadata.application_type,
            contacts=metadata.contacts or (),
            post_logout_redirect_uris=metadata.post_logout_redirect_uris or (),
            metadata_digest=prepared.digest if client_secret is None else None,
            created_at=now,
        )

        if client.metadata_digest is None:
            await self._clients.add_oauth2_client(client)
            created = True
        else:
            client, created = await self._clients.add_or_find_oauth2_client_by_digest(client)
        if created:
            logger.info("Registered new client %s", client.id)
            response_metadata = stored_metadata(client, grant_types)
        else:
            logger.info("Reusing existing client %s", client.id)
            response_metadata = stored_metadata(client)
        return RegistrationResponse(
            client_id=client.client_id,
            client_id_issued_at=ulid_ms(client.id) // 1000,
            metadata=response_metadata,
            client_secret=client_secret,
        )
