# SPDX-License-Identifier: AGPL-3.0-only
"""``GET|POST /consent/<grant_id>``: the user allows or denies a client's authorization request
(MAS's ``crates/handlers/src/oauth2/authorization/consent.rs``; always shown, never remembered).

Request:  GET /consent/<grant_id>
Response: 200 consent page (CSRF-protected form); 200 policy violation page when the
          ``authorization_grant`` policy refuses; 303 to ``/login`` with the post-auth action
          when signed out; the locked/deactivated/logged-out page for such a session; 404 for
          an unknown grant; 409 for a grant that is no longer pending.
Request:  POST /consent/<grant_id>  (form: csrf, action=consent|reject)
Response: Allow: the grant is fulfilled with the browser session and the browser goes back
          to the client with ``code`` and/or ``id_token`` (and ``state``) in the query,
          fragment or ``form_post`` page. Deny: back to the client with ``access_denied``,
          nothing written. A bad CSRF token: 400 and nothing changes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted.handlers.authorization import AuthorizationHandler, Callback, ConsentView
from mas_twisted.handlers.login import CONTINUE_AUTHORIZATION_GRANT, PostAuthAction
from mas_twisted.policy.engine import Requester
from mas_twisted.rest import urls
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import client_ip, first, form_params, html_response, redirect, user_agent
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.rest.human.authorize import send_callback
from mas_twisted.templating import ConsentContext, MatrixUser, PolicyViolationContext, Violation

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

#: The form's ``action`` value that denies the request.
REJECT = "reject"


def _action_for(grant_id: str) -> PostAuthAction | None:
    return PostAuthAction.from_params({"kind": CONTINUE_AUTHORIZATION_GRANT, "id": grant_id})


class ConsentResource:
    """The consent page and its form."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: "MasServer"):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._handler = AuthorizationHandler(server)
        self._server_name: str = server.config.matrix.homeserver

    @app.route(urls.CONSENT, methods=["GET"])
    async def get(self, request: IRequest, grant_id: str) -> bytes:
        loaded = await load_session_or_fallback(self.server, request, _action_for(grant_id))
        if loaded.fallback is not None:
            return loaded.fallback
        view = await self._handler.load_consent(grant_id, loaded.session, self._requester(request))
        return self._answer(request, view, loaded.session)

    @app.route(urls.CONSENT, methods=["POST"])
    async def post(self, request: IRequest, grant_id: str) -> bytes:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        loaded = await load_session_or_fallback(self.server, request, _action_for(grant_id))
        if loaded.fallback is not None:
            return loaded.fallback
        allow = first(fields, "action") != REJECT
        result = await self._handler.consent(grant_id, loaded.session, self._requester(request), allow=allow)
        return self._answer(request, result, loaded.session)

    @staticmethod
    def _requester(request: IRequest) -> Requester:
        return Requester(ip_address=client_ip(request), user_agent=user_agent(request))

    def _answer(self, request: IRequest, result: "ConsentView | Callback | str", session: "BrowserSession | None") -> bytes:
        if isinstance(result, str):
            return redirect(request, result)
        if isinstance(result, Callback):
            return send_callback(self.templates, request, result)
        assert session is not None
        csrf_token = self._cookies.csrf_token(request)
        if not result.policy.valid:
            violations = [Violation(msg=v.msg, code=v.code) for v in result.policy.violations]
            ctx = PolicyViolationContext(
                csrf_token=csrf_token, session=session, client=result.client, violations=violations, action=result.action
            )
            return html_response(request, self.templates.render_policy_violation(ctx))
        consent = ConsentContext(
            csrf_token=csrf_token,
            session=session,
            client=result.client,
            grant=result.grant,
            action=result.action,
            matrix_user=MatrixUser.for_user(session.user, self._server_name),
        )
        return html_response(request, self.templates.render_consent(consent))
