# SPDX-License-Identifier: AGPL-3.0-only
"""``GET|POST /login`` of the legacy Matrix login API (Matrix client-server API v1.x
§"Login", MAS's ``crates/handlers/src/compat/login.rs``), and the token ``mas-cli manage
issue-compatibility-token`` issues (MAS's ``crates/cli/src/commands/manage.rs``).

``POST /login``, in order:

- ``m.login.password`` (only while ``passwords.enabled``; else "Invalid login type"): the
  deprecated top-level ``user`` wins over ``identifier`` (as Synapse); an identifier of
  another type than ``m.id.user`` is "Unsupported login identifier"; a full MXID on our
  server is reduced to its localpart; a deactivated user counts as unknown; a locked one is
  ``M_USER_LOCKED`` 401; then the rate limits (per IP, then per account:
  ``M_LIMIT_EXCEEDED`` 429 with ``retry_after_ms``), the password, its hash upgraded to the
  current scheme (in the transaction that starts the session, so a refused login saves
  nothing);
  with ``experimental.mfa`` on, a user with a confirmed second factor is refused
  (``M_FORBIDDEN``: use SSO, whose browser login asks for the code) unless
  ``experimental.mfa.allow_compat_password_login``;
- ``m.login.token``: the ``loginToken`` of a compatibility SSO login, fulfilled at most
  30 s ago (else "Login token expired") and never exchanged, whose browser session is still
  open and whose user is valid (a locked user gets ``M_USER_LOCKED``);
- the device is the requested ``device_id`` or ten random alphanumerics; the sessions that
  held it for the user (compatibility or OAuth 2.0) are finished as the new one starts
  (``session_replaced`` for the policy);
- the ``compat_login`` policy sees the user's active sessions (without the replaced ones).
  A lone ``too-many-sessions`` violation is "You have reached your hard device limit…",
  unless ``experimental.session_limit.dangerous_hard_limit_eviction`` lets the least
  recently used compatibility sessions be finished to make room (then ``sync-devices``);
  any other violation is "Login denied by the policy enforced by this service";
- the session (with the client's user agent and ``initial_device_display_name`` as its
  name), its access token (expiring after ``experimental.compat_token_ttl`` when the client
  asked for ``refresh_token``) and refresh token are written in one transaction; then the
  device is created on the homeserver before answering. If that fails, the session is
  finished, ``sync-devices`` scheduled, and the answer is a 500.

``issue-compatibility-token``: a non-expiring access token (no refresh token) for a new
session of a user on the given (or a random) device, created on the homeserver first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.api.errors import (
    BadJsonError,
    ForbiddenError,
    InvalidCredentialsError,
    InvalidLoginTokenError,
    InvalidLoginTypeError,
    LimitExceededError,
    MatrixError,
    MatrixInternalError,
    UserLockedError,
)
from mas_twisted.handlers.compat._common import CompatHandlerBase
from mas_twisted.handlers.device_sync import DeviceSyncLockBusy, device_sync_lock
from mas_twisted.handlers.login import localpart_of
from mas_twisted.handlers.rate_limit import RateLimitExceededError
from mas_twisted.oauth2.scope import device_id_from_scope_token
from mas_twisted.policy.model import LOGIN_PASSWORD, LOGIN_TOKEN, Requester, SessionCounts
from mas_twisted.types.compat import (
    SSO_LOGIN_TOKEN_LIFETIME_MS,
    CompatAccessToken,
    CompatRefreshToken,
    CompatSession,
    CompatSsoLogin,
)
from mas_twisted.types.tokens import TokenType
from mas_twisted.types.users import UserPassword

if TYPE_CHECKING:
    from mas_twisted.policy.model import EvaluationResult
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.types.users import User

logger = logging.getLogger(__name__)

#: Compatibility sessions idle longer than this are evicted first (MAS: the web UI's 90 days).
INACTIVE_SESSION_THRESHOLD_MS = 90 * 24 * 3600 * 1000

POLICY_REJECTED = "Login denied by the policy enforced by this service"
#: ``experimental.mfa``: a password alone is not enough for this account.
SECOND_FACTOR_REQUIRED = (
    "This account uses two-factor authentication: sign in with single sign-on (SSO) instead of a password"
)
HARD_LIMIT_REACHED = (
    "You have reached your hard device limit. Please visit your account page to sign some out."
)


# -- the parsed request --------------------------------------------------------------------------


@attrs.frozen
class LoginRequest:
    """A ``POST /login`` body, as MAS's ``RequestBody`` reads it.

    ``type`` is the login type as sent (anything but ``m.login.password`` and
    ``m.login.token`` is unsupported). For passwords: ``user`` is the deprecated top-level
    field, ``identifier_user`` the ``user`` of an ``m.id.user`` identifier, and
    ``identifier_unsupported`` says an identifier of another type was sent.
    """

    type: str
    password: str | None = None
    user: str | None = None
    identifier_user: str | None = None
    identifier_unsupported: bool = False
    token: str | None = None
    refresh_token: bool = False
    device_id: str | None = None
    initial_device_display_name: str | None = None


#: Synapse's own limit on a client-chosen device id (``synapse/rest/client/login.py``); a
#: longer one would also pass PostgreSQL's index row limit on ``compat_sessions``.
MAX_DEVICE_ID_LENGTH = 512


def check_device_id(device_id: str | None) -> None:
    """Refuse a requested device id longer than Synapse accepts, as Synapse does.

    Raises:
        MatrixError: 400 ``M_INVALID_PARAM``.
    """
    if device_id is not None and len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise MatrixError(
            400, f"device_id cannot be longer than {MAX_DEVICE_ID_LENGTH} characters", "M_INVALID_PARAM"
        )


# -- the handler --------------------------------------------------------------------------------


class CompatLoginHandler(CompatHandlerBase):
    """``GET|POST /login`` and ``issue-compatibility-token`` (``server.get_compat_login_handler()``)."""

    def __init__(self, server: MasServer):
        super().__init__(server)
        self._config = server.config
        self._passwords_enabled: bool = server.config.passwords.enabled
        self._server_name: str = server.config.matrix.homeserver

    # -- GET /login --------------------------------------------------------------------------------
    async def login_flows(self) -> dict[str, Any]:
        """The flows MAS advertises: passwords (when enabled), SSO (OAuth-aware, MSC3824), tokens.

        The enabled upstream providers are the SSO flow's ``identity_providers`` (MSC2858: ``id``,
        ``name``, ``brand``), in login-page order, once the upstream login route is mounted:
        ``/login/sso/redirect/<id>`` then goes to that provider."""
        sso: dict[str, Any] = {
            "type": "m.login.sso",
            "oauth_aware_preferred": True,
            "org.matrix.msc3824.delegated_oidc_compatibility": True,
        }
        if self._server.get_site_features().upstream_login:
            providers = (
                await self._server.get_stores().upstream_oauth_providers.list_upstream_oauth_providers(
                    enabled_only=True
                )
            )
            if providers:
                sso["identity_providers"] = [
                    {
                        "id": p.id,
                        "name": p.human_name or p.issuer or p.id,
                        **({"brand": p.brand_name} if p.brand_name else {}),
                    }
                    for p in providers
                ]
        flows: list[dict[str, Any]] = [{"type": LOGIN_PASSWORD}] if self._passwords_enabled else []
        flows += [sso, {"type": LOGIN_TOKEN}]
        return {"flows": flows}

    # -- POST /login -------------------------------------------------------------------------------
    async def login(self, request: LoginRequest, requester: Requester) -> dict[str, Any]:
        """Log in and answer ``{access_token, device_id, user_id, refresh_token?, expires_in_ms?}``.

        Raises:
            MatrixError: see the module docstring.
        """
        check_device_id(request.device_id)
        if request.type == LOGIN_PASSWORD and self._passwords_enabled:
            user, upgraded = await self._check_password(request, requester)
            sso_login = browser_session_id = None
        elif request.type == LOGIN_TOKEN:
            assert request.token is not None
            sso_login, user, browser_session_id = await self._check_login_token(request.token)
            upgraded = None
        else:
            raise InvalidLoginTypeError()

        now = self._clock.time_msec()
        device_id = request.device_id if request.device_id is not None else self._tokens.device_id()
        evicted = await self._check_policy(user, device_id, request.type, requester, now)

        session = CompatSession(
            id=self._tokens.ulid(),
            user_id=user.id,
            device_id=device_id,
            created_at=now,
            user_session_id=browser_session_id,
            user_agent=requester.user_agent,
            human_name=request.initial_device_display_name,
        )
        access_token = CompatAccessToken(
            id=self._tokens.ulid(),
            session_id=session.id,
            access_token=self._tokens.token(TokenType.COMPAT_ACCESS_TOKEN),
            created_at=now,
            expires_at=now + self._compat_token_ttl_ms if request.refresh_token else None,
        )
        refresh_token = None
        if request.refresh_token:
            refresh_token = CompatRefreshToken(
                id=self._tokens.ulid(),
                session_id=session.id,
                access_token_id=access_token.id,
                refresh_token=self._tokens.token(TokenType.COMPAT_REFRESH_TOKEN),
                created_at=now,
            )

        def _also(txn: LoggingTransaction) -> None:
            from mas_twisted.storage.stores.compat_sessions import finish_compat_session_txn
            from mas_twisted.storage.stores.user_passwords import add_user_password_txn

            if upgraded is not None:
                add_user_password_txn(txn, upgraded)
            for evicted_id in evicted:
                logger.info(
                    "Automatically removing compat session %s of user %s (dangerous_hard_limit_eviction)",
                    evicted_id,
                    user.id,
                )
                finish_compat_session_txn(txn, evicted_id, now)
            if evicted:
                self._enqueue_sync_devices(user.id)(txn)

        store = self._stores.compat_sessions
        # The user's device sync lock, from before the session is committed until the device
        # exists on the homeserver, so that a concurrent sync-devices cannot remove it.
        try:
            async with device_sync_lock(self._server, user.id, "compat-login"):
                if sso_login is not None:
                    if not await store.exchange_sso_login(
                        sso_login, session, access_token, refresh_token, also=_also
                    ):
                        raise InvalidLoginTokenError(
                            f"compat SSO login {sso_login.id} was exchanged meanwhile"
                        )
                else:
                    await store.start_compat_session(session, access_token, refresh_token, also=_also)
                self._server.get_activity_tracker().record_compat_session(
                    session.id, now, requester.ip_address
                )
                logger.info(
                    "User %s logged in with %s (compat session %s, device %s)",
                    user.id,
                    request.type,
                    session.id,
                    device_id,
                )

                # The device must exist on the homeserver before the token is used (MAS's comment:
                # introspection would succeed but Synapse would answer 401 for an unknown device).
                try:
                    await self._homeserver.upsert_device(user.username, device_id, session.human_name)
                except Exception as e:
                    logger.error(
                        "Could not create device %s of user %s on the homeserver: %s", device_id, user.id, e
                    )
                    await store.finish_compat_session(session.id, also=self._enqueue_sync_devices(user.id))
                    raise MatrixInternalError(
                        debug=f"upsert_device failed for compat session {session.id}"
                    ) from e
        except DeviceSyncLockBusy as e:
            raise MatrixInternalError(debug=str(e)) from e

        reply: dict[str, Any] = {
            "access_token": access_token.access_token,
            "device_id": device_id,
            "user_id": self._homeserver.mxid(user.username),
        }
        if refresh_token is not None:
            reply["refresh_token"] = refresh_token.refresh_token
            reply["expires_in_ms"] = self._compat_token_ttl_ms
        return reply

    async def _check_password(
        self, request: LoginRequest, requester: Requester
    ) -> tuple[User, UserPassword | None]:
        if request.user is not None:
            username = request.user
        elif request.identifier_user is not None:
            username = request.identifier_user
        elif request.identifier_unsupported:
            raise MatrixError(400, "Unsupported login identifier", "M_UNKNOWN")
        else:
            # MAS's text, unbalanced quote included.
            raise BadJsonError("Missing property 'identifier")
        assert request.password is not None
        username = localpart_of(username, self._server_name) or username

        stores = self._stores
        user = await stores.users.find_user_by_username(username)
        if user is None or user.deactivated_at is not None:
            raise InvalidCredentialsError(f"no active user {username!r}")
        if user.locked_at is not None:
            raise UserLockedError()
        try:
            await self._server.get_rate_limiter().check_password(requester.ip_address, user.id)
        except RateLimitExceededError as e:
            raise LimitExceededError(
                "Too many login attempts",
                retry_after_ms=max(1, int(e.retry_after * 1000 + 0.999)),
                debug=e.debug,
            ) from None

        current = await stores.user_passwords.get_active_user_password(user.id)
        if current is None:
            raise InvalidCredentialsError(f"user {user.id} has no password")
        result = await self._server.get_password_manager().verify_and_upgrade(
            current.version, request.password, current.hashed_password
        )
        if not result.success:
            raise InvalidCredentialsError(f"wrong password for user {user.id}")
        mfa = self._server.get_mfa_handler()
        if not mfa.allow_compat_password_login and await mfa.requires_second_factor(user):
            # A password alone cannot stand for both factors; SSO asks for the code.
            logger.warning("Compat password login refused: user %s has a second factor", user.id)
            raise ForbiddenError(SECOND_FACTOR_REQUIRED)
        upgraded = None
        if result.upgrade is not None:
            version, hashed = result.upgrade
            upgraded = UserPassword(
                id=self._tokens.ulid(),
                user_id=user.id,
                hashed_password=hashed,
                version=version,
                created_at=self._clock.time_msec(),
                upgraded_from_id=current.id,
            )
            logger.info(
                "Upgrading the password hash of user %s from scheme %d to %d",
                user.id,
                current.version,
                version,
            )
        return user, upgraded

    async def _check_login_token(self, token: str) -> tuple[CompatSsoLogin, User, str]:
        stores = self._stores
        login = await stores.compat_sessions.find_sso_login_by_token(token)
        if login is None:
            raise InvalidLoginTokenError("unknown login token")
        now = self._clock.time_msec()
        if login.exchanged_at is not None:
            if now > login.exchanged_at + SSO_LOGIN_TOKEN_LIFETIME_MS:
                logger.error(
                    "Login token of compat SSO login %s exchanged a second time more than 30s after", login.id
                )
            raise InvalidLoginTokenError(f"compat SSO login {login.id} already exchanged")
        if login.fulfilled_at is None or login.user_session_id is None:
            logger.error("Exchanged a token for compat SSO login %s that was not fulfilled yet", login.id)
            raise InvalidLoginTokenError(f"compat SSO login {login.id} is pending")
        if now > login.fulfilled_at + SSO_LOGIN_TOKEN_LIFETIME_MS:
            raise ForbiddenError("Login token expired")

        browser_session = await stores.browser_sessions.get_browser_session(login.user_session_id)
        if browser_session is None:
            raise InvalidLoginTokenError(f"no browser session {login.user_session_id}")
        user = browser_session.user
        if browser_session.finished_at is not None or user.deactivated_at is not None:
            raise InvalidLoginTokenError(f"browser session {browser_session.id} finished or user deactivated")
        if user.locked_at is not None:
            raise UserLockedError()
        return login, user, browser_session.id

    async def _check_policy(
        self, user: User, device_id: str, login_type: str, requester: Requester, now: int
    ) -> list[str]:
        """Evaluate ``compat_login``; the compatibility sessions to finish to make room.

        Raises:
            ForbiddenError: the policy refuses the login.
        """
        stores = self._stores
        compat_sessions = await stores.compat_sessions.list_active_compat_sessions_for_user(user.id)
        oauth2_sessions = await stores.oauth2_sessions.list_active_oauth2_sessions_for_user(user.id)
        kept_compat = [s for s in compat_sessions if s.device_id != device_id]
        kept_oauth2 = [
            s for s in oauth2_sessions if not any(device_id_from_scope_token(t) == device_id for t in s.scope)
        ]
        replaced = len(compat_sessions) - len(kept_compat) + len(oauth2_sessions) - len(kept_oauth2)
        # MAS's ``count_user_sessions_for_limiting``: the user's own personal sessions count too.
        personal = await stores.personal_sessions.count_active_self_owned_personal_sessions(user.id)
        counts = SessionCounts(
            total=len(kept_compat) + len(kept_oauth2) + personal,
            oauth2=len(kept_oauth2),
            compat=len(kept_compat),
            personal=personal,
        )
        result = self._server.get_policy().evaluate_compat_login(
            user=user,
            session_counts=counts,
            session_replaced=replaced > 0,
            login_type=login_type,
            requester=requester,
        )
        return self._process_violations(result, kept_compat, now)

    def _process_violations(
        self, result: EvaluationResult, candidates: list[CompatSession], now: int
    ) -> list[str]:
        if result.valid:
            return []
        violations = list(result.violations)
        only = violations[0] if len(violations) == 1 else None
        if only is None or only.code != "too-many-sessions" or only.need_to_remove is None:
            raise ForbiddenError(POLICY_REJECTED)
        limit = self._config.experimental.session_limit
        if limit is None:
            # A custom policy's own limit: nothing to say but a refusal.
            raise ForbiddenError(POLICY_REJECTED)
        need = int(only.need_to_remove)
        if not limit.dangerous_hard_limit_eviction:
            raise ForbiddenError(HARD_LIMIT_REACHED)
        threshold = now - INACTIVE_SESSION_THRESHOLD_MS
        inactive = [s for s in candidates if s.last_active_at is not None and s.last_active_at < threshold]
        pool = inactive if len(inactive) >= need else candidates
        pool = sorted(
            pool, key=lambda s: (s.last_active_at is not None, s.last_active_at or 0, s.created_at, s.id)
        )
        if len(pool) < need:
            raise ForbiddenError(HARD_LIMIT_REACHED)
        return [s.id for s in pool[:need]]

    # -- mas-cli manage issue-compatibility-token ----------------------------------------------------
    async def issue_compatibility_token(
        self, user: User, device_id: str | None, *, synapse_admin: bool
    ) -> tuple[CompatSession, CompatAccessToken] | None:
        """A non-expiring token for a new session of ``user`` (MAS's ``manage.rs``).

        The device is created on the homeserver first; if that fails, ``sync-devices`` is
        scheduled (to remove a half-created device) and ``None`` is returned.
        """
        check_device_id(device_id)
        device = device_id if device_id is not None else self._tokens.device_id()
        store = self._stores.compat_sessions
        async with device_sync_lock(self._server, user.id, "issue-compat-token"):
            try:
                await self._homeserver.upsert_device(user.username, device, None)
            except Exception as e:
                logger.error("Could not create the device on the homeserver, aborting: %s", e)
                await self._server.get_db_pool().runInteraction(
                    "issue_compat_token_sync_devices", self._enqueue_sync_devices(user.id)
                )
                return None
            now = self._clock.time_msec()
            session = CompatSession(
                id=self._tokens.ulid(),
                user_id=user.id,
                device_id=device,
                created_at=now,
                is_synapse_admin=synapse_admin,
            )
            access_token = CompatAccessToken(
                id=self._tokens.ulid(),
                session_id=session.id,
                access_token=self._tokens.token(TokenType.COMPAT_ACCESS_TOKEN),
                created_at=now,
            )
            await store.start_compat_session(session, access_token)
            return session, access_token
