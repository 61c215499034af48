# SPDX-License-Identifier: AGPL-3.0-only
"""Real sockets: listeners on TCP, unix sockets and inherited descriptors, TLS, the PROXY
protocol, X-Forwarded-For, prefixes, the 404 fallback and the access log.

These run on trial's real reactor; blocking clients run in threads so that the raw bytes on
the wire (PROXY headers, TLS) are exactly what a proxy or a browser would send.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import tempfile
from typing import Any

import treq
from twisted.internet import reactor, task, threads
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from mas_twisted.app.endpoints import (
    ListenerBindError,
    inherited_descriptors,
    listen_http,
    remove_stale_unix_socket,
)
from mas_twisted.app.listeners import build_listener_site
from mas_twisted.config.root import RootConfig
from mas_twisted.server import MasServer
from tests.app._helpers import (
    CapturingHandler,
    Response,
    http_get,
    raw_exchange,
    root_config_tree,
    self_signed,
)

PUBLIC_BASE = "https://auth.example.com/"


@implementer(IAgentEndpointFactory)
class _UnixEndpointFactory:
    def __init__(self, path: str):
        self._path = path

    def endpointForURI(self, uri: Any) -> UNIXClientEndpoint:
        return UNIXClientEndpoint(reactor, self._path)


def _proxy_v2_header(src: str, src_port: int, dst: str, dst_port: int) -> bytes:
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    addresses = (
        socket.inet_aton(src)
        + socket.inet_aton(dst)
        + src_port.to_bytes(2, "big")
        + dst_port.to_bytes(2, "big")
    )
    # Version 2, PROXY command; TCP over IPv4; 12 address bytes.
    return signature + bytes([0x21, 0x11]) + len(addresses).to_bytes(2, "big") + addresses


def _open_connections() -> list[Any]:
    """Connected sockets the reactor still watches (its own wakers are not connections)."""
    selectables = set(reactor.getReaders()) | set(reactor.getWriters())
    return [s for s in selectables if hasattr(s, "getPeer")]


class ListenerTestCase(unittest.TestCase):
    """Starts listeners of a configuration and stops them, and their connections, after."""

    def setUp(self) -> None:
        self._ports: list[Any] = []
        self.tmp = tempfile.mkdtemp(prefix="mas-", dir="/tmp")  # short: unix socket paths are limited

    async def tearDown(self) -> None:
        for port in self._ports:
            await port.stopListening()
        # Let the server side of finished connections close before trial checks the reactor.
        for _ in range(200):
            if not _open_connections():
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make_server(self, listeners: list[dict[str, Any]], **http: Any) -> MasServer:
        section = {"public_base": PUBLIC_BASE, "listeners": listeners}
        section.update(http)
        return MasServer(RootConfig(root_config_tree(section)), reactor)

    async def listen(
        self, listener: dict[str, Any], *, listen_fds: list[int] | None = None, **http: Any
    ) -> list[Any]:
        server = self.make_server([listener], **http)
        config = server.config.http.listeners[0]
        ports = await listen_http(reactor, config, build_listener_site(server, config), listen_fds=listen_fds)
        self._ports.extend(ports)
        return ports

    async def exchange(self, address: Any, request: bytes, **kwargs: Any) -> Response:
        raw = await threads.deferToThread(raw_exchange, address, request, **kwargs)
        return Response(raw)


def _listener(
    binds: list[dict[str, Any]],
    resources: tuple[str, ...] = ("discovery", "oauth", "connection-info"),
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "web", "resources": [{"name": n} for n in resources], "binds": binds}
    entry.update(extra)
    return entry


class TcpAndUnixTestCase(ListenerTestCase):
    async def test_tcp_port_zero_serves_discovery_with_treq(self) -> None:
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}]))
        url = f"http://127.0.0.1:{port.getHost().port}/.well-known/openid-configuration"
        response = await treq.get(url, persistent=False)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("Content-Type"), ["application/json"])
        self.assertEqual(response.headers.getRawHeaders("Access-Control-Allow-Origin"), ["*"])
        body = json.loads(await response.content())
        self.assertEqual(body["issuer"], PUBLIC_BASE)
        self.assertEqual(body["jwks_uri"], PUBLIC_BASE + "oauth2/keys.json")

    async def test_port_without_host_listens_on_every_address(self) -> None:
        (port,) = await self.listen(_listener([{"port": 0}]))
        # [::] (dual-stack), or 0.0.0.0 where IPv6 is unavailable: IPv4 clients get in either way.
        self.assertIn(port.getHost().host, ("::", "0.0.0.0"))
        response = await self.exchange(("127.0.0.1", port.getHost().port), http_get("/oauth2/keys.json"))
        self.assertEqual(response.status, 200)

    async def test_address_bind(self) -> None:
        (port,) = await self.listen(_listener([{"address": "127.0.0.1:0"}]))
        response = await self.exchange(("127.0.0.1", port.getHost().port), http_get("/oauth2/keys.json"))
        self.assertEqual(response.status, 200, response)
        self.assertEqual([k["kid"] for k in json.loads(response.body)["keys"]], ["test-ec"])

    async def test_unix_socket_with_mode_and_treq(self) -> None:
        path = os.path.join(self.tmp, "mas.sock")
        await self.listen(_listener([{"socket": path, "mode": "640"}]))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent.usingEndpointFactory(reactor, _UnixEndpointFactory(path), pool=pool)
        client = treq.client.HTTPClient(agent)
        response = await client.get("http://localhost/connection-info")
        self.assertEqual(response.code, 200)
        text = (await response.text()).splitlines()
        self.assertIn("peer: unix:(unnamed)", text)
        self.assertIn("tls: none", text)
        # A unix socket peer has no IP; without X-Forwarded-For the client is unknown.
        self.assertIn("client ip: unknown", text)

    async def test_unix_socket_behind_local_proxy_trusts_forwarded_for(self) -> None:
        path = os.path.join(self.tmp, "mas.sock")
        await self.listen(_listener([{"socket": path}]))
        response = await self.exchange(
            path,
            http_get("/connection-info", headers={"X-Forwarded-For": "198.51.100.4"}),
            family=socket.AF_UNIX,
        )
        self.assertIn(b"client ip: 198.51.100.4", response.body)

    async def test_stale_unix_socket_is_replaced(self) -> None:
        path = os.path.join(self.tmp, "stale.sock")
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(path)
        dead.close()  # the file stays, nobody listens: what a crash leaves behind
        await self.listen(_listener([{"socket": path}]))
        response = await self.exchange(path, http_get("/oauth2/keys.json"), family=socket.AF_UNIX)
        self.assertEqual(response.status, 200)

    def test_live_unix_socket_is_not_removed(self) -> None:
        path = os.path.join(self.tmp, "live.sock")
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(live.close)
        live.bind(path)
        live.listen(1)
        self.assertFalse(remove_stale_unix_socket(path))
        self.assertTrue(os.path.exists(path))

    async def test_inherited_descriptors(self) -> None:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(5)
        tcp_port = tcp.getsockname()[1]
        path = os.path.join(self.tmp, "inherited.sock")
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(path)
        unix.listen(5)
        # As if passed by the service manager: LISTEN_FDS order, fd index 0 and 1.
        fds = [tcp.detach(), unix.detach()]
        ports = await self.listen(_listener([{"fd": 1, "kind": "unix"}, {"fd": 0}]), listen_fds=fds)
        self.assertEqual(len(ports), 2)
        response = await self.exchange(("127.0.0.1", tcp_port), http_get("/oauth2/keys.json"))
        self.assertEqual(response.status, 200)
        response = await self.exchange(path, http_get("/oauth2/keys.json"), family=socket.AF_UNIX)
        self.assertEqual(response.status, 200)

    async def test_inherited_descriptor_missing_or_of_the_wrong_kind(self) -> None:
        with self.assertRaises(ListenerBindError) as missing:
            await self.listen(_listener([{"fd": 2}]), listen_fds=[])
        self.assertEqual(
            missing.exception.msg,
            "listener web: could not bind inherited tcp socket #2 (file descriptor 5): "
            "the service manager passed 0 socket(s) (LISTEN_FDS)",
        )

        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(unix.close)
        unix.bind(os.path.join(self.tmp, "kind.sock"))
        unix.listen(1)
        with self.assertRaises(ListenerBindError) as wrong:
            await self.listen(_listener([{"fd": 0, "kind": "tcp"}]), listen_fds=[unix.fileno()])
        self.assertIn("is not a TCP socket", wrong.exception.msg)

        idle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(idle.close)
        with self.assertRaises(ListenerBindError) as not_listening:
            await self.listen(_listener([{"fd": 0}]), listen_fds=[idle.fileno()])
        self.assertIn(
            f"file descriptor {idle.fileno()} is not a listening socket", not_listening.exception.msg
        )

        with open(os.devnull) as f:
            with self.assertRaises(ListenerBindError) as not_socket:
                await self.listen(_listener([{"fd": 0}]), listen_fds=[f.fileno()])
        self.assertIn("is not a socket", not_socket.exception.msg)

    def test_inherited_descriptors_from_the_environment(self) -> None:
        pid = str(os.getpid())
        self.assertEqual(inherited_descriptors({"LISTEN_FDS": "2", "LISTEN_PID": pid}), [3, 4])
        # Without LISTEN_PID the count is believed; for another process it is not ours.
        self.assertEqual(inherited_descriptors({"LISTEN_FDS": "1"}), [3])
        self.assertIsNone(inherited_descriptors({"LISTEN_FDS": "1", "LISTEN_PID": "1"}))
        # Twisted consumes the variables when twisted.internet.endpoints is imported.
        self.assertIsNone(inherited_descriptors({}))
        self.assertIsNone(inherited_descriptors({"LISTEN_FDS": "x"}))

    async def test_bind_error_is_one_line_and_closes_the_other_ports(self) -> None:
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        free = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        free.bind(("127.0.0.1", 0))
        free_port = free.getsockname()[1]
        free.close()
        with self.assertRaises(ListenerBindError) as info:
            await self.listen(
                _listener([{"host": "127.0.0.1", "port": free_port}, {"host": "127.0.0.1", "port": busy}])
            )
        message = info.exception.msg
        self.assertEqual(message, f"listener web: could not bind 127.0.0.1:{busy}: Address already in use")
        # The first bind was released again: the port can be taken now.
        check = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(check.close)
        check.bind(("127.0.0.1", free_port))

    async def test_two_binds_serve_the_same_listener(self) -> None:
        path = os.path.join(self.tmp, "both.sock")
        tcp_port, _ = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}, {"socket": path}]))
        first = await self.exchange(("127.0.0.1", tcp_port.getHost().port), http_get("/oauth2/keys.json"))
        second = await self.exchange(path, http_get("/oauth2/keys.json"), family=socket.AF_UNIX)
        self.assertEqual(first.body, second.body)


class DispatchTestCase(ListenerTestCase):
    async def test_prefix_and_fallback(self) -> None:
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}], prefix="/auth/"))
        address = ("127.0.0.1", port.getHost().port)
        served = await self.exchange(address, http_get("/auth/oauth2/keys.json"))
        self.assertEqual(served.status, 200)
        unprefixed = await self.exchange(address, http_get("/oauth2/keys.json"))
        self.assertEqual(unprefixed.status, 404)
        html = await self.exchange(address, http_get("/auth/nope", headers={"Accept": "text/html"}))
        self.assertEqual(html.status, 404)
        self.assertTrue(html.headers["content-type"].startswith("text/html"))
        self.assertIn(b"/auth/nope", html.body)
        plain = await self.exchange(address, http_get("/auth/nope<script>"))
        self.assertEqual(plain.status, 404)
        self.assertTrue(plain.headers["content-type"].startswith("text/plain"))

    async def test_resources_not_mounted_are_not_served(self) -> None:
        (port,) = await self.listen(
            _listener([{"host": "127.0.0.1", "port": 0}], resources=("oauth", "human", "graphql"))
        )
        address = ("127.0.0.1", port.getHost().port)
        self.assertEqual(
            (await self.exchange(address, http_get("/.well-known/openid-configuration"))).status, 404
        )
        self.assertEqual((await self.exchange(address, http_get("/graphql"))).status, 404)
        self.assertEqual((await self.exchange(address, http_get("/oauth2/keys.json"))).status, 200)


class ClientAddressTestCase(ListenerTestCase):
    async def _client_ip(self, address: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> str:
        response = await self.exchange(address, http_get("/connection-info", headers=headers), **kwargs)
        self.assertEqual(response.status, 200, response)
        lines = dict(line.split(": ", 1) for line in response.body.decode().splitlines())
        return lines["client ip"]

    async def test_forwarded_for_only_from_trusted_proxies(self) -> None:
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}]))
        address = ("127.0.0.1", port.getHost().port)
        # 127.0.0.1 is a trusted proxy by default: the rightmost untrusted entry is the client.
        self.assertEqual(
            await self._client_ip(address, {"X-Forwarded-For": "203.0.113.9, 10.0.0.2"}), "203.0.113.9"
        )
        self.assertEqual(
            await self._client_ip(address, {"X-Forwarded-For": "garbage, 203.0.113.7"}), "203.0.113.7"
        )
        self.assertEqual(await self._client_ip(address), "127.0.0.1")

    async def test_forwarded_for_from_an_untrusted_peer_is_ignored(self) -> None:
        (port,) = await self.listen(
            _listener([{"host": "127.0.0.1", "port": 0}]), trusted_proxies=["192.0.2.0/24"]
        )
        address = ("127.0.0.1", port.getHost().port)
        self.assertEqual(await self._client_ip(address, {"X-Forwarded-For": "203.0.113.9"}), "127.0.0.1")

    async def test_proxy_protocol_v1_and_access_log(self) -> None:
        (port,) = await self.listen(
            _listener([{"host": "127.0.0.1", "port": 0}], proxy_protocol=True),
            trusted_proxies=["192.0.2.0/24"],
        )
        address = ("127.0.0.1", port.getHost().port)
        with CapturingHandler("mas_twisted.access.web") as log:
            response = await self.exchange(
                address,
                http_get("/connection-info?code=secret-value", headers={"User-Agent": "probe/1.0"}),
                preamble=b"PROXY TCP4 198.51.100.23 192.0.2.1 56324 443\r\n",
            )
        self.assertEqual(response.status, 200)
        lines = dict(line.split(": ", 1) for line in response.body.decode().splitlines())
        self.assertEqual(lines["client ip"], "198.51.100.23")
        self.assertEqual(lines["proxy protocol"], "source 198.51.100.23:56324, destination 192.0.2.1:443")
        self.assertTrue(lines["peer"].startswith("127.0.0.1:"))
        (record,) = log.records
        message = record.getMessage()
        self.assertRegex(
            message,
            r'^GET-\d+ 198\.51\.100\.23 "GET /connection-info HTTP/1\.1" 200 \d+ "probe/1\.0" \[elapsed: [\d.]+ms\]$',
        )
        self.assertNotIn("secret-value", message)
        self.assertEqual(record.levelno, logging.INFO)

    async def test_proxy_protocol_v2(self) -> None:
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}], proxy_protocol=True))
        address = ("127.0.0.1", port.getHost().port)
        # A PROXY source is believed even when X-Forwarded-For says otherwise (as in MAS).
        self.assertEqual(
            await self._client_ip(
                address,
                {"X-Forwarded-For": "203.0.113.1"},
                preamble=_proxy_v2_header("198.51.100.77", 40000, "192.0.2.10", 8443),
            ),
            "198.51.100.77",
        )

    async def test_proxy_listener_refuses_connections_without_header(self) -> None:
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}], proxy_protocol=True))
        raw = await threads.deferToThread(
            raw_exchange, ("127.0.0.1", port.getHost().port), http_get("/connection-info")
        )
        self.assertEqual(raw, b"")

    async def test_access_log_levels_follow_the_status(self) -> None:
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}]))
        address = ("127.0.0.1", port.getHost().port)
        with CapturingHandler("mas_twisted.access.web") as log:
            await self.exchange(address, http_get("/missing"))
            await self.exchange(address, http_get("/oauth2/keys.json"))
        levels = [(r.levelno, r.getMessage().split('"')[1]) for r in log.records]
        self.assertEqual(
            levels,
            [(logging.WARNING, "GET /missing HTTP/1.1"), (logging.INFO, "GET /oauth2/keys.json HTTP/1.1")],
        )
        self.assertIn('"-" [elapsed:', log.records[0].getMessage())


class TlsTestCase(ListenerTestCase):
    def _tls(self, *, password: bytes | None = None) -> tuple[dict[str, Any], ssl.SSLContext]:
        cert_pem, key_pem, _ = self_signed("localhost", password=password)
        tls: dict[str, Any] = {"certificate": cert_pem, "key": key_pem}
        if password is not None:
            tls["password"] = password.decode()
        context = ssl.create_default_context(cadata=cert_pem)
        return tls, context

    async def test_tls_listener(self) -> None:
        tls, context = self._tls(password=b"hunter2")
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}], tls=tls))
        address = ("127.0.0.1", port.getHost().port)
        response = await self.exchange(
            address, http_get("/connection-info"), tls_context=context, server_hostname="localhost"
        )
        self.assertEqual(response.status, 200, response)
        tls_line = [line for line in response.body.decode().splitlines() if line.startswith("tls: ")][0]
        self.assertRegex(tls_line, r"^tls: TLSv1\.[23] \S+ SNI localhost$")
        # Plain HTTP on a TLS port gets no HTTP answer.
        raw = await threads.deferToThread(raw_exchange, address, http_get("/connection-info"))
        self.assertNotIn(b"HTTP/1.1 200", raw)

    async def test_tls_negotiates_http11_over_alpn(self) -> None:
        tls, context = self._tls()
        context.set_alpn_protocols(["h2", "http/1.1"])
        (port,) = await self.listen(_listener([{"host": "127.0.0.1", "port": 0}], tls=tls))

        def negotiated() -> str | None:
            with socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10) as sock:
                with context.wrap_socket(sock, server_hostname="localhost") as conn:
                    return conn.selected_alpn_protocol()

        self.assertEqual(await threads.deferToThread(negotiated), "http/1.1")

    async def test_proxy_header_comes_before_the_tls_handshake(self) -> None:
        tls, context = self._tls()
        (port,) = await self.listen(
            _listener([{"host": "127.0.0.1", "port": 0}], tls=tls, proxy_protocol=True)
        )
        response = await self.exchange(
            ("127.0.0.1", port.getHost().port),
            http_get("/connection-info"),
            preamble=b"PROXY TCP4 198.51.100.5 192.0.2.1 1234 443\r\n",
            tls_context=context,
            server_hostname="localhost",
        )
        self.assertEqual(response.status, 200, response)
        self.assertIn(b"client ip: 198.51.100.5", response.body)
        self.assertIn(b"tls: TLSv1.", response.body)
