# SPDX-License-Identifier: AGPL-3.0-only
"""The compatibility layer's model (MAS's ``crates/data-model/src/compat/``; inventory §3).

A :class:`CompatSession` is one device logged in through the legacy Matrix API. Its access
tokens (``mct_``) expire only when the client asked for a refresh token; they stop working
when the session is finished. Its refresh tokens (``mcr_``) are used once. A
:class:`CompatSsoLogin` is the web half of ``m.login.sso``: created at the redirect, fulfilled
when the user confirms in the browser, exchanged once for a session with ``m.login.token``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from mas_twisted.types.oauth2 import TokenOwner

#: ``client_id`` of compatibility sessions at introspection (MAS).
LEGACY_CLIENT_ID = "legacy"
#: An SSO login must be confirmed within this long of the redirect (MAS: 30 minutes).
SSO_LOGIN_LIFETIME_MS = 30 * 60 * 1000
#: A fulfilled SSO login's ``loginToken`` must be exchanged within this long (MAS: 30 s).
SSO_LOGIN_TOKEN_LIFETIME_MS = 30 * 1000


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@attrs.frozen
class CompatSession:
    id: str
    user_id: str
    device_id: str | None
    created_at: int
    user_session_id: str | None = None
    is_synapse_admin: bool = False
    finished_at: int | None = None
    last_active_at: int | None = None
    last_active_ip: str | None = None
    user_agent: str | None = None
    human_name: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "compat_session_id",
        "user_id",
        "device_id",
        "created_at",
        "user_session_id",
        "is_synapse_admin",
        "finished_at",
        "last_active_at",
        "last_active_ip",
        "user_agent",
        "human_name",
    )

    @property
    def is_valid(self) -> bool:
        return self.finished_at is None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> CompatSession:
        (
            sid,
            user_id,
            device_id,
            created_at,
            user_session_id,
            admin,
            finished_at,
            last_active_at,
            ip,
            ua,
            name,
        ) = row
        return cls(
            id=sid,
            user_id=user_id,
            device_id=device_id,
            created_at=int(created_at),
            user_session_id=user_session_id,
            is_synapse_admin=bool(admin),
            finished_at=_int(finished_at),
            last_active_at=_int(last_active_at),
            last_active_ip=ip,
            user_agent=ua,
            human_name=name,
        )

    def to_row(self) -> dict[str, Any]:
        return dict(
            zip(
                self.COLUMNS,
                (
                    self.id,
                    self.user_id,
                    self.device_id,
                    self.created_at,
                    self.user_session_id,
                    self.is_synapse_admin,
                    self.finished_at,
                    self.last_active_at,
                    self.last_active_ip,
                    self.user_agent,
                    self.human_name,
                ),
            )
        )


@attrs.frozen
class CompatAccessToken:
    id: str
    session_id: str
    access_token: str
    created_at: int
    expires_at: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "compat_access_token_id",
        "compat_session_id",
        "access_token",
        "created_at",
        "expires_at",
    )

    def is_expired(self, now: int) -> bool:
        """MAS's ``CompatAccessToken::is_valid`` is ``expires_at > now``: an access token expired
        "now" (by a refresh) is expired at once."""
        return self.expires_at is not None and self.expires_at <= now

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> CompatAccessToken:
        tid, sid, token, created_at, expires_at = row
        return cls(
            id=tid,
            session_id=sid,
            access_token=token,
            created_at=int(created_at),
            expires_at=_int(expires_at),
        )

    def to_row(self) -> dict[str, Any]:
        return dict(
            zip(self.COLUMNS, (self.id, self.session_id, self.access_token, self.created_at, self.expires_at))
        )


@attrs.frozen
class CompatRefreshToken:
    id: str
    session_id: str
    access_token_id: str
    refresh_token: str
    created_at: int
    consumed_at: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "compat_refresh_token_id",
        "compat_session_id",
        "compat_access_token_id",
        "refresh_token",
        "created_at",
        "consumed_at",
    )

    @property
    def is_valid(self) -> bool:
        return self.consumed_at is None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> CompatRefreshToken:
        tid, sid, atid, token, created_at, consumed_at = row
        return cls(
            id=tid,
            session_id=sid,
            access_token_id=atid,
            refresh_token=token,
            created_at=int(created_at),
            consumed_at=_int(consumed_at),
        )

    def to_row(self) -> dict[str, Any]:
        return dict(
            zip(
                self.COLUMNS,
                (
                    self.id,
                    self.session_id,
                    self.access_token_id,
                    self.refresh_token,
                    self.created_at,
                    self.consumed_at,
                ),
            )
        )


@attrs.frozen
class CompatSsoLogin:
    id: str
    redirect_uri: str
    login_token: str
    created_at: int
    user_session_id: str | None = None
    compat_session_id: str | None = None
    fulfilled_at: int | None = None
    exchanged_at: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "compat_sso_login_id",
        "redirect_uri",
        "login_token",
        "created_at",
        "user_session_id",
        "compat_session_id",
        "fulfilled_at",
        "exchanged_at",
    )

    @property
    def is_pending(self) -> bool:
        return self.fulfilled_at is None and self.exchanged_at is None

    @property
    def is_fulfilled(self) -> bool:
        return self.fulfilled_at is not None and self.exchanged_at is None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> CompatSsoLogin:
        lid, redirect_uri, token, created_at, user_session_id, session_id, fulfilled_at, exchanged_at = row
        return cls(
            id=lid,
            redirect_uri=redirect_uri,
            login_token=token,
            created_at=int(created_at),
            user_session_id=user_session_id,
            compat_session_id=session_id,
            fulfilled_at=_int(fulfilled_at),
            exchanged_at=_int(exchanged_at),
        )

    def to_row(self) -> dict[str, Any]:
        return dict(
            zip(
                self.COLUMNS,
                (
                    self.id,
                    self.redirect_uri,
                    self.login_token,
                    self.created_at,
                    self.user_session_id,
                    self.compat_session_id,
                    self.fulfilled_at,
                    self.exchanged_at,
                ),
            )
        )


@attrs.frozen
class CompatAccessTokenIntrospection:
    """A compatibility access token with its session and user, read in one query."""

    token: CompatAccessToken
    session: CompatSession
    user: TokenOwner

    def is_active(self, now: int) -> bool:
        return not self.token.is_expired(now) and self.session.is_valid and self.user.is_valid


@attrs.frozen
class CompatRefreshTokenIntrospection:
    token: CompatRefreshToken
    session: CompatSession
    user: TokenOwner

    @property
    def is_active(self) -> bool:
        return self.token.is_valid and self.session.is_valid and self.user.is_valid
