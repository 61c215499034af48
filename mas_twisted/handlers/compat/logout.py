# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /logout`` and ``/logout/all`` of the legacy Matrix login API (MAS's
``crates/handlers/src/compat/{logout,logout_all}.rs``).

Both take the compatibility access token presented: it must be a well-formed, known,
unexpired compatibility access token of an unfinished session (for ``/logout/all``, of a
valid user too), else 401 ``M_UNKNOWN_TOKEN`` (``M_MISSING_TOKEN`` without one). The
session's use is recorded as activity; the ``sync-devices`` job that removes the devices from
the homeserver is scheduled in the transaction that finishes the sessions.
"""

from __future__ import annotations

import logging

from mas_twisted.api.errors import MissingTokenError, UnknownTokenError, UnrecognizedRequestError
from mas_twisted.handlers.compat._common import CompatHandlerBase
from mas_twisted.types.compat import CompatAccessTokenIntrospection
from mas_twisted.types.tokens import TokenFormatError, TokenType

logger = logging.getLogger(__name__)


class CompatLogoutHandler(CompatHandlerBase):
    """``server.get_compat_logout_handler()``."""

    async def _authenticate(self, token: str | None, *, check_user: bool) -> CompatAccessTokenIntrospection:
        """The compatibility access token presented (with its session and user), valid now."""
        if token is None:
            raise MissingTokenError()
        try:
            token_type = TokenType.check(token)
        except TokenFormatError as e:
            raise UnknownTokenError(f"malformed token: {e}") from None
        if token_type is not TokenType.COMPAT_ACCESS_TOKEN:
            raise UnknownTokenError(f"{token_type} is not a compatibility access token")
        found = await self._stores.compat_sessions.lookup_access_token_for_introspection(token)
        if found is None:
            raise UnknownTokenError("unknown compatibility access token")
        if found.token.is_expired(self._clock.time_msec()):
            raise UnknownTokenError(f"compat access token {found.token.id} expired")
        if not found.session.is_valid:
            raise UnknownTokenError(f"compat session {found.session.id} is finished")
        if check_user and not found.user.is_valid:
            raise UnknownTokenError(f"user {found.user.user_id} is locked or deactivated")
        return found

    async def logout(self, token: str | None, ip: str | None) -> None:
        """End the session of the presented token; ``sync-devices`` in the same transaction."""
        found = await self._authenticate(token, check_user=False)
        session = found.session
        self._server.get_activity_tracker().record_compat_session(session.id, self._clock.time_msec(), ip)
        if not await self._stores.compat_sessions.finish_compat_session(
            session.id, also=self._enqueue_sync_devices(session.user_id)
        ):
            raise UnknownTokenError(f"compat session {session.id} finished meanwhile")
        logger.info("Compat session %s of user %s logged out", session.id, session.user_id)

    async def logout_all(self, token: str | None, ip: str | None, *, only_compat_is_fine: bool) -> int:
        """End every compatibility session of the token's user (not OAuth 2.0 ones); how many.

        Raises:
            UnrecognizedRequestError: 404 ``M_UNRECOGNIZED`` without
                ``io.element.only_compat_is_fine`` (checked after the token, as MAS).
        """
        found = await self._authenticate(token, check_user=True)
        session = found.session
        self._server.get_activity_tracker().record_compat_session(session.id, self._clock.time_msec(), ip)
        if not only_compat_is_fine:
            logger.info("POST /logout/all without io.element.only_compat_is_fine (user %s)", session.user_id)
            raise UnrecognizedRequestError("The /logout/all endpoint is not supported by this deployment")
        finished = await self._stores.compat_sessions.finish_compat_sessions_for_user(
            session.user_id, also=self._enqueue_sync_devices(session.user_id)
        )
        logger.info("Logged out %d compat sessions for user %s", finished, session.user_id)
        return finished
