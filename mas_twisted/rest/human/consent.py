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

from mas_twisted import urls
from mas_twisted.handlers.authorization import Callback, ConsentView
from mas_twisted.rest.human._consent import GrantConsentPage, is_rejection, requester
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import redirect
from mas_twisted.rest.human.authorize import send_callback
from mas_twisted.templating import ConsentContext
from mas_twisted.urls import CONTINUE_AUTHORIZATION_GRANT

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)


class ConsentResource(GrantConsentPage):
    """The consent page and its form."""

    app = Klein()
    install_html_error_handlers(app)

    POST_AUTH_KIND = CONTINUE_AUTHORIZATION_GRANT

    def __init__(self, server: MasServer):
        super().__init__(server)
        self._handler = server.get_authorization_handler()

    @app.route(urls.CONSENT, methods=["GET"])
    async def get(self, request: IRequest, grant_id: str) -> bytes:
        loaded = await self.signed_in(request, grant_id)
        if loaded.fallback is not None:
            return loaded.fallback
        view = await self._handler.load_consent(grant_id, loaded.session, requester(request))
        return self._answer(request, view, loaded.session)

    @app.route(urls.CONSENT, methods=["POST"])
    async def post(self, request: IRequest, grant_id: str) -> bytes:
        fields, loaded = await self.posted_form(request, grant_id)
        if loaded.fallback is not None:
            return loaded.fallback
        result = await self._handler.consent(
            grant_id, loaded.session, requester(request), allow=not is_rejection(fields)
        )
        return self._answer(request, result, loaded.session)

    def _answer(
        self, request: IRequest, result: ConsentView | Callback | str, session: BrowserSession | None
    ) -> bytes:
        if isinstance(result, str):
            return redirect(request, result)
        if isinstance(result, Callback):
            return send_callback(self.templates, request, result)
        return self.render_view(request, result, session, ConsentContext, self.templates.render_consent)
