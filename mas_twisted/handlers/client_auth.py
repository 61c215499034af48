# SPDX-License-Identifier: AGPL-3.0-only
"""Authenticating the client of a token-endpoint-style request (RFC 6749 §2.3, RFC 7523 §2.2).

MAS behaviour (``crates/axum-utils/src/client_authorization.rs`` and the handlers that use
it, inventory §2.4), shared by the token, device authorization, revocation and
introspection endpoints:

1. The rest layer classifies what the request presented with
   :func:`mas_twisted.oauth2.credentials.extract_credentials` (before anything is looked up:
   malformed credentials are ``invalid_request``).
2. :meth:`ClientAuthenticator.authenticate` looks the client up by ``client_id``: an unknown
   client (or a ``Bearer`` credential, which names none) is ``invalid_client`` (401).
3. The client must have a ``token_endpoint_auth_method``, else ``unauthorized_client`` (401);
   an endpoint that only serves confidential clients (introspection) refuses ``none`` too,
   with ``access_denied`` (401).
4. The method presented must *be* the registered method: ``none``, ``client_secret_basic``,
   ``client_secret_post``, ``client_secret_jwt`` (HS256/384/512 keyed with the client
   secret) or ``private_key_jwt`` (RS*, PS*, ES256, ES384, ES256K against the client's
   ``jwks``, or the JWK Set fetched from its ``jwks_uri``). Secrets are stored encrypted and
   compared in constant time. Any mismatch is ``invalid_client`` (401, with a
   ``WWW-Authenticate: Basic`` challenge when Basic was used, RFC 6749 §5.2).
5. Problems on the server's side (a secret that cannot be decrypted, a client without the
   secret or keys its method needs, a ``jwks_uri`` that cannot be fetched) are
   ``server_error`` (500), as in MAS.

MAS checks nothing of an assertion but its signature; this service also applies RFC 7523
§3's claim checks (``iss``/``sub`` are the client, ``aud`` names this server, ``exp``/``nbf``;
:func:`~mas_twisted.oauth2.credentials.check_assertion_claims`). Like MAS, it keeps no record
of ``jti`` values, so an assertion may be replayed until it expires.

A ``jwks_uri`` is fetched with treq (:class:`JwksFetcher`): bounded in time and size, kept for
:data:`JWKS_CACHE_TTL_S` seconds, and fetched again (at most every
:data:`JWKS_REFRESH_MIN_AGE_S` seconds) when no cached key verifies an assertion, so a client
that rotates its keys is not locked out for the cache's lifetime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.web.client import Agent, ResponseFailed, ResponseNeverReceived

from mas_twisted import urls
from mas_twisted.api.errors import (
    AccessDeniedError,
    InvalidClientError,
    ServerError,
    UnauthorizedClientError,
)
from mas_twisted.jose.encrypter import DecryptError
from mas_twisted.oauth2.credentials import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_JWT,
    CLIENT_SECRET_POST,
    NONE,
    PRIVATE_KEY_JWT,
    Credentials,
    CredentialsKind,
    verify_credentials,
)

if TYPE_CHECKING:
    from mas_twisted.jose.encrypter import Encrypter
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.util.clock import Clock

logger = logging.getLogger(__name__)

#: Seconds a ``jwks_uri`` fetch may take, connection included.
JWKS_FETCH_TIMEOUT_S = 10.0
#: Seconds a fetched JWK Set is reused.
JWKS_CACHE_TTL_S = 300.0
#: A cached JWK Set younger than this is not fetched again when no key verifies an assertion.
JWKS_REFRESH_MIN_AGE_S = 30.0
#: The largest JWK Set document accepted, in bytes.
JWKS_MAX_BYTES = 256 * 1024
#: How many ``jwks_uri`` documents are kept.
JWKS_CACHE_SIZE = 1024
#: Seconds a static client (from the ``clients`` section) and its decrypted secret are kept
#: in memory. Static clients change only through ``config sync``, which runs at start
#: (before the listeners open); one run by ``mas-cli config sync`` beside a running server
#: is seen within this time.
STATIC_CLIENT_CACHE_TTL_S = 60.0

_SECRET_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, CLIENT_SECRET_JWT)


class JwksFetchError(Exception):
    """A client's ``jwks_uri`` could not be fetched or is not a JWK Set."""


@attrs.frozen
class _CachedJwks:
    jwks: Mapping[str, Any]
    fetched_at: float


class _TooLarge(Exception):
    pass


class JwksFetcher:
    """Fetches and caches the JWK Sets clients publish at their ``jwks_uri`` (RFC 7591 §2)."""

    def __init__(self, clock: Clock, http_client: Any):
        """
        Args:
            clock: for the cache's ages.
            http_client: a ``treq.client.HTTPClient`` (or anything with its ``get``).
        """
        self._clock = clock
        self._http_client = http_client
        self._cache: dict[str, _CachedJwks] = {}

    def cached_at(self, uri: str) -> float | None:
        """When the cached document for ``uri`` was fetched, or ``None``."""
        entry = self._cache.get(uri)
        return entry.fetched_at if entry is not None else None

    async def get(self, uri: str, *, refresh: bool = False) -> Mapping[str, Any]:
        """The JWK Set at ``uri``, from the cache unless it is stale or ``refresh`` is set.

        Raises:
            JwksFetchError: the fetch failed, timed out, answered a non-2xx status, or the
                body is not a JSON object with a ``keys`` array.
        """
        now = self._clock.time()
        entry = self._cache.get(uri)
        if entry is not None and not refresh and now - entry.fetched_at < JWKS_CACHE_TTL_S:
            return entry.jwks
        jwks = await self._fetch(uri)
        if len(self._cache) >= JWKS_CACHE_SIZE and uri not in self._cache:
            # Drop the oldest entry: the cache only ever holds registered clients' URIs.
            oldest = min(self._cache, key=lambda key: self._cache[key].fetched_at)
            del self._cache[oldest]
        self._cache[uri] = _CachedJwks(jwks=jwks, fetched_at=self._clock.time())
        return jwks

    async def _fetch(self, uri: str) -> Mapping[str, Any]:
        try:
            response = await self._http_client.get(
                uri, headers={b"Accept": [b"application/json"]}, timeout=JWKS_FETCH_TIMEOUT_S
            )
            if not 200 <= response.code < 300:
                raise JwksFetchError(f"GET {uri} answered HTTP {response.code}")
            if isinstance(response.length, int) and response.length > JWKS_MAX_BYTES:
                raise JwksFetchError(f"GET {uri}: the JWK Set is larger than {JWKS_MAX_BYTES} bytes")
            chunks: list[bytes] = []
            received = [0]

            def collect(data: bytes) -> None:
                received[0] += len(data)
                if received[0] > JWKS_MAX_BYTES:
                    raise _TooLarge()
                chunks.append(data)

            await treq.collect(response, collect)
        except JwksFetchError:
            raise
        except _TooLarge:
            raise JwksFetchError(f"GET {uri}: the JWK Set is larger than {JWKS_MAX_BYTES} bytes") from None
        except (CancelledError, TwistedTimeoutError) as e:
            raise JwksFetchError(f"GET {uri} timed out after {JWKS_FETCH_TIMEOUT_S}s") from e
        except (ResponseFailed, ResponseNeverReceived) as e:
            if any(reason.check(CancelledError, TwistedTimeoutError) for reason in e.reasons):
                raise JwksFetchError(f"GET {uri} timed out after {JWKS_FETCH_TIMEOUT_S}s") from e
            raise JwksFetchError(f"GET {uri} failed: {e.reasons[0].value if e.reasons else e}") from e
        except Exception as e:  # connection refused, DNS, TLS, bad URL ...
            raise JwksFetchError(f"GET {uri} failed: {type(e).__name__}: {e}") from e
        try:
            document = json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError) as e:
            raise JwksFetchError(f"GET {uri}: the body is not JSON") from e
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksFetchError(f"GET {uri}: the body is not a JWK Set")
        return document


def make_http_client(reactor: Any) -> HTTPClient:
    """A treq client for outgoing requests, with a connection timeout."""
    return HTTPClient(Agent(reactor, connectTimeout=JWKS_FETCH_TIMEOUT_S))


def _method_matches(kind: CredentialsKind, method: str) -> bool:
    """Whether credentials of ``kind`` can satisfy the registered ``method`` (MAS's pairs)."""
    if kind is CredentialsKind.NONE:
        return method == NONE
    if kind is CredentialsKind.CLIENT_SECRET_BASIC:
        return method == CLIENT_SECRET_BASIC
    if kind is CredentialsKind.CLIENT_SECRET_POST:
        return method == CLIENT_SECRET_POST
    if kind is CredentialsKind.CLIENT_ASSERTION:
        return method in (CLIENT_SECRET_JWT, PRIVATE_KEY_JWT)
    return False


class ClientAuthenticator:
    """Who is calling: the client behind a request's credentials (see the module docstring).

    ``server.get_client_authenticator()``. Example (in a Klein resource)::

        authorization = extract_credentials(request.getHeader(b"Authorization"), form)
        client = await authenticator.authenticate(authorization.credentials, endpoint=urls.OAUTH2_TOKEN)
    """

    def __init__(self, server: MasServer, *, jwks_fetcher: JwksFetcher | None = None):
        self._clock = server.get_clock()
        self._clients = server.get_stores().oauth2_clients
        self._encrypter_factory: Callable[[], Encrypter] = server.get_encrypter
        self._url_builder = server.get_url_builder()
        self._reactor = server.get_reactor()
        self._jwks_fetcher = jwks_fetcher
        # client_id -> (when it was read, the static client, its decrypted secret or None).
        self._static_clients: dict[str, tuple[float, OAuth2Client, str | None]] = {}
        self._audiences: dict[str, frozenset[str]] = {}

    @property
    def jwks_fetcher(self) -> JwksFetcher:
        if self._jwks_fetcher is None:
            self._jwks_fetcher = JwksFetcher(self._clock, make_http_client(self._reactor))
        return self._jwks_fetcher

    def audiences(self, endpoint: str) -> frozenset[str]:
        """The ``aud`` values an assertion sent to ``endpoint`` (a path, ``/oauth2/revoke``)
        may carry: the issuer (with or without its trailing slash), the token endpoint's URL and
        the URL of ``endpoint`` itself (RFC 7523 §3 point 3)."""
        known = self._audiences.get(endpoint)
        if known is not None:
            return known
        issuer = self._url_builder.oidc_issuer()
        known = self._audiences[endpoint] = frozenset(
            {
                issuer,
                issuer.rstrip("/"),
                self._url_builder.oauth2_token_endpoint(),
                self._url_builder.absolute(endpoint),
            }
        )
        return known

    async def authenticate(
        self,
        credentials: Credentials,
        *,
        endpoint: str = urls.OAUTH2_TOKEN,
        require_confidential: bool = False,
    ) -> OAuth2Client:
        """Check ``credentials`` and return the client they authenticate.

        Args:
            credentials: from :func:`~mas_twisted.oauth2.credentials.extract_credentials`.
            endpoint: the path being called (for the accepted assertion audiences).
            require_confidential: refuse clients registered with ``none`` (introspection).

        Raises:
            InvalidClientError: unknown client, or credentials that do not check out (401).
            UnauthorizedClientError: the client has no ``token_endpoint_auth_method`` (401).
            AccessDeniedError: ``require_confidential`` and the client is public (401).
            ServerError: the client's registration or ``jwks_uri`` is unusable (500).
        """
        basic = credentials.used_basic
        if credentials.kind is CredentialsKind.BEARER or credentials.client_id is None:
            raise InvalidClientError(basic_offered=basic, debug="a bearer token names no client")
        now_s = self._clock.time()
        cached = self._static_clients.get(credentials.client_id)
        if cached is not None and now_s - cached[0] < STATIC_CLIENT_CACHE_TTL_S:
            _, client, cached_secret = cached
        else:
            found = await self._clients.get_oauth2_client(credentials.client_id)
            if found is None:
                self._static_clients.pop(credentials.client_id, None)
                raise InvalidClientError(basic_offered=basic, debug=f"no client {credentials.client_id!r}")
            client, cached_secret = found, None
            if client.is_static:
                if client.token_endpoint_auth_method in _SECRET_METHODS and client.encrypted_client_secret:
                    try:
                        cached_secret = self._encrypter_factory().decrypt_string(
                            client.encrypted_client_secret
                        )
                    except DecryptError:
                        cached_secret = None  # answered below as server_error, every time
                self._static_clients[client.id] = (now_s, client, cached_secret)
        method = client.token_endpoint_auth_method
        if require_confidential and method in (None, NONE):
            raise AccessDeniedError(code=401, debug=f"client {client.id} is public ({method})")
        if method is None:
            raise UnauthorizedClientError(debug=f"client {client.id} has no token_endpoint_auth_method")

        if not _method_matches(credentials.kind, method):
            raise InvalidClientError(
                basic_offered=basic,
                debug=f"client {client.id}: {credentials.kind.value} presented, {method} registered",
            )

        secret = None
        if method in _SECRET_METHODS:
            secret = cached_secret if cached_secret is not None else self._client_secret(client)
        audiences = self.audiences(endpoint)
        if method != PRIVATE_KEY_JWT:
            self._verify(
                credentials, client, method=method, secret=secret, jwks=None, audiences=audiences, now_s=now_s
            )
            return client

        if client.jwks is not None:
            self._verify(
                credentials,
                client,
                method=method,
                secret=None,
                jwks=client.jwks,
                audiences=audiences,
                now_s=now_s,
            )
            return client
        if client.jwks_uri is None:
            raise ServerError(debug=f"client {client.id} uses private_key_jwt without jwks or jwks_uri")
        jwks = await self._fetch_jwks(client, refresh=False)
        try:
            self._verify(
                credentials, client, method=method, secret=None, jwks=jwks, audiences=audiences, now_s=now_s
            )
        except InvalidClientError:
            fetched_at = self.jwks_fetcher.cached_at(client.jwks_uri)
            if fetched_at is None or now_s - fetched_at < JWKS_REFRESH_MIN_AGE_S:
                raise
            # Maybe the client rotated its keys since we cached them.
            jwks = await self._fetch_jwks(client, refresh=True)
            self._verify(
                credentials, client, method=method, secret=None, jwks=jwks, audiences=audiences, now_s=now_s
            )
        return client

    def _client_secret(self, client: OAuth2Client) -> str:
        if client.encrypted_client_secret is None:
            raise ServerError(
                debug=f"client {client.id} uses {client.token_endpoint_auth_method} but has no secret"
            )
        try:
            return self._encrypter_factory().decrypt_string(client.encrypted_client_secret)
        except DecryptError as e:
            raise ServerError(debug=f"cannot decrypt the secret of client {client.id}: {e}") from None

    async def _fetch_jwks(self, client: OAuth2Client, *, refresh: bool) -> Mapping[str, Any]:
        assert client.jwks_uri is not None
        try:
            return await self.jwks_fetcher.get(client.jwks_uri, refresh=refresh)
        except JwksFetchError as e:
            raise ServerError(debug=f"client {client.id}: {e}") from None

    @staticmethod
    def _verify(
        credentials: Credentials,
        client: OAuth2Client,
        *,
        method: str,
        secret: str | None,
        jwks: Mapping[str, Any] | None,
        audiences: frozenset[str],
        now_s: float,
    ) -> None:
        try:
            verify_credentials(
                credentials,
                method=method,
                client_secret=secret,
                jwks=jwks,
                audiences=audiences,
                now_s=now_s,
            )
        except ValueError as e:
            raise ServerError(debug=f"client {client.id}: {e}") from None
