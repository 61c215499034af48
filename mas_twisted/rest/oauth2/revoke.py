# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/revoke`` (resource ``oauth``; RFC 7009, MAS's
``crates/handlers/src/oauth2/revoke.rs``, inventory §2.11).

Request:  POST /oauth2/revoke
          Content-Type: application/x-www-form-urlencoded
          (client authentication: Basic, form secret, JWT assertion, or client_id alone)

          token=mat_...&token_type_hint=access_token
Response: 200 with an empty body: the token's OAuth 2.0 session is over (MSC4254 logout), or
          there was nothing to revoke (unknown, expired, already revoked, or a compatibility
          token: RFC 7009 §2.2 says the client cannot do anything about those).

Errors (RFC 6749 §5.2 JSON):

- 400 ``invalid_request``: malformed, conflicting or missing client credentials, a body
  that is not a form (checked after the client is authenticated, as in MAS), or a form
  without ``token`` or with a field repeated;
- 401 ``invalid_client``: an unknown client, or credentials that do not check out;
- 401 ``unauthorized_client``: a client without a ``token_endpoint_auth_method``, or a
  token of another client's session;
- 400 ``unsupported_token_type``: a ``token_type_hint`` other than ``access_token`` and
  ``refresh_token``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import InvalidRequestError
from mas_twisted.rest._base import API_CORS, install_oauth2_error_handlers
from mas_twisted.rest.oauth2._common import (
    client_authorization,
    read_form_request,
    require_field,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class RevocationResource:
    """Token revocation for the client that holds the token."""

    app = Klein()
    install_oauth2_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._client_auth = server.get_client_authenticator()
        self._handler = server.get_revocation_handler()

    @app.route(urls.OAUTH2_REVOCATION, methods=["POST"])
    async def revoke(self, request: IRequest) -> bytes:
        form_request = read_form_request(request, ("token", "token_type_hint"))
        form = form_request.form
        token = require_field(form, "token") if form is not None else None
        credentials = client_authorization(form_request).credentials
        client = await self._client_auth.authenticate(credentials, endpoint=urls.OAUTH2_REVOCATION)
        if form is None or token is None:
            raise InvalidRequestError(debug="the body is not a form")
        await self._handler.revoke(
            client, token, form.get("token_type_hint"), ip=getattr(request, "client_ip", None)
        )
        request.setResponseCode(200)
        request.setHeader(b"Content-Length", b"0")
        return b""
