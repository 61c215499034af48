# SPDX-License-Identifier: AGPL-3.0-only
"""A fake reactor, a threadless database pool and HTTP requests without sockets.

Synapse's ``tests/server.py`` pattern (STYLE.md §1.8):

- :class:`ThreadedMemoryReactorClock` is a ``MemoryReactorClock`` that also accepts
  ``callFromThread`` and hands out a threadless pool (``getThreadPool()``), so code that
  defers work to threads runs on the test thread, in order, when the test advances the clock.
- :func:`make_threadless_pool` swaps adbapi's thread pool for one that runs each job from
  ``reactor.callLater(0, …)``: every query runs on the test thread, deterministically, and a
  single ``:memory:`` SQLite connection serves the whole test.
- :func:`make_request` writes a raw HTTP/1.1 request into a real ``twisted.web.server.Site``
  over an in-memory transport, advances the reactor until the response is finished and
  parses the bytes that came back into a :class:`FakeChannel`.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import attr
from twisted.enterprise import adbapi
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource
from twisted.web.server import Request, Site


class FakeThreadPool:
    """A ``ThreadPool`` without threads: each job runs from ``reactor.callLater(0, …)``."""

    def __init__(self, reactor: MemoryReactorClock):
        self._reactor = reactor
        self.started = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def callInThread(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._reactor.callLater(0, func, *args, **kwargs)

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, Any], None] | None,
        func: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        def _run() -> None:
            try:
                result = func(*args, **kwargs)
            except BaseException:
                if onResult is not None:
                    onResult(False, Failure())
                return
            if onResult is not None:
                onResult(True, result)

        self._reactor.callLater(0, _run)


class ThreadedMemoryReactorClock(MemoryReactorClock):
    """A ``MemoryReactorClock`` that code written for a threaded reactor can use."""

    def __init__(self) -> None:
        super().__init__()
        self._threadpool = FakeThreadPool(self)

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.callLater(0, f, *args, **kwargs)

    def callInThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._threadpool.callInThread(f, *args, **kwargs)

    def getThreadPool(self) -> FakeThreadPool:
        return self._threadpool


def make_threadless_pool(
    conn_pool: adbapi.ConnectionPool, reactor: MemoryReactorClock
) -> adbapi.ConnectionPool:
    """Make ``conn_pool`` run its work on the test thread, from ``reactor``'s clock."""
    conn_pool.threadpool = FakeThreadPool(reactor)  # type: ignore[assignment]
    conn_pool.running = True
    return conn_pool


@attr.s(auto_attribs=True, slots=True)
class FakeChannel:
    """The response to one :func:`make_request`, as a client saw it on the wire."""

    code: int
    reason: str
    headers: Headers
    body: bytes
    #: The server-side request object (for assertions on what the server saw).
    request: Request

    @property
    def text_body(self) -> str:
        return self.body.decode("utf-8")

    @property
    def json_body(self) -> Any:
        """The body parsed as JSON; an ``AssertionError`` naming the body if it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            raise AssertionError(f"response {self.code} is not JSON: {self.body[:500]!r}")

    def header(self, name: str) -> str | None:
        """The last value of header ``name``, or ``None``."""
        values = self.headers.getRawHeaders(name)
        return values[-1] if values else None

    @property
    def content_type(self) -> str | None:
        return self.header("Content-Type")

    @property
    def location(self) -> str | None:
        return self.header("Location")

    @property
    def set_cookies(self) -> SimpleCookie:
        """Every ``Set-Cookie`` of the response, with its attributes (``morsel["path"]``…)."""
        jar: SimpleCookie = SimpleCookie()
        for raw in self.headers.getRawHeaders("Set-Cookie") or ():
            jar.load(raw)
        return jar

    @property
    def cookies(self) -> dict[str, str]:
        """``{name: value}`` of the cookies the response sets."""
        return {name: morsel.value for name, morsel in self.set_cookies.items()}

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.body[:500]!r}"


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def build_raw_request(
    method: str | bytes,
    path: str | bytes,
    *,
    host: str = "localhost",
    content: bytes | str | None = None,
    json: Any = None,
    form: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    cookies: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of one HTTP/1.1 request (``Connection: close``)."""
    given = [(_encode(k), _encode(v)) for k, v in headers]
    names = {k.lower() for k, _ in given}
    body = b""
    content_type: bytes | None = None
    if sum(x is not None for x in (content, json, form)) > 1:
        raise ValueError("give at most one of content, json and form")
    if json is not None:
        body = jsonlib.dumps(json).encode("utf-8")
        content_type = b"application/json"
    elif form is not None:
        items = form.items() if isinstance(form, Mapping) else form
        body = urlencode(list(items), doseq=True).encode("ascii")
        content_type = b"application/x-www-form-urlencoded"
    elif content is not None:
        body = _encode(content)
    lines = [_encode(method) + b" " + _encode(path) + b" HTTP/1.1"]
    if b"host" not in names:
        lines.append(b"Host: " + host.encode("ascii"))
    if content_type is not None and b"content-type" not in names:
        lines.append(b"Content-Type: " + content_type)
    if cookies:
        lines.append(b"Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("utf-8"))
    lines.extend(k + b": " + v for k, v in given)
    if b"content-length" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def parse_raw_response(data: bytes, request: Request) -> FakeChannel:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"incomplete HTTP response: {data[:500]!r}")
    status_line, *header_lines = head.split(b"\r\n")
    _version, code, *reason = status_line.split(b" ", 2)
    headers = Headers()
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers.addRawHeader(name.strip(), value.strip())
    encodings = [e.lower() for e in headers.getRawHeaders(b"transfer-encoding") or ()]
    if b"chunked" in encodings:
        body = _dechunk(rest)
    else:
        lengths = headers.getRawHeaders(b"content-length")
        body = rest[: int(lengths[0])] if lengths else rest
    return FakeChannel(
        code=int(code),
        reason=(reason[0] if reason else b"").decode("latin-1"),
        headers=headers,
        body=body,
        request=request,
    )


def _dechunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            raise AssertionError("truncated chunked body")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += data[:size]
        data = data[size + 2 :]


def make_site(resource: IResource, reactor: MemoryReactorClock) -> Site:
    """A real ``Site`` over ``resource`` on the fake reactor, without an idle timeout."""
    return Site(resource, reactor=reactor, timeout=None)


def make_request(
    reactor: MemoryReactorClock,
    site: Site,
    method: str | bytes,
    path: str | bytes,
    *,
    content: bytes | str | None = None,
    json: Any = None,
    form: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    cookies: Mapping[str, str] | None = None,
    host: str = "localhost",
    client_ip: str = "127.0.0.1",
    timeout: float = 10.0,
) -> FakeChannel:
    """Send one request through ``site`` and return the finished response.

    The reactor is advanced by zero first (which runs all pending database work), then in
    0.1 s steps up to ``timeout`` simulated seconds if the resource is still busy.

    Raises:
        AssertionError: the response did not finish in time.
    """
    captured: list[Request] = []
    address_type = IPv6Address if ":" in client_ip else IPv4Address
    channel = site.buildProtocol(address_type("TCP", client_ip, 49152))
    assert channel is not None
    original_factory = site.requestFactory

    def _factory(*args: Any, **kwargs: Any) -> Request:
        request = original_factory(*args, **kwargs)
        captured.append(request)
        return request

    channel.requestFactory = _factory  # type: ignore[union-attr]
    transport = StringTransport(
        hostAddress=address_type("TCP", "127.0.0.1", 8080),
        peerAddress=address_type("TCP", client_ip, 49152),
    )
    channel.makeConnection(transport)
    channel.dataReceived(
        build_raw_request(
            method, path, host=host, content=content, json=json, form=form, headers=headers, cookies=cookies
        )
    )

    def _done() -> bool:
        # Finished, or the channel refused the request at the HTTP layer (a 400 written by
        # Twisted itself, e.g. for a NUL in a header value) and closed the connection.
        return bool(captured) and (
            bool(captured[0].finished) or bool(captured[0]._disconnected) or bool(transport.disconnecting)
        )

    reactor.advance(0)
    waited = 0.0
    while not _done() and waited < timeout:
        reactor.advance(0.1)
        waited += 0.1
    if not captured:
        raise AssertionError(f"the server did not parse the request; it answered {transport.value()[:500]!r}")
    if not _done():
        raise AssertionError(f"{_encode(method)!r} {_encode(path)!r} did not finish within {timeout} s")
    response = parse_raw_response(transport.value(), captured[0])
    # The server closes after the response (Connection: close); tell the channel it is gone.
    channel.connectionLost(Failure(ConnectionDone()))
    return response
