# SPDX-License-Identifier: AGPL-3.0-only
"""``GET|POST /complete-compat-sso/<id>``: the user confirms a legacy SSO login (inventory §3;
MAS's ``crates/handlers/src/compat/login_sso_complete.rs``).

Request:  GET /complete-compat-sso/<id>[?action=login|register]
Response: 200 confirmation page (``pages/sso.html``: where the browser goes back to, and who
          is signed in; a CSRF-protected form); 303 to ``/login?kind=continue_compat_sso_login&id=<id>``
          when signed out (``/register?…`` with ``action=register``, or its MSC3824 unstable name); the locked/deactivated/logged-out page for such a session; 200
          error page ``compat_sso_login_expired`` when the login is older than 30 minutes or
          already confirmed; 403 ``pages/compat_login_policy_violation.html`` when the
          ``compat_login`` policy refuses; 404 for an unknown login.
Request:  POST /complete-compat-sso/<id>  (form: csrf)
Response: 303 to ``redirectUrl`` with ``loginToken=<token>`` added to its query, the login now
          fulfilled by this browser session; the same refusals as GET (nothing written); 400
          without a valid CSRF token (checked before anything else).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.compat.sso import (
    UNSTABLE_ACTION_PARAM,
    CompatSsoLoginExpiredError,
    SsoConfirmation,
    pick_action,
)
from mas_twisted.rest._base import FORM_ACTION_SELF, form_action_source, html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._consent import requester
from mas_twisted.rest.human._errors import install_html_error_handlers, render_error_page
from mas_twisted.rest.human._forms import first, form_params, query_params, redirect
from mas_twisted.rest.human._session import SessionOrFallback, load_session_or_fallback
from mas_twisted.templating import CompatLoginPolicyViolationContext, CompatSsoContext, MatrixUser

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)


class CompatSsoCompleteResource:
    """The confirmation page of a legacy SSO login and its form."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._handler = server.get_compat_sso_handler()
        self._server_name: str = server.config.matrix.homeserver

    async def _signed_in(self, request: IRequest, login_id: str) -> SessionOrFallback:
        return await load_session_or_fallback(self.server, request, self._handler.post_auth_action(login_id))

    @app.route(urls.COMPAT_LOGIN_SSO_COMPLETE, methods=["GET"])
    async def get(self, request: IRequest, grant_id: str) -> bytes:
        loaded = await self._signed_in(request, grant_id)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is None:
            query = query_params(request)
            sso_action = pick_action(first(query, "action"), first(query, UNSTABLE_ACTION_PARAM))
            return redirect(request, self._handler.login_url(grant_id, sso_action))
        try:
            view = await self._handler.load_confirmation(grant_id, loaded.session, requester(request))
        except CompatSsoLoginExpiredError as e:
            return self._expired(request, e)
        return self._render(request, view, loaded.session)

    @app.route(urls.COMPAT_LOGIN_SSO_COMPLETE, methods=["POST"])
    async def post(self, request: IRequest, grant_id: str) -> bytes:
        self._cookies.verify_csrf(request, first(form_params(request), CSRF_FIELD))
        loaded = await self._signed_in(request, grant_id)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is None:
            return redirect(request, self._handler.login_url(grant_id))
        try:
            result = await self._handler.confirm(grant_id, loaded.session, requester(request))
        except CompatSsoLoginExpiredError as e:
            return self._expired(request, e)
        if isinstance(result, str):
            return redirect(request, result)
        return self._render(request, result, loaded.session)

    def _expired(self, request: IRequest, error: CompatSsoLoginExpiredError) -> bytes:
        logger.info("Compat SSO login refused: %s", error.debug)
        return render_error_page(self.templates, request, error.code, error.msg, error_code=error.ERROR_CODE)

    def _render(self, request: IRequest, view: SsoConfirmation, session: BrowserSession) -> bytes:
        csrf_token = self._cookies.csrf_token(request)
        if not view.policy.valid:
            violation = CompatLoginPolicyViolationContext(
                csrf_token=csrf_token,
                session=session,
                violations=view.policy.violations,
                action=view.action,
            )
            return html_response(request, self.templates.render_compat_login_policy_violation(violation), 403)
        ctx = CompatSsoContext(
            csrf_token=csrf_token,
            session=session,
            login=view.login,
            action=view.action,
            matrix_user=MatrixUser.for_user(session.user, self._server_name),
        )
        # "Continue" redirects to the client's redirect URL with the login token.
        return html_response(
            request,
            self.templates.render_sso_login(ctx),
            form_action=(FORM_ACTION_SELF, form_action_source(ctx.login.redirect_uri)),
        )
