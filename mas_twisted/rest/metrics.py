# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /metrics`` (resource ``prometheus``, MAS ``crates/cli/src/telemetry.rs``).

With ``telemetry.metrics.exporter: prometheus`` this serves ``prometheus_client``'s default
registry: the process and platform collectors and every metric of :mod:`mas_twisted.metrics`.
With any other exporter it answers, as MAS does, 500 ``Prometheus exporter was not enabled in
config`` (and mounting it logs a warning once): the metrics are not exported there.

Request:  GET /metrics
Response: 200 text/plain; version=0.0.4 (the Prometheus text exposition format).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import install_plain_error_handlers, text_response, with_length

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

NOT_ENABLED = "Prometheus exporter was not enabled in config"


class MetricsResource:
    """The Prometheus scrape endpoint."""

    app = Klein()
    install_plain_error_handlers(app)

    def __init__(self, server: MasServer, registry: CollectorRegistry = REGISTRY):
        self._registry = registry
        self._enabled = server.config.telemetry.metrics.exporter == "prometheus"
        if not self._enabled:
            logger.warning(
                "A prometheus resource is mounted on a listener, but telemetry.metrics.exporter is not"
                " 'prometheus': /metrics answers 500"
            )

    @app.route(urls.METRICS, methods=["GET"])
    def metrics(self, request: IRequest) -> bytes:
        if not self._enabled:
            return text_response(request, 500, NOT_ENABLED)
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return with_length(request, generate_latest(self._registry))
