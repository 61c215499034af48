# SPDX-License-Identifier: AGPL-3.0-only
"""What the pages show: one frozen ``attrs`` context class per page (MAS's
``crates/templates/src/context.rs``), and the site-wide values every page receives.

- :class:`SiteBranding` (service name, homeserver name, policy and terms links, imprint), from
  the ``branding`` and ``matrix`` sections, and :class:`SiteFeatures` (password login and
  registration, login with email, account recovery, the account pages, upstream login), from
  the ``passwords`` and ``account`` sections and the mounted routes (:data:`LINKED_PAGES`);
- a :class:`PageContext` subclass per page, with its ``TEMPLATE`` and fields, listed in
  :data:`PAGE_CONTEXTS`;
- the values those pages are built from (:class:`MatrixUser`, :class:`ProviderLink`,
  :class:`PostAuthContext`) and :func:`simplify_url`, also a template filter.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import attrs

from mas_twisted import urls
from mas_twisted.oauth2.scope import describe_scopes
from mas_twisted.policy.model import Violation
from mas_twisted.templating.forms import FormState
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.compat import CompatSsoLogin
from mas_twisted.types.oauth2 import AuthorizationGrant, DeviceCodeGrant
from mas_twisted.types.users import BrowserSession, User
from mas_twisted.urls import MountedRoutes, PostAuthAction

if TYPE_CHECKING:
    from mas_twisted.types.personal import PersonalSessionWithToken
    from mas_twisted.types.upstream import UpstreamOAuthProvider

# -- shared context -------------------------------------------------------------------------


@attrs.frozen
class SiteBranding:
    """How the service presents itself on every page."""

    #: The homeserver's name (``matrix.homeserver``), which Matrix IDs end with.
    server_name: str
    #: ``branding.service_name``, else the homeserver's name.
    service_name: str
    policy_uri: str | None = None
    tos_uri: str | None = None
    imprint: str | None = None


@attrs.frozen
class SiteFeatures:
    """Which links and fields the pages offer (MAS's ``SiteFeatures``, plus the pages this
    service does not serve yet).

    A link to an optional page is on only when the configuration turns the feature on *and* a
    mounted route serves the page (:data:`LINKED_PAGES`), so that no page links to a 404: the
    registration, recovery, account and upstream login pages come with later work, and their
    links appear once their routes are mounted, without a template changing.
    """

    password_login: bool = True
    #: "Create an account" (``/register``): ``account.password_registration_enabled``.
    password_registration: bool = False
    login_with_email_allowed: bool = False
    #: "Forgot your password?" (``/recover``): ``account.password_recovery_enabled``.
    account_recovery: bool = False
    #: "Your account" (``/account/``), and discovery's ``account_management_*`` fields.
    account_management: bool = False
    #: "Manage devices" on the device-limit page (``/account/sessions``).
    device_management: bool = False
    #: The upstream provider buttons (``/upstream/authorize/<provider>``).
    upstream_login: bool = False
    #: "Personal access tokens" (``/account/personal-tokens``).
    personal_tokens: bool = False


#: Each link feature of :class:`SiteFeatures` and the path its link leads to, which a mounted
#: route must serve for the link to be shown.
LINKED_PAGES: Mapping[str, str] = {
    "password_registration": urls.REGISTER,
    "account_recovery": urls.ACCOUNT_RECOVERY_START,
    "account_management": urls.ACCOUNT,
    "device_management": urls.path_for(urls.ACCOUNT_WILDCARD, rest="sessions"),
    "upstream_login": urls.path_for(urls.UPSTREAM_OAUTH2_AUTHORIZE, provider_id="0" * 26),
    "personal_tokens": urls.ACCOUNT_PERSONAL_TOKENS,
}


def site_branding(config: Any) -> SiteBranding:
    """The branding, from a config with ``branding`` and ``matrix``."""
    server_name = config.matrix.homeserver
    return SiteBranding(
        server_name=server_name,
        service_name=config.branding.service_name or server_name,
        policy_uri=config.branding.policy_uri,
        tos_uri=config.branding.tos_uri,
        imprint=config.branding.imprint,
    )


def site_features(config: Any, routes: MountedRoutes | None) -> SiteFeatures:
    """The features, from a config with ``passwords`` and ``account`` and the mounted routes.

    ``routes`` ``None`` means none of the optional pages is served (:data:`LINKED_PAGES`).
    """
    passwords = config.passwords.enabled
    configured = {
        "password_registration": passwords and config.account.password_registration_enabled,
        "account_recovery": passwords and config.account.password_recovery_enabled,
    }
    linked = {
        name: bool(configured.get(name, True) and routes is not None and routes.serves(path))
        for name, path in LINKED_PAGES.items()
    }
    return SiteFeatures(
        password_login=passwords,
        login_with_email_allowed=config.account.login_with_email_allowed,
        **linked,
    )


def simplify_url(url: str, keep_path: bool = False) -> str:
    """``https://www.example.org/path?q`` → ``www.example.org`` (``keep_path``: with ``/path``)."""
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.hostname or parts.netloc
    if keep_path and parts.path not in ("", "/"):
        return host + parts.path.rstrip("/")
    return host


@attrs.frozen
class MatrixUser:
    """A user as the homeserver knows them."""

    mxid: str
    display_name: str | None = None

    @classmethod
    def for_user(cls, user: User, server_name: str, display_name: str | None = None) -> MatrixUser:
        return cls(mxid=f"@{user.username}:{server_name}", display_name=display_name)


@attrs.frozen
class ProviderLink:
    """An upstream provider as the login page offers it."""

    id: str
    name: str
    brand_name: str | None = None

    @classmethod
    def from_provider(cls, provider: UpstreamOAuthProvider) -> ProviderLink:
        name = provider.human_name or simplify_url(provider.issuer or "", keep_path=True) or provider.id
        return cls(id=provider.id, name=name, brand_name=provider.brand_name)


@attrs.frozen
class PostAuthContext:
    """Where the user goes after logging in, as the login page explains it."""

    action: PostAuthAction
    #: The name of the client asking, when the action continues one of its grants.
    client_name: str | None = None


# -- page contexts --------------------------------------------------------------------------


class PageContext:
    """What every page context offers: its template name and its values as a mapping.

    Each page's context is a frozen ``attrs`` subclass with a ``TEMPLATE`` name and the fields
    the page shows; ``to_context()`` is what the template receives (its fields, plus what a
    subclass adds). Its sample contexts are in :mod:`mas_twisted.templating.samples`.
    """

    TEMPLATE: ClassVar[str]

    def to_context(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}  # type: ignore[arg-type]  # every page context is an attrs class


@attrs.frozen
class LoginContext(PageContext):
    """``pages/login.html``: username (or email) and password, and the upstream providers."""

    TEMPLATE: ClassVar[str] = "pages/login.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)
    next: PostAuthContext | None = None
    providers: Sequence[ProviderLink] = ()


@attrs.frozen
class ConsentContext(PageContext):
    """``pages/consent.html``: a client asks for access on behalf of the signed-in user.

    The page posts back to ``/consent/<grant.id>`` with the ``csrf`` field and
    ``action=consent`` (allow) or ``action=reject`` (deny). "Use another account" posts to
    ``/logout`` with ``action`` (the post-auth action) so that login brings the user back.
    """

    TEMPLATE: ClassVar[str] = "pages/consent.html"

    csrf_token: str
    session: BrowserSession
    client: OAuth2Client
    grant: AuthorizationGrant
    action: PostAuthAction
    matrix_user: MatrixUser

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["scopes"] = describe_scopes(self.grant.scope)
        ctx["current_session"] = self.session
        return ctx


@attrs.frozen
class PolicyViolationContext(PageContext):
    """``pages/policy_violation.html``: the policy refused this authorization for this user."""

    TEMPLATE: ClassVar[str] = "pages/policy_violation.html"

    csrf_token: str
    session: BrowserSession
    client: OAuth2Client
    violations: Sequence[Violation]
    action: PostAuthAction

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["current_session"] = self.session
        return ctx


@attrs.frozen
class CompatSsoContext(PageContext):
    """``pages/sso.html``: confirm a legacy Matrix SSO login (``m.login.sso``, inventory §3).

    Names where the browser goes back to (the host of ``login.redirect_uri``) and the signed-in
    Matrix user. "Continue" posts the ``csrf`` field back to ``/complete-compat-sso/<login.id>``;
    "Use another account" posts to ``/logout`` with ``action`` so that login comes back here.
    """

    TEMPLATE: ClassVar[str] = "pages/sso.html"

    csrf_token: str
    session: BrowserSession
    login: CompatSsoLogin
    action: PostAuthAction
    matrix_user: MatrixUser

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["current_session"] = self.session
        return ctx


@attrs.frozen
class CompatLoginPolicyViolationContext(PageContext):
    """``pages/compat_login_policy_violation.html``: the ``compat_login`` policy refused a legacy
    SSO login for this user; a lone ``too-many-sessions`` violation gets the device-limit text."""

    TEMPLATE: ClassVar[str] = "pages/compat_login_policy_violation.html"

    csrf_token: str
    session: BrowserSession
    violations: Sequence[Violation]
    action: PostAuthAction

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["current_session"] = self.session
        too_many = len(self.violations) == 1 and self.violations[0].code == "too-many-sessions"
        ctx["is_too_many_sessions"] = too_many
        ctx["need_to_remove"] = self.violations[0].need_to_remove if too_many else None
        return ctx


@attrs.frozen
class DeviceLinkContext(PageContext):
    """``pages/device_link.html``: type the code a device shows (RFC 8628 §3.3).

    The form posts ``code`` (and ``csrf``) to ``/link``.
    """

    TEMPLATE: ClassVar[str] = "pages/device_link.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)


def device_grant_state(grant: DeviceCodeGrant) -> str:
    """``pending``, ``rejected`` or ``granted``."""
    if grant.rejected_at is not None:
        return "rejected"
    if grant.fulfilled_at is not None or grant.exchanged_at is not None:
        return "granted"
    return "pending"


@attrs.frozen
class DeviceConsentContext(PageContext):
    """``pages/device_consent.html``: allow a device to sign in as the signed-in user.

    While the grant is pending, the page posts ``action=consent`` (with the required
    ``confirm_device`` checkbox) or ``action=reject`` to ``/device/<grant.id>``; once decided
    it says so.
    """

    TEMPLATE: ClassVar[str] = "pages/device_consent.html"

    csrf_token: str
    session: BrowserSession
    client: OAuth2Client
    grant: DeviceCodeGrant
    action: PostAuthAction
    matrix_user: MatrixUser

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["scopes"] = describe_scopes(self.grant.scope)
        ctx["grant_state"] = device_grant_state(self.grant)
        ctx["current_session"] = self.session
        return ctx


@attrs.frozen
class ErrorContext(PageContext):
    """``pages/error.html``: something went wrong (``code`` is an OAuth/HTTP error code)."""

    TEMPLATE: ClassVar[str] = "pages/error.html"

    code: str | None = None
    description: str | None = None
    details: str | None = None


@attrs.frozen
class NotFoundContext(PageContext):
    """``pages/404.html``: no page at this address."""

    TEMPLATE: ClassVar[str] = "pages/404.html"

    method: str
    version: str
    uri: str


@attrs.frozen
class FormPostContext(PageContext):
    """``form_post.html``: hand parameters to a client by POST (OAuth 2.0 Form Post Response Mode).

    The page submits itself with a line of script; without JavaScript the user presses the
    button.
    """

    TEMPLATE: ClassVar[str] = "form_post.html"

    redirect_uri: str
    params: Mapping[str, str]


@attrs.frozen
class AccountInactiveContext(PageContext):
    """``pages/account/{locked,deactivated,logged_out}.html``: the account cannot be used now.

    The button posts to ``/logout`` with ``post_logout_action`` so that signing in again
    resumes what the user was doing.
    """

    TEMPLATE: ClassVar[str] = "pages/account/locked.html"
    TEMPLATES: ClassVar[tuple[str, ...]] = (
        "pages/account/locked.html",
        "pages/account/deactivated.html",
        "pages/account/logged_out.html",
    )

    csrf_token: str
    user: User
    post_logout_action: PostAuthAction | None = None

    @property
    def template(self) -> str:
        if self.user.deactivated_at is not None:
            return "pages/account/deactivated.html"
        if self.user.locked_at is not None:
            return "pages/account/locked.html"
        return "pages/account/logged_out.html"


@attrs.frozen
class IndexContext(PageContext):
    """``pages/index.html``: the service's home page."""

    TEMPLATE: ClassVar[str] = "pages/index.html"

    csrf_token: str
    discovery_url: str
    current_session: BrowserSession | None = None


@attrs.frozen
class PersonalTokenRow:
    """One personal session on the tokens page (never its token's text)."""

    id: str
    human_name: str
    scope: str
    #: Dates as ``YYYY-MM-DD HH:MM UTC``.
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_active_at: str | None

    @classmethod
    def of(cls, item: PersonalSessionWithToken) -> PersonalTokenRow:
        session = item.session
        return cls(
            id=session.id,
            human_name=session.human_name,
            scope=session.scope_string,
            created_at=_utc(session.created_at) or "",
            expires_at=_utc(item.token.expires_at) if item.token is not None else None,
            revoked_at=_utc(session.revoked_at),
            last_active_at=_utc(session.last_active_at),
        )


def _utc(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


@attrs.frozen
class PersonalTokensContext(PageContext):
    """``pages/account/personal_tokens.html``: the user's personal access tokens, the form that
    creates one, and the token just created (shown this once)."""

    TEMPLATE: ClassVar[str] = "pages/account/personal_tokens.html"

    csrf_token: str
    current_session: BrowserSession
    tokens: Sequence[PersonalTokenRow] = ()
    #: ``(scope token, description)`` of each scope the user may choose.
    scope_choices: Sequence[tuple[str, str]] = ()
    expiry_days: Sequence[int] = ()
    form: FormState = attrs.field(factory=FormState)
    created_token: str | None = None
    created_name: str | None = None


# -- registration (MAS's ``pages/register/``) --------------------------------------------------


@attrs.frozen
class CaptchaContext:
    """The captcha a registration form carries: the provider and its public site key."""

    service: str
    site_key: str | None = None


@attrs.frozen
class RegisterContext(PageContext):
    """``pages/register/index.html``: how to create an account (password, or a provider)."""

    TEMPLATE: ClassVar[str] = "pages/register/index.html"

    csrf_token: str
    providers: Sequence[ProviderLink] = ()
    next: PostAuthContext | None = None


@attrs.frozen
class PasswordRegisterContext(PageContext):
    """``pages/register/password.html``: username, email, password twice, the terms tick when
    ``branding.tos_uri`` is set, and the captcha slot when one is configured."""

    TEMPLATE: ClassVar[str] = "pages/register/password.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)
    next: PostAuthContext | None = None
    email_required: bool = True
    captcha: CaptchaContext | None = None


@attrs.frozen
class RegisterStepsRegistrationTokenContext(PageContext):
    """``pages/register/steps/registration_token.html``: the token an operator handed out."""

    TEMPLATE: ClassVar[str] = "pages/register/steps/registration_token.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)


@attrs.frozen
class RegisterStepsVerifyEmailContext(PageContext):
    """``pages/register/steps/verify_email.html``: the 6-digit code sent to ``email``, and a
    button that sends a new one (``action=resend``); ``resent`` says one is on its way."""

    TEMPLATE: ClassVar[str] = "pages/register/steps/verify_email.html"

    csrf_token: str
    email: str
    form: FormState = attrs.field(factory=FormState)
    resent: bool = False


@attrs.frozen
class RegisterStepsEmailInUseContext(PageContext):
    """``pages/register/steps/email_in_use.html``: the verified address belongs to an account."""

    TEMPLATE: ClassVar[str] = "pages/register/steps/email_in_use.html"

    email: str
    action: PostAuthAction | None = None


@attrs.frozen
class RegisterStepsDisplayNameContext(PageContext):
    """``pages/register/steps/display_name.html``: the name others see (``action=set``), or
    ``action=skip`` to use the username."""

    TEMPLATE: ClassVar[str] = "pages/register/steps/display_name.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)


#: Every page context, for ``templates check`` and the template tests (each has samples in
#: :data:`~mas_twisted.templating.samples.SAMPLES`).
PAGE_CONTEXTS: tuple[type[PageContext], ...] = (
    IndexContext,
    PersonalTokensContext,
    LoginContext,
    ConsentContext,
    PolicyViolationContext,
    CompatSsoContext,
    CompatLoginPolicyViolationContext,
    DeviceLinkContext,
    DeviceConsentContext,
    AccountInactiveContext,
    ErrorContext,
    NotFoundContext,
    FormPostContext,
    RegisterContext,
    PasswordRegisterContext,
    RegisterStepsRegistrationTokenContext,
    RegisterStepsVerifyEmailContext,
    RegisterStepsEmailInUseContext,
    RegisterStepsDisplayNameContext,
)
