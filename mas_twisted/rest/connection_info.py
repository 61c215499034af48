# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /connection-info``: what the server knows about the connection (resource
``connection-info``; a debugging aid, like MAS's dump of its ``ConnectionInfo``).

Request:  GET /connection-info
Response: 200 text/plain, one ``key: value`` line each for the peer and local addresses,
          the TLS session (protocol, cipher, ALPN, SNI), the PROXY protocol addresses when
          the listener reads them, and the client address the service infers from those
          and ``X-Forwarded-For``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import ISSLTransport
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import install_plain_error_handlers, text_response

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


def describe_address(address: Any) -> str:
    if isinstance(address, IPv6Address):
        return f"[{address.host}]:{address.port}"
    if isinstance(address, IPv4Address):
        return f"{address.host}:{address.port}"
    if isinstance(address, UNIXAddress):
        raw = address.name
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return f"unix:{name or '(unnamed)'}"
    return "unknown" if address is None else repr(address)


def _transports(request: IRequest) -> list[Any]:
    """The channel's transport, then each transport below it (TLS, PROXY, the socket)."""
    chain: list[Any] = []
    transport = getattr(getattr(request, "channel", None), "transport", None)
    while transport is not None and len(chain) < 8:
        chain.append(transport)
        transport = getattr(transport, "transport", None)
    return chain


def _tls_line(chain: list[Any]) -> str:
    for transport in chain:
        if ISSLTransport.providedBy(transport) and hasattr(transport, "getHandle"):
            conn = transport.getHandle()
            parts = [conn.get_protocol_version_name() or "?", conn.get_cipher_name() or "?"]
            alpn = conn.get_alpn_proto_negotiated()
            if alpn:
                parts.append(f"ALPN {alpn.decode('ascii', 'replace')}")
            sni = conn.get_servername()
            if sni:
                parts.append(f"SNI {sni.decode('ascii', 'replace')}")
            return " ".join(parts)
    return "none"


def connection_info(request: IRequest, *, proxy_protocol: bool) -> list[tuple[str, str]]:
    chain = _transports(request)
    socket_transport = chain[-1] if chain else None
    peer = socket_transport.getPeer() if socket_transport is not None else None
    host = socket_transport.getHost() if socket_transport is not None else None
    lines = [("peer", describe_address(peer)), ("local", describe_address(host)), ("tls", _tls_line(chain))]
    if proxy_protocol and chain:
        lines.append(
            (
                "proxy protocol",
                (
                    f"source {describe_address(chain[0].getPeer())}, "
                    f"destination {describe_address(chain[0].getHost())}"
                ),
            )
        )
    else:
        lines.append(("proxy protocol", "none"))
    lines.append(("client ip", getattr(request, "client_ip", None) or "unknown"))
    return lines


class ConnectionInfoResource:
    """The debugging dump."""

    app = Klein()
    install_plain_error_handlers(app)

    def __init__(self, server: MasServer):
        self._server = server

    @app.route(urls.CONNECTION_INFO, methods=["GET"])
    def render_info(self, request: IRequest) -> bytes:
        # The listener's request knows whether its connection started with a PROXY header.
        proxy = bool(getattr(request, "proxy_protocol", False))
        body = "".join(f"{key}: {value}\n" for key, value in connection_info(request, proxy_protocol=proxy))
        return text_response(request, 200, body)
