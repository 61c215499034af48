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
from mas_twisted.types.account import AccountProfile, AccountSession
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.compat import CompatSsoLogin
from mas_twisted.types.oauth2 import AuthorizationGrant, DeviceCodeGrant
from mas_twisted.types.users import BrowserSession, User, UserEmail
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
    #: The "Connected accounts" tab (``/account/connected-accounts``): upstream providers
    #: are configured.
    connected_accounts: bool = False


#: Each link feature of :class:`SiteFeatures` and the path its link leads to, which a mounted
#: route must serve for the link to be shown.
LINKED_PAGES: Mapping[str, str] = {
    "password_registration": urls.REGISTER,
    "account_recovery": urls.ACCOUNT_RECOVERY_START,
    "account_management": urls.ACCOUNT,
    "device_management": urls.ACCOUNT_SESSIONS,
    "upstream_login": urls.path_for(urls.UPSTREAM_OAUTH2_AUTHORIZE, provider_id="0" * 26),
    "personal_tokens": urls.ACCOUNT_PERSONAL_TOKENS,
    "connected_accounts": urls.ACCOUNT_UPSTREAM_LINKS,
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
        # ``templates check`` reads no ``upstream_oauth2`` section: no providers then.
        "connected_accounts": bool(getattr(getattr(config, "upstream_oauth2", None), "providers", None)),
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
    """The captcha a registration form carries: the provider, its public site key, the
    provider's script and the class of the element it turns into the widget."""

    service: str
    site_key: str | None = None
    script_url: str | None = None
    widget_class: str | None = None


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


# -- the account pages (MAS's account SPA, served as pages) ----------------------------------


@attrs.frozen
class AccountNavEntry:
    """One tab of the account pages' navigation."""

    #: What :attr:`AccountPageContext.active` names it by.
    key: str
    label: str
    #: The route's path (without the public base's prefix).
    path: str
    #: The switch of :func:`account_nav` that shows it; ``None``: always shown.
    switch: str | None = None


#: The tabs of the account pages, in order. A new page is one more entry here (and its switch
#: in the resource's ``_nav_switches``).
ACCOUNT_NAV: tuple[AccountNavEntry, ...] = (
    AccountNavEntry("profile", "Profile", urls.ACCOUNT),
    AccountNavEntry("sessions", "Sessions", urls.ACCOUNT_SESSIONS),
    AccountNavEntry("password", "Password", urls.ACCOUNT_PASSWORD_CHANGE, switch="password_change"),
    AccountNavEntry("plan", "Plan", urls.ACCOUNT_PLAN, switch="plan"),
    AccountNavEntry("personal_tokens", "Personal tokens", urls.ACCOUNT_PERSONAL_TOKENS),
    AccountNavEntry("two_factor", "Two-factor", urls.ACCOUNT_TWO_FACTOR, switch="two_factor"),
    AccountNavEntry(
        "connected_accounts", "Connected accounts", urls.ACCOUNT_UPSTREAM_LINKS, switch="connected_accounts"
    ),
)


def account_nav(switches: Mapping[str, bool]) -> tuple[AccountNavEntry, ...]:
    """The tabs whose switch is on (a tab without a switch is always there)."""
    return tuple(e for e in ACCOUNT_NAV if e.switch is None or switches.get(e.switch, False))


class AccountPageContext(PageContext):
    """What every account page has: ``csrf_token``, ``user``, ``nav`` and the ``active`` tab
    (``templates/pages/account/_layout.html`` draws them)."""


@attrs.frozen
class AccountProfileContext(AccountPageContext):
    """``pages/account/index.html``: the Matrix ID, display name (a form when
    ``account.displayname_change_allowed``), email addresses, and "delete account"."""

    TEMPLATE: ClassVar[str] = "pages/account/index.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    profile: AccountProfile
    emails: Sequence[UserEmail] = ()
    displayname_change_allowed: bool = False
    account_deactivation_allowed: bool = False
    form: FormState = attrs.field(factory=FormState)
    #: The display name was just changed.
    saved: bool = False
    #: ``account.email_change_allowed``: the add and remove forms.
    email_change_allowed: bool = False
    #: The add form asks for the password.
    has_password: bool = True
    #: The last address cannot be removed.
    email_required: bool = True
    email_form: FormState = attrs.field(factory=FormState)
    #: ``added``, ``removed``: what just happened to the addresses.
    email_notice: str | None = None
    active: str = "profile"


@attrs.frozen
class AccountEmailVerifyContext(AccountPageContext):
    """``pages/account/email_verify.html``: the 6-digit code sent to a new address
    (``/account/emails/<id>/verify``), and a button sending a new one (``action=resend``)."""

    TEMPLATE: ClassVar[str] = "pages/account/email_verify.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    email: str
    form: FormState = attrs.field(factory=FormState)
    resent: bool = False
    active: str = "profile"


@attrs.frozen
class AccountEmailInUseContext(AccountPageContext):
    """``pages/account/email_in_use.html``: the verified address belongs to another account."""

    TEMPLATE: ClassVar[str] = "pages/account/email_in_use.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    email: str
    active: str = "profile"


@attrs.frozen
class AccountSessionsContext(AccountPageContext):
    """``pages/account/sessions.html``: every open session (``/account/sessions``), or only
    the browsers (``/account/sessions/browsers``, with "sign out of other browsers")."""

    TEMPLATE: ClassVar[str] = "pages/account/sessions.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    sessions: Sequence[AccountSession] = ()
    browsers_only: bool = False
    #: How many browsers "sign out of other browsers" just ended.
    signed_out: int | None = None
    active: str = "sessions"

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["browsers"] = [s for s in self.sessions if s.kind.value == "browser"]
        ctx["apps"] = [s for s in self.sessions if s.kind.value != "browser"]
        return ctx


@attrs.frozen
class AccountSessionContext(AccountPageContext):
    """``pages/account/session.html``: one session or device (``/account/sessions/<id>``,
    ``/account/devices/<device_id>``), its rename form, and ending it (``confirm_end``: the
    confirmation MSC4191's ``session_end`` asks for)."""

    TEMPLATE: ClassVar[str] = "pages/account/session.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    session: AccountSession
    #: Where the forms post: this page's own path.
    action_path: str
    confirm_end: bool = False
    form: FormState = attrs.field(factory=FormState)
    renamed: bool = False
    active: str = "sessions"


@attrs.frozen
class AccountPasswordContext(AccountPageContext):
    """``pages/account/password.html``: the current password and the new one twice."""

    TEMPLATE: ClassVar[str] = "pages/account/password.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    form: FormState = attrs.field(factory=FormState)
    changed: bool = False
    minimum_complexity: int = 3
    active: str = "password"


@attrs.frozen
class AccountTwoFactorContext(AccountPageContext):
    """``pages/account/two_factor.html``: the TOTP second factor (``experimental.mfa``).

    Not enrolled: a button that starts the enrolment. Enrolling (``secret`` set): the secret as
    text, its QR code (``qr_svg``, drawn by segno on the server) and the form taking a first
    code. Enrolled: how many recovery codes are left, the form replacing them and the form
    removing the second factor (password and code). ``recovery_codes``: the codes just made,
    shown this once.
    """

    TEMPLATE: ClassVar[str] = "pages/account/two_factor.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    enrolled: bool = False
    secret: str | None = None
    otpauth_uri: str | None = None
    qr_svg: str | None = None
    unused_recovery_codes: int = 0
    recovery_codes: Sequence[str] = ()
    #: The second factor was just removed.
    removed: bool = False
    form: FormState = attrs.field(factory=FormState)
    active: str = "two_factor"


@attrs.frozen
class LoginSecondFactorContext(PageContext):
    """``pages/login_two_factor.html``: the code from the authenticator app (or a recovery
    code), asked after a correct password from a user with a second factor."""

    TEMPLATE: ClassVar[str] = "pages/login_two_factor.html"

    csrf_token: str
    username: str
    form: FormState = attrs.field(factory=FormState)
    next: PostAuthContext | None = None


@attrs.frozen
class AccountCrossSigningResetContext(AccountPageContext):
    """``pages/account/reset_cross_signing.html``: what resetting the identity does, and a
    button that lets the homeserver accept new cross-signing keys without a password."""

    TEMPLATE: ClassVar[str] = "pages/account/reset_cross_signing.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    #: ``None`` before, ``"allowed"`` once the homeserver accepted, ``"failed"`` if it did not.
    outcome: str | None = None
    active: str = "profile"


@attrs.frozen
class AccountDeactivateContext(AccountPageContext):
    """``pages/account/deactivate.html``: confirm with the password (if the user has one),
    optionally erasing the data on the homeserver."""

    TEMPLATE: ClassVar[str] = "pages/account/deactivate.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    has_password: bool = True
    form: FormState = attrs.field(factory=FormState)
    active: str = "profile"


@attrs.frozen
class AccountPlanContext(AccountPageContext):
    """``pages/account/plan.html``: ``experimental.plan_management_iframe_uri`` in a frame."""

    TEMPLATE: ClassVar[str] = "pages/account/plan.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    iframe_uri: str
    active: str = "plan"


@attrs.frozen
class ConnectedAccountRow:
    """One upstream link of the user, as the "Connected accounts" tab lists it."""

    link_id: str
    #: ``None``: the provider was removed from the configuration (and pruned).
    provider: ProviderLink | None
    #: The account's name at the provider (``claims_imports.account_name``), when known.
    account_name: str | None
    linked_at: int


@attrs.frozen
class AccountConnectedAccountsContext(AccountPageContext):
    """``pages/account/connected_accounts.html``: the user's upstream links with "Unlink", and
    a "Link" button per enabled provider not linked yet (beyond MAS: #3135, #4495)."""

    TEMPLATE: ClassVar[str] = "pages/account/connected_accounts.html"

    csrf_token: str
    user: User
    nav: Sequence[AccountNavEntry]
    links: Sequence[ConnectedAccountRow] = ()
    available: Sequence[ProviderLink] = ()
    #: The name of the provider just unlinked.
    unlinked: str | None = None
    #: An unlink was refused: it is the last way to sign in.
    last_way_in: bool = False
    active: str = "connected_accounts"


# -- account recovery -------------------------------------------------------------------------


@attrs.frozen
class RecoveryStartContext(PageContext):
    """``pages/recovery/start.html``: the address to send recovery links to."""

    TEMPLATE: ClassVar[str] = "pages/recovery/start.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)


@attrs.frozen
class RecoveryProgressContext(PageContext):
    """``pages/recovery/progress.html``: "if an account has this address, a link is on its
    way", and a button that sends the links again (``resend_failed``: the limit refused it,
    ``resent``: they are on their way again)."""

    TEMPLATE: ClassVar[str] = "pages/recovery/progress.html"

    csrf_token: str
    session_id: str
    email: str
    resend_failed: bool = False
    resent: bool = False


@attrs.frozen
class RecoveryFinishContext(PageContext):
    """``pages/recovery/finish.html``: the new password for ``username`` (twice), posted with
    the link's ``ticket``; once ``done``, that it was set and how to sign in."""

    TEMPLATE: ClassVar[str] = "pages/recovery/finish.html"

    csrf_token: str
    ticket: str
    username: str
    form: FormState = attrs.field(factory=FormState)
    done: bool = False


@attrs.frozen
class RecoveryExpiredContext(PageContext):
    """``pages/recovery/expired.html``: the link is older than 10 minutes; a button asks for
    new links (posting the ticket back with ``action=resend``)."""

    TEMPLATE: ClassVar[str] = "pages/recovery/expired.html"

    csrf_token: str
    ticket: str
    resend_failed: bool = False


@attrs.frozen
class RecoveryConsumedContext(PageContext):
    """``pages/recovery/consumed.html``: a new password was set with this recovery already."""

    TEMPLATE: ClassVar[str] = "pages/recovery/consumed.html"


@attrs.frozen
class RecoveryDisabledContext(PageContext):
    """``pages/recovery/disabled.html``: account recovery is off on this server."""

    TEMPLATE: ClassVar[str] = "pages/recovery/disabled.html"


@attrs.frozen
class EndSessionContext(PageContext):
    """``pages/end_session.html`` (OpenID Connect RP-Initiated Logout): "sign out?" for the
    signed-in ``session``, posting back ``params`` (the validated request), with a tick to
    end ``client_name``'s sessions too; without a session, "you are signed out"."""

    TEMPLATE: ClassVar[str] = "pages/end_session.html"

    csrf_token: str
    session: BrowserSession | None = None
    client_name: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class UpstreamImportContext:
    """One attribute the do-register page may import from the provider."""

    value: str
    #: ``suggest`` (a checkbox, or an editable field for the username) or ``force``/``require``.
    forced: bool


@attrs.frozen
class UpstreamRegisterContext(PageContext):
    """``pages/upstream_oauth2/do_register.html``: create an account from what the provider
    sent: the username (imposed, or a field prefilled with the suggestion), and the display
    name and email to import (checkboxes when only suggested)."""

    TEMPLATE: ClassVar[str] = "pages/upstream_oauth2/do_register.html"

    csrf_token: str
    provider: ProviderLink
    form: FormState = attrs.field(factory=FormState)
    localpart: UpstreamImportContext | None = None
    displayname: UpstreamImportContext | None = None
    email: UpstreamImportContext | None = None
    server_name: str = ""
    #: The provider's ``registration_token_required``: a token field.
    token_required: bool = False


@attrs.frozen
class UpstreamLinkMismatchContext(PageContext):
    """``pages/upstream_oauth2/link_mismatch.html``: the provider's account is linked to
    another user than the one signed in here."""

    TEMPLATE: ClassVar[str] = "pages/upstream_oauth2/link_mismatch.html"

    provider: ProviderLink
    linked_user: MatrixUser
    current_user: MatrixUser


@attrs.frozen
class UpstreamSuggestLinkContext(PageContext):
    """``pages/upstream_oauth2/suggest_link.html``: link the provider's account to the user
    signed in here (``action=link``)."""

    TEMPLATE: ClassVar[str] = "pages/upstream_oauth2/suggest_link.html"

    csrf_token: str
    provider: ProviderLink
    current_user: MatrixUser


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
    AccountProfileContext,
    AccountEmailVerifyContext,
    AccountEmailInUseContext,
    AccountSessionsContext,
    AccountSessionContext,
    AccountPasswordContext,
    AccountCrossSigningResetContext,
    AccountDeactivateContext,
    AccountPlanContext,
    AccountTwoFactorContext,
    LoginSecondFactorContext,
    AccountConnectedAccountsContext,
    RecoveryStartContext,
    RecoveryProgressContext,
    RecoveryFinishContext,
    RecoveryExpiredContext,
    RecoveryConsumedContext,
    RecoveryDisabledContext,
    EndSessionContext,
    UpstreamRegisterContext,
    UpstreamLinkMismatchContext,
    UpstreamSuggestLinkContext,
)
