# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /logout``: sign the browser out (MAS's ``crates/handlers/src/views/logout.rs``).

Request:  POST /logout  (form: csrf[, kind, id…: a post-auth action])
Response: 303 to where the action continues, else to ``/login``. The browser session named
          by the ``session`` cookie is finished if it was still open, and the cookie is
          emptied in every case. Without a valid CSRF token: 400 and nothing changes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import first, form_params, redirect, single
from mas_twisted.urls import PostAuthAction

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class LogoutResource:
    """The logout form's target."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._login = server.get_login_handler()

    @app.route(urls.LOGOUT, methods=["POST"])
    async def post(self, request: IRequest) -> bytes:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        action = PostAuthAction.from_params(single(fields))
        await self._login.logout(self._cookies.session_info(request).current)
        # Whatever the session's state, the browser is signed out from now on.
        self._cookies.mark_session_ended(request)
        if action is not None:
            return redirect(request, action.go_next(self._url_builder))
        return redirect(request, self._url_builder.relative(urls.LOGIN))
