# SPDX-License-Identifier: AGPL-3.0-only
"""Token revocation (RFC 7009; MAS's ``crates/handlers/src/oauth2/revoke.rs``, inventory §2.11).

Revoking a token ends the whole OAuth 2.0 session it belongs to (MSC4254: this is how a
Matrix client logs out), which also revokes every other token of that session. For an
authenticated client, :meth:`RevocationHandler.revoke`:

- answers success without doing anything for a token it cannot use: malformed, unknown,
  already revoked, expired or consumed, of a session already finished, or of another kind
  (compatibility or personal tokens, which RFC 7009 lets a server decline silently);
- refuses a ``token_type_hint`` other than ``access_token`` or ``refresh_token``
  (``unsupported_token_type``), once the token is known to be well-formed; a known hint that
  does not fit the token is answered as an unknown token;
- refuses to end another client's session (``unauthorized_client``, 401);
- records the activity of the session (with the caller's address), then finishes it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mas_twisted.api.errors import UnauthorizedClientError, UnsupportedTokenTypeError
from mas_twisted.types.tokens import TokenFormatError, TokenType

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client

logger = logging.getLogger(__name__)

_HINTS = ("access_token", "refresh_token")


class RevocationHandler:
    """Ends the OAuth 2.0 session of a revoked token."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        stores = server.get_stores()
        self._access_tokens = stores.access_tokens
        self._refresh_tokens = stores.refresh_tokens
        self._sessions = stores.oauth2_sessions
        self._activity = server.get_activity_tracker()
        self._server = server

    async def revoke(
        self, client: OAuth2Client, token: str, token_type_hint: str | None = None, *, ip: str | None = None
    ) -> bool:
        """Revoke ``token`` on behalf of the authenticated ``client``.

        Args:
            ip: the caller's address, recorded as the session's last activity.

        Returns:
            Whether a session was ended (``False``: there was nothing to revoke; the
            endpoint answers success either way, RFC 7009 §2.2).

        Raises:
            UnsupportedTokenTypeError: an unknown ``token_type_hint``.
            UnauthorizedClientError: the token belongs to another client's session.
        """
        try:
            token_type = TokenType.check(token)
        except TokenFormatError as e:
            logger.debug("Revoked token is malformed: %s", e)
            return False
        if token_type_hint is not None and token_type_hint not in _HINTS:
            raise UnsupportedTokenTypeError(debug=f"token_type_hint {token_type_hint!r}")
        if token_type_hint is not None and not token_type.matches_hint(token_type_hint):
            logger.debug("Revoked %s does not fit the hint %r", token_type, token_type_hint)
            return False

        now = self._clock.time_msec()
        if token_type is TokenType.ACCESS_TOKEN:
            access_token = await self._access_tokens.find_access_token_by_token(token)
            if access_token is None or not access_token.is_valid(now):
                return False
            session_id = access_token.session_id
        elif token_type is TokenType.REFRESH_TOKEN:
            refresh_token = await self._refresh_tokens.find_refresh_token_by_token(token)
            if refresh_token is None or not refresh_token.is_valid:
                return False
            session_id = refresh_token.session_id
        else:
            # Compatibility and personal tokens are not revoked here.
            logger.debug("Not revoking a %s at the OAuth 2.0 endpoint", token_type)
            return False

        session = await self._sessions.get_oauth2_session(session_id)
        if session is None or not session.is_valid:
            return False
        if session.client_id != client.id:
            raise UnauthorizedClientError(
                debug=f"client {client.id} may not end session {session.id} of {session.client_id}"
            )

        self._activity.record_oauth2_session(session.id, now, ip)
        also = None
        if session.user_id is not None:
            from mas_twisted.queue.base import enqueue_txn
            from mas_twisted.queue.jobs.matrix import SyncDevicesJob

            # The homeserver drops the session's device (MAS's revoke.rs), in the same transaction.
            job = SyncDevicesJob(user_id=session.user_id)
            server = self._server
            also = lambda txn: enqueue_txn(txn, server, job)
        if not await self._sessions.finish_oauth2_session_by_id(session.id, also):
            # Finished by a concurrent request since we read it: nothing left to do.
            logger.info("OAuth 2.0 session %s was finished concurrently", session.id)
            return False
        logger.info(
            "Client %s ended OAuth 2.0 session %s by revoking a %s", client.id, session.id, token_type
        )
        return True
