# SPDX-License-Identifier: AGPL-3.0-only
"""The HTML pages, rendered with Jinja2 (MAS's ``crates/templates``: one typed context and one
``render_<page>()`` per page, and sample contexts that ``mas-cli templates check`` renders).

Templates are looked up in ``templates.path`` first, then in the ones shipped with the
service (``templates/`` in the data folder), so an operator may override any single file.
Everything is HTML-escaped unless a template says otherwise.

Each page has a frozen ``attrs`` context class with a ``TEMPLATE`` name, the fields the page
shows, and a ``samples(now_ms, rng)`` classmethod returning representative contexts. Every
render also receives:

- ``branding``: :class:`SiteBranding` (service name, homeserver name, policy and terms links,
  imprint) from the ``branding`` and ``matrix`` sections;
- ``features``: :class:`SiteFeatures` (password login and registration, login with email,
  account recovery) from ``passwords`` and ``account``;
- ``lang`` (``en``), the filter ``prefix_url`` (a path under ``http.public_base``'s path),
  ``simplify_url`` (the host, and optionally the path, of a URL) and the function
  ``asset(name)`` (the URL of a static asset).

Forms carry their CSRF token (``csrf_token``) in a hidden ``csrf`` field, and
:class:`FormState` holds what a refused form showed back: values (never passwords), per-field
error codes and form error codes, which the ``components/form.html`` macros turn into text.
"""

from __future__ import annotations

import abc
import logging
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import attrs
import jinja2

from mas_twisted.handlers.login import PostAuthAction
from mas_twisted.policy.model import Violation as PolicyViolation
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.compat import CompatSsoLogin
from mas_twisted.types.oauth2 import AuthorizationGrant, DeviceCodeGrant
from mas_twisted.types.users import BrowserSession, User
from mas_twisted.util.paths import data_dir
from mas_twisted.util.ulid import make_ulid

if TYPE_CHECKING:
    from mas_twisted.rest.urls import UrlBuilder
    from mas_twisted.server import MasServer
    from mas_twisted.types.upstream import UpstreamOAuthProvider

logger = logging.getLogger(__name__)


def builtin_templates_dir() -> str:
    return str(data_dir("templates"))


def sample_ulid(now_ms: int, rng: random.Random) -> str:
    """A ULID for sample data: ``now_ms`` and 80 bits from ``rng``."""
    return make_ulid(now_ms, rng.getrandbits(80).to_bytes(10, "big"))


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
    """Which links and fields the pages offer."""

    password_login: bool = True
    password_registration: bool = False
    login_with_email_allowed: bool = False
    account_recovery: bool = False


def site_from_config(config: Any) -> tuple[SiteBranding, SiteFeatures]:
    """Branding and features from a config with ``branding``, ``matrix``, ``passwords`` and ``account``."""
    server_name = config.matrix.homeserver
    branding = SiteBranding(
        server_name=server_name,
        service_name=config.branding.service_name or server_name,
        policy_uri=config.branding.policy_uri,
        tos_uri=config.branding.tos_uri,
        imprint=config.branding.imprint,
    )
    passwords = config.passwords.enabled
    features = SiteFeatures(
        password_login=passwords,
        password_registration=passwords and config.account.password_registration_enabled,
        login_with_email_allowed=config.account.login_with_email_allowed,
        account_recovery=passwords and config.account.password_recovery_enabled,
    )
    return branding, features


@attrs.frozen
class FormState:
    """What a form shows back after it was refused.

    ``values`` never holds a password; ``field_errors`` maps a field to error codes
    (``required``, ``invalid``…) and ``form_errors`` lists form-wide codes
    (``invalid_credentials``, ``rate_limit_exceeded``…). Each ``with_*`` returns a new state.
    """

    values: Mapping[str, str] = attrs.field(factory=dict)
    field_errors: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    form_errors: tuple[str, ...] = ()

    #: Fields whose value is never echoed back into a page.
    REDACTED: ClassVar[frozenset[str]] = frozenset({"password", "password_confirm", "csrf"})

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> FormState:
        return cls(values={k: str(v) for k, v in form.items() if k not in cls.REDACTED and v is not None})

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def has_value(self, name: str) -> bool:
        return bool(self.values.get(name))

    def errors(self, name: str) -> tuple[str, ...]:
        return tuple(self.field_errors.get(name, ()))

    @property
    def is_valid(self) -> bool:
        return not self.form_errors and not any(self.field_errors.values())

    def with_value(self, name: str, value: str | None) -> FormState:
        values = dict(self.values)
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
        return attrs.evolve(self, values=values)

    def with_field_error(self, name: str, code: str) -> FormState:
        errors = dict(self.field_errors)
        errors[name] = tuple(errors.get(name, ())) + (code,)
        return attrs.evolve(self, field_errors=errors)

    def with_form_error(self, code: str) -> FormState:
        return attrs.evolve(self, form_errors=self.form_errors + (code,))


@attrs.frozen
class MatrixUser:
    """A user as the homeserver knows them."""

    mxid: str
    display_name: str | None = None

    @classmethod
    def for_user(cls, user: User, server_name: str, display_name: str | None = None) -> MatrixUser:
        return cls(mxid=f"@{user.username}:{server_name}", display_name=display_name)


@attrs.frozen
class ScopeDescription:
    """One scope as a person reads it on a consent page."""

    scope: str
    description: str
    #: Grants powers over other users or the server itself.
    dangerous: bool = False


_SCOPE_TEXT: dict[str, tuple[tuple[str, bool], ...]] = {
    "openid": (("See your profile: your username and Matrix ID", False),),
    "urn:mas:graphql:*": (
        ("Change your profile and contact details", False),
        ("See and end your sessions and devices", False),
    ),
    "urn:matrix:client:api:*": (
        ("Read your messages, rooms and account data", False),
        ("Send messages and act in rooms as you", False),
    ),
    "urn:synapse:admin:*": (("Administer the homeserver, with every user's data", True),),
    "urn:mas:admin": (("Manage every user and session of this account service", True),),
}
_SCOPE_ALIASES = {"urn:matrix:org.matrix.msc2967.client:api:*": "urn:matrix:client:api:*"}
_DEVICE_SCOPE_PREFIXES = ("urn:matrix:client:device:", "urn:matrix:org.matrix.msc2967.client:device:")


def describe_scopes(scopes: str | Iterable[str]) -> list[ScopeDescription]:
    """Human descriptions of a scope (a space-separated string or its tokens).

    Device scopes are not shown (they name the session being created, not a permission);
    an unknown scope is shown as it is.
    """
    tokens = scopes.split() if isinstance(scopes, str) else list(scopes)
    out: list[ScopeDescription] = []
    seen: set[str] = set()
    for token in tokens:
        if token.startswith(_DEVICE_SCOPE_PREFIXES):
            continue
        key = _SCOPE_ALIASES.get(token, token)
        for description, dangerous in _SCOPE_TEXT.get(key, ((token, False),)):
            if description not in seen:
                seen.add(description)
                out.append(ScopeDescription(scope=token, description=description, dangerous=dangerous))
    return out


def scope_string(scopes: str | Iterable[str]) -> str:
    return scopes if isinstance(scopes, str) else " ".join(scopes)


# -- page contexts --------------------------------------------------------------------------


class PageContext(abc.ABC):
    """What every page context offers: its template name and its values as a mapping."""

    TEMPLATE: ClassVar[str]

    def to_context(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}

    @classmethod
    @abc.abstractmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        """Representative contexts, for ``templates check`` and the tests."""


def _sample_user(now_ms: int, rng: random.Random, **changes: Any) -> User:
    return User(id=sample_ulid(now_ms, rng), username="alice", created_at=now_ms - 86_400_000, **changes)


def _sample_session(now_ms: int, rng: random.Random, user: User | None = None) -> BrowserSession:
    return BrowserSession(
        id=sample_ulid(now_ms, rng),
        user=user or _sample_user(now_ms, rng),
        created_at=now_ms - 3_600_000,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        last_active_at=now_ms,
        last_active_ip="203.0.113.7",
    )


def _sample_client(now_ms: int, rng: random.Random, *, named: bool = True) -> OAuth2Client:
    return OAuth2Client(
        id=sample_ulid(now_ms, rng),
        redirect_uris=("https://client.example.org/callback",),
        grant_type_authorization_code=True,
        grant_type_refresh_token=True,
        client_name="Example Chat" if named else None,
        client_uri="https://client.example.org/" if named else None,
        policy_uri="https://client.example.org/privacy" if named else None,
        tos_uri="https://client.example.org/terms" if named else None,
        token_endpoint_auth_method="none",
        application_type="web",
    )


_SAMPLE_CSRF = "sample-csrf-token-0123456789abcdefghijklmnopq"
_SAMPLE_SCOPE = (
    "openid urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ"
)


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


@attrs.frozen
class LoginContext(PageContext):
    """``pages/login.html``: username (or email) and password, and the upstream providers."""

    TEMPLATE: ClassVar[str] = "pages/login.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)
    next: PostAuthContext | None = None
    providers: Sequence[ProviderLink] = ()

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        grant_action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
        return [
            cls(csrf_token=_SAMPLE_CSRF),
            cls(
                csrf_token=_SAMPLE_CSRF,
                form=FormState(values={"username": "alice"}).with_form_error("invalid_credentials"),
                next=PostAuthContext(action=grant_action, client_name="Example Chat"),
                providers=(
                    ProviderLink(id=sample_ulid(now_ms, rng), name="Example SSO", brand_name="github"),
                    ProviderLink(id=sample_ulid(now_ms, rng), name="sso.example.org"),
                ),
            ),
            cls(
                csrf_token=_SAMPLE_CSRF,
                form=FormState()
                .with_field_error("username", "required")
                .with_field_error("password", "required"),
            ),
            cls(
                csrf_token=_SAMPLE_CSRF,
                form=FormState(values={"username": "alice"}).with_form_error("rate_limit_exceeded"),
            ),
        ]


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

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        out: list[PageContext] = []
        for named, scope in ((True, _SAMPLE_SCOPE), (False, "openid urn:synapse:admin:* urn:mas:admin")):
            session = _sample_session(now_ms, rng)
            client = _sample_client(now_ms, rng, named=named)
            grant = AuthorizationGrant(
                id=sample_ulid(now_ms, rng),
                client_id=client.id,
                redirect_uri=client.redirect_uris[0],
                scope=scope,
                created_at=now_ms,
                response_mode="query",
                state="xyz",
            )
            out.append(
                cls(
                    csrf_token=_SAMPLE_CSRF,
                    session=session,
                    client=client,
                    grant=grant,
                    action=PostAuthAction(kind="continue_authorization_grant", id=grant.id),
                    matrix_user=MatrixUser.for_user(session.user, "example.com", "Alice" if named else None),
                )
            )
        return out


@attrs.frozen
class Violation:
    """One reason the policy refused a request."""

    msg: str
    code: str | None = None


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

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        client = _sample_client(now_ms, rng)
        return [
            cls(
                csrf_token=_SAMPLE_CSRF,
                session=_sample_session(now_ms, rng),
                client=client,
                violations=(
                    Violation(msg="This client may not request administrator scopes", code="admin-scope"),
                    Violation(msg="You have too many active sessions", code="too-many-sessions"),
                ),
                action=PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng)),
            )
        ]


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

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        out: list[PageContext] = []
        for redirect_uri, display_name in (
            ("https://app.example.org/login/callback?state=1", "Alice"),
            ("io.element.app:/callback", None),
        ):
            session = _sample_session(now_ms, rng)
            login = CompatSsoLogin(
                id=sample_ulid(now_ms, rng),
                redirect_uri=redirect_uri,
                login_token="".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32)),
                created_at=now_ms,
            )
            out.append(
                cls(
                    csrf_token=_SAMPLE_CSRF,
                    session=session,
                    login=login,
                    action=PostAuthAction(kind="continue_compat_sso_login", id=login.id),
                    matrix_user=MatrixUser.for_user(session.user, "example.com", display_name),
                )
            )
        return out


@attrs.frozen
class CompatLoginPolicyViolationContext(PageContext):
    """``pages/compat_login_policy_violation.html``: the ``compat_login`` policy refused a legacy
    SSO login for this user; a lone ``too-many-sessions`` violation gets the device-limit text."""

    TEMPLATE: ClassVar[str] = "pages/compat_login_policy_violation.html"

    csrf_token: str
    session: BrowserSession
    violations: Sequence[PolicyViolation]
    action: PostAuthAction

    def to_context(self) -> dict[str, Any]:
        ctx = super().to_context()
        ctx["current_session"] = self.session
        too_many = len(self.violations) == 1 and self.violations[0].code == "too-many-sessions"
        ctx["is_too_many_sessions"] = too_many
        ctx["need_to_remove"] = self.violations[0].need_to_remove if too_many else None
        return ctx

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        action = PostAuthAction(kind="continue_compat_sso_login", id=sample_ulid(now_ms, rng))
        return [
            cls(
                csrf_token=_SAMPLE_CSRF,
                session=_sample_session(now_ms, rng),
                violations=(
                    PolicyViolation(
                        msg="user has too many active sessions (soft limit)",
                        code="too-many-sessions",
                        need_to_remove=2,
                    ),
                ),
                action=action,
            ),
            cls(
                csrf_token=_SAMPLE_CSRF,
                session=_sample_session(now_ms, rng),
                violations=(
                    PolicyViolation(msg="Requester [ip: 203.0.113.7] isn't allowed to do this action"),
                ),
                action=action,
            ),
        ]


@attrs.frozen
class DeviceLinkContext(PageContext):
    """``pages/device_link.html``: type the code a device shows (RFC 8628 §3.3).

    The form posts ``code`` (and ``csrf``) to ``/link``.
    """

    TEMPLATE: ClassVar[str] = "pages/device_link.html"

    csrf_token: str
    form: FormState = attrs.field(factory=FormState)

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        return [
            cls(csrf_token=_SAMPLE_CSRF),
            cls(
                csrf_token=_SAMPLE_CSRF,
                form=FormState(values={"code": "ABCDEF"}).with_field_error("code", "invalid"),
            ),
        ]


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

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        out: list[PageContext] = []
        for changes in ({}, {"rejected_at": now_ms}, {"fulfilled_at": now_ms}):
            session = _sample_session(now_ms, rng)
            client = _sample_client(now_ms, rng)
            grant = DeviceCodeGrant(
                id=sample_ulid(now_ms, rng),
                client_id=client.id,
                scope=_SAMPLE_SCOPE,
                user_code="ABCDEF",
                device_code="sample-device-code",
                created_at=now_ms,
                expires_at=now_ms + 1_200_000,
                ip_address="198.51.100.4",
                user_agent="ExampleChat/1.0 (Android 14)",
                user_session_id=session.id if changes else None,
                **changes,
            )
            out.append(
                cls(
                    csrf_token=_SAMPLE_CSRF,
                    session=session,
                    client=client,
                    grant=grant,
                    action=PostAuthAction(kind="continue_device_code_grant", id=grant.id),
                    matrix_user=MatrixUser.for_user(session.user, "example.com"),
                )
            )
        return out


@attrs.frozen
class ErrorContext(PageContext):
    """``pages/error.html``: something went wrong (``code`` is an OAuth/HTTP error code)."""

    TEMPLATE: ClassVar[str] = "pages/error.html"

    code: str | None = None
    description: str | None = None
    details: str | None = None

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        return [
            cls(),
            cls(code="invalid_request", description="The redirect_uri is not registered for this client."),
            cls(description="CSRF token mismatch", details="The form was opened in another window."),
        ]


@attrs.frozen
class NotFoundContext(PageContext):
    """``pages/404.html``: no page at this address."""

    TEMPLATE: ClassVar[str] = "pages/404.html"

    method: str
    version: str
    uri: str

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        return [cls(method="GET", version="HTTP/1.1", uri="/nowhere?x=<b>1</b>")]


@attrs.frozen
class FormPostContext(PageContext):
    """``form_post.html``: hand parameters to a client by POST (OAuth 2.0 Form Post Response Mode).

    The page submits itself with a line of script; without JavaScript the user presses the
    button.
    """

    TEMPLATE: ClassVar[str] = "form_post.html"

    redirect_uri: str
    params: Mapping[str, str]

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        return [
            cls(
                redirect_uri="https://client.example.org/callback",
                params={"code": "abc123", "state": 'x"y<z'},
            ),
            cls(
                redirect_uri="https://client.example.org/callback",
                params={"error": "access_denied", "error_description": "The user denied the request."},
            ),
        ]


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

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
        return [
            cls(csrf_token=_SAMPLE_CSRF, user=_sample_user(now_ms, rng, locked_at=now_ms)),
            cls(
                csrf_token=_SAMPLE_CSRF,
                user=_sample_user(now_ms, rng, deactivated_at=now_ms),
                post_logout_action=action,
            ),
            cls(csrf_token=_SAMPLE_CSRF, user=_sample_user(now_ms, rng), post_logout_action=action),
        ]


@attrs.frozen
class IndexContext(PageContext):
    """``pages/index.html``: the service's home page."""

    TEMPLATE: ClassVar[str] = "pages/index.html"

    csrf_token: str
    discovery_url: str
    current_session: BrowserSession | None = None

    @classmethod
    def samples(cls, now_ms: int, rng: random.Random) -> list[PageContext]:
        discovery = "https://auth.example.com/.well-known/openid-configuration"
        return [
            cls(csrf_token=_SAMPLE_CSRF, discovery_url=discovery),
            cls(
                csrf_token=_SAMPLE_CSRF, discovery_url=discovery, current_session=_sample_session(now_ms, rng)
            ),
        ]


#: Every page context, for ``templates check`` and the template tests.
PAGE_CONTEXTS: tuple[type[PageContext], ...] = (
    IndexContext,
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
)


# -- filters --------------------------------------------------------------------------------


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


# -- the renderer ---------------------------------------------------------------------------


class Templates:
    """Renders the pages; built by ``MasServer.get_templates()``.

    Args:
        server: reads the ``templates``, ``branding``, ``matrix``, ``passwords`` and
            ``account`` sections and the server's URL builder.
    """

    def __init__(self, server: MasServer):
        self._setup(server.config, server.get_url_builder(), strict=False)

    @classmethod
    def from_config(cls, config: Any, url_builder: UrlBuilder, *, strict: bool = False) -> Templates:
        """Templates without a server (``mas-cli templates check``); ``strict`` fails on undefined names."""
        self = cls.__new__(cls)
        self._setup(config, url_builder, strict=strict)
        return self

    def _setup(self, config: Any, url_builder: UrlBuilder, *, strict: bool) -> None:
        self.branding, self.features = site_from_config(config)
        self._url_builder = url_builder
        builtin = builtin_templates_dir()
        self.search_path: list[str] = []
        configured = getattr(config.templates, "path", None)
        if configured and configured != builtin:
            if not os.path.isdir(configured):
                logger.warning(
                    "templates.path %s is not a directory; using the shipped templates only", configured
                )
            self.search_path.append(configured)
        self.search_path.append(builtin)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.search_path),
            autoescape=True,
            undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Templates are read once; a restart picks up changes (as MAS).
            auto_reload=False,
        )
        self.env.filters["prefix_url"] = self.prefix_url
        self.env.filters["simplify_url"] = simplify_url
        self.env.globals["asset"] = self.asset_url
        self.env.globals["branding"] = self.branding
        self.env.globals["features"] = self.features
        self.env.globals["lang"] = "en"

    def prefix_url(self, path: str) -> str:
        """A path of the service under ``public_base``'s path (what links and forms use)."""
        return self._url_builder.prefix + path

    def asset_url(self, name: str) -> str:
        return self._url_builder.assets_base + name

    # -- rendering ------------------------------------------------------------------------
    def render(self, template: str, ctx: PageContext) -> str:
        return self.env.get_template(template).render(ctx.to_context())

    def render_index(self, ctx: IndexContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_login(self, ctx: LoginContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_consent(self, ctx: ConsentContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_policy_violation(self, ctx: PolicyViolationContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_sso_login(self, ctx: CompatSsoContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_compat_login_policy_violation(self, ctx: CompatLoginPolicyViolationContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_device_link(self, ctx: DeviceLinkContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_device_consent(self, ctx: DeviceConsentContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_account_inactive(self, ctx: AccountInactiveContext) -> str:
        """The locked, deactivated or logged-out page, as fits the user."""
        return self.render(ctx.template, ctx)

    def render_account_locked(self, ctx: AccountInactiveContext) -> str:
        return self.render("pages/account/locked.html", ctx)

    def render_account_deactivated(self, ctx: AccountInactiveContext) -> str:
        return self.render("pages/account/deactivated.html", ctx)

    def render_account_logged_out(self, ctx: AccountInactiveContext) -> str:
        return self.render("pages/account/logged_out.html", ctx)

    def render_error(self, ctx: ErrorContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_not_found(self, ctx: NotFoundContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    def render_form_post(self, ctx: FormPostContext) -> str:
        return self.render(ctx.TEMPLATE, ctx)

    # -- checking -------------------------------------------------------------------------
    def check_render(self, now_ms: int, rng: random.Random) -> dict[tuple[str, str], str]:
        """Render every template with every sample: ``{(template, "index=N"): html}``.

        Raises:
            jinja2.TemplateError: a template does not parse or fails to render.
        """
        renders: dict[tuple[str, str], str] = {}
        for cls in PAGE_CONTEXTS:
            samples = cls.samples(now_ms, rng)
            templates = getattr(cls, "TEMPLATES", (cls.TEMPLATE,))
            for template in templates:
                for index, sample in enumerate(samples):
                    renders[(template, f"index={index}")] = self.render(template, sample)
        return renders
