# SPDX-License-Identifier: AGPL-3.0-only
"""Issuing tokens at the token endpoint (RFC 6749 §4.1.3, §4.4, §6; RFC 7636 §4.6; RFC 8628 §3.4).

MAS behaviour (``crates/handlers/src/oauth2/token.rs``, inventory §2.1, STYLE.md §4.5), for a
client already authenticated by :class:`~mas_twisted.handlers.client_auth.ClientAuthenticator`.
Each grant first checks that the client registered it (else ``unauthorized_client``, 401):

- ``authorization_code``: the code must be *fulfilled* (consented) and exchanged within
  10 minutes of fulfilment; pending, cancelled, unknown or too old is ``invalid_grant``. A
  code presented again is ``invalid_grant``, and if its first exchange was more than
  20 seconds ago the session that exchange created is finished ("Ending potentially
  compromised session", a stolen code's defence). A code of another client is
  ``unauthorized_client``. PKCE: a challenge without verifier (or a verifier without
  challenge) is ``invalid_request``, a mismatch ``invalid_grant``. The approving browser
  session must still be active. The OAuth 2.0 session is created now, with an access and a
  refresh token, and an ID token when ``openid`` was granted. The response always carries
  ``scope``. Beyond MAS, a ``redirect_uri`` sent with the exchange must be the one of the
  authorization request (RFC 6749 §4.1.3).
- ``refresh_token``: the session must be valid and the client's; the presented token is
  consumed for a new pair and its access token revoked. A consumed token is accepted once
  more when its successor is still unconsumed and the successor's access token was never
  used (MAS's double-refresh tolerance: the client lost the first answer); the successors
  are revoked then. Anything else is ``invalid_grant``.
- ``client_credentials``: the ``authorization_grant`` policy decides on the scope (denial:
  ``invalid_scope``, HTTP 403, the violations' messages joined); a session without user and
  an access token only; ``scope`` only when not empty.
- ``urn:ietf:params:oauth:grant-type:device_code``: ``unsupported_grant_type`` when
  ``oauth.device_code_grant_enabled`` is off; a device code of another client is
  ``invalid_grant``; expired ``expired_token``, undecided ``authorization_pending``,
  denied ``access_denied`` (all HTTP 403, MAS's choice over RFC 8628's 400), already
  exchanged ``invalid_grant``. A refresh token only if the client may refresh; an ID token
  (without ``auth_time``) when ``openid`` was granted.

Access tokens live ``experimental.access_token_ttl`` seconds; refresh tokens do not expire.
A successful grant records the session's activity (time and client address) with the
:class:`~mas_twisted.handlers.activity.ActivityTracker`, whose not yet written first uses of
access tokens also count for the double-refresh rule.
Every write of a grant is one transaction (the stores' ``exchange_*`` and ``rotate_*``); a
concurrent request that got there first makes them return ``False``, answered
``invalid_grant``, and nothing is written. An error answer writes nothing, except the
replay defence above.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.api.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    ExpiredTokenError,
    InvalidGrantError,
    InvalidScopeError,
    ServerError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    clean_description,
)
from mas_twisted.oauth2 import requests as oauth2_requests
from mas_twisted.oauth2.pkce import check_pkce
from mas_twisted.oauth2.scope import Scope
from mas_twisted.oauth2.url import InvalidUrlError, parse_url
from mas_twisted.types.oauth2 import AccessToken, GrantStage, OAuth2Session, RefreshToken
from mas_twisted.types.tokens import TokenType

if TYPE_CHECKING:
    from mas_twisted.handlers.activity import ActivityTracker
    from mas_twisted.policy import Requester
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

TOKEN_TYPE_BEARER = "Bearer"


@attrs.frozen
class TokenResponse:
    """A successful token response (RFC 6749 §5.1), in MAS's field order."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    scope: Scope | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": self.access_token}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        body["token_type"] = TOKEN_TYPE_BEARER
        body["expires_in"] = self.expires_in
        if self.scope is not None:
            body["scope"] = str(self.scope)
        return body


class TokenHandler:
    """The grants of ``POST /oauth2/token`` (``server.get_token_handler()``)."""

    #: A code must be exchanged within this long after the user consented.
    CODE_LIFETIME_MS = 10 * 60 * 1000
    #: A code presented again later than this after its exchange ends the session it created.
    REUSE_GRACE_MS = 20 * 1000

    def __init__(self, server: MasServer):
        self._config = server.config
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        stores = server.get_stores()
        self._grants = stores.authorization_grants
        self._device_grants = stores.device_code_grants
        self._sessions = stores.oauth2_sessions
        self._access_tokens = stores.access_tokens
        self._refresh_tokens = stores.refresh_tokens
        self._browser_sessions = stores.browser_sessions
        self._id_tokens = server.get_id_token_signer()
        self._policy = server.get_policy()
        self._server = server

    @property
    def _activity(self) -> ActivityTracker:
        # Fetched on first use: building the tracker starts its periodic flush.
        return self._server.get_activity_tracker()

    # -- helpers ----------------------------------------------------------------------------
    @property
    def access_token_ttl_s(self) -> int:
        return int(self._config.experimental.access_token_ttl)

    def _new_access_token(self, session_id: str, now: int) -> AccessToken:
        return AccessToken(
            id=self._tokens.ulid(now),
            session_id=session_id,
            access_token=self._tokens.token(TokenType.ACCESS_TOKEN),
            created_at=now,
            expires_at=now + self.access_token_ttl_s * 1000,
        )

    def _new_refresh_token(self, session_id: str, access_token: AccessToken, now: int) -> RefreshToken:
        return RefreshToken(
            id=self._tokens.ulid(now),
            session_id=session_id,
            refresh_token=self._tokens.token(TokenType.REFRESH_TOKEN),
            created_at=now,
            access_token_id=access_token.id,
        )

    def _new_session(
        self,
        client: OAuth2Client,
        scope: Scope,
        now: int,
        *,
        browser_session: BrowserSession | None,
        user_agent: str | None,
    ) -> OAuth2Session:
        return OAuth2Session(
            id=self._tokens.ulid(now),
            client_id=client.id,
            scope=scope,
            created_at=now,
            user_id=browser_session.user.id if browser_session is not None else None,
            user_session_id=browser_session.id if browser_session is not None else None,
            user_agent=user_agent,
        )

    @asynccontextmanager
    async def _device_sync_lock(self, browser_session: BrowserSession, scope: Any) -> AsyncIterator[None]:
        """The user's device sync lock (:mod:`mas_twisted.handlers.device_sync`) when the scope
        has a device, held from before the device is created until the session is committed,
        as MAS does; nothing otherwise.

        Raises:
            ServerError: the lock stayed taken (a sync of this user is stuck).
        """
        from mas_twisted.handlers.device_sync import DeviceSyncLockBusy, device_sync_lock
        from mas_twisted.oauth2.scope import device_id_from_scope_token

        if not any(device_id_from_scope_token(t) is not None for t in scope):
            yield
            return
        lock = device_sync_lock(self._server, browser_session.user.id, "token")
        try:
            await lock.__aenter__()
        except DeviceSyncLockBusy as e:
            raise ServerError(debug=str(e))
        try:
            yield
        except BaseException as e:
            await lock.__aexit__(type(e), e, e.__traceback__)
            raise
        else:
            await lock.__aexit__(None, None, None)

    async def _upsert_devices(
        self, browser_session: BrowserSession, scope: Any, client: OAuth2Client, user_agent: str | None
    ) -> None:
        """Create the session's device on the homeserver now, before the token is handed out
        (MAS's ``token.rs``): Synapse answers 401 to a token whose device it does not know, and
        ``sync-devices`` would only create it later. Idempotent, so a concurrent exchange that
        loses the race does no harm.

        Raises:
            ServerError: the homeserver refused or could not be reached (MAS's
                ``ProvisionDeviceFailed``: 500 ``server_error``); nothing was exchanged.
        """
        from mas_twisted.handlers.device_name import device_display_name
        from mas_twisted.oauth2.scope import device_id_from_scope_token

        devices = [d for d in (device_id_from_scope_token(t) for t in scope) if d is not None]
        if not devices:
            return
        homeserver = self._server.get_homeserver_connection()
        name = device_display_name(client.client_name, client.id, user_agent)
        for device_id in dict.fromkeys(devices):
            try:
                await homeserver.upsert_device(browser_session.user.username, device_id, name)
            except Exception as e:
                logger.warning(
                    "Could not create device %s of %s on the homeserver: %s",
                    device_id,
                    browser_session.user.username,
                    e,
                )
                raise ServerError(debug="failed to provision device")

    async def _browser_session(self, session_id: str | None, what: str) -> BrowserSession:
        browser_session = await self._browser_sessions.get_browser_session(session_id) if session_id else None
        if browser_session is None:
            raise ServerError(debug=f"{what}: browser session {session_id} not found")
        return browser_session

    # -- authorization_code ------------------------------------------------------------------
    async def exchange_authorization_code(
        self,
        client: OAuth2Client,
        code: str,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> TokenResponse:
        """The ``authorization_code`` grant (RFC 6749 §4.1.3, RFC 7636 §4.6).

        Raises:
            UnauthorizedClientError, InvalidGrantError, InvalidRequestError, ServerError.
        """
        if not client.grant_type_authorization_code:
            raise UnauthorizedClientError(debug=f"client {client.id} may not use authorization_code")
        grant = await self._grants.find_authorization_grant_by_code(code)
        if grant is None:
            raise InvalidGrantError(debug="unknown authorization code")
        now = self._clock.time_msec()

        stage = grant.stage
        if stage is GrantStage.CANCELLED:
            raise InvalidGrantError(debug=f"grant {grant.id} was cancelled")
        if stage is GrantStage.EXCHANGED:
            assert grant.exchanged_at is not None and grant.oauth2_session_id is not None
            logger.warning("Authorization code of grant %s was already exchanged", grant.id)
            if now - grant.exchanged_at > self.REUSE_GRACE_MS:
                logger.warning("Ending potentially compromised session %s", grant.oauth2_session_id)
                await self._sessions.finish_oauth2_session_by_id(grant.oauth2_session_id)
            raise InvalidGrantError(debug=f"grant {grant.id} already exchanged")
        if stage is GrantStage.PENDING:
            raise InvalidGrantError(debug=f"grant {grant.id} has not been fulfilled yet")
        assert grant.fulfilled_at is not None
        if now - grant.fulfilled_at > self.CODE_LIFETIME_MS:
            raise InvalidGrantError(
                debug=f"grant {grant.id}: code exchanged more than 10 minutes after consent"
            )

        if client.id != grant.client_id:
            raise UnauthorizedClientError(
                debug=f"grant {grant.id} belongs to {grant.client_id}, not {client.id}"
            )
        if redirect_uri is not None and not _same_redirect_uri(redirect_uri, grant.redirect_uri):
            raise InvalidGrantError(
                debug=f"grant {grant.id}: redirect_uri {redirect_uri!r} differs from the request's"
            )
        check_pkce(grant.pkce, code_verifier)

        browser_session = await self._browser_session(grant.user_session_id, f"grant {grant.id}")
        if not browser_session.active:
            raise InvalidGrantError(
                debug=f"grant {grant.id}: browser session {browser_session.id} is no longer active"
            )

        session = self._new_session(
            client, grant.scope, now, browser_session=browser_session, user_agent=user_agent
        )
        access_token = self._new_access_token(session.id, now)
        refresh_token = self._new_refresh_token(session.id, access_token, now)
        id_token = None
        if session.scope.has_openid:
            id_token = await self._id_tokens.sign_for_browser_session(
                client,
                browser_session,
                nonce=grant.nonce,
                access_token=access_token.access_token,
                code=grant.code,
            )
        async with self._device_sync_lock(browser_session, session.scope):
            await self._upsert_devices(browser_session, session.scope, client, user_agent)
            if not await self._grants.exchange_authorization_grant(
                grant.exchange(now, session.id), session, access_token, refresh_token
            ):
                raise InvalidGrantError(debug=f"grant {grant.id} was exchanged by a concurrent request")
        logger.info("Exchanged grant %s for session %s of client %s", grant.id, session.id, client.id)
        self._activity.record_oauth2_session(session.id, now, ip)
        return TokenResponse(
            access_token=access_token.access_token,
            expires_in=self.access_token_ttl_s,
            refresh_token=refresh_token.refresh_token,
            id_token=id_token,
            scope=session.scope,
        )

    # -- refresh_token -------------------------------------------------------------------------
    async def refresh(
        self,
        client: OAuth2Client,
        refresh_token: str,
        *,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> TokenResponse:
        """The ``refresh_token`` grant (RFC 6749 §6), with MAS's double-refresh tolerance.

        Raises:
            UnauthorizedClientError, InvalidGrantError, ServerError.
        """
        if not client.grant_type_refresh_token:
            raise UnauthorizedClientError(debug=f"client {client.id} may not use refresh_token")
        # The token and its session in one read (a token's session always exists: the key).
        found = await self._refresh_tokens.find_refresh_token_with_session(refresh_token)
        if found is None:
            raise InvalidGrantError(debug="unknown refresh token")
        token, session = found
        if not session.is_valid:
            raise InvalidGrantError(debug=f"session {session.id} is finished")
        if client.id != session.client_id:
            raise InvalidGrantError(
                debug=f"session {session.id} belongs to {session.client_id}, not {client.id}"
            )

        lost_successor = None
        if not token.is_valid:
            lost_successor = await self._lost_successor(token)
            logger.info(
                "Refresh token %s of session %s was already used, but its successors were not:"
                " assuming they were lost, revoking them and issuing new ones",
                token.id,
                session.id,
            )

        now = self._clock.time_msec()
        access_token = self._new_access_token(session.id, now)
        new_refresh_token = self._new_refresh_token(session.id, access_token, now)
        new_user_agent = user_agent if user_agent is not None and user_agent != session.user_agent else None
        if not await self._refresh_tokens.rotate_refresh_token(
            token, access_token, new_refresh_token, lost_successor=lost_successor, user_agent=new_user_agent
        ):
            raise InvalidGrantError(debug=f"refresh token {token.id} was used by a concurrent request")
        if new_user_agent is not None:
            session = attrs.evolve(session, user_agent=new_user_agent)
        self._activity.record_oauth2_session(session.id, now, ip)
        return TokenResponse(
            access_token=access_token.access_token,
            expires_in=self.access_token_ttl_s,
            refresh_token=new_refresh_token.refresh_token,
            scope=session.scope,
        )

    async def _lost_successor(self, token: RefreshToken) -> RefreshToken:
        """The successor of an already consumed ``token``, if it may be replaced (see the module
        docstring).

        Raises:
            InvalidGrantError: a replay rather than a lost answer.
        """
        if token.next_refresh_token_id is None:
            raise InvalidGrantError(debug=f"refresh token {token.id} is {token.state.value}")
        successor = await self._refresh_tokens.get_refresh_token(token.next_refresh_token_id)
        if successor is None:
            raise InvalidGrantError(
                debug=f"refresh token {token.id}: its successor {token.next_refresh_token_id} is gone"
            )
        if not successor.is_valid:
            raise InvalidGrantError(debug=f"refresh token {token.id}: its successor {successor.id} was used")
        if successor.access_token_id is not None:
            # An access token cleaned up since counts as unused (MAS).
            access_token = await self._access_tokens.get_access_token(successor.access_token_id)
            if access_token is not None and (
                access_token.is_used or self._activity.first_used_at(access_token.id) is not None
            ):
                raise InvalidGrantError(
                    debug=f"refresh token {token.id}: the access token {access_token.id} of its successor was used"
                )
        return successor

    # -- client_credentials --------------------------------------------------------------------
    async def client_credentials(
        self, client: OAuth2Client, scope: Scope, *, requester: Requester
    ) -> TokenResponse:
        """The ``client_credentials`` grant (RFC 6749 §4.4).

        Raises:
            UnauthorizedClientError, InvalidScopeError (403).
        """
        if not client.grant_type_client_credentials:
            raise UnauthorizedClientError(debug=f"client {client.id} may not use client_credentials")
        result = self._policy.evaluate_authorization_grant(
            client=client,
            scope=scope,
            grant_type=oauth2_requests.CLIENT_CREDENTIALS,
            user=None,
            session_counts=None,
            requester=requester,
        )
        if not result.valid:
            raise InvalidScopeError(
                clean_description(", ".join(result.messages)),
                code=403,
                debug=f"client {client.id}: policy denied scope {scope}",
            )
        now = self._clock.time_msec()
        session = self._new_session(client, scope, now, browser_session=None, user_agent=requester.user_agent)
        access_token = self._new_access_token(session.id, now)
        await self._sessions.add_oauth2_session_with_tokens(session, access_token)
        logger.info("Started client_credentials session %s for client %s", session.id, client.id)
        self._activity.record_oauth2_session(session.id, now, requester.ip_address)
        return TokenResponse(
            access_token=access_token.access_token,
            expires_in=self.access_token_ttl_s,
            scope=scope if scope else None,
        )

    # -- device code ------------------------------------------------------------------------------
    async def exchange_device_code(
        self, client: OAuth2Client, device_code: str, *, user_agent: str | None = None, ip: str | None = None
    ) -> TokenResponse:
        """The device code grant (RFC 8628 §3.4, §3.5).

        Raises:
            UnsupportedGrantTypeError, UnauthorizedClientError, InvalidGrantError,
            ExpiredTokenError, AuthorizationPendingError, AccessDeniedError, ServerError.
        """
        if not self._config.oauth.device_code_grant_enabled:
            raise UnsupportedGrantTypeError(debug="the device code grant is disabled")
        if not client.grant_type_device_code:
            raise UnauthorizedClientError(debug=f"client {client.id} may not use the device code grant")
        grant = await self._device_grants.find_device_code_grant_by_device_code(device_code)
        if grant is None:
            raise InvalidGrantError(debug="unknown device code")
        if client.id != grant.client_id:
            raise InvalidGrantError(
                debug=f"device grant {grant.id} belongs to {grant.client_id}, not {client.id}"
            )
        now = self._clock.time_msec()
        if grant.is_expired(now):
            raise ExpiredTokenError(debug=f"device grant {grant.id} expired")
        if grant.is_pending:
            raise AuthorizationPendingError(debug=f"device grant {grant.id} is pending")
        if grant.is_rejected:
            raise AccessDeniedError(debug=f"device grant {grant.id} was rejected")
        if grant.is_exchanged:
            raise InvalidGrantError(debug=f"device grant {grant.id} was already exchanged")

        browser_session = await self._browser_session(grant.user_session_id, f"device grant {grant.id}")
        session = self._new_session(
            client, grant.scope, now, browser_session=browser_session, user_agent=user_agent
        )
        access_token = self._new_access_token(session.id, now)
        refresh_token = (
            self._new_refresh_token(session.id, access_token, now)
            if client.grant_type_refresh_token
            else None
        )
        id_token = None
        if session.scope.has_openid:
            id_token = await self._id_tokens.sign_for_browser_session(
                client, browser_session, access_token=access_token.access_token, with_auth_time=False
            )
        async with self._device_sync_lock(browser_session, session.scope):
            await self._upsert_devices(browser_session, session.scope, client, user_agent)
            if not await self._device_grants.exchange_device_code_grant(
                grant.exchange(now, session.id), session, access_token, refresh_token
            ):
                raise InvalidGrantError(
                    debug=f"device grant {grant.id} was exchanged by a concurrent request"
                )
        logger.info("Exchanged device grant %s for session %s of client %s", grant.id, session.id, client.id)
        self._activity.record_oauth2_session(session.id, now, ip)
        return TokenResponse(
            access_token=access_token.access_token,
            expires_in=self.access_token_ttl_s,
            refresh_token=refresh_token.refresh_token if refresh_token is not None else None,
            id_token=id_token,
            scope=session.scope if session.scope else None,
        )


def _same_redirect_uri(presented: str, registered: str) -> bool:
    try:
        return str(parse_url(presented)) == registered
    except InvalidUrlError:
        return False
