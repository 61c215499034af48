# SPDX-License-Identifier: AGPL-3.0-only
"""Account recovery pages (MAS's ``crates/handlers/src/views/recovery/{start,progress}.rs``,
and its SPA's ``password/recovery`` page, served here as a form); the rules are in
:mod:`mas_twisted.handlers.account_recovery`.

Every page is the "disabled" page (200, as MAS) unless ``passwords.enabled`` and
``account.password_recovery_enabled``. A signed-in browser is sent to ``/`` (as MAS: the
recovery is for someone who cannot sign in).

Request:  GET /recover
Response: 200 with the address form.

Request:  POST /recover (form: csrf, email)
Response: 303 to ``/recover/progress/<id>``, whether or not an account has the address; 200
          with the form and its error for an address that does not parse or when the
          ``rate_limiting.account_recovery`` limits (per IP, per address) refuse; 400 page
          without a valid CSRF token.

Request:  GET /recover/progress/<id>
Response: 200 "check your email" with a resend button; the "consumed" page once a password
          was set with it; 303 to ``/recover`` for an unknown id (as MAS).

Request:  POST /recover/progress/<id> (form: csrf)
Response: 200 with new links on their way; 429 with the page saying so when the limits refuse.

Request:  GET /account/password/recovery?ticket=…
Response: 200 with the new-password form; the "expired" page (with a button for new links),
          the "consumed" page, or an error page for an unknown ticket (404) or a locked or
          deactivated account (403).

Request:  POST /account/password/recovery (form: csrf, ticket, new_password,
          new_password_confirm | csrf, ticket, action=resend)
Response: 200 "your password has been changed"; 200 with the form and its errors (too weak,
          different); for ``action=resend`` (the expired page's button) 303 to the progress
          page, or the expired page with 429 when the limits refuse; the pages of the GET for
          a ticket that is no longer usable.

:class:`AccountRecoveryFinishResource` serves only the exact path
``/account/password/recovery``, so that it sits beside the account pages' resource.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import PageError
from mas_twisted.handlers.account_recovery import (
    EMAIL,
    NEW_PASSWORD,
    NEW_PASSWORD_CONFIRM,
    AccountRecoveryHandler,
    Problem,
    TicketCheck,
    TicketState,
)
from mas_twisted.rest._base import html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._errors import install_html_error_handlers, render_error_page
from mas_twisted.rest.human._forms import client_ip, first, form_params, query_params, redirect, user_agent
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.templating import (
    FormState,
    RecoveryConsumedContext,
    RecoveryDisabledContext,
    RecoveryExpiredContext,
    RecoveryFinishContext,
    RecoveryProgressContext,
    RecoveryStartContext,
)
from mas_twisted.types.recovery import UserRecoverySession

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


def _with_problems(form: FormState, problems: tuple[Problem, ...]) -> FormState:
    for problem in problems:
        if problem.field is None:
            form = form.with_form_error(problem.code)
        else:
            form = form.with_field_error(problem.field, problem.code)
    return form


class _RecoveryPages:
    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._handler: AccountRecoveryHandler = server.get_account_recovery_handler()

    def _disabled(self, request: IRequest) -> bytes:
        return html_response(request, self.templates.render_recovery_disabled(RecoveryDisabledContext()))

    def _consumed(self, request: IRequest) -> bytes:
        return html_response(request, self.templates.render_recovery_consumed(RecoveryConsumedContext()))

    async def _signed_in(self, request: IRequest) -> bytes | None:
        """The answer for a browser that is signed in (or whose session cannot be used)."""
        loaded = await load_session_or_fallback(self.server, request)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is not None:
            return redirect(request, self._url_builder.index())
        return None

    def _progress_url(self, session: UserRecoverySession) -> str:
        return self._url_builder.relative(
            urls.path_for(urls.ACCOUNT_RECOVERY_PROGRESS, session_id=session.id)
        )


class AccountRecoveryResource(_RecoveryPages):
    """``/recover`` and ``/recover/progress/<id>``."""

    app = Klein()
    install_html_error_handlers(app)

    @app.route(urls.ACCOUNT_RECOVERY_START, methods=["GET"])
    async def start_form(self, request: IRequest) -> bytes:
        if not self._handler.enabled:
            return self._disabled(request)
        answer = await self._signed_in(request)
        if answer is not None:
            return answer
        return self._render_start(request, FormState())

    @app.route(urls.ACCOUNT_RECOVERY_START, methods=["POST"])
    async def start_submit(self, request: IRequest) -> bytes:
        if not self._handler.enabled:
            return self._disabled(request)
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        answer = await self._signed_in(request)
        if answer is not None:
            return answer
        email = first(fields, EMAIL) or ""
        result = await self._handler.start(
            email, client_ip=client_ip(request), user_agent=user_agent(request)
        )
        if result.session is None:
            form = _with_problems(FormState.from_form({EMAIL: email}), result.problems)
            return self._render_start(request, form)
        return redirect(request, self._progress_url(result.session))

    def _render_start(self, request: IRequest, form: FormState) -> bytes:
        ctx = RecoveryStartContext(csrf_token=self._cookies.csrf_token(request), form=form)
        return html_response(request, self.templates.render_recovery_start(ctx))

    @app.route(urls.ACCOUNT_RECOVERY_PROGRESS, methods=["GET"])
    async def progress(self, request: IRequest, session_id: str) -> bytes:
        return await self._progress(request, session_id, resend=False)

    @app.route(urls.ACCOUNT_RECOVERY_PROGRESS, methods=["POST"])
    async def resend(self, request: IRequest, session_id: str) -> bytes:
        fields = form_params(request)
        if self._handler.enabled:
            self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        return await self._progress(request, session_id, resend=True)

    async def _progress(self, request: IRequest, session_id: str, *, resend: bool) -> bytes:
        if not self._handler.enabled:
            return self._disabled(request)
        answer = await self._signed_in(request)
        if answer is not None:
            return answer
        try:
            session = await self._handler.load_session(session_id)
        except PageError:
            return redirect(request, self._url_builder.relative(urls.ACCOUNT_RECOVERY_START))
        if session.consumed_at is not None:
            return self._consumed(request)
        resent = resend and await self._handler.resend(session, client_ip(request))
        ctx = RecoveryProgressContext(
            csrf_token=self._cookies.csrf_token(request),
            session_id=session.id,
            email=session.email,
            resent=resent,
            resend_failed=resend and not resent,
        )
        code = 429 if resend and not resent else 200
        return html_response(request, self.templates.render_recovery_progress(ctx), code)


class AccountRecoveryFinishResource(_RecoveryPages):
    """``/account/password/recovery?ticket=…`` (exact path only)."""

    app = Klein()
    install_html_error_handlers(app)

    @app.route(urls.ACCOUNT_RECOVERY_FINISH, methods=["GET"])
    async def finish_form(self, request: IRequest) -> bytes:
        if not self._handler.enabled:
            return self._disabled(request)
        answer = await self._signed_in(request)
        if answer is not None:
            return answer
        ticket = first(query_params(request, single=("ticket",)), "ticket") or ""
        check = await self._handler.check_ticket(ticket)
        if check.state is not TicketState.VALID:
            return self._not_usable(request, check, ticket)
        return self._render_finish(request, check, ticket, FormState())

    @app.route(urls.ACCOUNT_RECOVERY_FINISH, methods=["POST"])
    async def finish_submit(self, request: IRequest) -> bytes:
        if not self._handler.enabled:
            return self._disabled(request)
        fields = form_params(request, single=("ticket", "action"))
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        answer = await self._signed_in(request)
        if answer is not None:
            return answer
        ticket = first(fields, "ticket") or ""
        action = first(fields, "action")
        if action == "resend":
            return await self._resend(request, ticket)
        if action is not None:
            raise PageError("Unknown action", debug=f"recovery action {action!r}")
        result = await self._handler.set_password(
            ticket, first(fields, NEW_PASSWORD) or "", first(fields, NEW_PASSWORD_CONFIRM) or ""
        )
        if result.check.state is not TicketState.VALID:
            return self._not_usable(request, result.check, ticket)
        if result.problems:
            return self._render_finish(
                request, result.check, ticket, _with_problems(FormState(), result.problems)
            )
        return self._render_finish(request, result.check, ticket, FormState(), done=True)

    async def _resend(self, request: IRequest, ticket: str) -> bytes:
        """New links for the session of a ticket (the expired page's button)."""
        check = await self._handler.check_ticket(ticket)
        if check.state is TicketState.UNKNOWN or check.session is None:
            return self._not_usable(request, check, ticket)
        if check.state is TicketState.CONSUMED:
            return self._consumed(request)
        if not await self._handler.resend(check.session, client_ip(request)):
            ctx = RecoveryExpiredContext(
                csrf_token=self._cookies.csrf_token(request), ticket=ticket, resend_failed=True
            )
            return html_response(request, self.templates.render_recovery_expired(ctx), 429)
        return redirect(request, self._progress_url(check.session))

    def _not_usable(self, request: IRequest, check: TicketCheck, ticket: str) -> bytes:
        if check.state is TicketState.CONSUMED:
            return self._consumed(request)
        if check.state is TicketState.EXPIRED:
            ctx = RecoveryExpiredContext(csrf_token=self._cookies.csrf_token(request), ticket=ticket)
            return html_response(request, self.templates.render_recovery_expired(ctx))
        if check.state is TicketState.LOCKED:
            return render_error_page(
                self.templates, request, 403, "This account is locked.", "Its password cannot be changed."
            )
        return render_error_page(
            self.templates,
            request,
            404,
            "This link is not valid.",
            "Copy the whole link from the email, or ask for a new one.",
        )

    def _render_finish(
        self, request: IRequest, check: TicketCheck, ticket: str, form: FormState, *, done: bool = False
    ) -> bytes:
        assert check.user is not None
        ctx = RecoveryFinishContext(
            csrf_token=self._cookies.csrf_token(request),
            ticket=ticket,
            username=check.user.username,
            form=form,
            done=done,
        )
        return html_response(request, self.templates.render_recovery_finish(ctx))
