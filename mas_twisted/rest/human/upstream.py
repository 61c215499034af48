# SPDX-License-Identifier: AGPL-3.0-only
"""``/upstream/authorize/<id>``, ``/upstream/callback/<id>`` and ``/upstream/link/<id>``
(MAS's ``crates/handlers/src/upstream_oauth2/``); the rules are in
:mod:`mas_twisted.handlers.upstream_oauth2`.

Request:  GET /upstream/authorize/<provider_id>[?kind=…&id=…][&login_hint=…]
Response: 303 to the provider's authorization endpoint, the attempt recorded in the
          ``upstream-oauth2-sessions`` cookie; 404 page for an unknown or disabled provider;
          502 page naming the provider when its discovery fails.

Request:  GET /upstream/callback/<provider_id>?state=…&code=…   (response_mode=query)
          POST /upstream/callback/<provider_id>  (form: state, code; response_mode=form_post)
Response: 303 to ``/upstream/link/<link_id>``; 400 page for a state this browser did not
          start, a replayed callback or the provider's own error; 502 page naming the provider
          when the code exchange or a token check fails (nothing written then). A form_post
          arriving without our (SameSite=Lax) cookie is posted again from our own page, as
          MAS does, so that the browser sends it.

Request:  GET /upstream/link/<link_id>
Response: 303 on to the post-auth action once signed in (a linked user, or ``skip_confirmation``);
          200 ``link_mismatch`` / ``suggest_link`` / ``do_register`` pages.

Request:  POST /upstream/link/<link_id> (form: csrf, action=register&username&import_display_name&import_email | action=link)
Response: 303 on to the post-auth action with the session cookie set; 200 do-register page
          with its errors; 400 page without a valid CSRF token.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import PageError
from mas_twisted.handlers.upstream_oauth2 import (
    SESSION_TTL_MS,
    LinkOutcome,
    LinkPage,
    RegisterForm,
    RegistrationImports,
)
from mas_twisted.rest._base import html_response, install_oauth2_error_handlers
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import (
    client_ip,
    first,
    form_params,
    query_params,
    redirect,
    single,
    user_agent,
)
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.templating import (
    FormPostContext,
    FormState,
    MatrixUser,
    ProviderLink,
    UpstreamImportContext,
    UpstreamLinkMismatchContext,
    UpstreamRegisterContext,
    UpstreamSuggestLinkContext,
)
from mas_twisted.urls import PostAuthAction, go_next

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: The cookie listing this browser's upstream login attempts (MAS's name).
SESSIONS_COOKIE = "upstream-oauth2-sessions"
#: The marker of a form_post callback we posted again ourselves (to get our cookie sent).
_REPOSTED = "_mas_reposted"


class UpstreamOAuth2Resource:
    """The upstream login routes."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._clock = server.get_clock()
        self._url_builder = server.get_url_builder()
        self._handler = server.get_upstream_oauth2_handler()
        self._server_name: str = server.config.matrix.homeserver

    # -- the sessions cookie --------------------------------------------------------------
    def _entries(self, request: IRequest) -> list[dict[str, Any]]:
        payload = self._cookies.load(request, SESSIONS_COOKIE)
        if not isinstance(payload, list):
            return []
        now = self._clock.time_msec()
        return [
            e
            for e in payload
            if isinstance(e, dict)
            and isinstance(e.get("s"), str)
            and isinstance(e.get("t"), int)
            and now - e["t"] < SESSION_TTL_MS * 6
        ]

    def _save(self, request: IRequest, entries: list[dict[str, Any]]) -> None:
        self._cookies.save(request, SESSIONS_COOKIE, entries[-10:])

    # -- /upstream/authorize --------------------------------------------------------------
    @app.route(urls.UPSTREAM_OAUTH2_AUTHORIZE, methods=["GET"])
    async def authorize(self, request: IRequest, provider_id: str) -> bytes:
        params = single(query_params(request))
        action = PostAuthAction.from_params(params)
        provider = await self._handler.get_provider(provider_id)
        loaded = await self._cookies.load_session(request)
        url, session = await self._handler.start_authorization(
            provider, params, logged_out=loaded.active is None
        )
        entries = self._entries(request)
        entries.append(
            {
                "s": session.id,
                "p": provider.id,
                "st": session.state,
                "l": None,
                "a": action.to_params() if action is not None else None,
                "t": session.created_at,
            }
        )
        self._save(request, entries)
        return redirect(request, url)

    # -- /upstream/callback ---------------------------------------------------------------
    @app.route(urls.UPSTREAM_OAUTH2_CALLBACK, methods=["GET"])
    async def callback_get(self, request: IRequest, provider_id: str) -> bytes:
        return await self._callback(request, provider_id, single(query_params(request)))

    @app.route(urls.UPSTREAM_OAUTH2_CALLBACK, methods=["POST"])
    async def callback_post(self, request: IRequest, provider_id: str) -> bytes:
        fields = single(form_params(request))
        if not self._entries(request) and _REPOSTED not in fields:
            # A cross-site POST carries no SameSite=Lax cookie: post it again from here.
            path = urls.path_for(urls.UPSTREAM_OAUTH2_CALLBACK, provider_id=provider_id)
            ctx = FormPostContext(
                redirect_uri=self._url_builder.relative(path), params={**fields, _REPOSTED: "1"}
            )
            return html_response(request, self.templates.render_form_post(ctx))
        fields.pop(_REPOSTED, None)
        return await self._callback(request, provider_id, fields)

    async def _callback(self, request: IRequest, provider_id: str, params: dict[str, str]) -> bytes:
        provider = await self._handler.get_provider(provider_id)
        state = params.get("state") or ""
        entries = self._entries(request)
        entry = next(
            (
                e
                for e in entries
                if e.get("p") == provider.id
                and isinstance(e.get("st"), str)
                and hmac.compare_digest(e["st"].encode(), state.encode())
            ),
            None,
        )
        if entry is None:
            raise PageError(
                "This sign-in was not started in this browser, or it expired.",
                debug=f"no upstream session in the cookie for provider {provider.id}",
            )
        session = await self.server.get_stores().upstream_oauth_sessions.get_authorization_session(entry["s"])
        if session is None or session.provider_id != provider.id:
            raise PageError("This sign-in is unknown. Start again.")
        link = await self._handler.callback(provider, params, session)
        entry["l"] = link.id
        self._save(request, entries)
        return redirect(
            request, self._url_builder.relative(urls.path_for(urls.UPSTREAM_OAUTH2_LINK, link_id=link.id))
        )

    # -- /upstream/link -------------------------------------------------------------------
    def _entry_for_link(self, request: IRequest, link_id: str) -> dict[str, Any] | None:
        for entry in reversed(self._entries(request)):
            if entry.get("l") == link_id:
                return entry
        return None

    def _action(self, entry: dict[str, Any] | None) -> PostAuthAction | None:
        params = entry.get("a") if entry is not None else None
        return PostAuthAction.from_params(params) if isinstance(params, dict) else None

    def _signed_in(self, request: IRequest, entry: dict[str, Any] | None, browser_session: Any) -> bytes:
        self._cookies.set_session(request, browser_session)
        return redirect(request, go_next(self._action(entry), self._url_builder))

    @app.route(urls.UPSTREAM_OAUTH2_LINK, methods=["GET"])
    async def link(self, request: IRequest, link_id: str) -> bytes:
        entry = self._entry_for_link(request, link_id)
        loaded = await load_session_or_fallback(self.server, request, self._action(entry))
        if loaded.fallback is not None:
            return loaded.fallback
        page = await self._handler.link_page(
            link_id,
            entry["s"] if entry else None,
            loaded.session,
            user_agent=user_agent(request),
            client_ip=client_ip(request),
        )
        return self._render_link_page(request, page, FormState())

    @app.route(urls.UPSTREAM_OAUTH2_LINK, methods=["POST"])
    async def link_submit(self, request: IRequest, link_id: str) -> bytes:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        entry = self._entry_for_link(request, link_id)
        session_id = entry["s"] if entry else None
        loaded = await load_session_or_fallback(self.server, request, self._action(entry))
        if loaded.fallback is not None:
            return loaded.fallback
        action = first(fields, "action")
        if action == "link":
            if loaded.session is None:
                raise PageError("Sign in first to link this account.")
            browser = await self._handler.link_to_current_user(
                link_id,
                session_id,
                loaded.session,
                user_agent=user_agent(request),
                client_ip=client_ip(request),
            )
            return self._signed_in(request, entry, browser)
        if action != "register":
            raise PageError("Unknown action.")
        if loaded.session is not None:
            raise PageError("You are signed in already: sign out to create another account.")
        username = first(fields, "username")
        result = await self._handler.register(
            link_id,
            session_id,
            RegisterForm(
                username=username,
                import_displayname=first(fields, "import_display_name") == "on",
                import_email=first(fields, "import_email") == "on",
                token=first(fields, "token"),
            ),
            user_agent=user_agent(request),
            client_ip=client_ip(request),
        )
        if result.browser_session is not None:
            return self._signed_in(request, entry, result.browser_session)
        form = FormState.from_form({"username": username or ""})
        for field, code in result.errors:
            form = form.with_field_error(field, code)
        page = await self._handler.link_page(
            link_id, session_id, None, user_agent=user_agent(request), client_ip=client_ip(request)
        )
        return self._render_link_page(request, page, form)

    def _render_link_page(self, request: IRequest, page: LinkPage, form: FormState) -> bytes:
        provider = ProviderLink.from_provider(page.provider)
        if page.outcome is LinkOutcome.LOGGED_IN:
            entry = self._entry_for_link(request, page.link.id)
            return self._signed_in(request, entry, page.browser_session)
        if page.outcome is LinkOutcome.LINK_MISMATCH:
            loaded_user = page.linked_user
            assert loaded_user is not None
            assert page.current_user is not None
            ctx = UpstreamLinkMismatchContext(
                provider=provider,
                linked_user=MatrixUser.for_user(loaded_user, self._server_name),
                current_user=MatrixUser.for_user(page.current_user, self._server_name),
            )
            return html_response(request, self.templates.render_upstream_link_mismatch(ctx))
        if page.outcome is LinkOutcome.SUGGEST_LINK:
            assert page.linked_user is not None
            suggest = UpstreamSuggestLinkContext(
                csrf_token=self._cookies.csrf_token(request),
                provider=provider,
                current_user=MatrixUser.for_user(page.linked_user, self._server_name),
            )
            return html_response(request, self.templates.render_upstream_suggest_link(suggest))
        imports = page.imports
        assert imports is not None
        if not form.has_value("username") and imports.localpart.value is not None:
            form = form.with_value("username", imports.localpart.value)
        register = UpstreamRegisterContext(
            csrf_token=self._cookies.csrf_token(request),
            provider=provider,
            form=form,
            localpart=_offer(imports, "localpart"),
            displayname=_offer(imports, "displayname"),
            email=_offer(imports, "email"),
            server_name=self._server_name,
            token_required=imports.token_required,
        )
        return html_response(request, self.templates.render_upstream_register(register))


def _offer(imports: RegistrationImports, key: str) -> UpstreamImportContext | None:
    attribute = getattr(imports, key)
    if not attribute.offered:
        return None
    return UpstreamImportContext(value=attribute.value, forced=attribute.forced)


class UpstreamBackchannelLogoutResource:
    """``POST /upstream/backchannel-logout/<provider_id>`` (form: logout_token): OpenID Connect
    Back-Channel Logout 1.0 §2.5–2.8. 200 with an empty body once handled; 400 OAuth JSON
    (``invalid_request``) for an unknown provider or a token that does not validate."""

    app = Klein()
    install_oauth2_error_handlers(app)

    def __init__(self, server: MasServer):
        self._handler = server.get_upstream_oauth2_handler()

    @app.route(urls.UPSTREAM_OAUTH2_BACKCHANNEL_LOGOUT, methods=["POST"])
    async def logout(self, request: IRequest, provider_id: str) -> bytes:
        fields = form_params(request)
        await self._handler.backchannel_logout(provider_id, first(fields, "logout_token"))
        request.setResponseCode(200)
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Content-Length", b"0")
        return b""
