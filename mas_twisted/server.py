# SPDX-License-Identifier: AGPL-3.0-only
"""``MasServer``: the dependency container (Synapse's ``synapse/server.py``).

Each collaborator is built lazily by a ``get_<name>()`` method and cached on the instance,
so constructors take only the server and tests can preset any dependency (``server._clock``)
before it is first asked for.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mas_twisted.util.clock import Clock
from mas_twisted.util.reactor import IMasReactor

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.email.mailer import Mailer
    from mas_twisted.handlers.account import AccountHandler
    from mas_twisted.handlers.account_recovery import AccountRecoveryHandler
    from mas_twisted.handlers.activity import ActivityTracker
    from mas_twisted.handlers.admin import AdminHandler
    from mas_twisted.handlers.authorization import AuthorizationHandler
    from mas_twisted.handlers.captcha import CaptchaVerifier
    from mas_twisted.handlers.client_auth import ClientAuthenticator
    from mas_twisted.handlers.compat.login import CompatLoginHandler
    from mas_twisted.handlers.compat.logout import CompatLogoutHandler
    from mas_twisted.handlers.compat.refresh import CompatRefreshHandler
    from mas_twisted.handlers.compat.sso import CompatSsoHandler
    from mas_twisted.handlers.device import DeviceHandler
    from mas_twisted.handlers.end_session import EndSessionHandler
    from mas_twisted.handlers.id_token import IdTokenSigner
    from mas_twisted.handlers.introspection import IntrospectionHandler
    from mas_twisted.handlers.login import LoginHandler
    from mas_twisted.handlers.mfa import MfaHandler
    from mas_twisted.handlers.passwords import PasswordManager
    from mas_twisted.handlers.personal_sessions import PersonalSessionHandler
    from mas_twisted.handlers.personal_tokens import PersonalTokensHandler
    from mas_twisted.handlers.policy_data import PolicyDataHandler
    from mas_twisted.handlers.rate_limit import RateLimiter
    from mas_twisted.handlers.registration import RegistrationHandler
    from mas_twisted.handlers.revocation import RevocationHandler
    from mas_twisted.handlers.token import TokenHandler
    from mas_twisted.handlers.upstream_oauth2 import UpstreamOAuth2Handler
    from mas_twisted.handlers.user_registration import UserRegistrationHandler
    from mas_twisted.handlers.userinfo import UserinfoHandler
    from mas_twisted.handlers.users import UserHandler
    from mas_twisted.homeserver import HomeserverConnection
    from mas_twisted.jose.encrypter import Encrypter
    from mas_twisted.jose.keystore import Keystore
    from mas_twisted.policy import PolicyEngine
    from mas_twisted.rest._cookies import CookieManager
    from mas_twisted.storage.database import DatabasePool
    from mas_twisted.storage.stores import Stores
    from mas_twisted.templating import SiteFeatures, Templates
    from mas_twisted.templating.i18n import I18n
    from mas_twisted.urls import MountedRoutes, UrlBuilder
    from mas_twisted.util.rand import TokenGenerator

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_BUILDING = object()


def cache_in_self(builder: F) -> F:
    """Cache what ``get_<name>()`` builds on ``self._<name>``, refusing dependency cycles."""
    name = builder.__name__
    if not name.startswith("get_"):
        raise ValueError(f"@cache_in_self can only be used on get_* methods, not {name}")
    attr = "_" + name[len("get_") :]

    @functools.wraps(builder)
    def getter(self: MasServer) -> Any:
        value = getattr(self, attr, None)
        if value is _BUILDING:
            raise RuntimeError(f"Cyclic dependency while building {attr[1:]}")
        if value is None:
            setattr(self, attr, _BUILDING)
            try:
                value = builder(self)
            except BaseException:
                setattr(self, attr, None)
                raise
            setattr(self, attr, value)
        return value

    return getter  # type: ignore[return-value]


class MasServer:
    """Everything one process of the service needs, built on demand."""

    def __init__(self, config: RootConfig, reactor: IMasReactor, *, version_string: str = "mas-twisted"):
        self.config = config
        self._reactor = reactor
        self.version_string = version_string

    def get_reactor(self) -> IMasReactor:
        return self._reactor

    @cache_in_self
    def get_clock(self) -> Clock:
        return Clock(self._reactor)

    @cache_in_self
    def get_db_pool(self) -> DatabasePool:
        from mas_twisted.storage.database import make_database_pool

        return make_database_pool(self.config.database, self._reactor)

    @cache_in_self
    def get_stores(self) -> Stores:
        from mas_twisted.storage.stores import Stores

        return Stores(self.get_db_pool(), self.get_clock(), self.get_reactor())

    @cache_in_self
    def get_keystore(self) -> Keystore:
        from mas_twisted.jose.keystore import Keystore

        return Keystore.from_config(self.config.secrets)

    @cache_in_self
    def get_encrypter(self) -> Encrypter:
        from mas_twisted.jose.encrypter import Encrypter

        return Encrypter(self.config.secrets.encryption_key)

    @cache_in_self
    def get_url_builder(self) -> UrlBuilder:
        from mas_twisted.urls import UrlBuilder

        return UrlBuilder(self.config.http)

    @cache_in_self
    def get_mounted_routes(self) -> MountedRoutes:
        """The routes of every resource the configured listeners mount (what pages may link to)."""
        from mas_twisted.rest.registry import listener_routes

        return listener_routes(self.config.http.listeners)

    @cache_in_self
    def get_site_features(self) -> SiteFeatures:
        """Which optional pages and links are on: the configuration's switch and a mounted route."""
        from mas_twisted.templating import site_features

        return site_features(self.config, self.get_mounted_routes())

    @cache_in_self
    def get_token_generator(self) -> TokenGenerator:
        """Random ids, tokens and codes; tests preset one seeded with ``random.Random(42)``."""
        from mas_twisted.util.rand import OsRandom, TokenGenerator

        return TokenGenerator(OsRandom(), self.get_clock())

    @cache_in_self
    def get_policy(self) -> PolicyEngine:
        from mas_twisted.policy import PolicyEngine

        return PolicyEngine(self)

    @cache_in_self
    def get_password_manager(self) -> PasswordManager:
        from mas_twisted.handlers.passwords import PasswordManager

        return PasswordManager(self)

    @cache_in_self
    def get_rate_limiter(self) -> RateLimiter:
        from mas_twisted.handlers.rate_limit import RateLimiter

        return RateLimiter(self)

    @cache_in_self
    def get_templates(self) -> Templates:
        from mas_twisted.templating import Templates

        return Templates(self)

    @cache_in_self
    def get_i18n(self) -> I18n:
        """The translation catalogs and ``Accept-Language`` negotiation (``templates.translations_path``)."""
        from mas_twisted.templating.i18n import I18n

        return I18n.from_config(self.config)

    @cache_in_self
    def get_mailer(self) -> Mailer:
        """Renders and sends email through ``email.transport``; only jobs use it."""
        from mas_twisted.email.mailer import Mailer

        return Mailer(self)

    @cache_in_self
    def get_cookie_manager(self) -> CookieManager:
        from mas_twisted.rest._cookies import CookieManager

        return CookieManager(self)

    @cache_in_self
    def get_client_authenticator(self) -> ClientAuthenticator:
        from mas_twisted.handlers.client_auth import ClientAuthenticator

        return ClientAuthenticator(self)

    @cache_in_self
    def get_id_token_signer(self) -> IdTokenSigner:
        from mas_twisted.handlers.id_token import IdTokenSigner

        return IdTokenSigner(self)

    @cache_in_self
    def get_token_handler(self) -> TokenHandler:
        from mas_twisted.handlers.token import TokenHandler

        return TokenHandler(self)

    @cache_in_self
    def get_userinfo_handler(self) -> UserinfoHandler:
        from mas_twisted.handlers.userinfo import UserinfoHandler

        return UserinfoHandler(self)

    @cache_in_self
    def get_registration_handler(self) -> RegistrationHandler:
        from mas_twisted.handlers.registration import RegistrationHandler

        return RegistrationHandler(self)

    @cache_in_self
    def get_revocation_handler(self) -> RevocationHandler:
        from mas_twisted.handlers.revocation import RevocationHandler

        return RevocationHandler(self)

    @cache_in_self
    def get_device_handler(self) -> DeviceHandler:
        """``POST /oauth2/device``, ``/link`` and ``/device/<id>``."""
        from mas_twisted.handlers.device import DeviceHandler

        return DeviceHandler(self)

    @cache_in_self
    def get_authorization_handler(self) -> AuthorizationHandler:
        """``/authorize`` and ``/consent/<grant>``."""
        from mas_twisted.handlers.authorization import AuthorizationHandler

        return AuthorizationHandler(self)

    @cache_in_self
    def get_login_handler(self) -> LoginHandler:
        """Password login, logout and what the login page shows."""
        from mas_twisted.handlers.login import LoginHandler

        return LoginHandler(self)

    @cache_in_self
    def get_user_handler(self) -> UserHandler:
        """User creation and password changes (the CLI)."""
        from mas_twisted.handlers.users import UserHandler

        return UserHandler(self)

    @cache_in_self
    def get_user_registration_handler(self) -> UserRegistrationHandler:
        """Password registration and its steps (``/register``…), and registration tokens."""
        from mas_twisted.handlers.user_registration import UserRegistrationHandler

        return UserRegistrationHandler(self)

    @cache_in_self
    def get_account_handler(self) -> AccountHandler:
        """The account pages (``/account/``): profile, sessions, password, deactivation."""
        from mas_twisted.handlers.account import AccountHandler

        return AccountHandler(self)

    @cache_in_self
    def get_end_session_handler(self) -> EndSessionHandler:
        """OpenID Connect RP-Initiated Logout (the end-session endpoint)."""
        from mas_twisted.handlers.end_session import EndSessionHandler

        return EndSessionHandler(self)

    @cache_in_self
    def get_captcha_verifier(self) -> CaptchaVerifier:
        """The registration form's CAPTCHA check against ``captcha.service``'s siteverify."""
        from treq.client import HTTPClient
        from twisted.web.client import Agent

        from mas_twisted.handlers.captcha import VERIFY_TIMEOUT_S, CaptchaVerifier

        return CaptchaVerifier(
            reactor=self._reactor,
            http_client=HTTPClient(Agent(self._reactor, connectTimeout=VERIFY_TIMEOUT_S)),
            service=self.config.captcha.service,
            secret_key=self.config.captcha.secret_key,
            site_hostname=self.get_url_builder().public_hostname,
        )

    @cache_in_self
    def get_account_recovery_handler(self) -> AccountRecoveryHandler:
        """Account recovery by email (``/recover``, ``/account/password/recovery``)."""
        from mas_twisted.handlers.account_recovery import AccountRecoveryHandler

        return AccountRecoveryHandler(self)

    @cache_in_self
    def get_upstream_oauth2_handler(self) -> UpstreamOAuth2Handler:
        """Sign in through upstream OpenID Connect providers (``/upstream/…``)."""
        from mas_twisted.handlers.upstream_oauth2 import UpstreamOAuth2Handler

        return UpstreamOAuth2Handler(self)

    @cache_in_self
    def get_personal_session_handler(self) -> PersonalSessionHandler:
        """Personal sessions and their ``mpt_`` tokens (admin API and self-service page)."""
        from mas_twisted.handlers.personal_sessions import PersonalSessionHandler

        return PersonalSessionHandler(self)

    @cache_in_self
    def get_mfa_handler(self) -> MfaHandler:
        """The TOTP second factor and recovery codes (``experimental.mfa``)."""
        from mas_twisted.handlers.mfa import MfaHandler

        return MfaHandler(self)

    @cache_in_self
    def get_personal_tokens_handler(self) -> PersonalTokensHandler:
        """The self-service page of personal access tokens."""
        from mas_twisted.handlers.personal_tokens import PersonalTokensHandler

        return PersonalTokensHandler(self)

    @cache_in_self
    def get_admin_handler(self) -> AdminHandler:
        """The admin API: its callers and its operations."""
        from mas_twisted.handlers.admin import AdminHandler

        return AdminHandler(self)

    @cache_in_self
    def get_policy_data_handler(self) -> PolicyDataHandler:
        """Dynamic policy data: set through the admin API, loaded into :meth:`get_policy`.

        The periodic reload is started by the service (``app/service.py``)."""
        from mas_twisted.handlers.policy_data import PolicyDataHandler

        return PolicyDataHandler(self)

    @cache_in_self
    def get_compat_login_handler(self) -> CompatLoginHandler:
        """The legacy ``/login`` and ``issue-compatibility-token``."""
        from mas_twisted.handlers.compat.login import CompatLoginHandler

        return CompatLoginHandler(self)

    @cache_in_self
    def get_compat_logout_handler(self) -> CompatLogoutHandler:
        """The legacy ``/logout`` and ``/logout/all``."""
        from mas_twisted.handlers.compat.logout import CompatLogoutHandler

        return CompatLogoutHandler(self)

    @cache_in_self
    def get_compat_refresh_handler(self) -> CompatRefreshHandler:
        """The legacy ``/refresh``."""
        from mas_twisted.handlers.compat.refresh import CompatRefreshHandler

        return CompatRefreshHandler(self)

    @cache_in_self
    def get_compat_sso_handler(self) -> CompatSsoHandler:
        """The legacy ``m.login.sso`` redirect and its confirmation page."""
        from mas_twisted.handlers.compat.sso import CompatSsoHandler

        return CompatSsoHandler(self)

    @cache_in_self
    def get_introspection_handler(self) -> IntrospectionHandler:
        """One per process, so that every listener's introspection requests share its batches."""
        from mas_twisted.handlers.introspection import IntrospectionHandler

        return IntrospectionHandler(self)

    @cache_in_self
    def get_activity_tracker(self) -> ActivityTracker:
        """Session activity and first token uses, written in batches.

        The periodic flush is started and stopped by the service (``app/service.py``), so that
        building a listener (as tests do) starts no timer of its own."""
        from mas_twisted.handlers.activity import ActivityTracker

        return ActivityTracker(self)

    @cache_in_self
    def get_homeserver_connection(self) -> HomeserverConnection:
        """The Matrix homeserver, through the API ``matrix.kind`` names (``homeserver/``).

        Its HTTP client runs on this container's reactor, so a test's reactor carries it."""
        from mas_twisted.homeserver import make_homeserver_connection

        return make_homeserver_connection(self.config.matrix, self._reactor, user_agent=self.version_string)
