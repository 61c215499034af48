# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /_matrix/client/{version}/refresh`` (resource ``compat``; Matrix client-server API
§"Refreshing access tokens", MAS's ``compat/refresh.rs``).

Request:  POST /_matrix/client/v3/refresh
          Content-Type: application/json
          {"refresh_token": "mcr_..."}
Response: 200 {"access_token": "mct_...", "refresh_token": "mcr_...", "expires_in_ms": 300000}:
          the refresh token is consumed (once) and the access token it came with expires.

Errors: 401 ``M_UNKNOWN_TOKEN`` "Invalid refresh token" for anything but an unused
compatibility refresh token of a valid session. The body is read as axum's ``Json`` does in
MAS (plain text 415 without a JSON ``Content-Type``, 400 if it does not parse, 422 without a
string ``refresh_token``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import API_CORS, json_response
from mas_twisted.rest.compat._base import (
    DataError,
    Fields,
    PlainTextError,
    install_matrix_error_handlers,
    read_axum_json,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer


class CompatRefreshResource:
    """Refreshing a compatibility access token."""

    app = Klein()
    install_matrix_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._handler = server.get_compat_refresh_handler()

    @app.route(urls.COMPAT_REFRESH, methods=["POST"])
    async def refresh(self, request: IRequest, version: str) -> bytes:
        body = read_axum_json(request)
        try:
            refresh_token = Fields(body).req_str("refresh_token")
        except DataError as e:
            raise PlainTextError(
                f"Failed to deserialize the JSON body into the target type: {e}", code=422
            ) from None
        reply = await self._handler.refresh(refresh_token, getattr(request, "client_ip", None))
        return json_response(request, 200, reply)
