# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/token`` (resource ``oauth``; RFC 6749 §3.2, MAS's ``crates/handlers/src/oauth2/token.rs``).

Request:  POST /oauth2/token  Content-Type: application/x-www-form-urlencoded
          grant_type=authorization_code&code=...&redirect_uri=...&code_verifier=...&client_id=...
          grant_type=refresh_token&refresh_token=mar_...
          grant_type=client_credentials&scope=...
          grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=...
          with the client's credentials (Basic, form, or a JWT assertion).
Response: 200 {"access_token": "mat_...", "refresh_token": "mar_...", "id_token": "...",
               "token_type": "Bearer", "expires_in": 300, "scope": "openid ..."}
          with ``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 §5.1).

The form is read as MAS reads it (all of it before the client is looked up): a missing
``grant_type``, a missing parameter of the grant (``code``, ``refresh_token``,
``device_code``), a ``redirect_uri`` that is not an absolute URL, a malformed ``scope`` or a
repeated parameter is ``invalid_request`` (400); an unknown ``grant_type`` is
``unsupported_grant_type`` (400) once the client is authenticated; a body that is not a
form is ``invalid_request`` after authentication. Errors are RFC 6749 §5.2 JSON bodies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import metrics, urls
from mas_twisted.api.errors import InvalidRequestError, UnsupportedGrantTypeError
from mas_twisted.oauth2 import requests as oauth2_requests
from mas_twisted.oauth2.scope import InvalidScopeFormat, Scope
from mas_twisted.oauth2.url import InvalidUrlError, parse_url
from mas_twisted.rest._base import API_CORS, install_oauth2_error_handlers, json_response
from mas_twisted.rest.oauth2._common import (
    client_authorization,
    read_form_request,
    requester,
    require_field,
    user_agent,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: Every parameter a token request may carry besides client authentication.
TOKEN_FIELDS = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "device_code",
)


@attrs.frozen
class TokenRequest:
    """A token request's grant and its parameters, validated as MAS's form extractor does."""

    grant_type: str
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = None
    refresh_token: str | None = None
    scope: Scope | None = None
    device_code: str | None = None


def _scope(form: Mapping[str, str]) -> Scope | None:
    value = form.get("scope")
    if value is None:
        return None
    try:
        return Scope.parse(value)
    except InvalidScopeFormat:
        raise InvalidRequestError("Invalid scope parameter") from None


def parse_token_request(form: Mapping[str, str]) -> TokenRequest:
    """Read the grant and its parameters from the form.

    Raises:
        InvalidRequestError: see the module docstring.
    """
    grant_type = require_field(form, "grant_type")
    if grant_type == oauth2_requests.AUTHORIZATION_CODE:
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is not None:
            try:
                parse_url(redirect_uri)
            except InvalidUrlError:
                raise InvalidRequestError("Invalid redirect_uri parameter") from None
        return TokenRequest(
            grant_type,
            code=require_field(form, "code"),
            redirect_uri=redirect_uri,
            code_verifier=form.get("code_verifier"),
        )
    if grant_type == oauth2_requests.REFRESH_TOKEN:
        return TokenRequest(
            grant_type, refresh_token=require_field(form, "refresh_token"), scope=_scope(form)
        )
    if grant_type == oauth2_requests.CLIENT_CREDENTIALS:
        return TokenRequest(grant_type, scope=_scope(form))
    if grant_type == oauth2_requests.DEVICE_CODE:
        return TokenRequest(grant_type, device_code=require_field(form, "device_code"))
    return TokenRequest(grant_type)


class TokenResource:
    """The token endpoint (all grants)."""

    app = Klein()
    install_oauth2_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._client_auth = server.get_client_authenticator()
        self._tokens = server.get_token_handler()

    @app.route(urls.OAUTH2_TOKEN, methods=["POST"])
    async def token(self, request: IRequest) -> bytes:
        # mas_oauth2_token_request_total: every answer, by grant type and outcome (MAS counts
        # each error response too, ``crates/handlers/src/oauth2/token.rs``).
        grant_type: str | None = None
        try:
            form_request = read_form_request(request, TOKEN_FIELDS)
            token_request = parse_token_request(form_request.form) if form_request.form is not None else None
            authorization = client_authorization(form_request)
            client = await self._client_auth.authenticate(
                authorization.credentials, endpoint=urls.OAUTH2_TOKEN
            )
            if token_request is None:
                raise InvalidRequestError(debug="the token request body is not a form")
            grant_type = token_request.grant_type

            agent = user_agent(request)
            ip = getattr(request, "client_ip", None)
            if grant_type == oauth2_requests.AUTHORIZATION_CODE:
                assert token_request.code is not None
                reply = await self._tokens.exchange_authorization_code(
                    client,
                    token_request.code,
                    redirect_uri=token_request.redirect_uri,
                    code_verifier=token_request.code_verifier,
                    user_agent=agent,
                    ip=ip,
                )
            elif grant_type == oauth2_requests.REFRESH_TOKEN:
                assert token_request.refresh_token is not None
                reply = await self._tokens.refresh(
                    client, token_request.refresh_token, user_agent=agent, ip=ip
                )
            elif grant_type == oauth2_requests.CLIENT_CREDENTIALS:
                reply = await self._tokens.client_credentials(
                    client, token_request.scope or Scope(), requester=requester(request)
                )
            elif grant_type == oauth2_requests.DEVICE_CODE:
                assert token_request.device_code is not None
                reply = await self._tokens.exchange_device_code(
                    client, token_request.device_code, user_agent=agent, ip=ip
                )
            else:
                raise UnsupportedGrantTypeError(debug=f"grant_type {grant_type!r}")
        except Exception:
            metrics.record_token_request(grant_type, False)
            raise
        metrics.record_token_request(grant_type, True)
        return json_response(request, 200, reply.to_json(), no_store=True)
