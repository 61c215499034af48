# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /metrics`` (resource ``prometheus``) and the HTTP server metrics.

MAS exports its OpenTelemetry metrics there when ``telemetry.metrics.exporter`` is
``prometheus``; this serves ``prometheus_client``'s default registry, which holds the
process and platform collectors plus the request counter and duration histogram below,
labelled by listener (MAS's ``mas.listener.name``), method and status.

Request:  GET /metrics
Response: 200 text/plain; version=0.0.4 (the Prometheus text exposition format).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import install_plain_error_handlers, with_length

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: The methods labelled by name; anything else is ``_OTHER`` (MAS's ``otel_http_method``),
#: which keeps a client from creating label values at will.
KNOWN_METHODS = frozenset({"OPTIONS", "GET", "POST", "PUT", "DELETE", "HEAD", "TRACE", "CONNECT", "PATCH"})

HTTP_REQUESTS = Counter(
    "mas_http_server_requests",
    "HTTP responses sent, by listener, method and status code",
    ["listener", "method", "status"],
)

HTTP_REQUEST_DURATION = Histogram(
    "mas_http_server_request_duration_seconds",
    "Time from the request line to the end of the response, by listener and method",
    ["listener", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def metric_method(method: str) -> str:
    return method if method in KNOWN_METHODS else "_OTHER"


#: The labelled children of the two metrics, by ``(listener, method, status)``: looking them
#: up with ``labels()`` for every response cost a few percent of a cheap request's CPU
#: (bench/introspect). Bounded: listeners are configured, methods and statuses finite.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def record_request(listener: str, method: str, status: int, duration_seconds: float) -> None:
    """Count one response and observe its duration."""
    method = metric_method(method)
    key = (listener, method, status)
    children = _children.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(listener=listener, method=method, status=str(status)),
            HTTP_REQUEST_DURATION.labels(listener=listener, method=method),
        )
        _children[key] = children
    children[0].inc()
    children[1].observe(max(duration_seconds, 0.0))


class MetricsResource:
    """The Prometheus scrape endpoint."""

    app = Klein()
    install_plain_error_handlers(app)

    def __init__(self, server: MasServer, registry: CollectorRegistry = REGISTRY):
        self._registry = registry

    @app.route(urls.METRICS, methods=["GET"])
    def metrics(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return with_length(request, generate_latest(self._registry))
