# SPDX-License-Identifier: AGPL-3.0-only
"""``/oauth2/end_session``: OpenID Connect RP-Initiated Logout 1.0 (ours; MAS has none). The
rules are in :mod:`mas_twisted.handlers.end_session`.

Request:  GET|POST /oauth2/end_session[?id_token_hint=…&client_id=…&post_logout_redirect_uri=…&state=…]
          (a POST from the relying party carries them as form fields, §2)
Response: 200 "sign out?" confirmation page when signed in; when not signed in, 303 to the
          registered ``post_logout_redirect_uri`` (with ``state``) or the "you are signed out"
          page; a 400 error page for a bad hint, an unknown or mismatched client, or an
          unregistered ``post_logout_redirect_uri`` (never redirected).

Request:  POST /oauth2/end_session (form: csrf, action=logout, the request's parameters,
          end_client_sessions=on)
Response: the browser session finished (and, ticked, the client's sessions from it), the
          cookie's session forgotten; 303 to the ``post_logout_redirect_uri`` with ``state``,
          or the "you are signed out" page; 400 page without a valid CSRF token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.end_session import EndSessionRequest
from mas_twisted.rest._base import FORM_ACTION_SELF, form_action_source, html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import first, form_params, query_params, redirect
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.templating import EndSessionContext

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


class EndSessionResource:
    """The end-session endpoint and its confirmation page."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._handler = server.get_end_session_handler()

    async def _check(self, params: Mapping[str, list[str]]) -> EndSessionRequest:
        return await self._handler.check(
            id_token_hint=first(params, "id_token_hint"),
            client_id=first(params, "client_id"),
            post_logout_redirect_uri=first(params, "post_logout_redirect_uri"),
            state=first(params, "state"),
        )

    @app.route(urls.OIDC_END_SESSION, methods=["GET"])
    async def get(self, request: IRequest) -> bytes:
        return await self._ask(request, query_params(request, single=PARAMS))

    @app.route(urls.OIDC_END_SESSION, methods=["POST"])
    async def post(self, request: IRequest) -> bytes:
        fields = form_params(request, single=(*PARAMS, "action", "end_client_sessions"))
        if first(fields, "action") != "logout":
            # The relying party's own POST (§2): the same as a GET.
            return await self._ask(request, fields)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        checked = await self._check(fields)
        loaded = await load_session_or_fallback(self.server, request)
        if loaded.session is not None:
            await self._handler.end(
                loaded.session, checked, end_client_sessions=first(fields, "end_client_sessions") == "on"
            )
        self._cookies.mark_session_ended(request)
        return self._done(request, checked)

    async def _ask(self, request: IRequest, params: Mapping[str, list[str]]) -> bytes:
        checked = await self._check(params)
        loaded = await load_session_or_fallback(self.server, request)
        session: BrowserSession | None = loaded.session
        if session is None:
            return self._done(request, checked)
        kept = {name: values[0] for name, values in params.items() if name in PARAMS and values}
        client = checked.client
        ctx = EndSessionContext(
            csrf_token=self._cookies.csrf_token(request),
            session=session,
            client_name=(client.client_name or client.client_uri or client.id)
            if client is not None
            else None,
            params=kept,
        )
        form_action = [FORM_ACTION_SELF]
        if checked.post_logout_redirect_uri is not None:
            form_action.append(form_action_source(checked.post_logout_redirect_uri))
        return html_response(request, self.templates.render_end_session(ctx), form_action=form_action)

    def _done(self, request: IRequest, checked: EndSessionRequest) -> bytes:
        target = checked.redirect_target()
        if target is not None:
            return redirect(request, target)
        ctx = EndSessionContext(csrf_token=self._cookies.csrf_token(request))
        return html_response(request, self.templates.render_end_session(ctx))
