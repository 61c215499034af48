# SPDX-License-Identifier: AGPL-3.0-only
"""ID tokens (OpenID Connect Core 1.0 §2, §3.1.3.6, §3.3.2.11), as MAS issues them.

MAS behaviour (``crates/handlers/src/oauth2/mod.rs`` ``generate_id_token``, inventory §2.7):

- claims ``iss`` (the issuer), ``sub`` (the user's ULID), ``aud`` (the client id), ``iat``
  and ``exp`` = ``iat`` + one hour (seconds), then when known: ``nonce`` (from the
  authorization request), ``auth_time`` (when the browser session last authenticated),
  ``at_hash`` (with an access token) and ``c_hash`` (with an authorization code). No profile
  or email claims;
- signed with the client's ``id_token_signed_response_alg``, RS256 by default, by the key
  the keystore picks for that algorithm, its ``kid`` in the header;
- ``at_hash``/``c_hash``: the left half of the hash of the token's ASCII octets, base64url
  without padding, the hash being the one of the signing algorithm (SHA-256 for ``*256``
  and ES256K, SHA-384 for ``*384``, SHA-512 for ``*512``; OIDC Core §3.3.2.11).

The token endpoint issues them at code and device code exchanges; the consent page issues
them for ``id_token`` response types (with ``c_hash`` when a code is returned too).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mas_twisted.api.errors import ServerError
from mas_twisted.jose.keystore import NoSigningKeyError

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

#: Lifetime of an ID token, in seconds.
ID_TOKEN_LIFETIME_S = 3600
#: The algorithm used when the client registered none.
DEFAULT_ID_TOKEN_ALG = "RS256"

_HASHES: dict[str, Callable[..., Any]] = {
    "HS256": hashlib.sha256,
    "RS256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "ES256": hashlib.sha256,
    "ES256K": hashlib.sha256,
    "HS384": hashlib.sha384,
    "RS384": hashlib.sha384,
    "PS384": hashlib.sha384,
    "ES384": hashlib.sha384,
    "HS512": hashlib.sha512,
    "RS512": hashlib.sha512,
    "PS512": hashlib.sha512,
    "ES512": hashlib.sha512,
}


def token_hash(alg: str, token: str) -> str:
    """``at_hash`` / ``c_hash`` of ``token`` for a JWS signed with ``alg`` (OIDC Core §3.3.2.11).

    Raises:
        ValueError: ``alg`` has no hash function (``none``, ``EdDSA``).
    """
    hash_fn = _HASHES.get(alg)
    if hash_fn is None:
        raise ValueError(f"no token hash for the algorithm {alg!r}")
    digest = hash_fn(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class IdTokenSigner:
    """Builds and signs ID tokens (``server.get_id_token_signer()``)."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        self._keystore = server.get_keystore()
        self._url_builder = server.get_url_builder()
        self._browser_sessions = server.get_stores().browser_sessions

    def sign(
        self,
        client: OAuth2Client,
        *,
        sub: str,
        nonce: str | None = None,
        auth_time_ms: int | None = None,
        access_token: str | None = None,
        code: str | None = None,
    ) -> str:
        """An ID token for ``sub`` (a user ULID) addressed to ``client``, issued now.

        Args:
            nonce: the authorization request's ``nonce``.
            auth_time_ms: when the user last authenticated (ms since the epoch).
            access_token: the access token issued with it (for ``at_hash``).
            code: the authorization code issued with it (for ``c_hash``).

        Raises:
            ServerError: no configured key can sign with the client's algorithm.
        """
        alg = client.id_token_signed_response_alg or DEFAULT_ID_TOKEN_ALG
        now_s = self._clock.time_msec() // 1000
        claims: dict[str, Any] = {
            "iss": self._url_builder.oidc_issuer(),
            "sub": sub,
            "aud": client.client_id,
            "iat": now_s,
            "exp": now_s + ID_TOKEN_LIFETIME_S,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time_ms is not None:
            claims["auth_time"] = auth_time_ms // 1000
        try:
            if access_token is not None:
                claims["at_hash"] = token_hash(alg, access_token)
            if code is not None:
                claims["c_hash"] = token_hash(alg, code)
            return self._keystore.sign_jwt(claims, alg)
        except (NoSigningKeyError, ValueError) as e:
            raise ServerError(
                debug=f"cannot sign an ID token for client {client.id} with {alg}: {e}"
            ) from None

    async def last_authentication_ms(self, browser_session: BrowserSession) -> int | None:
        """When ``browser_session`` last authenticated (its ``auth_time``), if ever."""
        authentication = await self._browser_sessions.get_last_browser_session_authentication(
            browser_session.id
        )
        return authentication.created_at if authentication is not None else None

    async def sign_for_browser_session(
        self,
        client: OAuth2Client,
        browser_session: BrowserSession,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        code: str | None = None,
        with_auth_time: bool = True,
    ) -> str:
        """:meth:`sign` for the user of ``browser_session``, with its last authentication as
        ``auth_time`` unless ``with_auth_time`` is false (MAS leaves it out of device code
        grants)."""
        auth_time_ms = await self.last_authentication_ms(browser_session) if with_auth_time else None
        return self.sign(
            client,
            sub=browser_session.user.sub,
            nonce=nonce,
            auth_time_ms=auth_time_ms,
            access_token=access_token,
            code=code,
        )
