# SPDX-License-Identifier: AGPL-3.0-only
"""``/register``, ``/register/password`` and the steps ``/register/steps/<id>/…`` (MAS's
``crates/handlers/src/views/register/``); the rules are in
:mod:`mas_twisted.handlers.user_registration`.

Request:  GET /register[?kind=…&id=…]
Response: 303 on to the post-auth action when signed in; 303 straight to the one upstream
          provider when password registration is off and exactly one is enabled; 303 to
          ``/register/password`` when it is on and no provider is; else 200 with the choice
          (with no way to register at all, the page says so and offers to sign in, as MAS's).

Request:  GET /register/password[?kind=…&id=…][&username=…|&login_hint=mxid:@…]
Response: 200 with the form (prefilled from ``username`` or ``login_hint``); 303 on when
          signed in; 303 to ``/login`` when password registration is off.

Request:  POST /register/password (form: csrf, username, email, password, password_confirm,
          accept_terms, the captcha's fields)
Response: 303 to ``/register/steps/<id>/finish`` with the registration in the
          ``user-registration-sessions`` cookie; 200 with the form and its errors; 400 page
          without a valid CSRF token; 405 page when password registration is off.

Request:  GET /register/steps/<id>/finish
Response: 303 to the missing step (``token``, ``verify-email``, ``display-name``), 200 with the
          email-in-use page, or, once complete, 303 on to the post-auth action with the
          ``session`` cookie set; an error page for a registration that is unknown (404),
          expired, or started in another browser (400).

Request:  GET|POST /register/steps/<id>/token (form: csrf, token)
          GET|POST /register/steps/<id>/verify-email (form: csrf, code | action=resend)
          GET|POST /register/steps/<id>/display-name (form: csrf, action=set&display_name | action=skip)
Response: the step's page (200, with errors after a refused POST), 303 to ``finish`` after an
          accepted POST; 303 on to the post-auth action once the registration is complete.

Only the browser that filled in the form may run the steps: the registration's id must be in
its ``user-registration-sessions`` cookie (ids older than an hour are dropped from it), as MAS.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import PageError
from mas_twisted.handlers.captcha import RESPONSE_FIELDS as CAPTCHA_FIELDS
from mas_twisted.handlers.user_registration import (
    EMAIL,
    REGISTRATION_TTL_MS,
    PasswordRegistrationForm,
    Problem,
    RegistrationNotInBrowserError,
    StepKind,
    UserRegistrationHandler,
    action_of,
)
from mas_twisted.rest._base import html_response
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
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.templating import (
    CaptchaContext,
    FormState,
    PasswordRegisterContext,
    PostAuthContext,
    ProviderLink,
    RegisterContext,
    RegisterStepsDisplayNameContext,
    RegisterStepsEmailInUseContext,
    RegisterStepsRegistrationTokenContext,
    RegisterStepsVerifyEmailContext,
    simplify_url,
)
from mas_twisted.types.registrations import UserRegistration
from mas_twisted.urls import PostAuthAction, go_next
from mas_twisted.util.ulid import is_ulid, ulid_ms

if TYPE_CHECKING:
    from mas_twisted.handlers.login import PostAuthDescription
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: The cookie listing the registrations this browser started (MAS's name).
REGISTRATIONS_COOKIE = "user-registration-sessions"


def _with_problems(form: FormState, problems: tuple[Problem, ...]) -> FormState:
    for problem in problems:
        if problem.field is None:
            form = form.with_form_error(problem.code)
        else:
            form = form.with_field_error(problem.field, problem.code)
    return form


class RegisterResource:
    """The registration pages."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._clock = server.get_clock()
        self._url_builder = server.get_url_builder()
        self._login = server.get_login_handler()
        self._handler: UserRegistrationHandler = server.get_user_registration_handler()

    # -- the registrations cookie ---------------------------------------------------------
    def _registrations(self, request: IRequest) -> list[str]:
        """The registration ids this browser holds, younger than an hour."""
        payload = self._cookies.load(request, REGISTRATIONS_COOKIE)
        if not isinstance(payload, list):
            return []
        now = self._clock.time_msec()
        return [
            i for i in payload if isinstance(i, str) and is_ulid(i) and now - ulid_ms(i) < REGISTRATION_TTL_MS
        ]

    def _save_registrations(self, request: IRequest, ids: list[str]) -> None:
        self._cookies.save(request, REGISTRATIONS_COOKIE, sorted(set(ids)))

    async def _load_in_browser(self, request: IRequest, registration_id: str) -> UserRegistration:
        """The registration, which must be one this browser started.

        Raises:
            NotFoundError: no such registration.
            RegistrationNotInBrowserError: it is not in this browser's cookie.
        """
        registration = await self._handler.load_registration(registration_id)
        if registration.completed_at is None and registration.id not in self._registrations(request):
            raise RegistrationNotInBrowserError()
        return registration

    def _finish_url(self, registration: UserRegistration) -> str:
        return self._url_builder.relative(urls.path_for(urls.REGISTER_FINISH, id=registration.id))

    def _done(self, request: IRequest, registration: UserRegistration) -> bytes:
        """Where a completed registration continues to."""
        return redirect(request, go_next(action_of(registration), self._url_builder))

    # -- /register ------------------------------------------------------------------------
    @app.route(urls.REGISTER, methods=["GET"])
    async def chooser(self, request: IRequest) -> bytes:
        action = PostAuthAction.from_params(single(query_params(request)))
        loaded = await load_session_or_fallback(self.server, request, action)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is not None:
            return redirect(request, go_next(action, self._url_builder))
        params = action.to_params() if action is not None else None
        # Provider buttons (and the sole-provider redirect) only once the upstream login route
        # is mounted, as on the login page (SiteFeatures.upstream_login).
        providers = (
            await self._login.list_login_providers() if self.server.get_site_features().upstream_login else []
        )
        password = self._handler.password_registration_enabled
        if not password and len(providers) == 1:
            target = urls.path_for(urls.UPSTREAM_OAUTH2_AUTHORIZE, provider_id=providers[0].id)
            return redirect(request, self._url_builder.relative(target, params))
        if password and not providers:
            return redirect(request, self._url_builder.relative(urls.PASSWORD_REGISTER, params))
        ctx = RegisterContext(
            csrf_token=self._cookies.csrf_token(request),
            providers=[ProviderLink.from_provider(p) for p in providers],
            next=self._post_auth_context(await self._login.describe_post_auth_action(action)),
        )
        return html_response(request, self.templates.render_register(ctx))

    # -- /register/password ---------------------------------------------------------------
    @app.route(urls.PASSWORD_REGISTER, methods=["GET"])
    async def password_form(self, request: IRequest) -> bytes:
        query = query_params(request)
        action = PostAuthAction.from_params(single(query))
        loaded = await load_session_or_fallback(self.server, request, action)
        if loaded.fallback is not None:
            return loaded.fallback
        if loaded.session is not None:
            return redirect(request, go_next(action, self._url_builder))
        if not self._handler.password_registration_enabled:
            return redirect(
                request, self._url_builder.login(action.to_params() if action is not None else None)
            )
        form = FormState()
        username = first(query, "username") or self._login.username_from_login_hint(
            first(query, "login_hint")
        )
        if username and "@" not in username:
            form = form.with_value("username", username)
        return await self._render_password_form(request, form, action)

    @app.route(urls.PASSWORD_REGISTER, methods=["POST"])
    async def password_submit(self, request: IRequest) -> bytes:
        if not self._handler.password_registration_enabled:
            return render_error_page(
                self.templates,
                request,
                405,
                "Creating an account with a password is disabled on this server.",
            )
        action = PostAuthAction.from_params(single(query_params(request)))
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        form = PasswordRegistrationForm(
            username=first(fields, "username") or "",
            email=first(fields, EMAIL) or "",
            password=first(fields, "password") or "",
            password_confirm=first(fields, "password_confirm") or "",
            accept_terms=first(fields, "accept_terms") == "on",
            captcha={name: first(fields, name) or "" for name in CAPTCHA_FIELDS if name in fields},
        )
        result = await self._handler.start_password_registration(
            form, client_ip=client_ip(request), user_agent=user_agent(request), action=action
        )
        if result.registration is None:
            state = FormState.from_form({"username": form.username, EMAIL: form.email})
            return await self._render_password_form(request, _with_problems(state, result.problems), action)
        self._save_registrations(request, [*self._registrations(request), result.registration.id])
        return redirect(request, self._finish_url(result.registration))

    async def _render_password_form(
        self, request: IRequest, form: FormState, action: PostAuthAction | None
    ) -> bytes:
        described = await self._login.describe_post_auth_action(action)
        captcha = None
        third_party: tuple[str, ...] = ()
        provider = self.server.get_captcha_verifier().provider
        if provider is not None:
            captcha = CaptchaContext(
                service=provider.service,
                site_key=self._handler.captcha_site_key,
                script_url=provider.script_url,
                widget_class=provider.widget_class,
            )
            third_party = provider.origins
        ctx = PasswordRegisterContext(
            csrf_token=self._cookies.csrf_token(request),
            form=form,
            next=self._post_auth_context(described),
            email_required=self._handler.email_required,
            captcha=captcha,
        )
        return html_response(request, self.templates.render_password_register(ctx), third_party=third_party)

    @staticmethod
    def _post_auth_context(described: PostAuthDescription | None) -> PostAuthContext | None:
        if described is None:
            return None
        client_name = described.client_name
        if described.sso_redirect_uri is not None:
            client_name = simplify_url(described.sso_redirect_uri)
        return PostAuthContext(action=described.action, client_name=client_name)

    # -- /register/steps/<id>/finish ------------------------------------------------------
    @app.route(urls.REGISTER_FINISH, methods=["GET"])
    async def finish(self, request: IRequest, id: str) -> bytes:
        registration = await self._load_in_browser(request, id)
        step = await self._handler.next_step(
            registration, user_agent=user_agent(request), client_ip=client_ip(request)
        )
        step_path = {
            StepKind.TOKEN: urls.REGISTER_TOKEN,
            StepKind.VERIFY_EMAIL: urls.REGISTER_VERIFY_EMAIL,
            StepKind.DISPLAY_NAME: urls.REGISTER_DISPLAY_NAME,
        }.get(step.kind)
        if step_path is not None:
            return redirect(request, self._url_builder.relative(urls.path_for(step_path, id=registration.id)))
        if step.kind is StepKind.EMAIL_IN_USE:
            assert step.email is not None
            ctx = RegisterStepsEmailInUseContext(email=step.email, action=step.action)
            return html_response(request, self.templates.render_register_steps_email_in_use(ctx))
        if step.session is not None:
            self._save_registrations(
                request, [i for i in self._registrations(request) if i != registration.id]
            )
            self._cookies.set_session(request, step.session)
        return redirect(request, go_next(step.action, self._url_builder))

    # -- /register/steps/<id>/token -------------------------------------------------------
    @app.route(urls.REGISTER_TOKEN, methods=["GET"])
    async def token_form(self, request: IRequest, id: str) -> bytes:
        registration = await self._load_in_browser(request, id)
        if registration.completed_at is not None:
            return self._done(request, registration)
        return self._render_token(request, FormState())

    @app.route(urls.REGISTER_TOKEN, methods=["POST"])
    async def token_submit(self, request: IRequest, id: str) -> bytes:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        registration = await self._load_in_browser(request, id)
        if registration.completed_at is not None:
            return self._done(request, registration)
        self._handler.check_fresh(registration)
        token = first(fields, "token") or ""
        problems = await self._handler.submit_registration_token(registration, token)
        if problems:
            return self._render_token(
                request, _with_problems(FormState.from_form({"token": token}), problems)
            )
        return redirect(request, self._finish_url(registration))

    def _render_token(self, request: IRequest, form: FormState) -> bytes:
        ctx = RegisterStepsRegistrationTokenContext(csrf_token=self._cookies.csrf_token(request), form=form)
        return html_response(request, self.templates.render_register_steps_registration_token(ctx))

    # -- /register/steps/<id>/verify-email ------------------------------------------------
    @app.route(urls.REGISTER_VERIFY_EMAIL, methods=["GET"])
    async def verify_email_form(self, request: IRequest, id: str) -> bytes:
        registration = await self._load_in_browser(request, id)
        if registration.completed_at is not None:
            return self._done(request, registration)
        authentication = await self._handler.load_email_authentication(registration)
        if authentication.completed_at is not None:
            return redirect(request, self._finish_url(registration))
        return self._render_verify(request, authentication.email, FormState())

    @app.route(urls.REGISTER_VERIFY_EMAIL, methods=["POST"])
    async def verify_email_submit(self, request: IRequest, id: str) -> bytes:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        registration = await self._load_in_browser(request, id)
        if registration.completed_at is not None:
            return self._done(request, registration)
        self._handler.check_fresh(registration)
        authentication = await self._handler.load_email_authentication(registration)
        if authentication.completed_at is not None:
            return redirect(request, self._finish_url(registration))
        if first(fields, "action") == "resend":
            problems = await self._handler.resend_email_code(registration, authentication, client_ip(request))
            return self._render_verify(
                request, authentication.email, _with_problems(FormState(), problems), resent=not problems
            )
        code = first(fields, "code") or ""
        problems = await self._handler.submit_email_code(registration, authentication, code)
        if problems:
            form = _with_problems(FormState.from_form({"code": code}), problems)
            return self._render_verify(request, authentication.email, form)
        return redirect(request, self._finish_url(registration))

    def _render_verify(
        self, request: IRequest, email: str, form: FormState, *, resent: bool = False
    ) -> bytes:
        ctx = RegisterStepsVerifyEmailContext(
            csrf_token=self._cookies.csrf_token(request), email=email, form=form, resent=resent
        )
        return html_response(request, self.templates.render_register_steps_verify_email(ctx))

    # -- /register/steps/<id>/display-name ------------------------------------------------
    @app.route(urls.REGISTER_DISPLAY_NAME, methods=["GET"])
    async def display_name_form(self, request: IRequest, id: str) -> bytes:
        registration = await self._load_in_browser(request, id)
        if registration.completed_at is not None:
            return self._done(request, registration)
        return self._render_display_name(request, FormState())

    @app.route(urls.REGISTER_DISPLAY_NAME, methods=["POST"])
    async def display_name_submit(self, request: IRequest, id: str) -> bytes:
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        registration = await self._load_in_browser(request, id)
        if registration.completed_at is not None:
            return self._done(request, registration)
        self._handler.check_fresh(registration)
        choice = first(fields, "action")
        display_name: str | None
        if choice == "skip":
            display_name = None
        elif choice in (None, "set"):
            display_name = first(fields, "display_name") or ""
        else:
            raise PageError("Unknown action", debug=f"display-name action {choice!r}")
        problems = await self._handler.submit_display_name(registration, display_name)
        if problems:
            form = _with_problems(FormState.from_form({"display_name": display_name or ""}), problems)
            return self._render_display_name(request, form)
        return redirect(request, self._finish_url(registration))

    def _render_display_name(self, request: IRequest, form: FormState) -> bytes:
        ctx = RegisterStepsDisplayNameContext(csrf_token=self._cookies.csrf_token(request), form=form)
        return html_response(request, self.templates.render_register_steps_display_name(ctx))
