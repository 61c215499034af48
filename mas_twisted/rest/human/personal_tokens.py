# SPDX-License-Identifier: AGPL-3.0-only
"""``/account/personal-tokens``: the signed-in user's personal access tokens (beyond MAS, its
issue #4492; the rules are in ``handlers/personal_tokens.py``).

Request:  GET  /account/personal-tokens
Response: 200 the page (the user's tokens, no token values, and the creation form); signed out:
          303 to ``/login``; a locked, deactivated or ended session: that page.

Request:  POST /account/personal-tokens  (form: csrf, name, scope…, expires_days)
Response: 200 the page with the new token shown this once; a refused form: 400 the page with its
          errors. Without a valid CSRF token: 400 and nothing changes.

Request:  POST /account/personal-tokens/<session_id>/revoke  (form: csrf)
Response: 303 back to the page; a session that is unknown, not the user's or already revoked:
          404. Without a valid CSRF token: 400 and nothing changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import PageError
from mas_twisted.handlers.personal_tokens import EXPIRY_DAYS, Created
from mas_twisted.oauth2.scope import describe_scopes
from mas_twisted.rest._base import html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import first, form_params, frame_protect, redirect
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.templating import PersonalTokenRow, PersonalTokensContext
from mas_twisted.templating.forms import FormState

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession


class PersonalTokensResource:
    """The personal access tokens page and its two forms."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._handler = server.get_personal_tokens_handler()

    async def _page(
        self,
        request: IRequest,
        session: BrowserSession,
        *,
        form: FormState | None = None,
        created: Created | None = None,
        code: int = 200,
    ) -> bytes:
        user = session.user
        choices = [
            (scope, ", ".join(d.description for d in describe_scopes([scope])))
            for scope in self._handler.scope_choices(user)
        ]
        ctx = PersonalTokensContext(
            csrf_token=self._cookies.csrf_token(request),
            current_session=session,
            tokens=[PersonalTokenRow.of(item) for item in await self._handler.list_tokens(user)],
            scope_choices=choices,
            expiry_days=EXPIRY_DAYS,
            form=form or FormState(values={"expires_days": "30"}),
            created_token=created.token if created is not None else None,
            created_name=created.session.session.human_name if created is not None else None,
        )
        frame_protect(request)
        request.setHeader(b"Cache-Control", b"no-store")
        return html_response(request, self.templates.render_personal_tokens(ctx), code)

    @app.route(urls.ACCOUNT_PERSONAL_TOKENS, methods=["GET"])
    async def get(self, request: IRequest) -> bytes:
        loaded = await load_session_or_fallback(self.server, request)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is None:
            return redirect(request, self._url_builder.login())
        return await self._page(request, loaded.session)

    @app.route(urls.ACCOUNT_PERSONAL_TOKENS, methods=["POST"])
    async def create(self, request: IRequest) -> bytes:
        fields = form_params(request, single=("csrf", "name", "expires_days"))
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        loaded = await load_session_or_fallback(self.server, request)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is None:
            return redirect(request, self._url_builder.login())
        result = await self._handler.create(loaded.session.user, fields)
        if isinstance(result, FormState):
            return await self._page(request, loaded.session, form=result, code=400)
        return await self._page(request, loaded.session, created=result)

    @app.route(urls.ACCOUNT_PERSONAL_TOKEN_REVOKE, methods=["POST"])
    async def revoke(self, request: IRequest, session_id: str) -> bytes:
        fields = form_params(request, single=("csrf",))
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        loaded = await load_session_or_fallback(self.server, request)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is None:
            return redirect(request, self._url_builder.login())
        if not await self._handler.revoke(loaded.session.user, session_id):
            raise PageError("No such personal access token", code=404)
        return redirect(request, self._url_builder.relative(urls.ACCOUNT_PERSONAL_TOKENS))
