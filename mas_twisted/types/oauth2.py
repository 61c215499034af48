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
(MAS's table and column names, inventory §12).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from mas_twisted.api.errors import MasError
from mas_twisted.oauth2.scope import Scope
from mas_twisted.types.columns import db_json, to_db_json


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


@attrs.frozen
class AuthorizationGrant:
    """One authorization request, from ``GET /authorize`` to the code exchange.

    ``code`` is ``None`` when the response type has no ``code`` (``id_token`` alone);
    ``user_session_id`` is the browser session that fulfilled it and ``oauth2_session_id``
    the session its exchange created.
    """

    id: str
    client_id: str
    redirect_uri: str
    scope: Scope = attrs.field(converter=as_scope)
    created_at: int
    #: ``query``, ``fragment`` or ``form_post``.
    response_mode: str
    code: str | None = None
    pkce: Pkce | None = None
    state: str | None = None
    nonce: str | None = None
    response_type_id_token: bool = False
    login_hint: str | None = None
    locale: str | None = None
    #: Every query parameter of the authorization request, as received.
    raw_parameters: Mapping[str, str] = attrs.field(factory=dict, converter=_str_mapping)
    fulfilled_at: int | None = None
    exchanged_at: int | None = None
    cancelled_at: int | None = None
    user_session_id: str | None = None
    oauth2_session_id: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "oauth2_authorization_grant_id",
        "oauth2_client_id",
        "redirect_uri",
        "scope",
        "created_at",
        "response_mode",
        "response_type_code",
        "authorization_code",
        "code_challenge_method",
        "code_challenge",
        "state",
        "nonce",
        "response_type_id_token",
        "login_hint",
        "locale",
        "raw_parameters",
        "fulfilled_at",
        "exchanged_at",
        "cancelled_at",
        "user_session_id",
        "oauth2_session_id",
    )

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

    # -- rows -------------------------------------------------------------------------------
    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AuthorizationGrant:
        (
            grant_id,
            client_id,
            redirect_uri,
            scope,
            created_at,
            response_mode,
            _response_type_code,
            code,
            challenge_method,
            challenge,
            state,
            nonce,
            response_type_id_token,
            login_hint,
            locale,
            raw_parameters,
            fulfilled_at,
            exchanged_at,
            cancelled_at,
            user_session_id,
            oauth2_session_id,
        ) = row
        pkce = (
            Pkce(challenge_method, challenge)
            if challenge is not None and challenge_method is not None
            else None
        )
        return cls(
            id=grant_id,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            created_at=int(created_at),
            response_mode=response_mode,
            code=code,
            pkce=pkce,
            state=state,
            nonce=nonce,
            response_type_id_token=bool(response_type_id_token),
            login_hint=login_hint,
            locale=locale,
            raw_parameters=db_json(raw_parameters),
            fulfilled_at=fulfilled_at,
            exchanged_at=exchanged_at,
            cancelled_at=cancelled_at,
            user_session_id=user_session_id,
            oauth2_session_id=oauth2_session_id,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "oauth2_authorization_grant_id": self.id,
            "oauth2_client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope_string,
            "created_at": self.created_at,
            "response_mode": self.response_mode,
            "response_type_code": self.response_type_code,
            "authorization_code": self.code,
            "code_challenge_method": self.pkce.challenge_method if self.pkce else None,
            "code_challenge": self.pkce.challenge if self.pkce else None,
            "state": self.state,
            "nonce": self.nonce,
            "response_type_id_token": self.response_type_id_token,
            "login_hint": self.login_hint,
            "locale": self.locale,
            "raw_parameters": to_db_json(dict(self.raw_parameters)),
            "fulfilled_at": self.fulfilled_at,
            "exchanged_at": self.exchanged_at,
            "cancelled_at": self.cancelled_at,
            "user_session_id": self.user_session_id,
            "oauth2_session_id": self.oauth2_session_id,
        }


# -- device code grants ---------------------------------------------------------------------
class DeviceCodeGrantState(str, enum.Enum):
    """States of a :class:`DeviceCodeGrant` (MAS's ``DeviceCodeGrantState``)."""

    PENDING = "pending"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"
    EXCHANGED = "exchanged"


@attrs.frozen
class DeviceCodeGrant:
    """A device authorization request (RFC 8628 §3.1–3.5).

    The device polls with ``device_code``; the user types ``user_code`` at ``/link``.
    ``ip_address``/``user_agent`` are the device's; ``locale`` is the browser's, recorded
    when the user approves (MAS names the device from it).
    """

    id: str
    client_id: str
    scope: Scope = attrs.field(converter=as_scope)
    user_code: str
    device_code: str
    created_at: int
    expires_at: int
    ip_address: str | None = None
    user_agent: str | None = None
    locale: str | None = None
    fulfilled_at: int | None = None
    rejected_at: int | None = None
    exchanged_at: int | None = None
    user_session_id: str | None = None
    oauth2_session_id: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "oauth2_device_code_grant_id",
        "oauth2_client_id",
        "scope",
        "user_code",
        "device_code",
        "created_at",
        "expires_at",
        "ip_address",
        "user_agent",
        "locale",
        "fulfilled_at",
        "rejected_at",
        "exchanged_at",
        "user_session_id",
        "oauth2_session_id",
    )

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

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DeviceCodeGrant:
        (
            grant_id,
            client_id,
            scope,
            user_code,
            device_code,
            created_at,
            expires_at,
            ip_address,
            user_agent,
            locale,
            fulfilled_at,
            rejected_at,
            exchanged_at,
            user_session_id,
            oauth2_session_id,
        ) = row
        return cls(
            id=grant_id,
            client_id=client_id,
            scope=scope,
            user_code=user_code,
            device_code=device_code,
            created_at=int(created_at),
            expires_at=int(expires_at),
            ip_address=ip_address,
            user_agent=user_agent,
            locale=locale,
            fulfilled_at=fulfilled_at,
            rejected_at=rejected_at,
            exchanged_at=exchanged_at,
            user_session_id=user_session_id,
            oauth2_session_id=oauth2_session_id,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "oauth2_device_code_grant_id": self.id,
            "oauth2_client_id": self.client_id,
            "scope": self.scope_string,
            "user_code": self.user_code,
            "device_code": self.device_code,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "locale": self.locale,
            "fulfilled_at": self.fulfilled_at,
            "rejected_at": self.rejected_at,
            "exchanged_at": self.exchanged_at,
            "user_session_id": self.user_session_id,
            "oauth2_session_id": self.oauth2_session_id,
        }


# -- sessions -------------------------------------------------------------------------------
@attrs.frozen
class OAuth2Session:
    """A session a client holds; the tokens of :class:`AccessToken`/:class:`RefreshToken` belong to one.

    ``user_id`` is ``None`` for ``client_credentials`` sessions; ``user_session_id`` is the
    browser session it was started from, if any. ``last_active_at``/``last_active_ip`` are
    updated in batches from token use.
    """

    id: str
    client_id: str
    scope: Scope = attrs.field(converter=as_scope)
    created_at: int
    user_id: str | None = None
    user_session_id: str | None = None
    finished_at: int | None = None
    user_agent: str | None = None
    last_active_at: int | None = None
    last_active_ip: str | None = None
    human_name: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "oauth2_session_id",
        "oauth2_client_id",
        "scope_list",
        "created_at",
        "user_id",
        "user_session_id",
        "finished_at",
        "user_agent",
        "last_active_at",
        "last_active_ip",
        "human_name",
    )

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

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OAuth2Session:
        (
            session_id,
            client_id,
            scope_list,
            created_at,
            user_id,
            user_session_id,
            finished_at,
            user_agent,
            last_active_at,
            last_active_ip,
            human_name,
        ) = row
        return cls(
            id=session_id,
            client_id=client_id,
            scope=_scope_from_row(scope_list),
            created_at=int(created_at),
            user_id=user_id,
            user_session_id=user_session_id,
            finished_at=finished_at,
            user_agent=user_agent,
            last_active_at=last_active_at,
            last_active_ip=last_active_ip,
            human_name=human_name,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "oauth2_session_id": self.id,
            "oauth2_client_id": self.client_id,
            "scope_list": to_db_json(list(self.scope.tokens)),
            "created_at": self.created_at,
            "user_id": self.user_id,
            "user_session_id": self.user_session_id,
            "finished_at": self.finished_at,
            "user_agent": self.user_agent,
            "last_active_at": self.last_active_at,
            "last_active_ip": self.last_active_ip,
            "human_name": self.human_name,
        }


# -- tokens ---------------------------------------------------------------------------------
@attrs.frozen
class AccessToken:
    """An OAuth 2.0 access token (``mat_…``), valid until ``expires_at`` unless revoked first."""

    id: str
    session_id: str
    access_token: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    first_used_at: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "oauth2_access_token_id",
        "oauth2_session_id",
        "access_token",
        "created_at",
        "expires_at",
        "revoked_at",
        "first_used_at",
    )

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

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AccessToken:
        token_id, session_id, access_token, created_at, expires_at, revoked_at, first_used_at = row
        return cls(
            id=token_id,
            session_id=session_id,
            access_token=access_token,
            created_at=int(created_at),
            expires_at=expires_at,
            revoked_at=revoked_at,
            first_used_at=first_used_at,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "oauth2_access_token_id": self.id,
            "oauth2_session_id": self.session_id,
            "access_token": self.access_token,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "first_used_at": self.first_used_at,
        }


class RefreshTokenState(str, enum.Enum):
    """States of a :class:`RefreshToken` (MAS's ``RefreshTokenState``)."""

    VALID = "valid"
    CONSUMED = "consumed"
    REVOKED = "revoked"


@attrs.frozen
class RefreshToken:
    """An OAuth 2.0 refresh token (``mar_…``). It never expires; it is rotated or revoked.

    ``access_token_id`` is the access token issued with it; ``next_refresh_token_id`` the
    token that replaced it when it was consumed.
    """

    id: str
    session_id: str
    refresh_token: str
    created_at: int
    access_token_id: str | None = None
    consumed_at: int | None = None
    revoked_at: int | None = None
    next_refresh_token_id: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "oauth2_refresh_token_id",
        "oauth2_session_id",
        "refresh_token",
        "created_at",
        "oauth2_access_token_id",
        "consumed_at",
        "revoked_at",
        "next_oauth2_refresh_token_id",
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

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RefreshToken:
        (
            token_id,
            session_id,
            refresh_token,
            created_at,
            access_token_id,
            consumed_at,
            revoked_at,
            next_refresh_token_id,
        ) = row
        return cls(
            id=token_id,
            session_id=session_id,
            refresh_token=refresh_token,
            created_at=int(created_at),
            access_token_id=access_token_id,
            consumed_at=consumed_at,
            revoked_at=revoked_at,
            next_refresh_token_id=next_refresh_token_id,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "oauth2_refresh_token_id": self.id,
            "oauth2_session_id": self.session_id,
            "refresh_token": self.refresh_token,
            "created_at": self.created_at,
            "oauth2_access_token_id": self.access_token_id,
            "consumed_at": self.consumed_at,
            "revoked_at": self.revoked_at,
            "next_oauth2_refresh_token_id": self.next_refresh_token_id,
        }


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
