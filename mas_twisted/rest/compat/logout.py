# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /_matrix/client/{version}/logout`` and ``/logout/all`` (resource ``compat``;
Matrix client-server API §"Logout", MAS's ``compat/logout.rs`` and ``logout_all.rs``).

Request:  POST /_matrix/client/v3/logout
          Authorization: Bearer mct_...
Response: 200 {}: the token's compatibility session is finished; ``sync-devices`` removes
          its device from the homeserver.

Request:  POST /_matrix/client/v3/logout/all
          Authorization: Bearer mct_...
          {"io.element.only_compat_is_fine": true}
Response: 200 {}: every compatibility session of the user is finished (OAuth 2.0 sessions
          are not: hence the flag, without which the answer is 404 ``M_UNRECOGNIZED``).

Errors: 401 ``M_MISSING_TOKEN`` without ``Authorization``; 401 ``M_UNKNOWN_TOKEN`` for a token
that is not a valid compatibility access token (for ``/logout/all``, also when its user is
locked or deactivated); 400 plain text for another scheme than ``Bearer``; ``/logout/all``'s
body is read first (400 ``M_NOT_JSON`` / ``M_BAD_JSON``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import BadJsonError
from mas_twisted.rest._base import API_CORS, json_response
from mas_twisted.rest.compat._base import (
    DataError,
    Fields,
    bearer_token,
    install_matrix_error_handlers,
    read_matrix_json,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

ONLY_COMPAT_IS_FINE = "io.element.only_compat_is_fine"


class CompatLogoutResource:
    """Logging out one compatibility session, or all of them."""

    app = Klein()
    install_matrix_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._handler = server.get_compat_logout_handler()

    @app.route(urls.COMPAT_LOGOUT, methods=["POST"])
    async def logout(self, request: IRequest, version: str) -> bytes:
        token = bearer_token(request)
        await self._handler.logout(token, getattr(request, "client_ip", None))
        return json_response(request, 200, {})

    @app.route(urls.COMPAT_LOGOUT_ALL, methods=["POST"])
    async def logout_all(self, request: IRequest, version: str) -> bytes:
        body = read_matrix_json(request, optional=True)
        only_compat_is_fine = False
        if body is not None:
            try:
                only_compat_is_fine = Fields(body).bool_default(ONLY_COMPAT_IS_FINE)
            except DataError:
                raise BadJsonError() from None
        token = bearer_token(request)
        await self._handler.logout_all(
            token, getattr(request, "client_ip", None), only_compat_is_fine=only_compat_is_fine
        )
        return json_response(request, 200, {})
