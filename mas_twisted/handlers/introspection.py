# SPDX-License-Identifier: AGPL-3.0-only
"""Token introspection (RFC 7662; MAS's ``crates/handlers/src/oauth2/introspection.rs``,
inventory §2.10): what Synapse asks about every access token it has not cached.

The caller is either the homeserver, presenting ``Authorization: Bearer <matrix.secret>``
(:meth:`IntrospectionHandler.is_homeserver`, a constant-time comparison), or a confidential
client (the resource authenticates it). Then:

- the token is classified by its format (:meth:`~mas_twisted.types.tokens.TokenType.check`);
  a ``token_type_hint`` that does not fit the type, a malformed token or an unknown prefix
  is answered inactive;
- ``mat_`` access tokens: one query reads the token, its session and the session's user,
  shared by the requests that arrive in the same turn of the reactor
  (:class:`~mas_twisted.util.batch.Batcher`). Active only if the token is neither revoked nor expired, the session not finished and the
  user (if any: ``client_credentials`` sessions have none) neither locked nor deactivated.
  ``first_used_at`` and the session's ``last_active_at`` go to the
  :class:`~mas_twisted.handlers.activity.ActivityTracker`; nothing is written here;
- ``mar_`` refresh tokens: the same, with ``token_type`` ``refresh_token`` and no expiry;
- compatibility tokens (``mct_``/``syt_``/macaroons as access tokens, ``mcr_``/``syr_`` as
  refresh tokens; MAS's ``CompatAccessToken``/``CompatRefreshToken`` branches): active only
  if the token is neither expired (access) nor consumed (refresh), the session not finished
  and the user neither locked nor deactivated. ``client_id`` is ``legacy``; the scope is both
  forms of the API scope, both forms of the device scope unless the caller sent
  ``X-MAS-Supports-Device-Id`` (a device that cannot be written as a scope token then makes
  the token inactive), and ``urn:synapse:admin:*`` for a session flagged
  ``is_synapse_admin``; ``device_id`` is always given (as MAS does); no ``jti``. The session's
  activity goes to the tracker;
- personal (``mpt_``) tokens (MAS's ``PersonalAccessToken`` branch): found by their SHA-256
  with their session, its actor and its owning user in one query; active only if the token is
  neither revoked nor expired, the session not revoked, and the actor and the owning user (if a
  user owns it) neither locked nor deactivated. ``client_id`` is the owning client's id when a
  client owns the session, else absent; ``username``/``sub`` are the actor's; no ``jti``. The
  session's activity goes to the tracker.

The scope answered is the session's, normalised (:func:`~mas_twisted.oauth2.scope.normalize_scope`:
both the stable and unstable forms of the API and device scopes). Timestamps are whole
seconds, rounded to the nearest (MAS's serialisation). As in MAS, the activity recorded for an
introspection carries no address: the caller is the homeserver, not the token's user.
"""

from __future__ import annotations

import functools
import hmac
import logging
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer

from mas_twisted import metrics
from mas_twisted.oauth2.scope import (
    DEVICE_SCOPE_PREFIX,
    DEVICE_SCOPE_PREFIX_UNSTABLE,
    MATRIX_API_SCOPE,
    MATRIX_API_SCOPE_UNSTABLE,
    InvalidScopeFormat,
    Scope,
    compat_session_scope,
)
from mas_twisted.types.compat import LEGACY_CLIENT_ID
from mas_twisted.types.personal import hash_personal_token
from mas_twisted.types.tokens import TokenFormatError, TokenType
from mas_twisted.util.batch import Batcher

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.compat import CompatAccessTokenIntrospection
    from mas_twisted.types.oauth2 import AccessTokenIntrospection

logger = logging.getLogger(__name__)


def to_seconds(ms: int) -> int:
    """Milliseconds to whole seconds, half a second rounding away from zero (serde_with's rule)."""
    sign = -1 if ms < 0 else 1
    seconds, rest = divmod(abs(ms), 1000)
    if rest >= 500:
        seconds += 1
    return sign * seconds


@attrs.frozen(slots=True)
class IntrospectionResponse:
    """RFC 7662 §2.2 (MAS's ``IntrospectionResponse``): absent members are omitted."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    username: str | None = None
    token_type: str | None = None
    exp: int | None = None
    expires_in: int | None = None
    iat: int | None = None
    nbf: int | None = None
    sub: str | None = None
    aud: str | None = None
    iss: str | None = None
    jti: str | None = None
    #: MAS extension: the device of a compatibility session.
    device_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The members that are set, in MAS's order."""
        out: dict[str, Any] = {"active": self.active}
        for name in _OPTIONAL_MEMBERS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


_OPTIONAL_MEMBERS = tuple(a.name for a in attrs.fields(IntrospectionResponse) if a.name != "active")

#: The answer for anything that is not an active token.
INACTIVE = IntrospectionResponse(active=False)

#: ``kind`` of ``mas_oauth2_introspection_request_total``, by token type (MAS's names).
METRIC_KIND = {
    TokenType.ACCESS_TOKEN: "oauth2_access_token",
    TokenType.REFRESH_TOKEN: "oauth2_refresh_token",
    TokenType.COMPAT_ACCESS_TOKEN: "compat_access_token",
    TokenType.COMPAT_REFRESH_TOKEN: "compat_refresh_token",
    TokenType.PERSONAL_ACCESS_TOKEN: "personal_access_token",
}


def _inactive(kind: str) -> IntrospectionResponse:
    metrics.record_introspection(kind, False)
    return INACTIVE


ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"


def normalized_scope_string(scope: Scope) -> str:
    """:func:`~mas_twisted.oauth2.scope.normalize_scope` of a stored (valid) scope, written out.

    The same set, built without validating the tokens again: every token added is the other
    form of one already in the scope, and both prefixes are valid scope characters.
    """
    tokens = set(scope.tokens)
    for token in scope.tokens:
        if token == MATRIX_API_SCOPE:
            tokens.add(MATRIX_API_SCOPE_UNSTABLE)
        elif token == MATRIX_API_SCOPE_UNSTABLE:
            tokens.add(MATRIX_API_SCOPE)
        elif token.startswith(DEVICE_SCOPE_PREFIX):
            tokens.add(DEVICE_SCOPE_PREFIX_UNSTABLE + token[len(DEVICE_SCOPE_PREFIX) :])
        elif token.startswith(DEVICE_SCOPE_PREFIX_UNSTABLE):
            tokens.add(DEVICE_SCOPE_PREFIX + token[len(DEVICE_SCOPE_PREFIX_UNSTABLE) :])
    return " ".join(sorted(tokens))


#: Lookup batches out at once, per kind of token (:class:`~mas_twisted.util.batch.Batcher`). One
#: measured best (bench/introspect on PostgreSQL, half OAuth 2.0 and half compatibility
#: tokens: 1893 req/s with no limit, 3527 with two, 3577 with one; OAuth tokens alone 3180,
#: 3669, 4050).
BATCHES_IN_FLIGHT = 1


@functools.lru_cache(maxsize=4096)
def _compat_scope_string(
    device_id: str | None, is_synapse_admin: bool, supports_explicit_device_id: bool
) -> str:
    return str(
        compat_session_scope(
            device_id,
            is_synapse_admin=is_synapse_admin,
            supports_explicit_device_id=supports_explicit_device_id,
        )
    )


class IntrospectionHandler:
    """Decides what ``POST /oauth2/introspect`` answers about a token."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        stores = server.get_stores()
        self._access_tokens: Batcher[str, AccessTokenIntrospection] = Batcher(
            self._clock,
            stores.access_tokens.lookup_access_tokens_for_introspection,
            max_in_flight=BATCHES_IN_FLIGHT,
        )
        self._refresh_tokens = stores.refresh_tokens
        self._compat_sessions = stores.compat_sessions
        self._personal_sessions = stores.personal_sessions
        self._compat_access_tokens: Batcher[str, CompatAccessTokenIntrospection] = Batcher(
            self._clock,
            stores.compat_sessions.lookup_access_tokens_for_introspection,
            max_in_flight=BATCHES_IN_FLIGHT,
        )
        self._activity = server.get_activity_tracker()
        self._homeserver_secret = server.config.matrix.secret.encode("utf-8")

    def is_homeserver(self, bearer_token: str) -> bool:
        """Whether a ``Bearer`` credential is the secret shared with the homeserver (constant time)."""
        return hmac.compare_digest(bearer_token.encode("utf-8"), self._homeserver_secret)

    def introspect(
        self, token: str, token_type_hint: str | None = None, *, supports_explicit_device_id: bool = False
    ) -> defer.Deferred[IntrospectionResponse]:
        """What the token is, or :data:`INACTIVE` (a Deferred: the hot path avoids a coroutine).

        Args:
            token: the presented token.
            token_type_hint: RFC 7662 ``token_type_hint``; one that does not fit the token
                (an unknown value included) makes it inactive.
            supports_explicit_device_id: the caller sent ``X-MAS-Supports-Device-Id: 1``:
                a compatibility session's device goes in ``device_id`` rather than the
                scope (MAS); it changes nothing for OAuth 2.0 sessions.
        """
        try:
            token_type = TokenType.check(token)
        except TokenFormatError as e:
            logger.debug("Introspected token is malformed: %s", e)
            return defer.succeed(_inactive("unknown"))
        if token_type_hint is not None and not token_type.matches_hint(token_type_hint):
            logger.debug("Introspected %s does not fit the hint %r", token_type, token_type_hint)
            return defer.succeed(_inactive(METRIC_KIND[token_type]))
        if token_type is TokenType.ACCESS_TOKEN:
            return self._access_tokens.lookup(token).addCallback(self._access_token_reply)
        if token_type is TokenType.REFRESH_TOKEN:
            return defer.ensureDeferred(self._introspect_refresh_token(token))
        if token_type is TokenType.COMPAT_ACCESS_TOKEN or token_type is TokenType.COMPAT_REFRESH_TOKEN:
            if token_type is TokenType.COMPAT_ACCESS_TOKEN:
                # The hot path, as for OAuth 2.0 access tokens: batched, no coroutine.
                return self._compat_access_tokens.lookup(token).addCallback(
                    self._compat_reply, token_type, supports_explicit_device_id
                )
            return defer.ensureDeferred(
                self._introspect_compat_refresh_token(token, supports_explicit_device_id)
            )
        return defer.ensureDeferred(self._introspect_personal_token(token))

    async def _introspect_personal_token(self, token: str) -> IntrospectionResponse:
        found = await self._personal_sessions.lookup_token(hash_personal_token(token))
        now = self._clock.time_msec()
        if found is None or not found.is_active(now):
            logger.debug("Personal access token is unknown or not active")
            return _inactive("personal_access_token")
        access_token, session, actor = found.token, found.session, found.actor
        self._activity.record_personal_session(session.id, now, None)
        expires_at = access_token.expires_at
        created_at = to_seconds(access_token.created_at)
        metrics.record_introspection("personal_access_token", True)
        return IntrospectionResponse(
            active=True,
            scope=normalized_scope_string(session.scope),
            client_id=session.owner_client_id,
            username=actor.username,
            token_type=ACCESS_TOKEN,
            exp=to_seconds(expires_at) if expires_at is not None else None,
            expires_in=to_seconds(expires_at - now) if expires_at is not None else None,
            iat=created_at,
            nbf=created_at,
            sub=actor.user_id,
        )

    def _access_token_reply(self, found: AccessTokenIntrospection | None) -> IntrospectionResponse:
        if found is None:
            return _inactive("oauth2_access_token")
        now = self._clock.time_msec()
        if not found.is_active(now):
            logger.debug("Access token %s is not active", found.token.id)
            return _inactive("oauth2_access_token")
        access_token, session, user = found.token, found.session, found.user
        if access_token.first_used_at is None:
            self._activity.record_access_token_used(access_token.id, now)
        self._activity.record_oauth2_session(session.id, now, None)
        expires_at = access_token.expires_at
        created_at = to_seconds(access_token.created_at)
        metrics.record_introspection("oauth2_access_token", True)
        return IntrospectionResponse(
            active=True,
            scope=normalized_scope_string(session.scope),
            client_id=session.client_id,
            username=user.username if user is not None else None,
            token_type=ACCESS_TOKEN,
            exp=to_seconds(expires_at) if expires_at is not None else None,
            expires_in=to_seconds(expires_at - now) if expires_at is not None else None,
            iat=created_at,
            nbf=created_at,
            sub=user.user_id if user is not None else None,
            jti=access_token.id,
        )

    async def _introspect_refresh_token(self, token: str) -> IntrospectionResponse:
        found = await self._refresh_tokens.lookup_refresh_token_for_introspection(token)
        if found is None:
            return _inactive("oauth2_refresh_token")
        if not found.is_active:
            logger.debug("Refresh token %s is not active", found.token.id)
            return _inactive("oauth2_refresh_token")
        refresh_token, session, user = found.token, found.session, found.user
        self._activity.record_oauth2_session(session.id, self._clock.time_msec(), None)
        created_at = to_seconds(refresh_token.created_at)
        metrics.record_introspection("oauth2_refresh_token", True)
        return IntrospectionResponse(
            active=True,
            scope=normalized_scope_string(session.scope),
            client_id=session.client_id,
            username=user.username if user is not None else None,
            token_type=REFRESH_TOKEN,
            iat=created_at,
            nbf=created_at,
            sub=user.user_id if user is not None else None,
            jti=refresh_token.id,
        )

    async def _introspect_compat_refresh_token(
        self, token: str, supports_explicit_device_id: bool
    ) -> IntrospectionResponse:
        found = await self._compat_sessions.lookup_refresh_token_for_introspection(token)
        return self._compat_reply(found, TokenType.COMPAT_REFRESH_TOKEN, supports_explicit_device_id)

    def _compat_reply(
        self, found: Any, token_type: TokenType, supports_explicit_device_id: bool
    ) -> IntrospectionResponse:
        """The answer for a compatibility token found with its session and user (or not)."""
        now = self._clock.time_msec()
        if token_type is TokenType.COMPAT_ACCESS_TOKEN:
            active = found is not None and found.is_active(now)
        else:
            active = found is not None and found.is_active
        if found is None or not active:
            logger.debug("%s is unknown or not active", token_type)
            return _inactive(METRIC_KIND[token_type])
        session, user = found.session, found.user
        try:
            scope = _compat_scope_string(
                session.device_id, session.is_synapse_admin, supports_explicit_device_id
            )
        except InvalidScopeFormat:
            logger.warning("Compat session %s has a device that cannot be a scope token", session.id)
            return _inactive(METRIC_KIND[token_type])
        self._activity.record_compat_session(session.id, now, None)
        created_at = to_seconds(found.token.created_at)
        expires_at = getattr(found.token, "expires_at", None)
        metrics.record_introspection(METRIC_KIND[token_type], True)
        return IntrospectionResponse(
            active=True,
            scope=scope,
            client_id=LEGACY_CLIENT_ID,
            username=user.username,
            token_type=ACCESS_TOKEN if token_type is TokenType.COMPAT_ACCESS_TOKEN else REFRESH_TOKEN,
            exp=to_seconds(expires_at) if expires_at is not None else None,
            expires_in=to_seconds(expires_at - now) if expires_at is not None else None,
            iat=created_at,
            nbf=created_at,
            sub=user.user_id,
            device_id=session.device_id,
        )
