# SPDX-License-Identifier: AGPL-3.0-only
"""The compatibility layer's model (MAS's ``crates/data-model/src/compat/``; inventory §3).

A :class:`CompatSession` is one device logged in through the legacy Matrix API. Its access
tokens (``mct_``) expire only when the client asked for a refresh token; they stop working
when the session is finished. Its refresh tokens (``mcr_``) are used once. A
:class:`CompatSsoLogin` is the web half of ``m.login.sso``: created at the redirect, fulfilled
when the user confirms in the browser, exchanged once for a session with ``m.login.token``.
"""

from __future__ import annotations

import attrs

from mas_twisted.types.columns import BOOL, INT, OPTIONAL_INT, Row, column, mapped
from mas_twisted.types.oauth2 import TokenOwner

#: ``client_id`` of compatibility sessions at introspection (MAS).
LEGACY_CLIENT_ID = "legacy"
#: An SSO login must be confirmed within this long of the redirect (MAS: 30 minutes).
SSO_LOGIN_LIFETIME_MS = 30 * 60 * 1000
#: A fulfilled SSO login's ``loginToken`` must be exchanged within this long (MAS: 30 s).
SSO_LOGIN_TOKEN_LIFETIME_MS = 30 * 1000


@mapped
@attrs.frozen
class CompatSession(Row):
    id: str = attrs.field(metadata=column("compat_session_id"))
    user_id: str
    device_id: str | None
    created_at: int = attrs.field(metadata=column(codec=INT))
    user_session_id: str | None = None
    is_synapse_admin: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    finished_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    last_active_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    last_active_ip: str | None = None
    user_agent: str | None = None
    human_name: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.finished_at is None


@mapped
@attrs.frozen
class CompatAccessToken(Row):
    id: str = attrs.field(metadata=column("compat_access_token_id"))
    session_id: str = attrs.field(metadata=column("compat_session_id"))
    access_token: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    expires_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))

    def is_expired(self, now: int) -> bool:
        """MAS's ``CompatAccessToken::is_valid`` is ``expires_at > now``: an access token expired
        "now" (by a refresh) is expired at once."""
        return self.expires_at is not None and self.expires_at <= now


@mapped
@attrs.frozen
class CompatRefreshToken(Row):
    id: str = attrs.field(metadata=column("compat_refresh_token_id"))
    session_id: str = attrs.field(metadata=column("compat_session_id"))
    access_token_id: str = attrs.field(metadata=column("compat_access_token_id"))
    refresh_token: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    consumed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))

    @property
    def is_valid(self) -> bool:
        return self.consumed_at is None


@mapped
@attrs.frozen
class CompatSsoLogin(Row):
    id: str = attrs.field(metadata=column("compat_sso_login_id"))
    redirect_uri: str
    login_token: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    user_session_id: str | None = None
    compat_session_id: str | None = None
    fulfilled_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    exchanged_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))

    @property
    def is_pending(self) -> bool:
        return self.fulfilled_at is None and self.exchanged_at is None

    @property
    def is_fulfilled(self) -> bool:
        return self.fulfilled_at is not None and self.exchanged_at is None


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
