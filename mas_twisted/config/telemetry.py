# SPDX-License-Identifier: AGPL-3.0-only
"""The ``telemetry`` section: traces, metrics and Sentry.

MAS behaviour (``crates/config/src/sections/telemetry.rs``):
``tracing`` {``exporter`` none|stdout|otlp (default none), ``endpoint`` (OTLP/HTTP URL,
``https://localhost:4318`` when unset), ``propagators`` (tracecontext, baggage, jaeger),
``sample_rate`` (0.0–1.0, default 1.0)}; ``metrics`` {``exporter``
none|stdout|otlp|prometheus (default none; prometheus is served by a listener's
``prometheus`` resource), ``endpoint``}; ``sentry`` {``dsn``, ``environment`` (default
production), ``sample_rate`` (0.0–1.0, default 1.0), ``traces_sample_rate`` (0.0–1.0,
default 0.0)}. Sample rates outside 0.0–1.0 are rejected.
"""

from __future__ import annotations

from typing import Any

import attrs

from mas_twisted.api.errors import ConfigError
from mas_twisted.config._base import Config, JsonDict, Reader, without_none
from mas_twisted.config.http import normalize_url

TRACING_EXPORTERS: tuple[str, ...] = ("none", "stdout", "otlp")
METRICS_EXPORTERS: tuple[str, ...] = ("none", "stdout", "otlp", "prometheus")
PROPAGATORS: tuple[str, ...] = ("tracecontext", "baggage", "jaeger")
DEFAULT_OTLP_ENDPOINT = "https://localhost:4318"


def _sample_rate(r: Reader, key: str) -> float | None:
    return r.float(key, None, min=0.0, max=1.0)


@attrs.frozen
class TracingConfig:
    exporter: str = "none"
    #: The configured OTLP endpoint, or None (the exporter then uses ``DEFAULT_OTLP_ENDPOINT``).
    endpoint: str | None = None
    propagators: tuple[str, ...] = ()
    sample_rate: float | None = None

    @classmethod
    def parse(cls, r: Reader) -> TracingConfig:
        propagators = r.str_list("propagators", ())
        for i, value in enumerate(propagators):
            if value not in PROPAGATORS:
                raise ConfigError(
                    f"expected one of {', '.join(PROPAGATORS)}; got {value!r}", r.at("propagators") + (i,)
                )
        return cls(
            exporter=r.enum("exporter", TRACING_EXPORTERS, "none"),
            endpoint=r.url("endpoint"),
            propagators=tuple(propagators),
            sample_rate=_sample_rate(r, "sample_rate"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exporter": self.exporter}
        if self.endpoint is not None:
            out["endpoint"] = normalize_url(self.endpoint)
        out["propagators"] = list(self.propagators)
        if self.sample_rate is not None:
            out["sample_rate"] = self.sample_rate
        return out


@attrs.frozen
class MetricsConfig:
    exporter: str = "none"
    endpoint: str | None = None

    @classmethod
    def parse(cls, r: Reader) -> MetricsConfig:
        return cls(exporter=r.enum("exporter", METRICS_EXPORTERS, "none"), endpoint=r.url("endpoint"))

    def to_dict(self) -> dict[str, Any]:
        return without_none(
            ("exporter", self.exporter), ("endpoint", normalize_url(self.endpoint) if self.endpoint else None)
        )


@attrs.frozen
class SentryConfig:
    dsn: str | None = None
    environment: str | None = None
    sample_rate: float | None = None
    traces_sample_rate: float | None = None

    @classmethod
    def parse(cls, r: Reader) -> SentryConfig:
        return cls(
            dsn=r.str("dsn"),
            environment=r.str("environment"),
            sample_rate=_sample_rate(r, "sample_rate"),
            traces_sample_rate=_sample_rate(r, "traces_sample_rate"),
        )

    def to_dict(self) -> dict[str, Any]:
        return without_none(
            ("dsn", self.dsn),
            ("environment", self.environment),
            ("sample_rate", self.sample_rate),
            ("traces_sample_rate", self.traces_sample_rate),
        )


class TelemetryConfig(Config):
    """``config.telemetry``: ``tracing``, ``metrics`` and ``sentry`` settings."""

    section = "telemetry"

    tracing: TracingConfig
    metrics: MetricsConfig
    sentry: SentryConfig

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.tracing = TracingConfig.parse(r.child("tracing"))
        self.metrics = MetricsConfig.parse(r.child("metrics"))
        self.sentry = SentryConfig.parse(r.child("sentry"))

    def to_dict(self) -> dict[str, Any]:
        """``tracing``, ``metrics`` and ``sentry``, each left out while it has only defaults."""
        out: dict[str, Any] = {}
        for key, value, default in (
            ("tracing", self.tracing, TracingConfig()),
            ("metrics", self.metrics, MetricsConfig()),
            ("sentry", self.sentry, SentryConfig()),
        ):
            if value != default:
                out[key] = value.to_dict()
        return out

    def is_default(self) -> bool:
        return not self.to_dict()

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Monitoring. Prometheus metrics are served by a listener with the `prometheus` resource.
#telemetry:
#  metrics:
#    exporter: prometheus   # none, stdout, otlp or prometheus
#  tracing:
#    exporter: none         # none, stdout or otlp
#    endpoint: https://localhost:4318
#    propagators: [tracecontext, baggage]
#    sample_rate: 1.0
#  sentry:
#    dsn: https://public@sentry.example.com/1
#    environment: production
"""
