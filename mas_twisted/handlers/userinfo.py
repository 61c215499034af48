# SPDX-License-Identifier: AGPL-3.0-only
"""The UserInfo endpoint's rules (OpenID Connect Core 1.0 §5.3, RFC 6750 §3.1).

MAS behaviour (``crates/handlers/src/oauth2/userinfo.rs``, inventory §2.8):

- the caller presents an OAuth 2.0 access token (``Authorization: Bearer``, or an
  ``access_token`` parameter: RFC 6750 §2.2/§2.3); a missing, unknown, expired or revoked
  token, a finished session, a session without the ``openid`` scope or without a user are
  all HTTP 401 with an empty body. This service adds the RFC 6750 §3 ``WWW-Authenticate:
  Bearer`` challenge (``error="invalid_token"``, or ``"insufficient_scope"`` with the scope
  needed; no error code when no token was sent);
- the answer is ``{"sub": <user ULID>, "username": <localpart>}`` (no email or profile
  claims), or, when the client registered a ``userinfo_signed_response_alg``, the same
  claims plus ``iss`` and ``aud`` as a JWT signed with that algorithm
  (``Content-Type: application/jwt``, OIDC Core §5.3.2);
- a valid token's first use is recorded (``first_used_at``, which the double-refresh rule
  of the token endpoint reads), and the session's activity (time, client address).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.api.errors import MasError, ServerError
from mas_twisted.jose.keystore import NoSigningKeyError
from mas_twisted.oauth2.scope import OPENID

if TYPE_CHECKING:
    from mas_twisted.handlers.activity import ActivityTracker
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class BearerTokenError(MasError):
    """A request to a bearer-protected resource is refused (RFC 6750 §3.1).

    Answered with ``code``, an empty body and a ``WWW-Authenticate: Bearer`` challenge
    naming ``error`` (if any) and the ``scope`` needed (for ``insufficient_scope``).
    """

    def __init__(self, code: int, error: str | None, *, scope: str | None = None, debug: str | None = None):
        super().__init__(error or "unauthorized", code=code, debug=debug)
        self.error = error
        self.scope = scope

    def challenge(self) -> str:
        params = []
        if self.error is not None:
            params.append(f'error="{self.error}"')
        if self.scope is not None:
            params.append(f'scope="{self.scope}"')
        return "Bearer" + (" " + ", ".join(params) if params else "")


def invalid_request(debug: str) -> BearerTokenError:
    """A malformed request (RFC 6750 §3.1 ``invalid_request``): 400."""
    return BearerTokenError(400, "invalid_request", debug=debug)


@attrs.frozen
class UserinfoResponse:
    """The claims about the user, and their signed form when the client asked for one."""

    claims: dict[str, Any]
    #: A compact JWS of ``iss``, ``aud`` and the claims, or ``None`` for a JSON answer.
    signed: str | None = None


class UserinfoHandler:
    """``server.get_userinfo_handler()``."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        self._keystore = server.get_keystore()
        self._url_builder = server.get_url_builder()
        stores = server.get_stores()
        self._access_tokens = stores.access_tokens
        self._sessions = stores.oauth2_sessions
        self._users = stores.users
        self._clients = stores.oauth2_clients
        self._server = server

    @property
    def _activity(self) -> ActivityTracker:
        # Fetched on first use: building the tracker starts its periodic flush.
        return self._server.get_activity_tracker()

    async def userinfo(self, access_token: str | None, *, ip: str | None = None) -> UserinfoResponse:
        """The claims about the user an access token was issued for.

        Args:
            access_token: the presented token, if any.
            ip: the caller's address, recorded as the session's activity.

        Raises:
            BearerTokenError: 401, see the module docstring.
            ServerError: the token's user or client vanished, or no key can sign with the
                client's algorithm.
        """
        if access_token is None:
            raise BearerTokenError(401, None, debug="no access token presented")
        token = await self._access_tokens.find_access_token_by_token(access_token)
        if token is None:
            raise BearerTokenError(401, "invalid_token", debug="unknown access token")
        session = await self._sessions.get_oauth2_session(token.session_id)
        now = self._clock.time_msec()
        if session is None or not token.is_valid(now) or not session.is_valid:
            raise BearerTokenError(401, "invalid_token", debug=f"access token {token.id} is not valid")
        if OPENID not in session.scope:
            raise BearerTokenError(
                401, "insufficient_scope", scope=OPENID, debug=f"session {session.id} lacks the openid scope"
            )
        if session.user_id is None:
            raise BearerTokenError(401, "invalid_token", debug=f"session {session.id} has no user")

        user = await self._users.get_user(session.user_id)
        if user is None:
            raise ServerError(debug=f"session {session.id}: user {session.user_id} not found")
        client = await self._clients.get_oauth2_client(session.client_id)
        if client is None:
            raise ServerError(debug=f"session {session.id}: client {session.client_id} not found")
        await self._access_tokens.mark_access_token_first_used(token)
        self._activity.record_oauth2_session(session.id, now, ip)

        claims: dict[str, Any] = {"sub": user.sub, "username": user.username}
        alg = client.userinfo_signed_response_alg
        if alg is None:
            return UserinfoResponse(claims)
        signed_claims = {"iss": self._url_builder.oidc_issuer(), "aud": client.client_id, **claims}
        try:
            return UserinfoResponse(claims, signed=self._keystore.sign_jwt(signed_claims, alg))
        except NoSigningKeyError as e:
            raise ServerError(debug=f"cannot sign userinfo for client {client.id}: {e}") from None
