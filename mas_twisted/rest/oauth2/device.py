# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/device``: the device authorization endpoint (RFC 8628 §3.1–3.2; MAS's
``crates/handlers/src/oauth2/device/authorize.rs``).

Request:  POST /oauth2/device  Content-Type: application/x-www-form-urlencoded
          [scope=...] with the client's credentials (as at the token endpoint)
Response: 200 {"device_code": "<32 alnum>", "user_code": "<6 upper alnum>",
               "verification_uri": "{public_base}link",
               ["verification_uri_complete": "{public_base}link?code=…",]
               "expires_in": 1200, "interval": 5}
          with ``Cache-Control: no-store`` and ``Pragma: no-cache``.
Errors:   400 ``invalid_request`` when ``oauth.device_code_grant_enabled`` is off (before
          authentication) or for a malformed scope; the client authenticator's 401/500
          errors; 401 ``unauthorized_client`` without the device code grant.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import InvalidRequestError
from mas_twisted.oauth2.scope import InvalidScopeFormat, Scope
from mas_twisted.rest._base import API_CORS, install_oauth2_error_handlers, json_response
from mas_twisted.rest.oauth2._common import (
    client_authorization,
    read_form_request,
    requester,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

DEVICE_FIELDS = ("scope",)


class DeviceAuthorizationResource:
    """The device authorization endpoint."""

    app = Klein()
    install_oauth2_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._client_auth = server.get_client_authenticator()
        self._handler = server.get_device_handler()

    @app.route(urls.OAUTH2_DEVICE_AUTHORIZATION, methods=["POST"])
    async def post(self, request: IRequest) -> bytes:
        self._handler.check_enabled()
        form_request = read_form_request(request, DEVICE_FIELDS)
        scope: Scope | None = None
        raw_scope = form_request.field("scope")
        if raw_scope is not None:
            try:
                scope = Scope.parse(raw_scope)
            except InvalidScopeFormat:
                raise InvalidRequestError("Invalid scope parameter") from None
        authorization = client_authorization(form_request)
        client = await self._client_auth.authenticate(
            authorization.credentials, endpoint=urls.OAUTH2_DEVICE_AUTHORIZATION
        )
        reply = await self._handler.start_device_authorization(client, scope, requester(request))
        return json_response(request, 200, reply.to_json(), no_store=True)
