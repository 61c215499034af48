# SPDX-License-Identifier: AGPL-3.0-only
"""``GET|POST /login``: the password login page (MAS's ``crates/handlers/src/views/login.rs``).

Request:  GET /login?kind=continue_authorization_grant&id=01H…[&login_hint=mxid:@alice:example.com]
Response: 200 page with the form (and the enabled upstream providers, once the upstream
          login route is mounted); 303 to where the post-auth action continues when already
          signed in; 303 straight to the provider when password login is off and exactly one
          provider is enabled (again only with that route); the locked,
          deactivated or logged-out page when the session cookie names such a session.

Request:  POST /login?kind=…&id=…  (form: csrf, username, password)
Response: 303 to the post-auth action (or ``/``) with the ``session`` cookie set; else 200
          with the form again and an error: a required field left empty, invalid
          credentials (unknown user, no password, wrong password: never which), or too many
          attempts (``rate_limiting.login`` per IP and per account); the locked or
          deactivated page once the password matched; 400 without a valid CSRF token (nothing
          is checked then); 405 when password login is off.

``username`` may be a username, ``@user:<our server>``, or with
``account.login_with_email_allowed`` a verified email address.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.login import LoginOutcome, PostAuthDescription
from mas_twisted.rest._base import FORM_ACTION_SELF, form_action_source, html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers, render_error_page
from mas_twisted.rest.human._forms import (
    client_ip,
    first,
    form_params,
    query_params,
    redirect,
    single,
    user_agent,
)
from mas_twisted.rest.human._session import load_session_or_fallback, render_account_inactive
from mas_twisted.rest.human.two_factor import set_pending_login
from mas_twisted.templating import FormState, LoginContext, PostAuthContext, ProviderLink, simplify_url
from mas_twisted.urls import PostAuthAction, go_next

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.upstream import UpstreamOAuthProvider

logger = logging.getLogger(__name__)


class LoginResource:
    """The login page."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._login = server.get_login_handler()
        self._features = server.get_site_features()

    @app.route(urls.LOGIN, methods=["GET"])
    async def get(self, request: IRequest) -> bytes:
        query = query_params(request)
        action = PostAuthAction.from_params(single(query))
        loaded = await load_session_or_fallback(self.server, request, action)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is not None:
            return redirect(request, go_next(action, self._url_builder))

        providers = await self._providers()
        sole = self._login.sole_provider(providers)
        if sole is not None:
            target = self._url_builder.relative(
                urls.path_for(urls.UPSTREAM_OAUTH2_AUTHORIZE, provider_id=sole.id),
                action.to_params() if action is not None else None,
            )
            return redirect(request, target)

        form = FormState()
        hinted = self._login.username_from_login_hint(first(query, "login_hint"))
        if hinted is not None:
            form = form.with_value("username", hinted)
        return await self._render(request, form, action, [ProviderLink.from_provider(p) for p in providers])

    @app.route(urls.LOGIN, methods=["POST"])
    async def post(self, request: IRequest) -> bytes:
        if not self._login.password_login_enabled:
            return render_error_page(
                self.templates, request, 405, "Password login is disabled on this server."
            )
        action = PostAuthAction.from_params(single(query_params(request)))
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))

        username = first(fields, "username") or ""
        password = first(fields, "password") or ""
        form = FormState.from_form({"username": username})
        if not username:
            form = form.with_field_error("username", "required")
        if not password:
            form = form.with_field_error("password", "required")
        if not form.is_valid:
            return await self._render(request, form, action)

        result = await self._login.login_with_password(
            username, password, client_ip=client_ip(request), user_agent=user_agent(request)
        )
        if result.outcome in (LoginOutcome.LOCKED, LoginOutcome.DEACTIVATED):
            assert result.user is not None
            return render_account_inactive(self.server, request, result.user, action)
        if result.outcome is LoginOutcome.SECOND_FACTOR_REQUIRED:
            assert result.user is not None
            set_pending_login(self.server, request, result.user.id, result.user_password_id)
            return redirect(
                request,
                self._url_builder.relative(
                    urls.LOGIN_SECOND_FACTOR, action.to_params() if action is not None else None
                ),
            )
        if result.outcome is not LoginOutcome.SUCCESS:
            return await self._render(request, form.with_form_error(result.outcome.value), action)

        assert result.session is not None
        self._cookies.set_session(request, result.session)
        return redirect(request, go_next(action, self._url_builder))

    async def _render(
        self,
        request: IRequest,
        form: FormState,
        action: PostAuthAction | None,
        providers: list[ProviderLink] | None = None,
    ) -> bytes:
        if providers is None:
            providers = [ProviderLink.from_provider(p) for p in await self._providers()]
        described = await self._login.describe_post_auth_action(action)
        ctx = LoginContext(
            csrf_token=self._cookies.csrf_token(request),
            form=form,
            next=self._post_auth_context(described),
            providers=providers,
        )
        # A successful login redirects on, possibly to the client: its form may end there.
        form_action = [FORM_ACTION_SELF]
        if described is not None and described.redirect_uri is not None:
            form_action.append(form_action_source(described.redirect_uri))
        return html_response(request, self.templates.render_login(ctx), form_action=form_action)

    async def _providers(self) -> list[UpstreamOAuthProvider]:
        """The providers to offer: none while no route serves the upstream login."""
        if not self._features.upstream_login:
            return []
        return await self._login.list_login_providers()

    @staticmethod
    def _post_auth_context(described: PostAuthDescription | None) -> PostAuthContext | None:
        """What the page says it continues to (the login handler describes the action)."""
        if described is None:
            return None
        client_name = described.client_name
        if described.sso_redirect_uri is not None:
            client_name = simplify_url(described.sso_redirect_uri)
        return PostAuthContext(action=described.action, client_name=client_name)
