# SPDX-License-Identifier: AGPL-3.0-only
"""Password login and post-authentication actions (MAS's ``crates/handlers/src/views/login.rs``
and ``PostAuthAction`` in ``crates/router/src/endpoints.rs``).

A post-auth action says where a browser goes once it is signed in. It travels in query
strings and forms as ``kind=<kind>&id=<ulid>`` (plus MSC4191's ``action``/``device_id`` for
``manage_account``); :meth:`PostAuthAction.path` is MAS's ``go_next``:

=============================== =====================================
``continue_authorization_grant`` ``/consent/<id>``
``continue_device_code_grant``   ``/device/<id>``
``continue_compat_sso_login``    ``/complete-compat-sso/<id>``
``change_password``              ``/account/password/change``
``link_upstream``                ``/upstream/link/<id>``
``manage_account``               ``/account/`` (``?action=…&device_id=…``)
(none)                           ``/``
=============================== =====================================

An unknown kind, or a missing or malformed id, means "no action" (MAS's flattened optional
query silently drops it).

:meth:`LoginHandler.login_with_password` is MAS's ``POST /login`` check, in its order: find
the user (by email when ``account.login_with_email_allowed`` and the input has an ``@``,
else by username, accepting ``@user:<our server>``), take a rate-limit cell (per client IP,
then per account), verify the current password and upgrade its hash to the newest scheme,
refuse deactivated and then locked users (only after the password matched, so their state
is not disclosed to anyone without it), and start a browser session authenticated by that
password.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

import attrs

from mas_twisted.handlers.rate_limit import RateLimitExceededError
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, User, UserPassword
from mas_twisted.urls import (
    CONTINUE_AUTHORIZATION_GRANT,
    CONTINUE_COMPAT_SSO_LOGIN,
    CONTINUE_DEVICE_CODE_GRANT,
    PostAuthAction,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.stores import Stores
    from mas_twisted.types.upstream import UpstreamOAuthProvider

logger = logging.getLogger(__name__)

# -- password login ---------------------------------------------------------------------------


class LoginOutcome(str, enum.Enum):
    SUCCESS = "success"
    #: Unknown user, no password, or a wrong password: never say which.
    INVALID_CREDENTIALS = "invalid_credentials"
    RATE_LIMITED = "rate_limit_exceeded"
    LOCKED = "locked"
    DEACTIVATED = "deactivated"
    #: The password matched, but the user has a confirmed second factor (``experimental.mfa``):
    #: no session yet, the login page asks for a code.
    SECOND_FACTOR_REQUIRED = "second_factor_required"


@attrs.frozen
class LoginResult:
    outcome: LoginOutcome
    #: The user, once the password matched (and for ``LOCKED``/``DEACTIVATED``).
    user: User | None = None
    #: The new browser session, on success.
    session: BrowserSession | None = None
    #: The password that matched, for ``SECOND_FACTOR_REQUIRED``.
    user_password_id: str | None = None


def localpart_of(mxid: str, server_name: str) -> str | None:
    """The localpart of ``mxid`` when it is a user ID on ``server_name`` (``@alice:example.com``
    → ``alice``), else ``None``: the one rule by which a login form, a ``login_hint`` and the
    compatibility ``/login`` accept a full Matrix ID for one of our users."""
    suffix = f":{server_name}"
    if mxid.startswith("@") and mxid.endswith(suffix) and len(mxid) > len(suffix) + 1:
        return mxid[1 : -len(suffix)]
    return None


#: The prefix of a ``login_hint`` naming a Matrix ID (MAS's ``mxid:@alice:example.com``).
MXID_LOGIN_HINT_PREFIX = "mxid:"


@attrs.frozen
class PostAuthDescription:
    """What the login page says a post-auth action continues (MAS's ``PostAuthContext``)."""

    action: PostAuthAction
    #: The name of the OAuth 2.0 client whose grant the action continues (its id if unnamed).
    client_name: str | None = None
    #: A legacy SSO login has no client: where it sends the browser back to instead.
    sso_redirect_uri: str | None = None
    #: Where the browser ends up once the action is done (the grant's or the SSO login's
    #: redirect URI), if it leaves this service: the login form's submission may end there.
    redirect_uri: str | None = None


class LoginHandler:
    """Checks passwords, opens and ends browser sessions, and decides what the login page
    offers (``server.get_login_handler()``)."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._passwords = server.get_password_manager()
        self._limiter = server.get_rate_limiter()
        self._tokens = server.get_token_generator()
        self._server_name: str = server.config.matrix.homeserver
        self._login_with_email: bool = server.config.account.login_with_email_allowed
        self.password_login_enabled: bool = server.config.passwords.enabled

    @property
    def _stores(self) -> Stores:
        # Resolved on use: building the pages of a listener must not open the database pool.
        return self._server.get_stores()

    def localpart(self, username: str) -> str:
        """``@alice:<our server>`` → ``alice``; anything else is taken as it is."""
        return localpart_of(username, self._server_name) or username

    def username_from_login_hint(self, login_hint: str | None) -> str | None:
        """The username a ``login_hint`` pre-fills, if any: the localpart of
        ``mxid:@user:<our server>``, or (with ``account.login_with_email_allowed``) an email
        address as it is."""
        if not login_hint:
            return None
        if login_hint.startswith(MXID_LOGIN_HINT_PREFIX):
            return localpart_of(login_hint[len(MXID_LOGIN_HINT_PREFIX) :], self._server_name)
        if self._login_with_email and "@" in login_hint and " " not in login_hint:
            return login_hint
        return None

    # -- what the login page offers -----------------------------------------------------------
    async def list_login_providers(self) -> list[UpstreamOAuthProvider]:
        """The upstream providers the login page lists: the enabled ones, in the store's order."""
        return await self._stores.upstream_oauth_providers.list_upstream_oauth_providers(enabled_only=True)

    def sole_provider(self, providers: list[UpstreamOAuthProvider]) -> UpstreamOAuthProvider | None:
        """The provider to send the browser straight to (MAS: password login off and exactly
        one provider enabled), else ``None``."""
        if not self.password_login_enabled and len(providers) == 1:
            return providers[0]
        return None

    async def describe_post_auth_action(self, action: PostAuthAction | None) -> PostAuthDescription | None:
        """What the login page says about ``action``; ``None`` without one, or when it names an
        object that is gone."""
        if action is None:
            return None
        stores = self._stores
        client_id: str | None = None
        redirect_uri: str | None = None
        if action.kind == CONTINUE_AUTHORIZATION_GRANT and action.id is not None:
            grant = await stores.authorization_grants.get_authorization_grant(action.id)
            if grant is None:
                logger.warning("Post-auth action names an unknown authorization grant %s", action.id)
                return None
            client_id = grant.client_id
            redirect_uri = grant.redirect_uri
        elif action.kind == CONTINUE_DEVICE_CODE_GRANT and action.id is not None:
            device_grant = await stores.device_code_grants.get_device_code_grant(action.id)
            if device_grant is None:
                logger.warning("Post-auth action names an unknown device code grant %s", action.id)
                return None
            client_id = device_grant.client_id
        elif action.kind == CONTINUE_COMPAT_SSO_LOGIN and action.id is not None:
            # A legacy SSO login has no client: the app is known by where it gets the browser back.
            sso_login = await stores.compat_sessions.get_sso_login(action.id)
            if sso_login is None:
                logger.warning("Post-auth action names an unknown compat SSO login %s", action.id)
                return None
            return PostAuthDescription(
                action=action, sso_redirect_uri=sso_login.redirect_uri, redirect_uri=sso_login.redirect_uri
            )
        client_name = None
        if client_id is not None:
            client = await stores.oauth2_clients.get_oauth2_client(client_id)
            if client is not None:
                client_name = client.client_name or client.client_id
        return PostAuthDescription(action=action, client_name=client_name, redirect_uri=redirect_uri)

    # -- password login -----------------------------------------------------------------------

    async def find_user_for_login(self, username_or_email: str) -> User | None:
        """The user a login form names: by email (if allowed and it has ``@``), else by username."""
        if self._login_with_email and "@" in username_or_email:
            email = await self._stores.user_emails.find_user_email_by_email(username_or_email)
            if email is not None:
                user = await self._stores.users.get_user(email.user_id)
                if user is not None:
                    return user
        return await self._stores.users.find_user_by_username(username_or_email)

    async def login_with_password(
        self, username: str, password: str, *, client_ip: str | None, user_agent: str | None
    ) -> LoginResult:
        """Check a login form's credentials and, if they are right, open a browser session.

        Raises:
            PasswordManagerDisabledError: passwords are switched off.
            UnknownSchemeError, PasswordHashError: the stored hash cannot be checked.
        """
        user = await self.find_user_for_login(self.localpart(username))
        if user is None:
            logger.warning("Login failed: no user %r", username)
            return LoginResult(LoginOutcome.INVALID_CREDENTIALS)

        try:
            await self._limiter.check_password(client_ip, user.id)
        except RateLimitExceededError as e:
            logger.warning("Login refused: %s", e.debug)
            return LoginResult(LoginOutcome.RATE_LIMITED)

        current = await self._stores.user_passwords.get_active_user_password(user.id)
        if current is None:
            logger.warning("Login failed: user %s has no password", user.id)
            return LoginResult(LoginOutcome.INVALID_CREDENTIALS)

        result = await self._passwords.verify_and_upgrade(current.version, password, current.hashed_password)
        if not result.success:
            logger.warning("Login failed: wrong password for user %s", user.id)
            return LoginResult(LoginOutcome.INVALID_CREDENTIALS)

        if user.deactivated_at is not None:
            logger.warning("Login refused: user %s is deactivated", user.id)
            return LoginResult(LoginOutcome.DEACTIVATED, user=user)
        if user.locked_at is not None:
            logger.warning("Login refused: user %s is locked", user.id)
            return LoginResult(LoginOutcome.LOCKED, user=user)

        now = self._clock.time_msec()
        used_password = current
        upgraded: UserPassword | None = None
        if result.upgrade is not None:
            version, hashed = result.upgrade
            upgraded = UserPassword(
                id=self._tokens.ulid(),
                user_id=user.id,
                hashed_password=hashed,
                version=version,
                created_at=now,
                upgraded_from_id=current.id,
            )
            used_password = upgraded
            logger.info(
                "Upgrading the password hash of user %s from scheme %d to %d",
                user.id,
                current.version,
                version,
            )

        if await self._server.get_mfa_handler().requires_second_factor(user):
            # No session until the second factor: the re-hash is kept now (the password did
            # match), and the login page asks for a code.
            if upgraded is not None:
                await self._stores.user_passwords.add_user_password(upgraded)
            logger.info("User %s passed the password check; a second factor is required", user.id)
            return LoginResult(
                LoginOutcome.SECOND_FACTOR_REQUIRED, user=user, user_password_id=used_password.id
            )

        session = BrowserSession(
            id=self._tokens.ulid(),
            user=user,
            created_at=now,
            user_agent=user_agent,
            last_active_at=now,
            last_active_ip=client_ip,
        )
        authentication = BrowserSessionAuthentication(
            id=self._tokens.ulid(),
            user_session_id=session.id,
            created_at=now,
            user_password_id=used_password.id,
        )
        await self._stores.browser_sessions.start_browser_session(session, authentication, upgraded)
        logger.info("User %s logged in with a password (browser session %s)", user.id, session.id)
        return LoginResult(LoginOutcome.SUCCESS, user=user, session=session)

    async def logout(self, session_id: str | None) -> BrowserSession | None:
        """Finish the browser session ``session_id`` if it is still open; the finished session."""
        if session_id is None:
            return None
        session = await self._stores.browser_sessions.get_browser_session(session_id)
        if session is None or session.finished_at is not None:
            return None
        finished = await self._stores.browser_sessions.finish_browser_session(
            session, self._clock.time_msec()
        )
        logger.info("Browser session %s of user %s logged out", session.id, session.user.id)
        return finished
