# SPDX-License-Identifier: AGPL-3.0-only
"""The OAuth 2.0 data model: grants, sessions and tokens, with MAS's state machines.

Mirrors MAS's ``crates/data-model/src/oauth2/`` and ``tokens.rs``:

- :class:`AuthorizationGrant` (RFC 6749 §4.1, OIDC Core §3): *pending* until the user
  consents (*fulfilled*, tied to a browser session), then *exchanged* at the token endpoint
  for an :class:`OAuth2Session`; only a pending grant can be *cancelled*.
- :class:`DeviceCodeGrant` (RFC 8628): *pending*, then *fulfilled* or *rejected* by a user
  in the browser; a fulfilled grant is *exchanged* once for a session.
- :class:`OAuth2Session`: what a client holds on behalf of a user (or of itself, for
  ``client_credentials``: no user); *valid* until *finished*.
- :class:`AccessToken` (*valid*, or *revoked*; also expired past ``expires_at``) and
  :class:`RefreshToken` (*valid*, *consumed* by a rotation that records its successor, or
  *revoked*). A consumed refresh token may be consumed again: that is MAS's double-refresh
  tolerance, decided by the token handler.

Every transition returns a new object and raises :class:`InvalidTransitionError` when the
current state does not allow it. Ids are ULID strings, timestamps milliseconds since the
epoch, as stored, and scopes :class:`~mas_twisted.oauth2.scope.Scope` (any iterable of tokens
or space-separated string is accepted). ``COLUMNS`` / ``from_row`` / ``to_row`` map each class to its table
(MAS's table and column names, inventory §12); :func:`~mas_twisted.types.columns.mapped` generates
them from each field's ``column`` metadata.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mas_twisted.api.errors import MasError
from mas_twisted.oauth2.scope import Scope
from mas_twisted.types.columns import BOOL, INT, JSON, Codec, Row, column, db_json, mapped, to_db_json


class InvalidTransitionError(MasError):
    """A state change the object's current state does not allow (MAS's ``InvalidTransitionError``)."""

    def __init__(self, msg: str = "invalid state transition"):
        super().__init__(msg)


# -- helpers -------------------------------------------------------------------------------
def as_scope(value: Scope | str | Iterable[str] | None) -> Scope:
    """A :class:`~mas_twisted.oauth2.scope.Scope` from a scope, a space-separated string (as
    stored in ``scope`` columns) or an iterable of tokens (``scope_list``)."""
    if isinstance(value, Scope):
        return value
    if value is None:
        return Scope()
    if isinstance(value, str):
        return Scope(token for token in value.split(" ") if token)
    return Scope(value)


@functools.lru_cache(maxsize=1024)
def _stored_scope(scope_list: str) -> Scope:
    """The :class:`Scope` of a stored ``scope_list`` (JSON text). Sessions share a handful of
    scopes, and a Scope is immutable: parsed and checked once per distinct text rather than
    for every row read (introspection reads one per request)."""
    return as_scope(db_json(scope_list))


def _scope_from_row(value: Any) -> Scope:
    if isinstance(value, str):
        return _stored_scope(value)
    return as_scope(value)


def _str_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value) if value else {}


#: A ``scope`` column: the space-separated string (read by the field's ``as_scope``).
SCOPE_STRING = Codec(None, str)
#: A ``scope_list`` column: the JSON array of tokens.
SCOPE_LIST = Codec(_scope_from_row, lambda scope: to_db_json(list(scope.tokens)))


def _code_from_columns(_response_type_code: Any, code: str | None) -> str | None:
    return code


def _code_to_columns(code: str | None) -> tuple[bool, str | None]:
    return code is not None, code


#: ``response_type_code`` is whether there is an authorization code.
AUTHORIZATION_CODE = Codec(_code_from_columns, _code_to_columns)


def _pkce_from_columns(challenge_method: str | None, challenge: str | None) -> Pkce | None:
    if challenge is not None and challenge_method is not None:
        return Pkce(challenge_method, challenge)
    return None


def _pkce_to_columns(pkce: Pkce | None) -> tuple[str | None, str | None]:
    return (pkce.challenge_method, pkce.challenge) if pkce else (None, None)


#: A PKCE challenge in ``code_challenge_method`` and ``code_challenge`` (both or neither).
PKCE = Codec(_pkce_from_columns, _pkce_to_columns)


# -- authorization grants ------------------------------------------------------------------
class GrantStage(str, enum.Enum):
    """Stages of an :class:`AuthorizationGrant` (MAS's ``AuthorizationGrantStage``)."""

    PENDING = "pending"
    FULFILLED = "fulfilled"
    EXCHANGED = "exchanged"
    CANCELLED = "cancelled"


@attrs.frozen
class Pkce:
    """A PKCE challenge (RFC 7636 §4.3) recorded on a grant: ``plain`` or ``S256``."""

    challenge_method: str
    challenge: str


@mapped
@attrs.frozen
class AuthorizationGrant(Row):
    """One authorization request, from ``GET /authorize`` to the code exchange.

    ``code`` is ``None`` when the response type has no ``code`` (``id_token`` alone);
    ``user_session_id`` is the browser session that fulfilled it and ``oauth2_session_id``
    the session its exchange created.
    """

    id: str = attrs.field(metadata=column("oauth2_authorization_grant_id"))
    client_id: str = attrs.field(metadata=column("oauth2_client_id"))
    redirect_uri: str
    scope: Scope = attrs.field(converter=as_scope, metadata=column(codec=SCOPE_STRING))
    created_at: int = attrs.field(metadata=column(codec=INT))
    #: ``query``, ``fragment`` or ``form_post``.
    response_mode: str
    code: str | None = attrs.field(
        default=None, metadata=column("response_type_code", "authorization_code", codec=AUTHORIZATION_CODE)
    )
    pkce: Pkce | None = attrs.field(
        default=None, metadata=column("code_challenge_method", "code_challenge", codec=PKCE)
    )
    state: str | None = None
    nonce: str | None = None
    response_type_id_token: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    login_hint: str | None = None
    locale: str | None = None
    #: Every query parameter of the authorization request, as received.
    raw_parameters: Mapping[str, str] = attrs.field(
        factory=dict, converter=_str_mapping, metadata=column(codec=JSON)
    )
    fulfilled_at: int | None = None
    exchanged_at: int | None = None
    cancelled_at: int | None = None
    user_session_id: str | None = None
    oauth2_session_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.pkce is not None and self.code is None:
            raise ValueError(f"grant {self.id}: a PKCE challenge needs an authorization code")
        if self.cancelled_at is not None and (self.fulfilled_at is not None or self.exchanged_at is not None):
            raise ValueError(f"grant {self.id}: cancelled after fulfilment")
        if self.fulfilled_at is not None and self.user_session_id is None:
            raise ValueError(f"grant {self.id}: fulfilled without a browser session")
        if self.exchanged_at is not None and (self.fulfilled_at is None or self.oauth2_session_id is None):
            raise ValueError(f"grant {self.id}: exchanged without fulfilment or session")

    # -- state ------------------------------------------------------------------------------
    @property
    def stage(self) -> GrantStage:
        if self.cancelled_at is not None:
            return GrantStage.CANCELLED
        if self.exchanged_at is not None:
            return GrantStage.EXCHANGED
        if self.fulfilled_at is not None:
            return GrantStage.FULFILLED
        return GrantStage.PENDING

    @property
    def is_pending(self) -> bool:
        return self.stage is GrantStage.PENDING

    @property
    def is_fulfilled(self) -> bool:
        return self.stage is GrantStage.FULFILLED

    @property
    def is_exchanged(self) -> bool:
        return self.stage is GrantStage.EXCHANGED

    @property
    def is_cancelled(self) -> bool:
        return self.stage is GrantStage.CANCELLED

    @property
    def response_type_code(self) -> bool:
        return self.code is not None

    @property
    def scope_string(self) -> str:
        return str(self.scope)

    def fulfill(self, at: int, browser_session_id: str) -> AuthorizationGrant:
        """The user consented in ``browser_session_id``. Only a pending grant can be fulfilled."""
        if not self.is_pending:
            raise InvalidTransitionError(f"cannot fulfill grant {self.id} in stage {self.stage.value}")
        return attrs.evolve(self, fulfilled_at=at, user_session_id=browser_session_id)

    def exchange(self, at: int, session_id: str) -> AuthorizationGrant:
        """The code was exchanged and created session ``session_id``. Only from *fulfilled*."""
        if not self.is_fulfilled:
            raise InvalidTransitionError(f"cannot exchange grant {self.id} in stage {self.stage.value}")
        return attrs.evolve(self, exchanged_at=at, oauth2_session_id=session_id)

    def cancel(self, at: int) -> AuthorizationGrant:
        """Abandon the request. Only a pending grant can be cancelled."""
        if not self.is_pending:
            raise InvalidTransitionError(f"cannot cancel grant {self.id} in stage {self.stage.value}")
        return attrs.evolve(self, cancelled_at=at)


# -- device code grants ---------------------------------------------------------------------
class DeviceCodeGrantState(str, enum.Enum):
    """States of a :class:`DeviceCodeGrant` (MAS's ``DeviceCodeGrantState``)."""

    PENDING = "pending"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"
    EXCHANGED = "exchanged"


@mapped
@attrs.frozen
class DeviceCodeGrant(Row):
    """A device authorization request (RFC 8628 §3.1–3.5).

    The device polls with ``device_code``; the user types ``user_code`` at ``/link``.
    ``ip_address``/``user_agent`` are the device's; ``locale`` is the browser's, recorded
    when the user approves (MAS names the device from it).
    """

    id: str = attrs.field(metadata=column("oauth2_device_code_grant_id"))
    client_id: str = attrs.field(metadata=column("oauth2_client_id"))
    scope: Scope = attrs.field(converter=as_scope, metadata=column(codec=SCOPE_STRING))
    user_code: str
    device_code: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    expires_at: int = attrs.field(metadata=column(codec=INT))
    ip_address: str | None = None
    user_agent: str | None = None
    locale: str | None = None
    fulfilled_at: int | None = None
    rejected_at: int | None = None
    exchanged_at: int | None = None
    user_session_id: str | None = None
    oauth2_session_id: str | None = None

    def __attrs_post_init__(self) -> None:
        decided = self.fulfilled_at is not None or self.rejected_at is not None
        if self.fulfilled_at is not None and self.rejected_at is not None:
            raise ValueError(f"device grant {self.id}: both fulfilled and rejected")
        if decided and self.user_session_id is None:
            raise ValueError(f"device grant {self.id}: decided without a browser session")
        if self.exchanged_at is not None and (self.fulfilled_at is None or self.oauth2_session_id is None):
            raise ValueError(f"device grant {self.id}: exchanged without fulfilment or session")

    @property
    def state(self) -> DeviceCodeGrantState:
        if self.exchanged_at is not None:
            return DeviceCodeGrantState.EXCHANGED
        if self.rejected_at is not None:
            return DeviceCodeGrantState.REJECTED
        if self.fulfilled_at is not None:
            return DeviceCodeGrantState.FULFILLED
        return DeviceCodeGrantState.PENDING

    @property
    def is_pending(self) -> bool:
        return self.state is DeviceCodeGrantState.PENDING

    @property
    def is_fulfilled(self) -> bool:
        return self.state is DeviceCodeGrantState.FULFILLED

    @property
    def is_rejected(self) -> bool:
        return self.state is DeviceCodeGrantState.REJECTED

    @property
    def is_exchanged(self) -> bool:
        return self.state is DeviceCodeGrantState.EXCHANGED

    @property
    def scope_string(self) -> str:
        return str(self.scope)

    def is_expired(self, now: int) -> bool:
        """Past ``expires_at`` (MAS: ``expires_at < now``)."""
        return self.expires_at < now

    def fulfill(self, at: int, browser_session_id: str, locale: str | None = None) -> DeviceCodeGrant:
        """The user approved the device. Only from *pending*."""
        if not self.is_pending:
            raise InvalidTransitionError(f"cannot fulfill device grant {self.id} in state {self.state.value}")
        return attrs.evolve(self, fulfilled_at=at, user_session_id=browser_session_id, locale=locale)

    def reject(self, at: int, browser_session_id: str) -> DeviceCodeGrant:
        """The user denied the device. Only from *pending*."""
        if not self.is_pending:
            raise InvalidTransitionError(f"cannot reject device grant {self.id} in state {self.state.value}")
        return attrs.evolve(self, rejected_at=at, user_session_id=browser_session_id)

    def exchange(self, at: int, session_id: str) -> DeviceCodeGrant:
        """The device collected its tokens in session ``session_id``. Only from *fulfilled*."""
        if not self.is_fulfilled:
            raise InvalidTransitionError(
                f"cannot exchange device grant {self.id} in state {self.state.value}"
            )
        return attrs.evolve(self, exchanged_at=at, oauth2_session_id=session_id)


# -- sessions -------------------------------------------------------------------------------
@mapped
@attrs.frozen
class OAuth2Session(Row):
    """A session a client holds; the tokens of :class:`AccessToken`/:class:`RefreshToken` belong to one.

    ``user_id`` is ``None`` for ``client_credentials`` sessions; ``user_session_id`` is the
    browser session it was started from, if any. ``last_active_at``/``last_active_ip`` are
    updated in batches from token use.
    """

    id: str = attrs.field(metadata=column("oauth2_session_id"))
    client_id: str = attrs.field(metadata=column("oauth2_client_id"))
    scope: Scope = attrs.field(converter=as_scope, metadata=column("scope_list", codec=SCOPE_LIST))
    created_at: int = attrs.field(metadata=column(codec=INT))
    user_id: str | None = None
    user_session_id: str | None = None
    finished_at: int | None = None
    user_agent: str | None = None
    last_active_at: int | None = None
    last_active_ip: str | None = None
    human_name: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.finished_at is None

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    @property
    def scope_string(self) -> str:
        return str(self.scope)

    def finish(self, at: int) -> OAuth2Session:
        """End the session. A finished session cannot be finished again."""
        if self.finished_at is not None:
            raise InvalidTransitionError(f"session {self.id} is already finished")
        return attrs.evolve(self, finished_at=at)


# -- tokens ---------------------------------------------------------------------------------
@mapped
@attrs.frozen
class AccessToken(Row):
    """An OAuth 2.0 access token (``mat_…``), valid until ``expires_at`` unless revoked first."""

    id: str = attrs.field(metadata=column("oauth2_access_token_id"))
    session_id: str = attrs.field(metadata=column("oauth2_session_id"))
    access_token: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    expires_at: int | None = None
    revoked_at: int | None = None
    first_used_at: int | None = None

    @property
    def jti(self) -> str:
        return self.id

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_used(self) -> bool:
        return self.first_used_at is not None

    def is_expired(self, now: int) -> bool:
        """Past ``expires_at`` (MAS: ``expires_at < now``); never for a token without expiry."""
        return self.expires_at is not None and self.expires_at < now

    def is_valid(self, now: int) -> bool:
        """Neither revoked nor expired at ``now``."""
        return not self.is_revoked and not self.is_expired(now)

    def revoke(self, at: int) -> AccessToken:
        if self.revoked_at is not None:
            raise InvalidTransitionError(f"access token {self.id} is already revoked")
        return attrs.evolve(self, revoked_at=at)

    def mark_used(self, at: int) -> AccessToken:
        """Record the first use; a token already used keeps its first time."""
        if self.first_used_at is not None:
            return self
        return attrs.evolve(self, first_used_at=at)


class RefreshTokenState(str, enum.Enum):
    """States of a :class:`RefreshToken` (MAS's ``RefreshTokenState``)."""

    VALID = "valid"
    CONSUMED = "consumed"
    REVOKED = "revoked"


@mapped
@attrs.frozen
class RefreshToken(Row):
    """An OAuth 2.0 refresh token (``mar_…``). It never expires; it is rotated or revoked.

    ``access_token_id`` is the access token issued with it; ``next_refresh_token_id`` the
    token that replaced it when it was consumed.
    """

    id: str = attrs.field(metadata=column("oauth2_refresh_token_id"))
    session_id: str = attrs.field(metadata=column("oauth2_session_id"))
    refresh_token: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    access_token_id: str | None = attrs.field(default=None, metadata=column("oauth2_access_token_id"))
    consumed_at: int | None = None
    revoked_at: int | None = None
    next_refresh_token_id: str | None = attrs.field(
        default=None, metadata=column("next_oauth2_refresh_token_id")
    )

    def __attrs_post_init__(self) -> None:
        if self.consumed_at is not None and self.revoked_at is not None:
            raise ValueError(f"refresh token {self.id}: both consumed and revoked")
        if self.next_refresh_token_id is not None and self.consumed_at is None:
            raise ValueError(f"refresh token {self.id}: has a successor without being consumed")

    @property
    def jti(self) -> str:
        return self.id

    @property
    def state(self) -> RefreshTokenState:
        if self.revoked_at is not None:
            return RefreshTokenState.REVOKED
        if self.consumed_at is not None:
            return RefreshTokenState.CONSUMED
        return RefreshTokenState.VALID

    @property
    def is_valid(self) -> bool:
        return self.state is RefreshTokenState.VALID

    @property
    def is_consumed(self) -> bool:
        return self.state is RefreshTokenState.CONSUMED

    @property
    def is_revoked(self) -> bool:
        return self.state is RefreshTokenState.REVOKED

    def consume(self, at: int, next_refresh_token_id: str) -> RefreshToken:
        """Replace this token with ``next_refresh_token_id``.

        Allowed from *valid* and, for MAS's double-refresh tolerance, from *consumed* (the
        successor is then replaced); a revoked token cannot be consumed.
        """
        if self.is_revoked:
            raise InvalidTransitionError(f"cannot consume revoked refresh token {self.id}")
        return attrs.evolve(self, consumed_at=at, next_refresh_token_id=next_refresh_token_id)

    def revoke(self, at: int) -> RefreshToken:
        """Only a valid token can be revoked (a consumed one is already unusable)."""
        if not self.is_valid:
            raise InvalidTransitionError(f"cannot revoke refresh token {self.id} in state {self.state.value}")
        return attrs.evolve(self, revoked_at=at)


# -- introspection --------------------------------------------------------------------------
@attrs.frozen
class TokenOwner:
    """The user a session belongs to, as introspection needs it (``users`` columns)."""

    user_id: str
    username: str
    locked_at: int | None = None
    deactivated_at: int | None = None

    @property
    def is_valid(self) -> bool:
        """Neither locked nor deactivated (MAS's ``User::is_valid``)."""
        return self.locked_at is None and self.deactivated_at is None


@attrs.frozen
class AccessTokenIntrospection:
    """An access token with its session and user, read in one query (RFC 7662 §2.2)."""

    token: AccessToken
    session: OAuth2Session
    #: ``None`` for sessions without a user (``client_credentials``).
    user: TokenOwner | None

    def is_active(self, now: int) -> bool:
        """MAS's rule: a valid token, in a valid session, of a valid user (if any)."""
        return (
            self.token.is_valid(now) and self.session.is_valid and (self.user is None or self.user.is_valid)
        )


@attrs.frozen
class RefreshTokenIntrospection:
    """A refresh token with its session and user, read in one query."""

    token: RefreshToken
    session: OAuth2Session
    user: TokenOwner | None

    @property
    def is_active(self) -> bool:
        return self.token.is_valid and self.session.is_valid and (self.user is None or self.user.is_valid)
