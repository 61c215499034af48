# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /authorize``: the OAuth 2.0 authorization endpoint (RFC 6749 §4.1.1, OIDC Core
§3.1.2.1; MAS's ``crates/handlers/src/oauth2/authorization/mod.rs``).

Request:  GET /authorize?client_id=…&response_type=…&scope=…[&redirect_uri, response_mode,
          state, nonce, prompt, login_hint, code_challenge, code_challenge_method …]
Response: 303 to ``/login?kind=continue_authorization_grant&id=…`` (signed out) or to
          ``/consent/<grant>`` (signed in), once the pending grant is stored; errors found
          before the client and redirect URI are validated render the 400 error page; later
          ones go back to the client (303 with ``state``, ``error``, ``error_description`` in
          the query or fragment, or the ``form_post`` page). A parameter given twice, or a
          query the parsing boundary refuses (``rest/_parse.py``), is the 400 error page.

:func:`send_callback` answers a :class:`~mas_twisted.handlers.authorization.Callback` (also
used by the consent page).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.authorization import Callback
from mas_twisted.rest._base import form_action_source, html_response
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import query_params, redirect, single
from mas_twisted.templating import FormPostContext

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.templating import Templates

logger = logging.getLogger(__name__)

#: The parameters of an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636
#: §4.3): each may be given once (RFC 6749 §3.1), others are ignored.
AUTHORIZATION_PARAMS = frozenset(
    {
        "response_type", "client_id", "redirect_uri", "scope", "state", "response_mode", "nonce",
        "display", "prompt", "max_age", "ui_locales", "id_token_hint", "login_hint", "acr_values",
        "request", "request_uri", "registration", "code_challenge", "code_challenge_method",
    }
)  # fmt: skip


def send_callback(templates: Templates, request: IRequest, callback: Callback) -> bytes:
    """Redirect to the client (``query``/``fragment``) or render the ``form_post`` page."""
    if callback.is_form_post:
        ctx = FormPostContext(redirect_uri=callback.redirect_uri, params=callback.form_params)
        # The page's form posts to the client: the one place a form leaves this origin.
        return html_response(
            request, templates.render_form_post(ctx), form_action=(form_action_source(callback.redirect_uri),)
        )
    return redirect(request, callback.url)


class AuthorizeResource:
    """The authorization endpoint."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._handler = server.get_authorization_handler()

    @app.route(urls.OAUTH2_AUTHORIZATION, methods=["GET"])
    async def get(self, request: IRequest) -> bytes:
        params = single(query_params(request, single=AUTHORIZATION_PARAMS))
        # MAS's ``load_active_session``: only an active session counts; without one the
        # browser goes to the login page, which explains an ended session.
        session = (await self._cookies.load_session(request)).active
        result = await self._handler.start_authorization(params, session)
        if result.callback is not None:
            return send_callback(self.templates, request, result.callback)
        assert result.location is not None
        return redirect(request, result.location)
