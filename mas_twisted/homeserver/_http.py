# SPDX-License-Identifier: AGPL-3.0-only
"""HTTP plumbing shared by the Synapse connections: one authenticated JSON call, its timeout,
and the mapping of failures onto :class:`HomeserverError`.

MAS behaviour (``crates/http/src/reqwest.rs``, ``crates/matrix-synapse/src/error.rs``): every
request carries ``Authorization: Bearer <matrix.secret>``, times out after 1 minute (30 s to
connect), and a 4xx/5xx answer is an error carrying the body's Matrix ``errcode`` if it has
one. Unlike reqwest we never follow redirects: the bearer secret must not travel to another
place, and Synapse never redirects these routes.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, urljoin

import treq
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed
from twisted.web.error import SchemeNotSupported

from mas_twisted.config.http import normalize_url
from mas_twisted.homeserver.base import HomeserverConnection, HomeserverError, is_retryable_status
from mas_twisted.telemetry import tracing

logger = logging.getLogger(__name__)

#: MAS's HTTP client: a whole call must finish within a minute...
DEFAULT_TIMEOUT_S = 60.0
#: ... and the TCP connection must be up within 30 s.
CONNECT_TIMEOUT_S = 30.0
#: Deactivating (and erasing) a user can take Synapse a long time (MAS's legacy client).
DELETE_USER_TIMEOUT_S = 300.0
#: No answer of these APIs comes close; a larger body is refused rather than buffered.
MAX_RESPONSE_BYTES = 1024 * 1024
#: Longest Matrix ``error`` text quoted in an exception message.
_MAX_ERROR_TEXT = 200


class HttpTransport:
    """A treq client over a pooled ``Agent`` on the container's reactor."""

    def __init__(self, reactor: Any, *, client: Any = None, pool: HTTPConnectionPool | None = None):
        """
        Args:
            reactor: the container's reactor; timeouts are scheduled on it.
            client: a ``treq.client.HTTPClient`` (or ``treq.testing.StubTreq``). Built over a
                persistent connection pool when not given.
            pool: the pool ``client`` uses, closed by :meth:`close`.
        """
        self.reactor = reactor
        if client is None:
            pool = HTTPConnectionPool(reactor, persistent=True)
            client = HTTPClient(Agent(reactor, connectTimeout=CONNECT_TIMEOUT_S, pool=pool))
        self.client = client
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.closeCachedConnections()


class _TooLarge(Exception):
    pass


class Response:
    """A 2xx answer: its status and body."""

    def __init__(self, call: str, status: int, body: bytes):
        self.call = call
        self.status = status
        self.body = body

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object.

        Raises:
            HomeserverError: (not retryable) the body is not a JSON object.
        """
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            value = None
        if not isinstance(value, dict):
            raise HomeserverError(
                self.call,
                f"homeserver {self.call}: HTTP {self.status} with a body that is not a JSON object",
                status=self.status,
                retryable=False,
            )
        return value


def quote_segment(value: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (Rust's ``urlencoding``)."""
    return quote(value, safe="")


def _matrix_error(body: bytes) -> tuple[str | None, str | None]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(value, dict):
        return None, None
    errcode = value.get("errcode")
    error = value.get("error")
    return (errcode if isinstance(errcode, str) else None, error if isinstance(error, str) else None)


def _one_line(text: str, limit: int = _MAX_ERROR_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_failure(e: BaseException) -> str:
    if isinstance(e, ResponseFailed) or type(e).__name__ in (
        "ResponseNeverReceived",
        "RequestTransmissionFailed",
    ):
        reasons = getattr(e, "reasons", None) or []
        if reasons:
            inner = reasons[0].value
            return f"{type(e).__name__}: {type(inner).__name__}: {inner}"
    return f"{type(e).__name__}: {e}"


def _timed_out(result: Any, timeout: float) -> Any:
    # A cancelled Agent request fails with ResponseNeverReceived([CancelledError]), not with
    # the bare CancelledError that addTimeout's default converter recognises.
    raise defer.TimeoutError(f"no answer within {timeout}s")


class SynapseHttpApi:
    """Authenticated JSON requests to the homeserver's ``matrix.endpoint``."""

    def __init__(self, endpoint: str, secret: str, transport: HttpTransport, *, user_agent: str):
        self._endpoint = normalize_url(endpoint)
        self._secret = secret
        self._transport = transport
        self._headers = {
            b"Authorization": [b"Bearer " + secret.encode("utf-8")],
            b"Accept": [b"application/json"],
            b"User-Agent": [user_agent.encode("utf-8")],
        }

    def _redact(self, text: str) -> str:
        # Belt and braces: nothing we build contains the secret, but an error text quoted from
        # elsewhere must not carry it into a log either.
        return text.replace(self._secret, "<redacted>") if self._secret else text

    async def request(
        self,
        call: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> Response:
        """Send one request; return its 2xx answer.

        Args:
            call: the connection method this is for, for logs and errors.
            method: ``GET``, ``POST``, ``PUT`` or ``DELETE``.
            path: relative to ``matrix.endpoint``, already percent-encoded, without a leading
                ``/`` (so that an endpoint with a path prefix keeps it, as MAS's ``Url::join``).
            body: sent as JSON when not ``None``.
            timeout: seconds for the whole exchange, body included.

        Raises:
            HomeserverError: no answer (retryable), or a non-2xx status (retryable for 5xx,
                408 and 429), or a body over :data:`MAX_RESPONSE_BYTES` (not retryable).
        """
        url = urljoin(self._endpoint, path)
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers[b"Content-Type"] = [b"application/json"]
        route = f"{method} /{path.partition('?')[0]}"

        span = tracing.start_client_span(call, method, url, headers) if tracing.ENABLED else None
        d = defer.ensureDeferred(self._send(method, url, headers, data))
        d.addTimeout(timeout, self._transport.reactor, onTimeoutCancel=_timed_out)
        if span is not None:
            tracing.end_client_span(d, span)
        try:
            status, content = await d
        except defer.TimeoutError:
            logger.debug("homeserver %s: %s timed out after %gs", call, route, timeout)
            raise HomeserverError(
                call, f"homeserver {call}: {route} got no answer within {timeout:g}s", retryable=True
            ) from None
        except _TooLarge:
            logger.debug("homeserver %s: %s answer too large", call, route)
            raise HomeserverError(
                call,
                f"homeserver {call}: {route} answered more than {MAX_RESPONSE_BYTES} bytes",
                retryable=False,
            ) from None
        except SchemeNotSupported as e:
            raise HomeserverError(
                call, f"homeserver {call}: {self._redact(str(e))}", retryable=False
            ) from None
        except Exception as e:  # connection refused, reset, DNS, TLS ...: the homeserver is unreachable
            reason = self._redact(_one_line(_describe_failure(e)))
            logger.debug("homeserver %s: %s failed: %s", call, route, reason)
            raise HomeserverError(
                call, f"homeserver {call}: {route} failed: {reason}", retryable=True
            ) from None

        logger.debug("homeserver %s: %s -> HTTP %d", call, route, status)
        if 200 <= status < 300:
            return Response(call, status, content)
        errcode, error = _matrix_error(content)
        detail = f" {errcode}" if errcode else ""
        if error:
            detail += f": {self._redact(_one_line(error))}"
        raise HomeserverError(
            call,
            f"homeserver {call}: {route} answered HTTP {status}{detail}",
            status=status,
            errcode=errcode,
            error=error,
            retryable=is_retryable_status(status),
        )

    async def _send(
        self, method: str, url: str, headers: dict[bytes, list[bytes]], data: bytes | None
    ) -> tuple[int, bytes]:
        response = await self._transport.client.request(
            method, url.encode("ascii"), headers=headers, data=data, allow_redirects=False
        )
        # The size is checked as the body arrives (treq closes the connection when the
        # collector raises), so that a lying or missing Content-Length changes nothing.
        chunks: list[bytes] = []
        received = [0]

        def collect(chunk: bytes) -> None:
            received[0] += len(chunk)
            if received[0] > MAX_RESPONSE_BYTES:
                raise _TooLarge()
            chunks.append(chunk)

        await treq.collect(response, collect)
        return response.code, b"".join(chunks)

    def unexpected_status(self, response: Response, expected: str) -> HomeserverError:
        """The error for a 2xx status other than the one the API promises (not retryable)."""
        return HomeserverError(
            response.call,
            f"homeserver {response.call}: unexpected HTTP {response.status} (expected {expected})",
            status=response.status,
            retryable=False,
        )


def opt_str(value: Any) -> str | None:
    """A JSON value that should be a string, or ``None`` when it is not."""
    return value if isinstance(value, str) else None


class HttpHomeserverConnection(HomeserverConnection):
    """What the Synapse connections share: the API client over ``transport`` and its closing."""

    def __init__(
        self, server_name: str, endpoint: str, secret: str, transport: HttpTransport, *, user_agent: str
    ):
        super().__init__(server_name, secret)
        self._api = SynapseHttpApi(endpoint, secret, transport, user_agent=user_agent)
        self._transport = transport

    async def close(self) -> None:
        await self._transport.close()
