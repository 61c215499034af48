# SPDX-License-Identifier: AGPL-3.0-only
"""OpenID Connect RP-Initiated Logout 1.0: the end-session endpoint (ours; MAS 1.22 has none).

:meth:`EndSessionHandler.check` validates the request (§2):

- ``id_token_hint``, when given, must be a JWS signed by one of our keys, whose ``iss`` is our
  issuer; an expired one is still a valid hint (§4: the OP SHOULD accept it);
- ``client_id``, when given with a hint, must be one of the hint's audiences; the client is
  the one named by either;
- ``post_logout_redirect_uri`` needs a known client and must equal, character for character,
  one of its registered ``post_logout_redirect_uris`` (§3.1; no other matching), else the
  request is refused with an error page and never redirected;
- ``state`` is returned on the redirect as given.

:meth:`EndSessionHandler.end` then, in one transaction, finishes the browser session and, when
the user ticked it on the confirmation page, the client's OAuth 2.0 sessions started from that
browser session (their tokens revoked, and the ``sync-devices`` job scheduled so the
homeserver forgets their devices).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import attrs
from jwcrypto import jws, jwt

from mas_twisted.api.errors import PageError
from mas_twisted.queue.base import enqueue_txn
from mas_twisted.queue.jobs.matrix import SyncDevicesJob
from mas_twisted.types.clients import OAuth2Client

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

#: The longest ``id_token_hint`` looked at.
MAX_HINT_LENGTH = 16 * 1024


class EndSessionError(PageError):
    """A refused end-session request (its error page, 400)."""


@attrs.frozen
class EndSessionRequest:
    """A validated logout request."""

    client: OAuth2Client | None = None
    post_logout_redirect_uri: str | None = None
    state: str | None = None
    #: The ``sub`` of the hint, if one was given.
    subject: str | None = None

    def redirect_target(self) -> str | None:
        """Where to send the browser afterwards (with ``state``), if anywhere."""
        if self.post_logout_redirect_uri is None:
            return None
        if self.state is None:
            return self.post_logout_redirect_uri
        from urllib.parse import urlencode

        separator = "&" if "?" in self.post_logout_redirect_uri else "?"
        return self.post_logout_redirect_uri + separator + urlencode({"state": self.state})


class EndSessionHandler:
    """``server.get_end_session_handler()``."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._issuer = server.get_url_builder().oidc_issuer()

    def _hint_claims(self, hint: str) -> dict[str, Any]:
        if len(hint) > MAX_HINT_LENGTH:
            raise EndSessionError("The id_token_hint is not valid.", debug="hint too long")
        keystore = self._server.get_keystore()
        try:
            token = jwt.JWT(
                jwt=hint,
                key=keystore.public_jwk_set(),
                algs=keystore.signing_algorithms(),
                check_claims=False,
            )
            claims = json.loads(token.claims)
        except (ValueError, TypeError, KeyError, jws.InvalidJWSSignature, jws.InvalidJWSObject) as e:
            raise EndSessionError(
                "The id_token_hint is not valid.", debug=f"{type(e).__name__}: {e}"
            ) from None
        except Exception as e:  # jwcrypto's other refusals (no matching key, bad header...)
            raise EndSessionError(
                "The id_token_hint is not valid.", debug=f"{type(e).__name__}: {e}"
            ) from None
        if not isinstance(claims, dict) or claims.get("iss") != self._issuer:
            raise EndSessionError("The id_token_hint is not valid.", debug="not issued by us")
        return claims

    async def check(
        self,
        *,
        id_token_hint: str | None,
        client_id: str | None,
        post_logout_redirect_uri: str | None,
        state: str | None,
    ) -> EndSessionRequest:
        """The validated request (see the module docstring).

        Raises:
            EndSessionError: a bad hint, a client that does not match it or is unknown, an
                unregistered ``post_logout_redirect_uri``.
        """
        subject = None
        if id_token_hint:
            claims = self._hint_claims(id_token_hint)
            audiences = claims.get("aud")
            if isinstance(audiences, str):
                audiences = [audiences]
            if not isinstance(audiences, list) or not audiences:
                raise EndSessionError("The id_token_hint is not valid.", debug="no aud")
            if client_id is None:
                client_id = audiences[0] if isinstance(audiences[0], str) else None
            elif client_id not in audiences:
                raise EndSessionError(
                    "The client_id does not match the id_token_hint.", debug=f"{client_id!r} not in aud"
                )
            sub = claims.get("sub")
            subject = sub if isinstance(sub, str) else None
        client = None
        if client_id:
            client = await self._server.get_stores().oauth2_clients.get_oauth2_client(client_id)
            if client is None:
                raise EndSessionError("This client is not known.", debug=f"unknown client {client_id[:60]!r}")
        if post_logout_redirect_uri is not None:
            if client is None:
                raise EndSessionError(
                    "The application that sent you here did not say who it is.",
                    details="A post_logout_redirect_uri needs a client_id or an id_token_hint.",
                )
            if post_logout_redirect_uri not in client.post_logout_redirect_uris:
                raise EndSessionError(
                    "The application asked to send you back to an address it has not registered.",
                    debug=f"unregistered post_logout_redirect_uri {post_logout_redirect_uri[:200]!r}",
                )
        return EndSessionRequest(
            client=client, post_logout_redirect_uri=post_logout_redirect_uri, state=state, subject=subject
        )

    async def end(
        self, session: BrowserSession, request: EndSessionRequest, *, end_client_sessions: bool
    ) -> int:
        """Finish the browser session (and the client's sessions from it); how many of those."""
        client_id = request.client.id if request.client is not None and end_client_sessions else None
        job = SyncDevicesJob(user_id=session.user.id)

        def _also(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, job)

        _ended, count = await self._server.get_stores().oauth2_sessions.end_session_for_relying_party(
            session.id, client_id, self._clock.time_msec(), also=_also
        )
        logger.info(
            "RP-initiated logout of browser session %s (client %s): %d client session(s) ended",
            session.id,
            request.client.id if request.client else None,
            count,
        )
        return count
