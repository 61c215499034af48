# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /_matrix/client/{version}/login/sso/redirect[/{idp}]``: start a legacy SSO login
(Matrix client-server API "Client login via SSO", MSC3824's ``action``; MAS's
``crates/handlers/src/compat/login_sso_redirect.rs``).

Request:  GET /_matrix/client/v3/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp.example%2F&action=login
Response: 303 Location: https://auth.example.com/complete-compat-sso/01H…?action=login&org.matrix.msc3824.action=login
          (without ``action`` when none or an unknown one was given; ``org.matrix.msc3824.action``
          is read when ``action`` is not). 400 ``{"errcode": "M_MISSING_PARAM", "error": "Missing
          redirectUrl"}`` or ``{"errcode": "M_INVALID_PARAM", "error": "Invalid redirectUrl"}``:
          it must be an absolute URL without user name or password, with a host for http(s).

With ``{idp}`` naming an enabled upstream provider (the ``id`` of the ``identity_providers``
of ``GET /login``), the browser goes straight to that provider's ``/upstream/authorize``;
another ``{idp}`` is ignored and the page that follows offers every way to sign in. The trailing-slash form exists because some clients (Element iOS) send it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.compat.sso import UNSTABLE_ACTION_PARAM, pick_action
from mas_twisted.rest._base import API_CORS
from mas_twisted.rest.compat._base import install_matrix_error_handlers
from mas_twisted.rest.human._forms import first, query_params

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class CompatSsoRedirectResource:
    """Where a Matrix client sends the browser to log in with SSO."""

    app = Klein()
    install_matrix_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._handler = server.get_compat_sso_handler()

    @app.route(urls.COMPAT_LOGIN_SSO_REDIRECT, methods=["GET"])
    @app.route(urls.COMPAT_LOGIN_SSO_REDIRECT_SLASH, methods=["GET"])
    @app.route(urls.COMPAT_LOGIN_SSO_REDIRECT_IDP, methods=["GET"])
    async def redirect(self, request: IRequest, version: str, idp: str | None = None) -> bytes:
        query = query_params(request)
        action = pick_action(first(query, "action"), first(query, UNSTABLE_ACTION_PARAM))
        location = await self._handler.start(first(query, "redirectUrl"), action, idp)
        request.setResponseCode(303)
        request.setHeader(b"Location", location.encode("utf-8"))
        request.setHeader(b"Content-Length", b"0")
        return b""
