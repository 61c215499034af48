# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /refresh`` of the legacy Matrix login API (MAS's ``crates/handlers/src/compat/refresh.rs``).

A compatibility refresh token is exchanged once, for a new access token (expiring after
``experimental.compat_token_ttl``) and a new refresh token; the access token it came with
expires. Anything but an unused compatibility refresh token of an unfinished session is 401
``M_UNKNOWN_TOKEN`` "Invalid refresh token".
"""

from __future__ import annotations

import logging
from typing import Any

from mas_twisted.api.errors import UnknownTokenError
from mas_twisted.handlers.compat._common import CompatHandlerBase
from mas_twisted.types.compat import CompatAccessToken, CompatRefreshToken
from mas_twisted.types.tokens import TokenFormatError, TokenType

logger = logging.getLogger(__name__)

INVALID_REFRESH_TOKEN = "Invalid refresh token"


class CompatRefreshHandler(CompatHandlerBase):
    """``server.get_compat_refresh_handler()``."""

    async def refresh(self, refresh_token: str, ip: str | None) -> dict[str, Any]:
        """Exchange a compatibility refresh token, once, for a new pair; the old access token expires."""
        try:
            token_type = TokenType.check(refresh_token)
        except TokenFormatError as e:
            raise UnknownTokenError(f"malformed refresh token: {e}", INVALID_REFRESH_TOKEN) from None
        if token_type is not TokenType.COMPAT_REFRESH_TOKEN:
            raise UnknownTokenError(f"{token_type} is not a compat refresh token", INVALID_REFRESH_TOKEN)
        store = self._stores.compat_sessions
        found = await store.lookup_refresh_token_for_introspection(refresh_token)
        if found is None:
            raise UnknownTokenError("unknown compat refresh token", INVALID_REFRESH_TOKEN)
        if not found.token.is_valid:
            raise UnknownTokenError(
                f"compat refresh token {found.token.id} already consumed", INVALID_REFRESH_TOKEN
            )
        if not found.session.is_valid:
            raise UnknownTokenError(f"compat session {found.session.id} is finished", INVALID_REFRESH_TOKEN)
        session = found.session
        now = self._clock.time_msec()
        self._server.get_activity_tracker().record_compat_session(session.id, now, ip)

        access_token = CompatAccessToken(
            id=self._tokens.ulid(),
            session_id=session.id,
            access_token=self._tokens.token(TokenType.COMPAT_ACCESS_TOKEN),
            created_at=now,
            expires_at=now + self._compat_token_ttl_ms,
        )
        new_refresh = CompatRefreshToken(
            id=self._tokens.ulid(),
            session_id=session.id,
            access_token_id=access_token.id,
            refresh_token=self._tokens.token(TokenType.COMPAT_REFRESH_TOKEN),
            created_at=now,
        )
        if not await store.rotate_refresh_token(found.token, access_token, new_refresh):
            raise UnknownTokenError(
                f"compat refresh token {found.token.id} consumed meanwhile", INVALID_REFRESH_TOKEN
            )
        return {
            "access_token": access_token.access_token,
            "refresh_token": new_refresh.refresh_token,
            "expires_in_ms": self._compat_token_ttl_ms,
        }
