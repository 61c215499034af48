# SPDX-License-Identifier: AGPL-3.0-only
"""Traces (OpenTelemetry, :mod:`.tracing`) and error reports (Sentry, :mod:`.sentry`).

Both are optional extras (``pip install 'mas-twisted[otel]'``, ``'mas-twisted[sentry]'``)
and off by default. Importing this package imports neither SDK: :func:`setup` imports one
only when its part of ``telemetry`` is configured, and every hook in the listeners, the
pool, the worker and the homeserver client is a module-level flag check while it is off.

MAS behaviour: ``crates/cli/src/telemetry.rs`` (``setup``, ``init_tracer``) and
``crates/cli/src/sentry_transport.rs``' caller in ``crates/cli/src/main.rs``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twisted.application.service import Service
from twisted.internet import defer, threads

from mas_twisted.telemetry import sentry, tracing

if TYPE_CHECKING:
    from mas_twisted.config.telemetry import TelemetryConfig

logger = logging.getLogger(__name__)


def setup_telemetry(config: TelemetryConfig, *, version: str) -> None:
    """Start what ``config`` asks for (at start-up, before the listeners).

    Raises:
        ConfigError: a part is configured but its extra is not installed, or a propagator
            this SDK does not have.
    """
    tracing.setup(config.tracing, version=version)
    sentry.setup(config.sentry, version=version)


class TelemetryService(Service):
    """Flushes the spans and events still buffered when the process stops (it is the root's
    first child, so it stops after the listeners and the worker)."""

    name = "telemetry"

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        if not (tracing.ENABLED or sentry.ENABLED):
            return defer.succeed(None)

        def _flush() -> None:
            tracing.shutdown()
            sentry.shutdown()

        d: defer.Deferred[None] = threads.deferToThread(_flush)
        d.addErrback(lambda f: logger.warning("Flushing telemetry failed: %s", f.getErrorMessage()))
        return d


__all__ = ["setup_telemetry", "TelemetryService", "sentry", "tracing"]
