# SPDX-License-Identifier: AGPL-3.0-only
"""Every path the service serves, and :class:`UrlBuilder` for absolute URLs.

The paths are MAS's (``crates/router/src/endpoints.rs``), written in Klein/Werkzeug rule
syntax (``<grant_id>`` where MAS writes ``{grant_id}``), so a resource routes with the
constant itself: ``@app.route(urls.OAUTH2_TOKEN, methods=["POST"])``. :func:`path_for`
fills the placeholders in.

:class:`UrlBuilder` follows MAS's ``crates/router/src/url_builder.rs``: an absolute URL is
``public_base`` joined with the path minus its leading slash (so a ``public_base`` with a
path keeps it only when it ends with ``/``), and the issuer is ``http.issuer``, by default
``public_base``.

:class:`PostAuthAction` is where a browser continues once signed in (MAS's router type of
the same name and its ``go_next``): the kinds, their query-string form and the page each
continues at.

:class:`MountedRoutes` is which of these paths the running service answers (the rules of the
resources its listeners mount, read by ``rest/registry.py``): a page links to a path, and the
discovery document advertises it, only once a route serves it (``site_features`` in
``templating/context.py`` and ``rest/discovery.py`` decide with it).

This module is a layer of its own, below the handlers, the templates and the resources (as
MAS's ``mas-router`` crate sits below its handlers and templates): it imports nothing of the
service but configuration types and ``util/``, so anything may import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urljoin, urlsplit

import attrs
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from mas_twisted.util.ulid import is_ulid

# -- discovery ------------------------------------------------------------------------------
OIDC_CONFIGURATION = "/.well-known/openid-configuration"
WEBFINGER = "/.well-known/webfinger"
CHANGE_PASSWORD_DISCOVERY = "/.well-known/change-password"

# -- OAuth 2.0 API (resource "oauth") -------------------------------------------------------
OAUTH2_KEYS = "/oauth2/keys.json"
OIDC_USERINFO = "/oauth2/userinfo"
OAUTH2_INTROSPECTION = "/oauth2/introspect"
OAUTH2_REVOCATION = "/oauth2/revoke"
OAUTH2_TOKEN = "/oauth2/token"
OAUTH2_REGISTRATION = "/oauth2/registration"
OAUTH2_DEVICE_AUTHORIZATION = "/oauth2/device"

# -- human pages ----------------------------------------------------------------------------
OAUTH2_AUTHORIZATION = "/authorize"
INDEX = "/"
LOGIN = "/login"
LOGOUT = "/logout"
#: The second step of a password login for a user with a second factor (``experimental.mfa``).
LOGIN_SECOND_FACTOR = "/login/two-factor"
#: OpenID Connect RP-Initiated Logout 1.0 (ours: MAS has no end-session endpoint).
OIDC_END_SESSION = "/oauth2/end_session"
REGISTER = "/register"
PASSWORD_REGISTER = "/register/password"
REGISTER_TOKEN = "/register/steps/<id>/token"
REGISTER_DISPLAY_NAME = "/register/steps/<id>/display-name"
REGISTER_VERIFY_EMAIL = "/register/steps/<id>/verify-email"
REGISTER_FINISH = "/register/steps/<id>/finish"
ACCOUNT_REDIRECT = "/account"
ACCOUNT = "/account/"
ACCOUNT_WILDCARD = "/account/<path:rest>"
ACCOUNT_SESSIONS = "/account/sessions"
ACCOUNT_BROWSER_SESSIONS = "/account/sessions/browsers"
ACCOUNT_SESSION = "/account/sessions/<id>"
ACCOUNT_DEVICE = "/account/devices/<path:device_id>"
ACCOUNT_EMAIL_VERIFY = "/account/emails/<id>/verify"
ACCOUNT_EMAIL_IN_USE = "/account/emails/<id>/in-use"
ACCOUNT_PASSWORD_CHANGE = "/account/password/change"
ACCOUNT_RESET_CROSS_SIGNING = "/account/reset-cross-signing"
ACCOUNT_PLAN = "/account/plan"
#: The "Two-factor" tab: TOTP enrolment, recovery codes, removal (``experimental.mfa``).
ACCOUNT_TWO_FACTOR = "/account/two-factor"
#: Not a route of MAS (its SPA deactivates from a dialog of the profile page): the page and
#: form that deactivate the account without JavaScript.
ACCOUNT_DEACTIVATE = "/account/deactivate"
#: The self-service page of personal access tokens (beyond MAS: #4492), and its revoke form.
ACCOUNT_PERSONAL_TOKENS = "/account/personal-tokens"
ACCOUNT_PERSONAL_TOKEN_REVOKE = "/account/personal-tokens/<session_id>/revoke"
#: The "Connected accounts" tab (beyond MAS: #3135, #4495): the user's upstream links, and
#: the form that unlinks one.
ACCOUNT_UPSTREAM_LINKS = "/account/connected-accounts"
ACCOUNT_UPSTREAM_UNLINK = "/account/connected-accounts/<link_id>/unlink"
ACCOUNT_RECOVERY_FINISH = "/account/password/recovery"
ACCOUNT_RECOVERY_START = "/recover"
ACCOUNT_RECOVERY_PROGRESS = "/recover/progress/<session_id>"
CONSENT = "/consent/<grant_id>"
COMPAT_LOGIN_SSO_COMPLETE = "/complete-compat-sso/<grant_id>"
UPSTREAM_OAUTH2_AUTHORIZE = "/upstream/authorize/<provider_id>"
UPSTREAM_OAUTH2_CALLBACK = "/upstream/callback/<provider_id>"
UPSTREAM_OAUTH2_LINK = "/upstream/link/<link_id>"
UPSTREAM_OAUTH2_BACKCHANNEL_LOGOUT = "/upstream/backchannel-logout/<provider_id>"
DEVICE_CODE_LINK = "/link"
DEVICE_CODE_CONSENT = "/device/<device_code_id>"

# -- Matrix compatibility API (resource "compat") -------------------------------------------
COMPAT_LOGIN = "/_matrix/client/<version>/login"
COMPAT_LOGOUT = "/_matrix/client/<version>/logout"
COMPAT_LOGOUT_ALL = "/_matrix/client/<version>/logout/all"
COMPAT_REFRESH = "/_matrix/client/<version>/refresh"
COMPAT_LOGIN_SSO_REDIRECT = "/_matrix/client/<version>/login/sso/redirect"
COMPAT_LOGIN_SSO_REDIRECT_SLASH = "/_matrix/client/<version>/login/sso/redirect/"
COMPAT_LOGIN_SSO_REDIRECT_IDP = "/_matrix/client/<version>/login/sso/redirect/<idp>"

# -- the rest -------------------------------------------------------------------------------
HEALTH = "/health"
METRICS = "/metrics"
CONNECTION_INFO = "/connection-info"
STATIC_ASSETS = "/assets/"
STATIC_ASSET = "/assets/<path:path>"
GRAPHQL = "/graphql"
GRAPHQL_PLAYGROUND = "/graphql/playground"
ADMIN_API_PREFIX = "/api/admin/v1"
API_SPEC = "/api/spec.json"
API_DOC = "/api/doc/"
API_DOC_CALLBACK = "/api/doc/oauth2-callback"

_PLACEHOLDER = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def path_for(rule: str, **values: Any) -> str:
    """Fill a rule's placeholders: ``path_for(CONSENT, grant_id=g.id)`` → ``/consent/01H…``.

    Values are percent-encoded, except that a ``<path:…>`` value keeps its slashes.

    Raises:
        KeyError: a placeholder has no value.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        safe = "/" if match.group(0).startswith("<path:") else ""
        return quote(str(values[name]), safe=safe)

    return _PLACEHOLDER.sub(fill, rule)


class _PublicBase(Protocol):
    """What the builder reads of ``http`` (:class:`~mas_twisted.config.http.HttpConfig`)."""

    @property
    def public_base(self) -> str: ...

    @property
    def issuer(self) -> str: ...


class UrlBuilder:
    """Absolute and prefixed URLs from ``http.public_base`` and ``http.issuer``.

    Example::

        url_builder.absolute(urls.OAUTH2_KEYS)   # "https://auth.example.com/oauth2/keys.json"
        url_builder.relative(urls.LOGIN)         # "/login", or "/auth/login" under a prefix
    """

    def __init__(self, http_config: _PublicBase):
        self.http_base: str = http_config.public_base
        self.issuer: str = http_config.issuer
        #: The path of ``public_base`` without its trailing slash ("" at the root).
        self.prefix: str = urlsplit(self.http_base).path.rstrip("/")
        self.assets_base: str = f"{self.prefix}/assets/"

    def absolute(self, path: str, query: dict[str, Any] | None = None) -> str:
        """``public_base`` joined with ``path`` (a constant of this module, filled in)."""
        url = urljoin(self.http_base, path.lstrip("/"))
        return _with_query(url, query)

    def relative(self, path: str, query: dict[str, Any] | None = None) -> str:
        """``path`` under the public base's path prefix: what a redirect's ``Location`` uses."""
        return _with_query(f"{self.prefix}{path}", query)

    # Paths under the public base's prefix, for redirects.
    def index(self) -> str:
        """The index page: ``/``."""
        return self.relative(INDEX)

    def login(self, query: dict[str, Any] | None = None) -> str:
        """The login page, with the post-auth action and login hint in ``query``: ``/login?kind=…``."""
        return self.relative(LOGIN, query)

    @property
    def public_hostname(self) -> str:
        return urlsplit(self.http_base).hostname or ""

    # The URLs other parts of the service publish, named as MAS names them.
    def oidc_issuer(self) -> str:
        return self.issuer

    def oidc_discovery(self) -> str:
        return urljoin(self.issuer, OIDC_CONFIGURATION.lstrip("/"))

    def jwks_uri(self) -> str:
        return self.absolute(OAUTH2_KEYS)

    def oauth2_token_endpoint(self) -> str:
        return self.absolute(OAUTH2_TOKEN)

    def device_code_link(self, user_code: str | None = None) -> str:
        """Where the user types the code; with ``user_code``, prefilled (``…/link?code=…``)."""
        return self.absolute(DEVICE_CODE_LINK, {"code": user_code})

    def static_asset(self, path: str) -> str:
        return self.absolute(path_for(STATIC_ASSET, path=path))

    def account_management_uri(self) -> str:
        return self.absolute(ACCOUNT)


class MountedRoutes:
    """The routes the service's listeners mount, and whether one of them serves a path.

    Built by ``rest/registry.mounted_routes`` from the Klein rules (and exact-path leaves) of
    every class mounted under the resource names of ``http.listeners``, so that adding a route
    to a mounted resource is all it takes for the pages to link to it.

    Example::

        routes = MountedRoutes([(ACCOUNT, {"GET"}), (LOGIN, {"GET", "POST"})])
        routes.serves("/account/")            # True
        routes.serves("/login", "POST")       # True
        routes.serves("/recover")             # False: no route, so no link to it
    """

    def __init__(self, routes: Iterable[tuple[str, Iterable[str]]]):
        #: ``rule → methods`` (a rule mounted by several classes has all their methods).
        self.rules: dict[str, frozenset[str]] = {}
        for rule, methods in routes:
            self.rules[rule] = self.rules.get(rule, frozenset()) | {m.upper() for m in methods}
        self._map = Map(
            [Rule(rule, methods=sorted(methods) or None) for rule, methods in self.rules.items()],
            strict_slashes=True,
        )

    def serves(self, path: str, method: str = "GET") -> bool:
        """Whether a mounted route answers ``method`` on ``path`` (a filled-in path, without the
        public base's prefix or a query). A path a route redirects to its slashed form counts."""
        adapter = self._map.bind("localhost", path_info=path, default_method=method.upper())
        try:
            adapter.match()
        except RequestRedirect:
            return True
        except (NotFound, MethodNotAllowed):
            return False
        return True

    def __repr__(self) -> str:
        return f"<MountedRoutes of {len(self.rules)} rules>"


def _with_query(url: str, query: dict[str, Any] | None) -> str:
    if not query:
        return url
    encoded = urlencode([(k, v) for k, v in query.items() if v is not None])
    return f"{url}?{encoded}" if encoded else url


# -- post-auth actions ------------------------------------------------------------------------

CONTINUE_AUTHORIZATION_GRANT = "continue_authorization_grant"
CONTINUE_DEVICE_CODE_GRANT = "continue_device_code_grant"
CONTINUE_COMPAT_SSO_LOGIN = "continue_compat_sso_login"
CHANGE_PASSWORD = "change_password"
LINK_UPSTREAM = "link_upstream"
MANAGE_ACCOUNT = "manage_account"

#: The kinds that name an object by ``id``: the route they continue at, and its placeholder.
_ID_KINDS: dict[str, tuple[str, str]] = {
    CONTINUE_AUTHORIZATION_GRANT: (CONSENT, "grant_id"),
    CONTINUE_DEVICE_CODE_GRANT: (DEVICE_CODE_CONSENT, "device_code_id"),
    CONTINUE_COMPAT_SSO_LOGIN: (COMPAT_LOGIN_SSO_COMPLETE, "grant_id"),
    LINK_UPSTREAM: (UPSTREAM_OAUTH2_LINK, "link_id"),
}
POST_AUTH_KINDS: frozenset[str] = frozenset(_ID_KINDS) | {CHANGE_PASSWORD, MANAGE_ACCOUNT}

#: MSC4191 account-management actions; ``True`` where a ``device_id`` is required.
ACCOUNT_ACTIONS: dict[str, bool] = {
    "org.matrix.profile": False,
    "profile": False,
    "org.matrix.devices_list": False,
    "org.matrix.sessions_list": False,
    "sessions_list": False,
    "org.matrix.device_view": True,
    "org.matrix.session_view": True,
    "session_view": True,
    "org.matrix.device_delete": True,
    "org.matrix.session_end": True,
    "session_end": True,
    "org.matrix.cross_signing_reset": False,
}


@attrs.frozen
class PostAuthAction:
    """Where to continue after authentication (MAS's ``PostAuthAction``)."""

    kind: str
    id: str | None = None
    #: ``manage_account`` only: the MSC4191 action, and its ``device_id`` if it needs one.
    account_action: str | None = None
    device_id: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PostAuthAction | None:
        """The action in a query string or form (``kind``, ``id``, ``action``, ``device_id``), if valid."""
        kind = _one(params.get("kind"))
        if kind is None or kind not in POST_AUTH_KINDS:
            return None
        if kind in _ID_KINDS:
            action_id = _one(params.get("id"))
            if action_id is None or not is_ulid(action_id):
                return None
            return cls(kind=kind, id=action_id.upper())
        if kind == MANAGE_ACCOUNT:
            account_action = _one(params.get("action"))
            device_id = _one(params.get("device_id"))
            needs_device = ACCOUNT_ACTIONS.get(account_action or "")
            if needs_device is None or (needs_device and not device_id):
                return cls(kind=kind)
            return cls(
                kind=kind, account_action=account_action, device_id=device_id if needs_device else None
            )
        return cls(kind=kind)

    def to_params(self) -> dict[str, str]:
        """The query-string / hidden-field form of the action."""
        params = {"kind": self.kind}
        if self.id is not None:
            params["id"] = self.id
        if self.account_action is not None:
            params["action"] = self.account_action
        if self.device_id is not None:
            params["device_id"] = self.device_id
        return params

    def path(self) -> str:
        """The page that continues the action (MAS's ``go_next``), without the public base prefix."""
        route = _ID_KINDS.get(self.kind)
        if route is not None:
            rule, placeholder = route
            return path_for(rule, **{placeholder: self.id})
        if self.kind == CHANGE_PASSWORD:
            return ACCOUNT_PASSWORD_CHANGE
        if self.account_action is None:
            return ACCOUNT
        query = {"action": self.account_action}
        if self.device_id is not None:
            query["device_id"] = self.device_id
        return f"{ACCOUNT}?{urlencode(query)}"

    def go_next(self, url_builder: UrlBuilder) -> str:
        """The ``Location`` to redirect to (a path under the public base's prefix)."""
        return url_builder.relative(self.path())


def _one(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def post_auth_redirect(
    kind: str | None, id: str | None = None, *, url_builder: UrlBuilder | None = None
) -> str:
    """Where a browser goes once authenticated for this action: the consent page for
    ``continue_authorization_grant``, and so on (see the module docstring); ``/`` when there is
    no (valid) action. With ``url_builder`` the path is put under the public base's prefix.
    """
    action = PostAuthAction.from_params({"kind": kind, "id": id}) if kind else None
    path = action.path() if action is not None else INDEX
    return url_builder.relative(path) if url_builder is not None else path


def go_next(action: PostAuthAction | None, url_builder: UrlBuilder) -> str:
    """``action.go_next`` or, without an action, the index page (MAS's ``Login::go_next``)."""
    return action.go_next(url_builder) if action is not None else url_builder.index()


def login_url(
    url_builder: UrlBuilder, action: PostAuthAction | None = None, login_hint: str | None = None
) -> str:
    """The login page that comes back to ``action`` afterwards (what ``/authorize`` redirects to)."""
    query: dict[str, str] = dict(action.to_params()) if action is not None else {}
    if login_hint:
        query["login_hint"] = login_hint
    return url_builder.login(query)
