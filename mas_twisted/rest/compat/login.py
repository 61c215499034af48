# SPDX-License-Identifier: AGPL-3.0-only
"""``GET`` and ``POST /_matrix/client/{version}/login`` (resource ``compat``; Matrix
client-server API §"Login", MAS's ``crates/handlers/src/compat/login.rs``, inventory §3).

Request:  GET /_matrix/client/v3/login
Response: 200 {"flows": [{"type": "m.login.password"},
                         {"type": "m.login.sso", "oauth_aware_preferred": true,
                          "org.matrix.msc3824.delegated_oidc_compatibility": true},
                         {"type": "m.login.token"}]}
          (``m.login.password`` only while ``passwords.enabled``)

Request:  POST /_matrix/client/v3/login
          {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
           "password": "...", "refresh_token": true, "device_id": "ABCDEFGHIJ",
           "initial_device_display_name": "My phone"}
          or {"type": "m.login.token", "token": "<loginToken>"}
Response: 200 {"access_token": "mct_...", "device_id": "ABCDEFGHIJ", "user_id": "@alice:example.com",
               "refresh_token": "mcr_...", "expires_in_ms": 300000}

Errors: see :mod:`mas_twisted.handlers.compat.login` and :mod:`mas_twisted.rest.compat._base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import BadJsonError
from mas_twisted.handlers.compat.login import LoginRequest
from mas_twisted.policy.model import LOGIN_PASSWORD, LOGIN_TOKEN, Requester
from mas_twisted.rest._base import API_CORS, json_response
from mas_twisted.rest.compat._base import (
    DataError,
    Fields,
    install_matrix_error_handlers,
    read_matrix_json,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer


def parse_login_request(body: Any) -> LoginRequest:
    """MAS's ``RequestBody`` (serde, internally tagged on ``type``).

    Raises:
        MatrixError: 400 ``M_BAD_JSON`` when the body has the wrong shape.
    """
    try:
        fields = Fields(body)
        login_type = fields.req_str("type")
        common: dict[str, Any] = {
            "refresh_token": fields.bool_default("refresh_token"),
            "device_id": fields.opt_str("device_id"),
            "initial_device_display_name": fields.opt_str("initial_device_display_name"),
        }
        if login_type == LOGIN_PASSWORD:
            identifier_user = None
            identifier_unsupported = False
            raw_identifier = fields.raw("identifier")
            if raw_identifier is not None:
                identifier = Fields(raw_identifier)
                if identifier.req_str("type") == "m.id.user":
                    identifier_user = identifier.req_str("user")
                else:
                    identifier_unsupported = True
            return LoginRequest(
                type=login_type,
                password=fields.req_str("password"),
                user=fields.opt_str("user"),
                identifier_user=identifier_user,
                identifier_unsupported=identifier_unsupported,
                **common,
            )
        if login_type == LOGIN_TOKEN:
            return LoginRequest(type=login_type, token=fields.req_str("token"), **common)
        return LoginRequest(type=login_type, **common)
    except DataError:
        raise BadJsonError() from None


class CompatLoginResource:
    """The login flows, and logging in with a password or an SSO login token."""

    app = Klein()
    install_matrix_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._handler = server.get_compat_login_handler()

    @app.route(urls.COMPAT_LOGIN, methods=["GET"])
    async def flows(self, request: IRequest, version: str) -> bytes:
        return json_response(request, 200, await self._handler.login_flows())

    @app.route(urls.COMPAT_LOGIN, methods=["POST"])
    async def login(self, request: IRequest, version: str) -> bytes:
        login = parse_login_request(read_matrix_json(request))
        user_agent = request.getHeader(b"User-Agent")
        requester = Requester(
            ip_address=getattr(request, "client_ip", None),
            user_agent=user_agent.decode("utf-8", "replace") if user_agent is not None else None,
        )
        reply = await self._handler.login(login, requester)
        return json_response(request, 200, reply)
