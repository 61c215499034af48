# SPDX-License-Identifier: AGPL-3.0-only
"""Password registration and its step loop (MAS's ``crates/handlers/src/views/register/``:
``mod.rs``, ``password.rs`` and ``steps/{registration_token,verify_email,display_name,finish}.rs``).

:meth:`UserRegistrationHandler.start_password_registration` checks the ``/register/password``
form in MAS's order: the captcha, the username (required, free here, then free on the
homeserver, whose refusal shows only when the ``register`` policy has nothing to say about the
username), the email address (unless ``account.password_registration_email_required`` is
off; whether it is in use is not said before it is verified, so as not to disclose it), the
password and its confirmation (equal, and at least ``passwords.minimum_complexity``), the terms
tick when ``branding.tos_uri`` is set, then the ``register`` policy (which includes the
``email`` policy), each violation shown on its field; only then the rate limits
(``rate_limiting.registration`` per IP, ``email_authentication`` per IP and per address). The
registration, its email authentication, its first 6-digit code and the email carrying it
(template ``verification``, of no use after the code's 5 minutes) are written in one
transaction.

:meth:`UserRegistrationHandler.next_step` is ``/register/steps/<id>/finish``: a registration
older than an hour is refused; then, in order, the registration token (when
``account.registration_token_required`` or ``password_registration_token_required``), the
email code, the address not being in use already, the display name; once nothing is missing,
one transaction creates the user, their browser session (authenticated by the password), the
email, the password, the accepted terms, one use of the token and the ``provision-user`` job
with the display name (:meth:`UserRegistrationStore.complete_registration`).

A code is valid 5 minutes (MAS's ``send-email-authentication-code``; MAS never checks it
afterwards, we refuse an expired one), and the ``email_authentication.attempt_per_session``
limit bounds the guesses per registration; a resend is limited by
``email_authentication.emails_per_session`` and the per-IP and per-address limits.

The captcha is checked first, with the provider's siteverify
(:class:`mas_twisted.handlers.captcha.CaptchaVerifier`); a provider that cannot be reached
means "not verified", with its own message.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from mas_twisted.api.errors import PageError
from mas_twisted.email.message import is_valid_address
from mas_twisted.handlers.email import schedule_email_txn
from mas_twisted.handlers.rate_limit import RateLimitExceededError
from mas_twisted.homeserver.base import HomeserverError
from mas_twisted.policy.model import Requester
from mas_twisted.queue.base import enqueue_txn
from mas_twisted.queue.jobs.matrix import ProvisionUserJob
from mas_twisted.storage.stores.user_registrations import CompletionOutcome
from mas_twisted.types.registrations import (
    UserEmailAuthentication,
    UserEmailAuthenticationCode,
    UserRegistration,
    UserRegistrationToken,
)
from mas_twisted.types.users import (
    BrowserSession,
    BrowserSessionAuthentication,
    User,
    UserEmail,
    UserPassword,
)
from mas_twisted.urls import PostAuthAction

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.storage.stores import Stores

logger = logging.getLogger(__name__)

#: How long an emailed code is valid (MAS: 5 minutes, hard-coded).
EMAIL_CODE_TTL_MS = 5 * 60 * 1000
#: How long a registration may take from the form to the end of the steps (MAS: 1 hour).
REGISTRATION_TTL_MS = 60 * 60 * 1000
#: The longest display name the step accepts (MAS: 255 bytes).
MAX_DISPLAY_NAME_LENGTH = 255

# Field names of the forms, as the templates post them.
USERNAME = "username"
EMAIL = "email"
PASSWORD = "password"
PASSWORD_CONFIRM = "password_confirm"
ACCEPT_TERMS = "accept_terms"
TOKEN = "token"
CODE = "code"
DISPLAY_NAME = "display_name"

# Error codes (the templates turn them into text; a policy violation's message is its own code).
REQUIRED = "required"
INVALID = "invalid"
EXISTS = "exists"
PASSWORD_MISMATCH = "password_mismatch"
TOO_WEAK = "password_too_weak"
EXPIRED = "code_expired"
RATE_LIMITED = "rate_limit_exceeded"
HOMESERVER_UNAVAILABLE = "homeserver_unavailable"


@attrs.frozen
class Problem:
    """One reason a form was refused: on ``field``, or on the whole form when ``None``."""

    field: str | None
    code: str


@attrs.frozen
class PasswordRegistrationForm:
    """The fields of ``/register/password`` (empty strings when absent)."""

    username: str = ""
    email: str = ""
    password: str = ""
    password_confirm: str = ""
    #: The terms checkbox was ticked (``accept_terms=on``).
    accept_terms: bool = False
    #: The captcha provider's response fields, as posted.
    captcha: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class StartResult:
    """Either the problems of the form, or the registration it created."""

    problems: tuple[Problem, ...] = ()
    registration: UserRegistration | None = None


class StepKind(str, enum.Enum):
    TOKEN = "token"
    VERIFY_EMAIL = "verify_email"
    EMAIL_IN_USE = "email_in_use"
    DISPLAY_NAME = "display_name"
    #: The registration is complete: continue to the post-auth action.
    DONE = "done"


@attrs.frozen
class Step:
    """Where ``/register/steps/<id>/finish`` sends the browser."""

    kind: StepKind
    registration: UserRegistration
    #: The post-auth action the registration continues to.
    action: PostAuthAction | None = None
    #: The new browser session, when this request completed the registration.
    session: BrowserSession | None = None
    #: The address already in use (``EMAIL_IN_USE``).
    email: str | None = None


class RegistrationExpiredError(PageError):
    def __init__(self) -> None:
        super().__init__(
            "This registration has expired.",
            details="Registrations must be finished within an hour. Start again.",
            debug="registration older than an hour",
        )


class RegistrationNotInBrowserError(PageError):
    def __init__(self) -> None:
        super().__init__(
            "This registration was started in another browser.",
            details="Finish it in the browser where you filled in the form, or start again.",
            debug="registration id not in the user-registration-sessions cookie",
        )


def action_of(registration: UserRegistration) -> PostAuthAction | None:
    """The post-auth action a registration stored (``None`` if none or no longer valid)."""
    stored = registration.post_auth_action
    if not isinstance(stored, dict):
        return None
    return PostAuthAction.from_params({k: v for k, v in stored.items() if isinstance(v, str)})


class UserRegistrationHandler:
    """The rules of ``/register``, ``/register/password`` and ``/register/steps/<id>/…``
    (``server.get_user_registration_handler()``)."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._passwords = server.get_password_manager()
        self._limiter = server.get_rate_limiter()
        self._policy = server.get_policy()
        config = server.config
        #: MAS's ``password_registration_enabled``: passwords on, and registration with one.
        self.password_registration_enabled: bool = (
            config.passwords.enabled and config.account.password_registration_enabled
        )
        self.email_required: bool = config.account.password_registration_email_required
        self.token_required: bool = config.account.registration_token_needed
        self.tos_uri: str | None = config.branding.tos_uri
        self.captcha_service: str | None = config.captcha.service
        self.captcha_site_key: str | None = config.captcha.site_key
        self._server_name: str = config.matrix.homeserver

    @property
    def _stores(self) -> Stores:
        return self._server.get_stores()

    # -- the captcha -----------------------------------------------------------------------
    async def verify_captcha(self, response: Mapping[str, str], client_ip: str | None) -> str | None:
        """``None`` when the form's captcha passes, else the form error to show
        (:mod:`mas_twisted.handlers.captcha`)."""
        return await self._server.get_captcha_verifier().verify(response, client_ip)

    # -- /register/password ---------------------------------------------------------------
    async def start_password_registration(
        self,
        form: PasswordRegistrationForm,
        *,
        client_ip: str | None,
        user_agent: str | None,
        action: PostAuthAction | None,
    ) -> StartResult:
        """Check the form (see the module docstring) and, if it is right, start the registration."""
        problems: list[Problem] = []
        captcha = await self.verify_captcha(form.captcha, client_ip)
        if captcha is not None:
            problems.append(Problem(None, captcha))

        username = form.username
        email = form.email.strip() if self.email_required else None
        check_homeserver = False
        if not username:
            problems.append(Problem(USERNAME, REQUIRED))
        elif await self._stores.users.user_exists(username):
            problems.append(Problem(USERNAME, EXISTS))
        else:
            check_homeserver = True

        if email is not None:
            if not email:
                problems.append(Problem(EMAIL, REQUIRED))
            elif not _is_address(email):
                problems.append(Problem(EMAIL, INVALID))

        if not form.password:
            problems.append(Problem(PASSWORD, REQUIRED))
        if not form.password_confirm:
            problems.append(Problem(PASSWORD_CONFIRM, REQUIRED))
        if form.password != form.password_confirm:
            problems.append(Problem(PASSWORD_CONFIRM, PASSWORD_MISMATCH))
        if form.password and not self._passwords.is_password_complex_enough(form.password):
            problems.append(Problem(PASSWORD, TOO_WEAK))

        if self.tos_uri is not None and not form.accept_terms:
            problems.append(Problem(ACCEPT_TERMS, REQUIRED))

        requester = Requester(ip_address=client_ip, user_agent=user_agent)
        result = self._policy.evaluate_register(
            registration_method="password", username=username, email=email or None, requester=requester
        )
        username_violation = False
        for violation in result.violations:
            field = violation.field if violation.field in (USERNAME, EMAIL, PASSWORD) else None
            username_violation = username_violation or field == USERNAME
            problems.append(Problem(field, violation.msg))

        # The homeserver is asked last, and its refusal shown only when the policy had nothing
        # to say about the name (MAS shows one or the other, not both).
        if check_homeserver and not username_violation:
            try:
                available = await self._server.get_homeserver_connection().is_localpart_available(username)
            except HomeserverError as e:
                logger.warning("Could not ask the homeserver whether %r is available: %s", username, e)
                problems.append(Problem(None, HOMESERVER_UNAVAILABLE))
            else:
                if not available:
                    logger.warning("Homeserver denied username %r", username)
                    problems.append(Problem(USERNAME, EXISTS))

        if not problems:
            try:
                await self._limiter.check_registration(client_ip)
                if email is not None:
                    await self._limiter.check_email_authentication_email(client_ip, email)
            except RateLimitExceededError as e:
                logger.warning("Registration refused: %s", e.debug)
                problems.append(Problem(None, RATE_LIMITED))

        if problems:
            return StartResult(problems=tuple(problems))

        version, hashed = await self._passwords.hash(form.password)
        now = self._clock.time_msec()
        registration = UserRegistration(
            id=self._tokens.ulid(),
            username=username,
            created_at=now,
            ip_address=client_ip,
            user_agent=user_agent,
            post_auth_action=dict(action.to_params()) if action is not None else None,
            terms_url=self.tos_uri,
            hashed_password=hashed,
            hashed_password_version=version,
        )
        authentication = None
        code = None
        if email is not None:
            authentication = UserEmailAuthentication(
                id=self._tokens.ulid(), email=email, created_at=now, user_registration_id=registration.id
            )
            registration = attrs.evolve(registration, email_authentication_id=authentication.id)
            code = self._new_code(authentication, now)

        def _send(txn: LoggingTransaction) -> None:
            if authentication is not None and code is not None:
                self._schedule_code_email_txn(txn, authentication, code, username)

        await self._stores.user_registrations.add_registration(registration, authentication, code, also=_send)
        logger.info("Password registration %s started for %r", registration.id, username)
        return StartResult(registration=registration)

    def _new_code(self, authentication: UserEmailAuthentication, now: int) -> UserEmailAuthenticationCode:
        return UserEmailAuthenticationCode(
            id=self._tokens.ulid(),
            user_email_authentication_id=authentication.id,
            code=self._tokens.numeric_code(),
            created_at=now,
            expires_at=now + EMAIL_CODE_TTL_MS,
        )

    def _schedule_code_email_txn(
        self,
        txn: LoggingTransaction,
        authentication: UserEmailAuthentication,
        code: UserEmailAuthenticationCode,
        username: str,
    ) -> None:
        schedule_email_txn(
            txn,
            self._server,
            to=authentication.email,
            to_name=username,
            template="verification",
            context={"code": code.code, "username": username},
            not_after=code.expires_at,
        )

    # -- loading a registration -----------------------------------------------------------
    async def load_registration(self, registration_id: str) -> UserRegistration:
        """The registration, which must exist.

        Raises:
            NotFoundError: no such registration (or a malformed id).
        """
        from mas_twisted.api.errors import NotFoundError
        from mas_twisted.util.ulid import is_ulid

        if not is_ulid(registration_id):
            raise NotFoundError("Registration not found", debug=f"not a ULID: {registration_id[:40]!r}")
        registration = await self._stores.user_registrations.get_registration(registration_id.upper())
        if registration is None:
            raise NotFoundError("Registration not found", debug=registration_id)
        return registration

    async def load_email_authentication(self, registration: UserRegistration) -> UserEmailAuthentication:
        """The registration's email authentication.

        Raises:
            PageError: the registration has none (the server does not require an address).
        """
        authentication = None
        if registration.email_authentication_id is not None:
            authentication = await self._stores.user_registrations.get_email_authentication(
                registration.email_authentication_id
            )
        if authentication is None:
            raise PageError("This registration has no email address to verify.")
        return authentication

    # -- /register/steps/<id>/token --------------------------------------------------------
    async def submit_registration_token(
        self, registration: UserRegistration, token: str
    ) -> tuple[Problem, ...]:
        """Attach a valid registration token; the problems if not."""
        token = token.strip()
        if not token:
            return (Problem(TOKEN, REQUIRED),)
        found = await self._stores.user_registrations.find_registration_token(token)
        if found is None:
            logger.warning("Registration %s: unknown registration token", registration.id)
            return (Problem(TOKEN, INVALID),)
        if not found.is_valid(self._clock.time_msec()):
            logger.warning("Registration %s: registration token %s is not valid", registration.id, found.id)
            return (Problem(TOKEN, INVALID),)
        await self._stores.user_registrations.set_registration_token(registration.id, found.id)
        return ()

    # -- /register/steps/<id>/verify-email -------------------------------------------------
    async def submit_email_code(
        self, registration: UserRegistration, authentication: UserEmailAuthentication, code: str
    ) -> tuple[Problem, ...]:
        """Complete the email authentication with ``code``; the problems if not."""
        try:
            await self._limiter.check_email_authentication_attempt(authentication.id)
        except RateLimitExceededError as e:
            logger.warning("Registration %s: %s", registration.id, e.debug)
            return (Problem(None, RATE_LIMITED),)
        code = code.strip()
        if not code:
            return (Problem(CODE, REQUIRED),)
        found = await self._stores.user_registrations.find_email_authentication_code(authentication.id, code)
        if found is None:
            return (Problem(CODE, INVALID),)
        now = self._clock.time_msec()
        if now >= found.expires_at:
            return (Problem(CODE, EXPIRED),)
        await self._stores.user_registrations.complete_email_authentication(authentication.id, now)
        logger.info("Registration %s: email address verified", registration.id)
        return ()

    async def resend_email_code(
        self, registration: UserRegistration, authentication: UserEmailAuthentication, client_ip: str | None
    ) -> tuple[Problem, ...]:
        """Send a new code (the earlier ones stay valid until they expire); the problems if not."""
        try:
            await self._limiter.check_email_authentication_send_code(
                client_ip, authentication.id, authentication.email
            )
        except RateLimitExceededError as e:
            logger.warning("Registration %s: resend refused: %s", registration.id, e.debug)
            return (Problem(None, RATE_LIMITED),)
        code = self._new_code(authentication, self._clock.time_msec())
        # A code is unique per authentication: draw again in the rare case this one was sent before.
        store = self._stores.user_registrations
        while await store.find_email_authentication_code(authentication.id, code.code) is not None:
            code = self._new_code(authentication, self._clock.time_msec())

        def _send(txn: LoggingTransaction) -> None:
            self._schedule_code_email_txn(txn, authentication, code, registration.username)

        await store.add_email_authentication_code(code, also=_send)
        logger.info("Registration %s: a new code is on its way", registration.id)
        return ()

    # -- /register/steps/<id>/display-name -------------------------------------------------
    async def submit_display_name(
        self, registration: UserRegistration, display_name: str | None
    ) -> tuple[Problem, ...]:
        """Set the display name; ``None`` skips, using the username (as MAS and Synapse)."""
        if display_name is None:
            chosen = registration.username
        else:
            chosen = display_name.strip()
            if not chosen or len(chosen.encode("utf-8")) > MAX_DISPLAY_NAME_LENGTH:
                return (Problem(DISPLAY_NAME, INVALID),)
        await self._stores.user_registrations.set_display_name(registration.id, chosen)
        return ()

    # -- /register/steps/<id>/finish -------------------------------------------------------
    def check_fresh(self, registration: UserRegistration) -> None:
        """Raises :class:`RegistrationExpiredError` for a registration older than an hour."""
        if self._clock.time_msec() - registration.created_at > REGISTRATION_TTL_MS:
            raise RegistrationExpiredError()

    async def next_step(
        self, registration: UserRegistration, *, user_agent: str | None, client_ip: str | None
    ) -> Step:
        """What the registration misses next, or, when nothing, complete it (one transaction).

        Raises:
            RegistrationExpiredError: older than an hour.
            PageError: the username was taken meanwhile (here or on the homeserver), the
                homeserver cannot be asked, or the registration token stopped being valid.
        """
        action = action_of(registration)
        if registration.completed_at is not None:
            return Step(StepKind.DONE, registration, action)
        self.check_fresh(registration)
        stores = self._stores

        if await stores.users.user_exists(registration.username):
            raise PageError("That username was taken meanwhile. Start again with another one.")
        try:
            available = await self._server.get_homeserver_connection().is_localpart_available(
                registration.username
            )
        except HomeserverError as e:
            raise PageError(
                "The homeserver cannot be reached right now. Try again in a moment.", code=503, debug=str(e)
            ) from None
        if not available:
            raise PageError("That username is not available. Start again with another one.")

        token: UserRegistrationToken | None = None
        if self.token_required:
            if registration.user_registration_token_id is None:
                return Step(StepKind.TOKEN, registration, action)
            token = await stores.user_registrations.get_registration_token(
                registration.user_registration_token_id
            )
            if token is None or not token.is_valid(self._clock.time_msec()):
                raise PageError("The registration token is no longer valid.")

        authentication: UserEmailAuthentication | None = None
        if registration.email_authentication_id is not None:
            authentication = await self.load_email_authentication(registration)
            if authentication.completed_at is None:
                return Step(StepKind.VERIFY_EMAIL, registration, action)
            # Only now, with the address proven, may the page say it is in use.
            if await stores.user_registrations.email_in_use(authentication.email):
                return Step(StepKind.EMAIL_IN_USE, registration, action, email=authentication.email)

        if registration.display_name is None:
            return Step(StepKind.DISPLAY_NAME, registration, action)

        return await self._complete(registration, action, token, authentication, user_agent, client_ip)

    async def _complete(
        self,
        registration: UserRegistration,
        action: PostAuthAction | None,
        token: UserRegistrationToken | None,
        authentication: UserEmailAuthentication | None,
        user_agent: str | None,
        client_ip: str | None,
    ) -> Step:
        now = self._clock.time_msec()
        user = User(id=self._tokens.ulid(), username=registration.username, created_at=now)
        session = BrowserSession(
            id=self._tokens.ulid(),
            user=user,
            created_at=now,
            user_agent=user_agent,
            last_active_at=now,
            last_active_ip=client_ip,
        )
        password = None
        session_authentication = None
        if registration.hashed_password is not None and registration.hashed_password_version is not None:
            password = UserPassword(
                id=self._tokens.ulid(),
                user_id=user.id,
                hashed_password=registration.hashed_password,
                version=registration.hashed_password_version,
                created_at=now,
            )
            session_authentication = BrowserSessionAuthentication(
                id=self._tokens.ulid(),
                user_session_id=session.id,
                created_at=now,
                user_password_id=password.id,
            )
        emails = []
        if authentication is not None:
            emails.append(
                UserEmail(id=self._tokens.ulid(), user_id=user.id, email=authentication.email, created_at=now)
            )
        provision = ProvisionUserJob(user_id=user.id, set_display_name=registration.display_name)

        outcome = await self._stores.user_registrations.complete_registration(
            registration,
            user=user,
            session=session,
            authentication=session_authentication,
            password=password,
            emails=emails,
            terms_id=self._tokens.ulid() if registration.terms_url is not None else None,
            token_id=token.id if token is not None else None,
            now=now,
            also=lambda txn: enqueue_txn(txn, self._server, provision),
        )
        if outcome is CompletionOutcome.ALREADY_COMPLETED:
            return Step(StepKind.DONE, registration, action)
        if outcome is CompletionOutcome.USERNAME_TAKEN:
            raise PageError("That username was taken meanwhile. Start again with another one.")
        if outcome is CompletionOutcome.TOKEN_INVALID:
            raise PageError("The registration token is no longer valid.")
        logger.info("User registered with a password: %s (%s)", user.username, user.id)
        return Step(StepKind.DONE, attrs.evolve(registration, completed_at=now), action, session=session)

    # -- registration tokens (mas-cli) -----------------------------------------------------
    async def issue_registration_token(
        self, *, token: str | None = None, usage_limit: int | None = 1, expires_in_s: int | None = None
    ) -> UserRegistrationToken:
        """A new registration token (MAS's ``issue-user-registration-token``): 12 random
        alphanumerics unless ``token`` is given, ``usage_limit`` uses (``None``: unlimited),
        expiring ``expires_in_s`` seconds from now (``None``: never).

        Raises:
            ValueError: ``token`` is empty, has surrounding spaces (the form trims what users
                type, so it could never match), or exists already; a negative limit or expiry.
        """
        if token is not None and (not token or token != token.strip()):
            raise ValueError("A registration token cannot be empty or start or end with spaces")
        if usage_limit is not None and usage_limit < 0:
            raise ValueError("The usage limit cannot be negative")
        if expires_in_s is not None and expires_in_s < 0:
            raise ValueError("The expiry cannot be negative")
        if (
            token is not None
            and await self._stores.user_registrations.find_registration_token(token) is not None
        ):
            raise ValueError("A registration token with this value exists already")
        now = self._clock.time_msec()
        issued = UserRegistrationToken(
            id=self._tokens.ulid(),
            token=token if token is not None else self._tokens.registration_token(),
            created_at=now,
            usage_limit=usage_limit,
            expires_at=now + expires_in_s * 1000 if expires_in_s is not None else None,
        )
        await self._stores.user_registrations.add_registration_token(issued)
        logger.info("Issued registration token %s", issued.id)
        return issued


def _is_address(email: str) -> bool:
    """Whether ``email`` is an address our mailer can send to (dot-atom@host name)."""
    return is_valid_address(email)
