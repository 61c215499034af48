# SPDX-License-Identifier: AGPL-3.0-only
"""The TOTP second factor's pages (ours, issue 18; ``experimental.mfa``; the rules are in
:mod:`mas_twisted.handlers.mfa`). Both answer the 404 page while ``experimental.mfa.enabled``
is off.

Request:  GET /login/two-factor?kind=…&id=…
Response: 200 the code form, when the ``two-factor-login`` cookie (sealed, 5 minutes, set by
          ``POST /login`` once the password matched) names a user whose password is still the
          one checked; else 303 to ``/login`` with the post-auth action.
Request:  POST /login/two-factor?kind=…&id=…  (form: csrf, code)
Response: 303 to the post-auth action with the ``session`` cookie set, once ``code`` is a
          TOTP code of the current step ±1 that was not used before, or an unused recovery
          code; else 200 the form with the error (also when rate limited). 400 without a
          valid CSRF token (nothing checked).

Request:  GET /account/two-factor
Response: 200 the tab: "set up", the pending enrolment (secret, QR code, confirm form), or
          the recovery code count with the "new codes" and "turn off" forms. Signed out: 303
          to ``/login``.
Request:  POST /account/two-factor  (form: csrf, action=start | confirm&code |
          regenerate&code | disable&password&disable_code)
Response: 200 the tab again: the recovery codes shown once after ``confirm`` and
          ``regenerate``, or the form's errors (400). 400 without a valid CSRF token.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import NotFoundError
from mas_twisted.handlers.mfa import PENDING_LOGIN_TTL_S, SecondFactorOutcome
from mas_twisted.rest._base import FORM_ACTION_SELF, form_action_source, html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import (
    client_ip,
    first,
    form_params,
    frame_protect,
    query_params,
    redirect,
    single,
    user_agent,
)
from mas_twisted.rest.human._session import load_session_or_fallback, render_account_inactive
from mas_twisted.templating import (
    AccountTwoFactorContext,
    FormState,
    LoginSecondFactorContext,
    PostAuthContext,
    account_nav,
    simplify_url,
)
from mas_twisted.urls import PostAuthAction, go_next

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession, User

logger = logging.getLogger(__name__)

#: The sealed cookie carrying a password check that waits for its second factor.
PENDING_COOKIE = "two-factor-login"


def set_pending_login(
    server: MasServer, request: IRequest, user_id: str, user_password_id: str | None
) -> None:
    """Remember (sealed, for :data:`PENDING_LOGIN_TTL_S`) that ``user_id`` passed the password."""
    expires = int(server.get_clock().time()) + PENDING_LOGIN_TTL_S
    server.get_cookie_manager().save(
        request, PENDING_COOKIE, {"user_id": user_id, "password_id": user_password_id, "exp": expires}
    )


class TwoFactorResource:
    """``/login/two-factor`` and ``/account/two-factor``."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._clock = server.get_clock()
        self._mfa = server.get_mfa_handler()
        self._login = server.get_login_handler()
        self._account = server.get_account_handler()

    def _require_enabled(self) -> None:
        if not self._mfa.enabled:
            raise NotFoundError("Two-factor authentication is not enabled on this server")

    # -- login ----------------------------------------------------------------------------
    async def _pending_user(self, request: IRequest) -> tuple[User, str | None] | None:
        payload: Any = self._cookies.load(request, PENDING_COOKIE)
        if not isinstance(payload, dict):
            return None
        user_id, password_id, expires = payload.get("user_id"), payload.get("password_id"), payload.get("exp")
        if not isinstance(user_id, str) or not isinstance(expires, int) or isinstance(expires, bool):
            return None
        if password_id is not None and not isinstance(password_id, str):
            return None
        if int(self._clock.time()) >= expires:
            logger.info("The pending two-factor login of %s expired", user_id)
            return None
        stores = self.server.get_stores()
        user = await stores.users.get_user(user_id)
        if user is None:
            return None
        if password_id is not None:
            # A password changed meanwhile (recovery, another session) voids the check.
            current = await stores.user_passwords.get_active_user_password(user_id)
            if current is None or current.id != password_id:
                logger.info("The pending two-factor login of %s was for a replaced password", user_id)
                return None
        return user, password_id

    @app.route(urls.LOGIN_SECOND_FACTOR, methods=["GET"])
    async def login_page(self, request: IRequest) -> bytes:
        self._require_enabled()
        action = PostAuthAction.from_params(single(query_params(request)))
        pending = await self._pending_user(request)
        if pending is None:
            return redirect(request, urls.login_url(self._url_builder, action))
        return await self._render_login(request, pending[0], FormState(), action)

    @app.route(urls.LOGIN_SECOND_FACTOR, methods=["POST"])
    async def login_submit(self, request: IRequest) -> bytes:
        self._require_enabled()
        action = PostAuthAction.from_params(single(query_params(request)))
        fields = form_params(request, single=(CSRF_FIELD, "code"))
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        pending = await self._pending_user(request)
        if pending is None:
            return redirect(request, urls.login_url(self._url_builder, action))
        user, password_id = pending
        if user.deactivated_at is not None or user.locked_at is not None:
            return render_account_inactive(self.server, request, user, action)
        code = (first(fields, "code") or "").strip()
        if not code:
            return await self._render_login(
                request, user, FormState().with_field_error("code", "required"), action
            )
        outcome, session = await self._mfa.complete_login(
            user, password_id, code, client_ip=client_ip(request), user_agent=user_agent(request)
        )
        if outcome is SecondFactorOutcome.RATE_LIMITED:
            return await self._render_login(request, user, FormState().with_form_error(outcome.value), action)
        if outcome is not SecondFactorOutcome.SUCCESS or session is None:
            return await self._render_login(
                request, user, FormState().with_field_error("code", "invalid_code"), action
            )
        self._cookies.save(request, PENDING_COOKIE, {})
        self._cookies.set_session(request, session)
        return redirect(request, go_next(action, self._url_builder))

    async def _render_login(
        self, request: IRequest, user: User, form: FormState, action: PostAuthAction | None
    ) -> bytes:
        described = await self._login.describe_post_auth_action(action)
        next_ctx = None
        if described is not None:
            client_name = described.client_name
            if described.sso_redirect_uri is not None:
                client_name = simplify_url(described.sso_redirect_uri)
            next_ctx = PostAuthContext(action=described.action, client_name=client_name)
        ctx = LoginSecondFactorContext(
            csrf_token=self._cookies.csrf_token(request), username=user.username, form=form, next=next_ctx
        )
        form_action = [FORM_ACTION_SELF]
        if described is not None and described.redirect_uri is not None:
            form_action.append(form_action_source(described.redirect_uri))
        request.setHeader(b"Cache-Control", b"no-store")
        return html_response(request, self.templates.render_login_second_factor(ctx), form_action=form_action)

    # -- account tab ----------------------------------------------------------------------
    async def _signed_in(self, request: IRequest) -> tuple[BrowserSession | None, bytes | None]:
        action = PostAuthAction(kind=urls.MANAGE_ACCOUNT)
        loaded = await load_session_or_fallback(self.server, request, action)
        if loaded.fallback is not None:
            return None, loaded.fallback
        if loaded.session is None:
            return None, redirect(request, urls.login_url(self._url_builder, action))
        return loaded.session, None

    @app.route(urls.ACCOUNT_TWO_FACTOR, methods=["GET"])
    async def account_page(self, request: IRequest) -> bytes:
        self._require_enabled()
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        return await self._render_account(request, session.user)

    @app.route(urls.ACCOUNT_TWO_FACTOR, methods=["POST"])
    async def account_submit(self, request: IRequest) -> bytes:
        self._require_enabled()
        fields = form_params(request, single=(CSRF_FIELD, "action", "code", "password", "disable_code"))
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        session, answer = await self._signed_in(request)
        if session is None:
            return answer or b""
        user = session.user
        action = first(fields, "action")
        code = (first(fields, "code") or "").strip()
        if action == "start":
            if await self._mfa.start_enrolment(user) is None:
                return await self._render_account(
                    request, user, form=FormState().with_form_error("already_enrolled"), code=400
                )
            return await self._render_account(request, user)
        if action in ("confirm", "regenerate"):
            if action == "confirm":
                result = await self._mfa.confirm_enrolment(user, code)
            else:
                result = await self._mfa.regenerate_recovery_codes(user, code)
            if isinstance(result, str):
                form = (
                    FormState().with_field_error("code", result)
                    if result == "invalid_code"
                    else FormState().with_form_error(result)
                )
                return await self._render_account(request, user, form=form, code=400)
            return await self._render_account(request, user, recovery_codes=result)
        if action == "disable":
            problems = await self._mfa.disable(
                user, first(fields, "password") or "", (first(fields, "disable_code") or "").strip()
            )
            if problems:
                form = FormState()
                for field, problem in problems.items():
                    if field is None:
                        form = form.with_form_error(problem)
                    else:
                        form = form.with_field_error("disable_code" if field == "code" else field, problem)
                return await self._render_account(request, user, form=form, code=400)
            return await self._render_account(request, user, removed=True)
        return await self._render_account(
            request, user, form=FormState().with_form_error("invalid"), code=400
        )

    async def _render_account(
        self,
        request: IRequest,
        user: User,
        *,
        form: FormState | None = None,
        recovery_codes: list[str] | None = None,
        removed: bool = False,
        code: int = 200,
    ) -> bytes:
        status = await self._mfa.status(user)
        enrolment = None
        if status.totp is not None and not status.totp.confirmed:
            enrolment = self._mfa.enrolment_of(user, status.totp)
        ctx = AccountTwoFactorContext(
            csrf_token=self._cookies.csrf_token(request),
            user=user,
            nav=account_nav(
                {
                    "password_change": self._account.password_change_allowed,
                    "plan": self._account.plan_management_iframe_uri is not None,
                    "two_factor": True,
                }
            ),
            enrolled=status.enrolled,
            secret=enrolment.secret if enrolment is not None else None,
            otpauth_uri=enrolment.uri if enrolment is not None else None,
            qr_svg=enrolment.qr_svg if enrolment is not None else None,
            unused_recovery_codes=status.unused_recovery_codes,
            recovery_codes=recovery_codes or (),
            removed=removed,
            form=form or FormState(),
        )
        frame_protect(request)
        # The secret and the recovery codes must not stay in any cache.
        request.setHeader(b"Cache-Control", b"no-store")
        return html_response(request, self.templates.render_account_two_factor(ctx), code)
