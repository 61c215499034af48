# SPDX-License-Identifier: AGPL-3.0-only
"""Binding a listener's sockets (MAS's ``crates/cli/src/server.rs`` ``build_listeners`` and
``crates/listener``).

Each ``http.listeners[].binds[]`` entry becomes a Twisted endpoint: TCP, a unix socket, or
a socket inherited from the service manager (``LISTEN_FDS``, sd_listen_fds(3)). With
``proxy_protocol`` the endpoint first reads a PROXY v1/v2 header; with ``tls`` the site is
wrapped in TLS *inside* that, so the header comes before the TLS handshake, as in MAS.

Inherited sockets are adopted here rather than through the ``systemd:`` description that
:func:`~mas_twisted.config.http.bind_to_endpoint` documents: Twisted's parser reads the
environment once, at import, and ignores it without ``LISTEN_FDNAMES``.

Differences from MAS worth knowing: a leftover unix socket is only replaced when nothing
listens on it any more (MAS always replaces it), and ALPN offers ``http/1.1`` only.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from collections.abc import Mapping, Sequence

from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IOpenSSLServerConnectionCreator, IProtocolFactory
from twisted.protocols.haproxy import proxyEndpoint
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from mas_twisted.api.errors import MasError
from mas_twisted.config.http import (
    BindConfig,
    FdBind,
    ListenBind,
    ListenerConfig,
    UnixBind,
    bind_to_endpoint,
)

logger = logging.getLogger(__name__)


class ListenerBindError(MasError):
    """A listener could not bind one of its sockets; ``msg`` is one line naming both."""


@implementer(IOpenSSLServerConnectionCreator)
class TLSServerConnectionCreator:
    """Hands every accepted connection the listener's one ``SSL.Context``."""

    def __init__(self, context: SSL.Context):
        self._context = context

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self._context, None)


def wrap_factory(listener: ListenerConfig, factory: IProtocolFactory) -> IProtocolFactory:
    """The factory to listen with: ``factory`` itself, or TLS around it for a TLS listener."""
    if listener.tls is None:
        return factory
    return TLSMemoryBIOFactory(TLSServerConnectionCreator(listener.tls.context), False, factory)


#: sd_listen_fds(3): the first inherited socket is file descriptor 3.
SD_LISTEN_FDS_START = 3


def inherited_descriptors(environ: Mapping[str, str] | None = None) -> list[int] | None:
    """The listening sockets passed by the service manager, from ``LISTEN_FDS``/``LISTEN_PID``.

    Returns:
        The descriptors in order, or None when the environment does not say. Twisted's own
        ``systemd:`` endpoint parser reads (and deletes) these variables when
        ``twisted.internet.endpoints`` is imported, which twistd does before the service is
        built, so None is the usual answer under twistd.
    """
    env = os.environ if environ is None else environ
    count = env.get("LISTEN_FDS")
    pid = env.get("LISTEN_PID")
    if count is None or (pid is not None and pid != str(os.getpid())):
        return None
    try:
        n = int(count)
    except ValueError:
        return None
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(n, 0)))


def _check_inherited_socket(fd: int, bind: FdBind) -> int:
    """Refuse a descriptor that is not a listening socket of the configured kind.

    Returns:
        Its address family.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        raise ListenerBindError(f"file descriptor {fd} is not open (was it passed by the service manager?)")
    if not stat.S_ISSOCK(mode):
        raise ListenerBindError(f"file descriptor {fd} is not a socket")
    probe = socket.socket(fileno=os.dup(fd))
    try:
        family = probe.family
        listening = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        probe.close()
    if not listening:
        raise ListenerBindError(f"file descriptor {fd} is not a listening socket")
    if bind.kind == "unix" and family != socket.AF_UNIX:
        raise ListenerBindError(f"file descriptor {fd} is a TCP socket, not a unix socket")
    if bind.kind == "tcp" and family not in (socket.AF_INET, socket.AF_INET6):
        raise ListenerBindError(f"file descriptor {fd} is not a TCP socket")
    return int(family)


def endpoint_for_bind(
    reactor: object,
    bind: BindConfig,
    *,
    proxy_protocol: bool = False,
    listen_fds: Sequence[int] | None = None,
) -> object:
    """The server endpoint for one bind.

    ``listen_fds`` are the inherited sockets, in order (default: from the environment, else
    file descriptor ``3 + fd``, which must then be a listening socket of the right kind).
    TCP and unix binds go through :func:`bind_to_endpoint`'s description.

    Raises:
        ListenerBindError: an inherited socket is missing or of the wrong kind.
    """
    if isinstance(bind, FdBind):
        fds = inherited_descriptors() if listen_fds is None else list(listen_fds)
        if fds is None:
            fd = SD_LISTEN_FDS_START + bind.fd
        elif bind.fd < len(fds):
            fd = fds[bind.fd]
        else:
            raise ListenerBindError(f"the service manager passed {len(fds)} socket(s) (LISTEN_FDS)")
        family = _check_inherited_socket(fd, bind)
        endpoint = AdoptedStreamServerEndpoint(reactor, fd, family)
        return proxyEndpoint(endpoint) if proxy_protocol else endpoint
    return serverFromString(reactor, bind_to_endpoint(bind, proxy_protocol=proxy_protocol))


def remove_stale_unix_socket(path: str) -> bool:
    """Delete a unix socket file that no process listens on any more (left by a crash).

    Returns:
        True if a stale socket was removed.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        logger.info("Removed stale unix socket %s", path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


def _reason(failure_value: BaseException) -> str:
    if isinstance(failure_value, CannotListenError):
        inner = failure_value.socketError
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror
        return str(inner)
    if isinstance(failure_value, MasError):
        return failure_value.msg
    if isinstance(failure_value, OSError) and failure_value.strerror:
        return failure_value.strerror
    return str(failure_value) or type(failure_value).__name__


def _is_no_ipv6(error: BaseException) -> bool:
    inner = error.socketError if isinstance(error, CannotListenError) else error
    return isinstance(inner, OSError) and inner.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL)


async def _listen_one(
    reactor: object,
    listener: ListenerConfig,
    bind: BindConfig,
    factory: IProtocolFactory,
    listen_fds: Sequence[int] | None,
) -> IListeningPort:
    if isinstance(bind, UnixBind):
        remove_stale_unix_socket(bind.socket)
    endpoint = endpoint_for_bind(reactor, bind, proxy_protocol=listener.proxy_protocol, listen_fds=listen_fds)
    try:
        return await endpoint.listen(factory)  # type: ignore[attr-defined]
    except CannotListenError as e:
        if isinstance(bind, ListenBind) and bind.host is None and _is_no_ipv6(e):
            # MAS tries [::] first and then 0.0.0.0: a host without IPv6 still listens.
            fallback = ListenBind(host="0.0.0.0", port=bind.port)
            endpoint = endpoint_for_bind(reactor, fallback, proxy_protocol=listener.proxy_protocol)
            return await endpoint.listen(factory)  # type: ignore[attr-defined]
        raise


def listen_http(
    reactor: object,
    listener: ListenerConfig,
    site: IProtocolFactory,
    *,
    listen_fds: Sequence[int] | None = None,
) -> defer.Deferred[list[IListeningPort]]:
    """Listen on every bind of ``listener`` with ``site`` (TLS-wrapped when configured).

    Either every bind listens or none does: on a failure the ports already open are closed.

    Returns:
        A Deferred firing with the listening ports, in the order of ``binds``, or failing with
        :class:`ListenerBindError`: ``"listener web: could not bind 127.0.0.1:8080: Address
        already in use"``.
    """
    return defer.ensureDeferred(_listen_all(reactor, listener, site, listen_fds))


async def _listen_all(
    reactor: object, listener: ListenerConfig, site: IProtocolFactory, listen_fds: Sequence[int] | None
) -> list[IListeningPort]:
    factory = wrap_factory(listener, site)
    ports: list[IListeningPort] = []
    for bind in listener.binds:
        try:
            ports.append(await _listen_one(reactor, listener, bind, factory, listen_fds))
        except Exception as e:
            for port in ports:
                await defer.maybeDeferred(port.stopListening)
            raise ListenerBindError(
                f"listener {listener.name}: could not bind {bind.describe()}: {_reason(e)}"
            ) from e
    return ports
