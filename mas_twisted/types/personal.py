# SPDX-License-Identifier: AGPL-3.0-only
"""Personal sessions and personal access tokens (``mpt_…``; MAS's
``crates/data-model/src/personal/``, inventory §6 and §12).

A :class:`PersonalSession` acts as its ``actor_user_id`` with a fixed scope; it is owned by the
user or the OAuth 2.0 client that created it (exactly one of ``owner_user_id`` and
``owner_client_id``). It holds one :class:`PersonalAccessToken` that is not revoked at a time;
regenerating revokes it and adds another. The token's text is never stored, only its SHA-256
(:func:`hash_personal_token`). Revoking the session ends every token of it.
"""

from __future__ import annotations

import hashlib

import attrs

from mas_twisted.oauth2.scope import Scope
from mas_twisted.types.columns import INT, Row, column, mapped
from mas_twisted.types.oauth2 import SCOPE_LIST, InvalidTransitionError, TokenOwner, as_scope


def hash_personal_token(token: str) -> str:
    """What ``personal_access_tokens.access_token_sha256`` holds for ``token``: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@mapped
@attrs.frozen
class PersonalSession(Row):
    """A personal session; valid until ``revoked_at`` is set."""

    id: str = attrs.field(metadata=column("personal_session_id"))
    actor_user_id: str
    human_name: str
    scope: Scope = attrs.field(converter=as_scope, metadata=column("scope_list", codec=SCOPE_LIST))
    created_at: int = attrs.field(metadata=column(codec=INT))
    owner_user_id: str | None = None
    owner_client_id: str | None = attrs.field(default=None, metadata=column("owner_oauth2_client_id"))
    revoked_at: int | None = None
    last_active_at: int | None = None
    last_active_ip: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.owner_user_id is None) == (self.owner_client_id is None):
            raise ValueError("a personal session has exactly one owner, a user or a client")

    @property
    def is_valid(self) -> bool:
        return self.revoked_at is None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def scope_string(self) -> str:
        return str(self.scope)

    def revoke(self, at: int) -> PersonalSession:
        if self.revoked_at is not None:
            raise InvalidTransitionError(f"personal session {self.id} is already revoked")
        return attrs.evolve(self, revoked_at=at)


@mapped
@attrs.frozen
class PersonalAccessToken(Row):
    """A personal access token: valid until ``expires_at`` (``None``: never) unless revoked first."""

    id: str = attrs.field(metadata=column("personal_access_token_id"))
    session_id: str = attrs.field(metadata=column("personal_session_id"))
    token_sha256: str = attrs.field(metadata=column("access_token_sha256"))
    created_at: int = attrs.field(metadata=column(codec=INT))
    expires_at: int | None = None
    revoked_at: int | None = None

    def is_expired(self, now: int) -> bool:
        """Past ``expires_at`` (MAS: ``expires_at < now``)."""
        return self.expires_at is not None and self.expires_at < now

    def is_valid(self, now: int) -> bool:
        return self.revoked_at is None and not self.is_expired(now)


@attrs.frozen
class PersonalSessionWithToken:
    """A session and its token that is not revoked (``None`` once the session is revoked): what
    the admin API shows of a personal session (the token's ``expires_at``)."""

    session: PersonalSession
    token: PersonalAccessToken | None

    @property
    def id(self) -> str:
        return self.session.id


@attrs.frozen
class PersonalTokenIntrospection:
    """A personal token read with its session, the session's actor and its owning user (``None``
    when a client owns the session), in one query."""

    token: PersonalAccessToken
    session: PersonalSession
    actor: TokenOwner
    owner: TokenOwner | None

    def is_active(self, now: int) -> bool:
        """MAS's introspection rule: a valid token of a valid session, whose actor and owning
        user (if a user owns it) are neither locked nor deactivated."""
        return (
            self.token.is_valid(now)
            and self.session.is_valid
            and self.actor.is_valid
            and (self.owner is None or self.owner.is_valid)
        )
