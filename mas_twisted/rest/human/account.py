# SPDX-License-Identifier: AGPL-3.0-only
"""The account pages, ``/account/…`` (MAS's account SPA, ``frontend/src/routes/_account.*``,
served as pages that work without JavaScript; inventory §4). The rules are in
:mod:`mas_twisted.handlers.account`.

Every page needs a signed-in browser: without one it redirects to ``/login`` with the
post-auth action ``manage_account`` (``change_password`` for the password page) carrying the
MSC4191 action, so that signing in comes back. Every state change is a POST with the page's
CSRF token (400 page without it, nothing changed); a switched-off feature answers a 403 page.
Ids of another user's sessions or devices are 404s, as unknown ones.

Request:  GET /account/[?action=…&device_id=…]
Response: 200 the profile page; with an MSC4191 ``action``, 303 to its page: ``profile`` →
          ``/account/``, ``sessions_list`` (and ``devices_list``) → ``/account/sessions``,
          ``session_view`` (``device_view``) → ``/account/devices/<device_id>``,
          ``session_end`` (``device_delete``) → ``/account/devices/<device_id>?end=1`` (the
          confirmation), ``org.matrix.cross_signing_reset`` → ``/account/reset-cross-signing``;
          a view or end action without ``device_id`` → ``/account/sessions``.
Request:  POST /account/ (form: csrf, action=set_display_name&display_name |
          action=add_email&email&password → 303 to /account/emails/<id>/verify |
          action=remove_email&email_id)
Request:  GET|POST /account/emails/<id>/verify (code | action=resend): 303 to ``/account/``
          once added, or to ``/account/emails/<id>/in-use`` when another account has it
Request:  GET /account/emails/<id>/in-use
Request:  GET /account/sessions; GET|POST /account/sessions/browsers (action=end_others)
Request:  GET|POST /account/sessions/<id>, /account/devices/<device_id> (action=end | rename&name)
Request:  GET|POST /account/password/change (current_password, new_password, new_password_confirm)
Request:  GET|POST /account/reset-cross-signing
Request:  GET|POST /account/deactivate (password, erase, confirm): 303 to ``/account/``, which
          then shows ``pages/account/deactivated.html``
Request:  GET /.well-known/change-password → 303 to ``/account/password/change``
Request:  GET /account/plan: ``experimental.plan_management_iframe_uri`` framed, the page's CSP
          ``frame-src`` being exactly that origin (404 when unset)
Request:  GET /account/connected-accounts[?unlinked=<provider_id>]: the user's upstream links
          and a "Link" button per enabled provider not linked yet, which starts
          ``/upstream/authorize/<id>?kind=manage_account`` while signed in (the suggest-link page
          then attaches the new link; beyond MAS: #3135, #4495); 404 without providers
Request:  POST /account/connected-accounts/<link_id>/unlink (csrf): 303 back to the tab; 400 the
          tab with an explanation when it is the last way to sign in; another user's link: 404
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import NotFoundError
from mas_twisted.handlers.account import AccountHandler, FeatureDisabledError
from mas_twisted.handlers.upstream_oauth2 import UnlinkOutcome
from mas_twisted.rest._base import form_action_source, html_response
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
    AccountConnectedAccountsContext,
    AccountCrossSigningResetContext,
    AccountDeactivateContext,
    AccountEmailInUseContext,
    AccountEmailVerifyContext,
    AccountNavEntry,
    AccountPasswordContext,
    AccountPlanContext,
    AccountProfileContext,
    AccountSessionContext,
    AccountSessionsContext,
    ConnectedAccountRow,
    FormState,
    ProviderLink,
    account_nav,
)
from mas_twisted.types.account import AccountSession, SessionKind
from mas_twisted.urls import PostAuthAction

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

_PROFILE_ACTIONS = frozenset({"org.matrix.profile", "profile"})
_LIST_ACTIONS = frozenset({"org.matrix.devices_list", "org.matrix.sessions_list", "sessions_list"})
_VIEW_ACTIONS = frozenset({"org.matrix.device_view", "org.matrix.session_view", "session_view"})
_END_ACTIONS = frozenset({"org.matrix.device_delete", "org.matrix.session_end", "session_end"})
_CROSS_SIGNING_RESET = "org.matrix.cross_signing_reset"


def account_action_path(action: PostAuthAction) -> str | None:
    """Where an MSC4191 action of ``/account/?action=…`` is carried out (``None``: here)."""
    name = action.account_action
    if name is None or name in _PROFILE_ACTIONS:
        return None
    if name in _LIST_ACTIONS:
        return urls.ACCOUNT_SESSIONS
    if name == _CROSS_SIGNING_RESET:
        return urls.ACCOUNT_RESET_CROSS_SIGNING
    if action.device_id is None:
        return urls.ACCOUNT_SESSIONS
    device_page = urls.path_for(urls.ACCOUNT_DEVICE, device_id=action.device_id)
    if name in _END_ACTIONS:
        return f"{device_page}?end=1"
    return device_page


def _with_problems(form: FormState, problems: dict[str | None, str]) -> FormState:
    for field, code in problems.items():
        form = form.with_form_error(code) if field is None else form.with_field_error(field, code)
    return form


class AccountResource:
    """The pages under ``/account/`` (exact routes: other paths are the 404 page)."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._handler: AccountHandler = server.get_account_handler()
        self._features = server.get_site_features()

    # -- shared ---------------------------------------------------------------------------
    async def _signed_in(
        self, request: IRequest, action: PostAuthAction | None = None
    ) -> tuple[BrowserSession | None, bytes | None]:
        """The active browser session, or the answer instead (the login redirect, or the
        locked/deactivated page)."""
        action = action or PostAuthAction(kind=urls.MANAGE_ACCOUNT)
        loaded = await load_session_or_fallback(self.server, request, action)
        if loaded.fallback is not None:
            return None, loaded.fallback
        if loaded.session is None:
            return None, redirect(request, urls.login_url(self._url_builder, action))
        return loaded.session, None

    def _nav(self) -> tuple[AccountNavEntry, ...]:
        return account_nav(
            {
                "password_change": self._handler.password_change_allowed,
                "plan": self._handler.plan_management_iframe_uri is not None,
                "two_factor": self.server.config.experimental.mfa.enabled,
                "connected_accounts": self._features.connected_accounts,
            }
        )

    def _csrf(self, request: IRequest) -> str:
        return self._cookies.csrf_token(request)

    def _check_csrf(self, request: IRequest) -> dict[str, list[str]]:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        return fields

    def _go(self, request: IRequest, path: str, query: dict[str, str] | None = None) -> bytes:
        return redirect(request, self._url_builder.relative(path, query))

    # -- profile --------------------------------------------------------------------------
    @app.route(urls.ACCOUNT, methods=["GET"])
    async def index(self, request: IRequest) -> bytes:
        query = single(query_params(request))
        action = PostAuthAction.from_params({**query, "kind": urls.MANAGE_ACCOUNT})
        session, answer = await self._signed_in(request, action)
        if session is None:
            return answer or b""
        target = account_action_path(action) if action is not None else None
        if target is None and query.get("action") in _VIEW_ACTIONS | _END_ACTIONS:
            # A device action without its device_id: the list to pick the device from.
            target = urls.ACCOUNT_SESSIONS
        if target is not None:
            return redirect(request, self._url_builder.relative(target))
        notice = query.get("email")
        return await self._render_profile(
            request,
            session,
            saved=query.get("saved") == "1",
            email_notice=notice if notice in ("added", "removed", "email_required") else None,
        )

    @app.route(urls.ACCOUNT, methods=["POST"])
    async def index_submit(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        fields = self._check_csrf(request)
        action = first(fields, "action")
        if action == "add_email":
            return await self._add_email(request, session, fields)
        if action == "remove_email":
            problem = await self._handler.remove_email(session.user, first(fields, "email_id") or "")
            return self._go(request, urls.ACCOUNT, {"email": problem or "removed"})
        if action != "set_display_name":
            return await self._render_profile(request, session, form=FormState().with_form_error("invalid"))
        display_name = first(fields, "display_name") or ""
        problem = await self._handler.set_display_name(session.user, display_name)
        if problem is not None:
            form = FormState.from_form({"display_name": display_name}).with_field_error(
                "display_name", problem
            )
            return await self._render_profile(request, session, form=form)
        return self._go(request, urls.ACCOUNT, {"saved": "1"})

    async def _render_profile(
        self,
        request: IRequest,
        session: BrowserSession,
        *,
        form: FormState | None = None,
        saved: bool = False,
        email_form: FormState | None = None,
        email_notice: str | None = None,
    ) -> bytes:
        user = session.user
        profile = await self._handler.load_profile(user)
        emails = await self.server.get_stores().user_emails.list_user_emails(user.id)
        if form is None:
            form = FormState().with_value("display_name", profile.display_name)
        ctx = AccountProfileContext(
            csrf_token=self._csrf(request),
            user=user,
            nav=self._nav(),
            profile=profile,
            emails=emails,
            displayname_change_allowed=self._handler.displayname_change_allowed,
            account_deactivation_allowed=self._handler.account_deactivation_allowed,
            form=form,
            saved=saved,
            email_change_allowed=self._handler.email_change_allowed,
            has_password=await self._handler.has_password(user),
            email_required=self._handler.email_required,
            email_form=email_form or FormState(),
            email_notice=email_notice,
        )
        return html_response(request, self.templates.render_account_profile(ctx))

    # -- emails ---------------------------------------------------------------------------
    async def _add_email(
        self, request: IRequest, session: BrowserSession, fields: dict[str, list[str]]
    ) -> bytes:
        email = first(fields, "email") or ""
        authentication, problems = await self._handler.start_add_email(
            session.user,
            session,
            email,
            first(fields, "password") or "",
            client_ip=client_ip(request),
            user_agent=user_agent(request),
        )
        if authentication is None:
            form = _with_problems(FormState.from_form({"email": email}), problems)
            return await self._render_profile(request, session, email_form=form)
        return self._go(request, urls.path_for(urls.ACCOUNT_EMAIL_VERIFY, id=authentication.id))

    @app.route(urls.ACCOUNT_EMAIL_VERIFY, methods=["GET"])
    async def email_verify_page(self, request: IRequest, id: str) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        authentication = await self._handler.load_email_authentication(session.user, id)
        if authentication.completed_at is not None:
            return self._go(request, urls.ACCOUNT)
        return self._render_email_verify(request, session, authentication.email, FormState())

    @app.route(urls.ACCOUNT_EMAIL_VERIFY, methods=["POST"])
    async def email_verify_submit(self, request: IRequest, id: str) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        fields = self._check_csrf(request)
        authentication = await self._handler.load_email_authentication(session.user, id)
        if first(fields, "action") == "resend":
            problems = await self._handler.resend_email_code(session.user, authentication, client_ip(request))
            form = _with_problems(FormState(), problems)
            return self._render_email_verify(
                request, session, authentication.email, form, resent=not problems
            )
        outcome, problems = await self._handler.submit_email_code(
            session.user, authentication, first(fields, "code") or ""
        )
        if outcome is None:
            form = _with_problems(FormState(), problems)
            return self._render_email_verify(request, session, authentication.email, form)
        if outcome == "in_use":
            return self._go(request, urls.path_for(urls.ACCOUNT_EMAIL_IN_USE, id=authentication.id))
        return self._go(request, urls.ACCOUNT, {"email": "added"} if outcome == "added" else None)

    @app.route(urls.ACCOUNT_EMAIL_IN_USE, methods=["GET"])
    async def email_in_use(self, request: IRequest, id: str) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        authentication = await self._handler.load_email_authentication(session.user, id)
        ctx = AccountEmailInUseContext(
            csrf_token=self._csrf(request), user=session.user, nav=self._nav(), email=authentication.email
        )
        return html_response(request, self.templates.render_account_email_in_use(ctx))

    def _render_email_verify(
        self, request: IRequest, session: BrowserSession, email: str, form: FormState, *, resent: bool = False
    ) -> bytes:
        ctx = AccountEmailVerifyContext(
            csrf_token=self._csrf(request),
            user=session.user,
            nav=self._nav(),
            email=email,
            form=form,
            resent=resent,
        )
        return html_response(request, self.templates.render_account_email_verify(ctx))

    # -- sessions -------------------------------------------------------------------------
    @app.route(urls.ACCOUNT_SESSIONS, methods=["GET"])
    async def sessions(self, request: IRequest) -> bytes:
        return await self._render_sessions(request, browsers_only=False)

    @app.route(urls.ACCOUNT_BROWSER_SESSIONS, methods=["GET"])
    async def browsers(self, request: IRequest) -> bytes:
        return await self._render_sessions(request, browsers_only=True)

    @app.route(urls.ACCOUNT_BROWSER_SESSIONS, methods=["POST"])
    async def browsers_submit(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        fields = self._check_csrf(request)
        signed_out = None
        if first(fields, "action") == "end_others":
            signed_out = await self._handler.end_other_browser_sessions(session.user, session)
        return await self._render_sessions(request, browsers_only=True, signed_out=signed_out)

    async def _render_sessions(
        self, request: IRequest, *, browsers_only: bool, signed_out: int | None = None
    ) -> bytes:
        session, answer = await self._signed_in(
            request, PostAuthAction(kind=urls.MANAGE_ACCOUNT, account_action="org.matrix.sessions_list")
        )
        if session is None:
            return answer or b""
        sessions = await self._handler.list_sessions(session.user, session)
        if browsers_only:
            sessions = [s for s in sessions if s.kind is SessionKind.BROWSER]
        ctx = AccountSessionsContext(
            csrf_token=self._csrf(request),
            user=session.user,
            nav=self._nav(),
            sessions=sessions,
            browsers_only=browsers_only,
            signed_out=signed_out,
        )
        return html_response(request, self.templates.render_account_sessions(ctx))

    @app.route(urls.ACCOUNT_SESSION, methods=["GET"])
    async def session_page(self, request: IRequest, id: str) -> bytes:
        current, answer = await self._signed_in(request)
        if current is None:
            return answer or b""
        found = await self._handler.find_session(current.user, current, id)
        return self._render_session(request, current, found, urls.path_for(urls.ACCOUNT_SESSION, id=id))

    @app.route(urls.ACCOUNT_SESSION, methods=["POST"])
    async def session_submit(self, request: IRequest, id: str) -> bytes:
        current, answer = await self._signed_in(request)
        if current is None:
            return answer or b""
        fields = self._check_csrf(request)
        found = await self._handler.find_session(current.user, current, id)
        return await self._session_action(
            request, current, found, fields, urls.path_for(urls.ACCOUNT_SESSION, id=id)
        )

    @app.route(urls.ACCOUNT_DEVICE, methods=["GET"])
    async def device_page(self, request: IRequest, device_id: str) -> bytes:
        action = PostAuthAction(
            kind=urls.MANAGE_ACCOUNT, account_action="org.matrix.device_view", device_id=device_id
        )
        current, answer = await self._signed_in(request, action)
        if current is None:
            return answer or b""
        found = await self._handler.find_device(current.user, device_id)
        confirm = single(query_params(request)).get("end") == "1"
        path = urls.path_for(urls.ACCOUNT_DEVICE, device_id=device_id)
        return self._render_session(request, current, found, path, confirm_end=confirm)

    @app.route(urls.ACCOUNT_DEVICE, methods=["POST"])
    async def device_submit(self, request: IRequest, device_id: str) -> bytes:
        current, answer = await self._signed_in(request)
        if current is None:
            return answer or b""
        fields = self._check_csrf(request)
        found = await self._handler.find_device(current.user, device_id)
        path = urls.path_for(urls.ACCOUNT_DEVICE, device_id=device_id)
        return await self._session_action(request, current, found, fields, path)

    async def _session_action(
        self,
        request: IRequest,
        current: BrowserSession,
        found: AccountSession,
        fields: dict[str, list[str]],
        path: str,
    ) -> bytes:
        action = first(fields, "action")
        if action == "end" and not found.is_current:
            await self._handler.end_session(current.user, found)
            return self._go(request, urls.ACCOUNT_SESSIONS)
        if action == "rename":
            name = first(fields, "name") or ""
            problem = await self._handler.rename_device(current.user, found, name)
            if problem is None:
                renamed = await self._handler.find_session(current.user, current, found.id)
                return self._render_session(request, current, renamed, path, renamed_ok=True)
            form = FormState.from_form({"name": name}).with_field_error("name", problem)
            return self._render_session(request, current, found, path, form=form)
        return self._render_session(
            request, current, found, path, form=FormState().with_form_error("invalid")
        )

    def _render_session(
        self,
        request: IRequest,
        current: BrowserSession,
        found: AccountSession,
        path: str,
        *,
        confirm_end: bool = False,
        form: FormState | None = None,
        renamed_ok: bool = False,
    ) -> bytes:
        ctx = AccountSessionContext(
            csrf_token=self._csrf(request),
            user=current.user,
            nav=self._nav(),
            session=found,
            action_path=path,
            confirm_end=confirm_end,
            form=form if form is not None else FormState().with_value("name", found.name),
            renamed=renamed_ok,
        )
        return html_response(request, self.templates.render_account_session(ctx))

    # -- password -------------------------------------------------------------------------
    @app.route(urls.CHANGE_PASSWORD_DISCOVERY, methods=["GET"])
    def change_password_discovery(self, request: IRequest) -> bytes:
        """``/.well-known/change-password`` (the W3C well-known URL): the password page."""
        return self._go(request, urls.ACCOUNT_PASSWORD_CHANGE)

    @app.route(urls.ACCOUNT_PASSWORD_CHANGE, methods=["GET"])
    async def password_page(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request, PostAuthAction(kind=urls.CHANGE_PASSWORD))
        if session is None:
            return answer or b""
        if not self._handler.password_change_allowed:
            raise NotFoundError(debug="password changes are switched off")
        changed = single(query_params(request)).get("changed") == "1"
        return self._render_password(request, session, FormState(), changed=changed)

    @app.route(urls.ACCOUNT_PASSWORD_CHANGE, methods=["POST"])
    async def password_submit(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request, PostAuthAction(kind=urls.CHANGE_PASSWORD))
        if session is None:
            return answer or b""
        fields = self._check_csrf(request)
        problems = await self._handler.change_password(
            session.user,
            first(fields, "current_password") or "",
            first(fields, "new_password") or "",
            first(fields, "new_password_confirm") or "",
        )
        if problems:
            return self._render_password(request, session, _with_problems(FormState(), problems))
        return self._go(request, urls.ACCOUNT_PASSWORD_CHANGE, {"changed": "1"})

    def _render_password(
        self, request: IRequest, session: BrowserSession, form: FormState, *, changed: bool = False
    ) -> bytes:
        ctx = AccountPasswordContext(
            csrf_token=self._csrf(request),
            user=session.user,
            nav=self._nav(),
            form=form,
            changed=changed,
            minimum_complexity=self.server.get_password_manager().minimum_complexity,
        )
        return html_response(request, self.templates.render_account_password(ctx))

    # -- cross-signing reset --------------------------------------------------------------
    @app.route(urls.ACCOUNT_RESET_CROSS_SIGNING, methods=["GET"])
    async def cross_signing_page(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(
            request, PostAuthAction(kind=urls.MANAGE_ACCOUNT, account_action=_CROSS_SIGNING_RESET)
        )
        if session is None:
            return answer or b""
        return self._render_cross_signing(request, session, None)

    @app.route(urls.ACCOUNT_RESET_CROSS_SIGNING, methods=["POST"])
    async def cross_signing_submit(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        self._check_csrf(request)
        allowed = await self._handler.allow_cross_signing_reset(session.user)
        return self._render_cross_signing(request, session, "allowed" if allowed else "failed")

    def _render_cross_signing(self, request: IRequest, session: BrowserSession, outcome: str | None) -> bytes:
        ctx = AccountCrossSigningResetContext(
            csrf_token=self._csrf(request), user=session.user, nav=self._nav(), outcome=outcome
        )
        return html_response(request, self.templates.render_account_reset_cross_signing(ctx))

    # -- deactivation ---------------------------------------------------------------------
    @app.route(urls.ACCOUNT_DEACTIVATE, methods=["GET"])
    async def deactivate_page(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        if not self._handler.account_deactivation_allowed:
            raise NotFoundError(debug="account deactivation is switched off")
        return await self._render_deactivate(request, session, FormState())

    @app.route(urls.ACCOUNT_DEACTIVATE, methods=["POST"])
    async def deactivate_submit(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        fields = self._check_csrf(request)
        if not self._handler.account_deactivation_allowed:
            raise FeatureDisabledError("Deleting the account")
        if first(fields, "confirm") != "on":
            return await self._render_deactivate(
                request, session, FormState().with_form_error("confirm_required")
            )
        problem = await self._handler.deactivate(
            session.user, first(fields, "password") or "", erase=first(fields, "erase") == "on"
        )
        if problem is not None:
            return await self._render_deactivate(
                request, session, FormState().with_field_error("password", problem)
            )
        # The session's user is deactivated now: the account page shows the deactivated page.
        return self._go(request, urls.ACCOUNT)

    async def _render_deactivate(self, request: IRequest, session: BrowserSession, form: FormState) -> bytes:
        ctx = AccountDeactivateContext(
            csrf_token=self._csrf(request),
            user=session.user,
            nav=self._nav(),
            has_password=await self._handler.has_password(session.user),
            form=form,
        )
        return html_response(request, self.templates.render_account_deactivate(ctx))

    # -- plan -----------------------------------------------------------------------------
    @app.route(urls.ACCOUNT_PLAN, methods=["GET"])
    async def plan(self, request: IRequest) -> bytes:
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        iframe_uri = self._handler.plan_management_iframe_uri
        if iframe_uri is None:
            raise NotFoundError(debug="experimental.plan_management_iframe_uri is not set")
        ctx = AccountPlanContext(
            csrf_token=self._csrf(request), user=session.user, nav=self._nav(), iframe_uri=iframe_uri
        )
        return html_response(
            request, self.templates.render_account_plan(ctx), frame_src=(form_action_source(iframe_uri),)
        )

    # -- connected accounts (upstream links) ------------------------------------------------
    @app.route(urls.ACCOUNT_UPSTREAM_LINKS, methods=["GET"])
    async def connected_accounts(self, request: IRequest) -> bytes:
        self._require_connected_accounts()
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        unlinked = single(query_params(request)).get("unlinked")
        return await self._render_connected_accounts(request, session, unlinked_provider_id=unlinked)

    @app.route(urls.ACCOUNT_UPSTREAM_UNLINK, methods=["POST"])
    async def unlink(self, request: IRequest, link_id: str) -> bytes:
        self._require_connected_accounts()
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        self._check_csrf(request)
        upstream = self.server.get_upstream_oauth2_handler()
        providers = {link.id: link.provider_id for link, _ in await upstream.list_user_links(session.user.id)}
        outcome = await upstream.unlink_from_account(session.user.id, link_id)
        if outcome is UnlinkOutcome.LAST_WAY_IN:
            return await self._render_connected_accounts(request, session, last_way_in=True, code=400)
        provider_id = providers.get(link_id)
        return self._go(
            request,
            urls.ACCOUNT_UPSTREAM_LINKS,
            {"unlinked": provider_id} if provider_id is not None else None,
        )

    def _require_connected_accounts(self) -> None:
        if not self._features.connected_accounts:
            raise NotFoundError(debug="no upstream provider is configured")

    async def _render_connected_accounts(
        self,
        request: IRequest,
        session: BrowserSession,
        *,
        unlinked_provider_id: str | None = None,
        last_way_in: bool = False,
        code: int = 200,
    ) -> bytes:
        self._require_connected_accounts()
        upstream = self.server.get_upstream_oauth2_handler()
        found = await upstream.connected_accounts(session.user.id)
        unlinked = None
        if unlinked_provider_id is not None:
            provider = next((p for p in found.available if p.id == unlinked_provider_id), None)
            unlinked = ProviderLink.from_provider(provider).name if provider is not None else None
        ctx = AccountConnectedAccountsContext(
            csrf_token=self._csrf(request),
            user=session.user,
            nav=self._nav(),
            links=[
                ConnectedAccountRow(
                    link_id=link.id,
                    provider=ProviderLink.from_provider(provider) if provider is not None else None,
                    account_name=link.human_account_name,
                    linked_at=link.created_at,
                )
                for link, provider in found.links
            ],
            available=[ProviderLink.from_provider(p) for p in found.available],
            unlinked=unlinked,
            last_way_in=last_way_in,
        )
        return html_response(request, self.templates.render_account_connected_accounts(ctx), code)
