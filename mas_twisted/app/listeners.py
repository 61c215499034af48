# SPDX-License-Identifier: AGPL-3.0-only
"""One Twisted ``Site`` per ``http.listeners[]`` entry (MAS's ``build_router`` and its
layers in ``crates/cli/src/server.rs``).

- :class:`ListenerResource` is a leaf resource over the listener's resources, of two kinds:
  Klein apps (:class:`MountedApp`) and plain ``twisted.web`` leaf resources bound to exact
  paths (:class:`MountedLeaf`, the introspection endpoint: the hot path skips Klein). It
  strips the listener's ``prefix``, then hands the request to the first resource that serves
  the path: a leaf whose exact path it is, or an app whose URL map knows the path (a wrong
  method or a missing trailing slash still means the app owns it), so every resource keeps
  absolute routes (STYLE.md §5.11). Leaves are looked up by path in one dict, before the
  apps are tried; a leaf's path that an app mounted before it owns stays that app's, so the
  first resource in mount order still wins. CORS-enabled resources get
  ``Access-Control-Allow-Origin: *`` and their preflight answers here. Anything else is the
  404 fallback.
- :class:`ListenerRequest` infers the client IP (the PROXY protocol source when the
  listener reads one; else, walking ``X-Forwarded-For`` and then the socket peer from the
  right, the first address that is not a trusted proxy). MAS's ``infer_client_ip`` puts
  the peer at the *front* of that chain, which lets an untrusted peer choose its address
  with ``X-Forwarded-For``; here the header only counts when the peer is trusted. It gives the
  request a ``GET-12``-style id held in :data:`mas_twisted.logging.context.request_id`
  while it is handled, and times it.
- :class:`ListenerSite` writes one access-log line per response on
  ``mas_twisted.access.<listener name>`` and counts it in the Prometheus metrics.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from mas_twisted.config.http import IPNetwork, ListenerConfig
from mas_twisted.logging.access import AccessRecord, access_logger, log_access
from mas_twisted.logging.context import NO_REQUEST, new_request_id, request_id
from mas_twisted.metrics import FALLBACK_ROUTE, metric_method, record_request
from mas_twisted.rest._base import CorsPolicy, render_not_found, text_response
from mas_twisted.rest.registry import IGNORED_RESOURCES, build_resources, not_found_fallback
from mas_twisted.telemetry import tracing
from mas_twisted.util.request_locale import accept_language

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

_ignored_logged: set[str] = set()


# -- client IP --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _canonical_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an address, turning IPv4-mapped IPv6 (``::ffff:1.2.3.4``) into IPv4.

    Cached: the same few peers (the homeserver, the reverse proxy) make most requests, and
    parsing took a few percent of an introspection request's CPU (bench/introspect)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def infer_client_ip(
    peer_ip: str | None,
    forwarded_for: Sequence[str],
    trusted_proxies: Iterable[IPNetwork],
    *,
    from_proxy_protocol: bool = False,
) -> str | None:
    """The address of the client, as far as the trusted proxies vouch for it.

    Args:
        peer_ip: the socket peer (``None`` on a unix socket, whose peers are local processes
            and therefore trusted), or the PROXY protocol source.
        forwarded_for: the ``X-Forwarded-For`` header values, in order.
        from_proxy_protocol: ``peer_ip`` came from a PROXY header, which is always believed.

    The chain is every ``X-Forwarded-For`` entry followed by the peer; walking from the
    right, the first address outside ``trusted_proxies`` is the client. If all are trusted,
    the leftmost one is. Unparsable entries are skipped, as MAS does.
    """
    peer = _canonical_ip(peer_ip) if peer_ip is not None else None
    if from_proxy_protocol and peer is not None:
        return str(peer)
    networks = list(trusted_proxies)
    chain = []
    for value in forwarded_for:
        for entry in value.split(","):
            ip = _canonical_ip(entry)
            if ip is not None:
                chain.append(ip)
    if peer is not None:
        chain.append(peer)
    for ip in reversed(chain):
        if not any(ip.version == net.version and ip in net for net in networks):
            return str(ip)
    return str(chain[0]) if chain else None


#: No resource reads a body longer than 256 KiB (``rest/_parse.py``'s limits, the largest being
#: dynamic client registration's): a body past this is neither held in memory nor spooled to a
#: temporary file, however long its sender keeps sending; the resource answers 413.
MAX_BODY_KEPT = 1024 * 1024


class ListenerRequest(Request):
    """A request on one of the service's listeners.

    Attributes:
        request_id: ``GET-12``: the method and a per-process counter (``-`` until processed).
        client_ip: the inferred client address (``None`` when unknown, e.g. a unix socket
            without ``X-Forwarded-For``); :meth:`getClientAddress` reports it too.
        proxy_protocol: the connection started with a PROXY header (the listener reads one).
    """

    site: ListenerSite

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        site = getattr(self.channel, "site", None)
        self.request_id: str = NO_REQUEST
        self.client_ip: str | None = None
        self.proxy_protocol: bool = bool(getattr(site, "proxy_protocol", False))
        #: The route template that served the request (``None``: none did), for the metrics.
        self.http_route: str | None = None
        reactor = getattr(site, "reactor", None)
        self.started_at: float = reactor.seconds() if reactor is not None else 0.0

    def gotLength(self, length: int | None) -> None:
        """Twisted's ``Request`` is about to receive a body of ``length`` bytes (``None``:
        chunked). One announced longer than any resource takes is not kept at all."""
        super().gotLength(length)
        self._body_received = 0
        self.body_too_large: bool = length is not None and length > MAX_BODY_KEPT

    def handleContentChunk(self, data: bytes) -> None:
        """Keep the body up to :data:`MAX_BODY_KEPT` bytes; past that (a chunked body, or one
        longer than announced), drop it: ``read_body`` then answers 413."""
        self._body_received = getattr(self, "_body_received", 0) + len(data)
        if self._body_received > MAX_BODY_KEPT:
            self.body_too_large = True
        if getattr(self, "body_too_large", False):
            return
        super().handleContentChunk(data)

    def _peer_ip(self) -> str | None:
        if isinstance(self.client, (IPv4Address, IPv6Address)):
            return self.client.host
        return None

    def process(self) -> None:
        site: ListenerSite = self.channel.site  # type: ignore[attr-defined]  # set by the Site's factory
        self.request_id = new_request_id(metric_method(self.method.decode("ascii", "replace")))
        self.client_ip = infer_client_ip(
            self._peer_ip(),
            [v.decode("latin-1") for v in self.requestHeaders.getRawHeaders(b"X-Forwarded-For") or []],
            site.trusted_proxies,
            from_proxy_protocol=self.proxy_protocol,
        )
        # Everything the request runs, coroutines included, sees its id.
        contextvars.copy_context().run(self._process_with_request_id, site)

    def _process_with_request_id(self, site: ListenerSite) -> None:
        request_id.set(self.request_id)
        if tracing.ENABLED:
            tracing.start_request_span(self, site.listener.name)
        header = self.requestHeaders.getRawHeaders(b"Accept-Language")
        accept_language.set(", ".join(v.decode("latin-1") for v in header) if header else None)
        super().process()

    def getClientAddress(self) -> Any:
        if self.client_ip is None or self.client_ip == self._peer_ip():
            return self.client
        ip = ipaddress.ip_address(self.client_ip)
        if ip.version == 4:
            return IPv4Address("TCP", self.client_ip, 0)
        return IPv6Address("TCP", self.client_ip, 0)


class ListenerSite(Site):
    """The HTTP factory of one listener: access log and metrics per response."""

    requestFactory = ListenerRequest
    displayTracebacks = False
    noisy = False

    def __init__(
        self,
        resource: Resource,
        listener: ListenerConfig,
        *,
        trusted_proxies: Sequence[IPNetwork],
        reactor: Any = None,
    ):
        # Every resource reads its own body (an urlencoded form where it takes one); none
        # reads a form from ``request.args``. Twisted's parsing of every POST body into it
        # (the Content-Type through the email package, then the form or a multipart body,
        # held whole in memory) took a fifth of the CPU of an introspection request
        # (bench/introspect, py-spy), and answered a malformed multipart body with its own
        # 400 page. The query string is still parsed into ``request.args``.
        super().__init__(
            resource, requestFactory=ListenerRequest, reactor=reactor, parsePOSTFormSubmission=False
        )
        self.listener = listener
        self.trusted_proxies: list[IPNetwork] = list(trusted_proxies)
        self.proxy_protocol: bool = listener.proxy_protocol
        self.access_logger = access_logger(listener.name)

    def log(self, request: Request) -> None:  # type: ignore[override]  # a ListenerRequest, as requestFactory makes
        """Called by Twisted once the response is complete."""
        method = request.method.decode("ascii", "replace")
        elapsed = self.reactor.seconds() - getattr(request, "started_at", self.reactor.seconds())
        user_agent = request.getHeader(b"User-Agent")
        record = AccessRecord(
            request_id=getattr(request, "request_id", NO_REQUEST),
            client_ip=getattr(request, "client_ip", None),
            method=method,
            path=request.path.decode("utf-8", "replace"),
            protocol=(request.clientproto or b"HTTP/1.1").decode("ascii", "replace"),
            status=int(request.code),
            sent_bytes=int(request.sentLength),
            user_agent=user_agent.decode("utf-8", "replace") if user_agent is not None else None,
            elapsed_ms=elapsed * 1000.0,
        )
        log_access(self.access_logger, record)
        record_request(
            self.listener.name, method, getattr(request, "http_route", None), record.status, elapsed
        )


# -- dispatch ---------------------------------------------------------------------------------


class MountedApp:
    """One Klein resource class instance as a listener sees it."""

    def __init__(self, instance: Any):
        self.instance = instance
        app = instance.app
        self.url_map = app.url_map
        self.resource = app.resource()
        self.cors: CorsPolicy | None = getattr(instance, "cors", None)

    def owns(self, script_name: str, path_info: str, method: str) -> bool:
        return self.route(script_name, path_info, method) is not None

    def route(self, script_name: str, path_info: str, method: str) -> str | None:
        """The template of the rule serving the path (a wrong method: of the rule serving
        another; a missing trailing slash: :data:`~mas_twisted.metrics.FALLBACK_ROUTE`), or
        ``None`` when this app does not own the path."""
        adapter = self.url_map.bind("localhost", script_name, path_info=path_info, default_method=method)
        try:
            rule, _ = adapter.match(return_rule=True)
        except NotFound:
            return None
        except MethodNotAllowed as e:
            try:
                rule, _ = adapter.match(return_rule=True, method=next(iter(e.valid_methods or ())))
            except Exception:
                return FALLBACK_ROUTE
        except RequestRedirect:
            return FALLBACK_ROUTE
        return str(rule.rule)

    def __repr__(self) -> str:
        return f"<MountedApp {type(self.instance).__name__}>"


class MountedLeaf:
    """A plain ``twisted.web`` leaf resource bound to exact paths, as a listener sees it.

    The resource declares the paths it serves (``exact_paths``, absolute as in
    :mod:`mas_twisted.urls`) and its methods (``allowedMethods``, each with its
    ``render_<METHOD>``). Only those paths are its own: no trailing-slash redirect, no
    placeholders. Another method is a 405 with ``Allow`` (what a Klein app answers); a CORS
    preflight is answered here when the resource has a ``cors`` policy.
    """

    __slots__ = ("resource", "paths", "cors", "_renderers", "_allow")

    def __init__(self, resource: Resource):
        self.resource = resource
        self.paths: tuple[str, ...] = tuple(resource.exact_paths)  # type: ignore[attr-defined]
        methods: tuple[bytes, ...] = tuple(resource.allowedMethods)
        self._renderers: dict[bytes, Callable[[Any], Any]] = {
            method: getattr(resource, "render_" + method.decode("ascii")) for method in methods
        }
        self._allow = b", ".join(methods)
        self.cors: CorsPolicy | None = getattr(resource, "cors", None)

    def render(self, request: Any) -> Any:
        cors = self.cors
        if cors is not None:
            if CorsPolicy.is_preflight(request):
                return cors.preflight(request)
            cors.apply(request)
        render = self._renderers.get(request.method)
        if render is None:
            request.setHeader(b"Allow", self._allow)
            return text_response(request, 405, "Method Not Allowed")
        return render(request)

    def __repr__(self) -> str:
        return f"<MountedLeaf {type(self.resource).__name__} {' '.join(self.paths)}>"


def mount(instance: Any) -> MountedApp | MountedLeaf:
    """How a listener mounts one resource instance: a plain leaf resource, else a Klein app."""
    if isinstance(instance, Resource):
        return MountedLeaf(instance)
    return MountedApp(instance)


class ListenerResource(Resource):
    """The root resource of a listener: prefix, dispatch to leaves and Klein apps, 404 fallback."""

    isLeaf = True

    def __init__(
        self,
        listener: ListenerConfig,
        mounts: Sequence[MountedApp | MountedLeaf],
        *,
        server_header: str | None = None,
        not_found: Callable[[Any], bytes] = render_not_found,
    ):
        super().__init__()
        #: The answer to a path no mount serves (``rest/registry.py``'s
        #: :func:`~mas_twisted.rest.registry.not_found_fallback` renders the HTML 404 page).
        self._not_found = not_found
        self.listener = listener
        self.mounts = list(mounts)
        self._apps: list[MountedApp] = []
        #: The UTF-8 path (after the prefix) → the leaf serving it.
        self._leaves: dict[bytes, MountedLeaf] = {}
        #: The same path → itself as text: the leaf's ``http_route`` in the metrics.
        self._leaf_routes: dict[bytes, str] = {}
        for mounted in self.mounts:
            if isinstance(mounted, MountedApp):
                self._apps.append(mounted)
                continue
            for path in mounted.paths:
                key = path.encode("utf-8")
                # Whether an app owns a path does not depend on the method or the prefix.
                if key in self._leaves or any(app.owns("", path, "GET") for app in self._apps):
                    logger.debug(
                        "Listener %s: %s is served by a resource mounted before %r",
                        listener.name,
                        path,
                        mounted,
                    )
                    continue
                self._leaves[key] = mounted
                self._leaf_routes[key] = path
        self._prefix_segments = (
            [s.encode("utf-8") for s in listener.prefix.split("/")[1:]] if listener.prefix else []
        )
        self._server_header = server_header.encode("utf-8") if server_header else None

    def render(self, request: Any) -> Any:
        if self._server_header is not None:
            request.setHeader(b"Server", self._server_header)
        n = len(self._prefix_segments)
        if n:
            if request.postpath[:n] != self._prefix_segments:
                return self._not_found(request)
            request.prepath.extend(request.postpath[:n])
            request.postpath = request.postpath[n:]
        path = b"/" + b"/".join(request.postpath)
        leaf = self._leaves.get(path)
        if leaf is not None:
            request.http_route = self._leaf_routes[path]
            if tracing.ENABLED:
                tracing.set_route(request, request.http_route)
            return leaf.render(request)
        try:
            script_name = ("/" + b"/".join(request.prepath).decode("utf-8")) if request.prepath else ""
            path_info = path.decode("utf-8")
        except UnicodeDecodeError:
            return text_response(request, 400, "Non-UTF-8 encoding in URL.")
        method = request.method.decode("ascii", "replace")
        for app in self._apps:
            route = app.route(script_name, path_info, method)
            if route is not None:
                request.http_route = route
                if tracing.ENABLED:
                    tracing.set_route(request, route)
                if app.cors is not None:
                    if CorsPolicy.is_preflight(request):
                        return app.cors.preflight(request)
                    app.cors.apply(request)
                return app.resource.render(request)
        return self._not_found(request)


def build_listener_resource(server: MasServer, listener: ListenerConfig) -> ListenerResource:
    """The resource serving ``listener``'s resources under its prefix."""
    mounts: list[MountedApp | MountedLeaf] = []
    for resource in listener.resources:
        if resource.name in IGNORED_RESOURCES and resource.name not in _ignored_logged:
            _ignored_logged.add(resource.name)
            logger.info(
                "Listener %s: the %r resource is accepted for compatibility with MAS but not served",
                listener.name,
                resource.name,
            )
        mounts.extend(mount(instance) for instance in build_resources(server, resource))
    return ListenerResource(
        listener,
        mounts,
        server_header=getattr(server, "version_string", None),
        not_found=not_found_fallback(server),
    )


def build_listener_site(server: MasServer, listener: ListenerConfig) -> ListenerSite:
    """The ``Site`` to listen with for ``listener`` (see :func:`mas_twisted.app.endpoints.listen_http`)."""
    return ListenerSite(
        build_listener_resource(server, listener),
        listener,
        trusted_proxies=server.config.http.trusted_proxies,
        reactor=server.get_reactor(),
    )
