# SPDX-License-Identifier: AGPL-3.0-only
"""OpenTelemetry traces: ``telemetry.tracing`` (MAS's ``crates/cli/src/telemetry.rs``,
``init_tracer`` and ``propagator``).

- ``exporter``: ``none`` (the default: nothing is imported, every hook returns at once on
  :data:`ENABLED`), ``stdout`` (the SDK's console exporter, one span at a time, as MAS's
  simple exporter) or ``otlp`` (OTLP/HTTP protobuf to ``endpoint``, used as given, as
  MAS's ``with_endpoint``, batched).
- ``sample_rate``: parent-based, else this ratio of the trace ids (default 1.0).
- ``propagators``: how trace context is read from incoming requests and written on the
  homeserver calls: ``tracecontext`` (W3C ``traceparent``/``tracestate``), ``baggage``,
  ``jaeger`` (``uber-trace-id``, from the ``opentelemetry-propagator-jaeger`` package). MAS
  composes exactly the listed ones: an empty list (its default) reads and writes none.
- The resource names the service ``matrix-authentication-service`` (MAS's crate name, so
  dashboards keyed on it keep working) with ``service.version`` ours.

Spans, named as MAS names them: ``http.server.request`` per request (its OpenTelemetry name
``METHOD /route/template``), ``http.client.request`` per homeserver call (``traceparent``
written on it), one per database interaction (named by its ``runInteraction``
description) and ``job.run`` per job, linked to the span that scheduled it through the job's
``metadata`` (``trace_id``, ``span_id``, ``trace_flags``: MAS's ``JobMetadata``).

Context: the span of the request is made current in the copy of the context the listener
renders the request in (:meth:`~mas_twisted.app.listeners.ListenerRequest.process`); Twisted
runs each coroutine in a copy of the context it was started in
(``Deferred.fromCoroutine``/``ensureDeferred``), and the pool runs each transaction in a
copy of its caller's, so every database interaction and homeserver call made while
handling a request finds the request's span as the current one (``opentelemetry.context``
keeps it in a ``ContextVar``).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mas_twisted.api.errors import ConfigError
from mas_twisted.config.telemetry import DEFAULT_OTLP_ENDPOINT

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from mas_twisted.config.telemetry import TracingConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The service name in the resource: MAS's crate name.
SERVICE_NAME = "matrix-authentication-service"
#: The instrumentation scope of our spans.
SCOPE = "mas_twisted"

#: True once :func:`setup` installed an exporter; every hook checks it first.
ENABLED: bool = False

_tracer: Any = None
_provider: Any = None
_propagator: Any = None
_trace: Any = None  # the ``opentelemetry.trace`` module, once enabled
_context: Any = None  # the ``opentelemetry.context`` module, once enabled

_MISSING_EXTRA = (
    "telemetry.tracing.exporter is {exporter!r}, but the OpenTelemetry packages are not installed:"
    " pip install 'mas-twisted[otel]'"
)


def _build_propagator(names: tuple[str, ...]) -> Any:
    from opentelemetry.propagators.composite import CompositePropagator

    propagators: list[Any] = []
    for name in names:
        if name == "tracecontext":
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

            propagators.append(TraceContextTextMapPropagator())
        elif name == "baggage":
            from opentelemetry.baggage.propagation import W3CBaggagePropagator

            propagators.append(W3CBaggagePropagator())
        elif name == "jaeger":
            try:
                from opentelemetry.propagators.jaeger import JaegerPropagator
            except ImportError:
                raise ConfigError(
                    "telemetry.tracing.propagators: jaeger needs the opentelemetry-propagator-jaeger"
                    " package (pip install opentelemetry-propagator-jaeger)"
                ) from None
            propagators.append(JaegerPropagator())
        else:
            raise ConfigError(
                f"telemetry.tracing.propagators: unknown propagator {name!r}"
                " (expected tracecontext, baggage or jaeger)"
            )
    return CompositePropagator(propagators)


def setup(config: TracingConfig, *, version: str, exporter: Any = None) -> None:
    """Install the tracer ``config`` describes; nothing (not even an import) for ``none``.

    Args:
        exporter: a span exporter to use instead of the configured one, with a simple
            (synchronous) processor: tests pass the SDK's ``InMemorySpanExporter``.

    Raises:
        ConfigError: the ``otel`` extra is missing, or a propagator's package is.
    """
    global ENABLED, _tracer, _provider, _propagator, _trace, _context
    if config.exporter == "none" and exporter is None:
        ENABLED = False
        return
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import trace as otel_trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        raise ConfigError(_MISSING_EXTRA.format(exporter=config.exporter)) from None

    propagator = _build_propagator(config.propagators)
    sample_rate = 1.0 if config.sample_rate is None else config.sample_rate
    resource = Resource.create({"service.name": SERVICE_NAME, "service.version": version})
    # Our own provider, not the global one: a library (or Sentry's SDK) that sets the global
    # provider does not receive our spans, nor we theirs.
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_rate)))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif config.exporter == "stdout":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError(_MISSING_EXTRA.format(exporter=config.exporter)) from None
        endpoint = config.endpoint or DEFAULT_OTLP_ENDPOINT
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        logger.info("Exporting traces to %s (OTLP/HTTP)", endpoint)

    _provider = provider
    _tracer = provider.get_tracer(SCOPE, version)
    _propagator = propagator
    _trace = otel_trace
    _context = otel_context
    ENABLED = True


def shutdown() -> None:
    """Export what is buffered and stop (blocking: call it from a thread at shutdown)."""
    global ENABLED
    if _provider is not None:
        ENABLED = False
        _provider.shutdown()


# -- carriers ---------------------------------------------------------------------------------


class _TwistedHeadersGetter:
    """Reads a propagator's fields from ``twisted.web.http_headers.Headers``."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        values = carrier.getRawHeaders(key.encode("latin-1"))
        return [v.decode("latin-1") for v in values] if values else None

    def keys(self, carrier: Any) -> list[str]:
        return [k.decode("latin-1").lower() for k, _ in carrier.getAllRawHeaders()]


class _BytesDictSetter:
    """Writes a propagator's fields into treq's ``{bytes: [bytes]}`` headers."""

    def set(self, carrier: dict[bytes, list[bytes]], key: str, value: str) -> None:
        carrier[key.encode("latin-1")] = [value.encode("latin-1")]


_GETTER = _TwistedHeadersGetter()
_SETTER = _BytesDictSetter()


# -- HTTP server ------------------------------------------------------------------------------


def start_request_span(request: Any, listener: str) -> None:
    """Start the ``http.server.request`` span of ``request`` as the current span.

    Called in the context copy the request is rendered in (so it stays current for all the
    request runs); the parent is whatever the configured propagators read from the headers.
    The span ends when the response is finished (or the connection lost).
    """
    parent = _propagator.extract(request.requestHeaders, getter=_GETTER)
    method = request.method.decode("ascii", "replace")
    span = _tracer.start_span(
        method,
        context=parent,
        kind=_trace.SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": request.path.decode("utf-8", "replace"),
            "network.protocol.name": "http",
            "mas.listener": listener,
        },
    )
    request._otel_span = span
    _context.attach(_trace.set_span_in_context(span, parent))
    request.notifyFinish().addBoth(_end_request_span, request, span)


def set_route(request: Any, route: str | None) -> None:
    """Name the request's span after the route template that serves it (``http.route``)."""
    span = getattr(request, "_otel_span", None)
    if span is not None and route is not None:
        span.update_name(f"{request.method.decode('ascii', 'replace')} {route}")
        span.set_attribute("http.route", route)


def _end_request_span(result: Any, request: Any, span: Any) -> None:
    status = int(request.code)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR))
    if result is not None:  # a Failure: the connection was lost before the answer was sent
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, "connection lost"))
    span.end()


# -- database -----------------------------------------------------------------------------------


def db_span(desc: str, system: str, d: Deferred[T]) -> Deferred[T]:
    """A span for one database interaction (``desc``), a child of the current span, ended
    when ``d`` (the interaction's result) fires."""
    span = _tracer.start_span(
        desc,
        kind=_trace.SpanKind.CLIENT,
        attributes={"db.system": system, "db.operation.name": desc},
    )
    d.addBoth(_end_span, span)
    return d


def _end_span(result: T, span: Any) -> T:
    from twisted.python.failure import Failure

    if isinstance(result, Failure):
        span.record_exception(result.value)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(result.value).__name__))
    span.end()
    return result


# -- HTTP client (the homeserver) -----------------------------------------------------------------


def start_client_span(call: str, method: str, url: str, headers: dict[bytes, list[bytes]]) -> Any:
    """Start the ``http.client.request`` span of one homeserver call, a child of the current
    span, and write its context into ``headers`` with the configured propagators."""
    span = _tracer.start_span(
        f"{method} {call}",
        kind=_trace.SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url, "mas.homeserver.call": call},
    )
    _propagator.inject(headers, context=_trace.set_span_in_context(span), setter=_SETTER)
    return span


def end_client_span(d: Deferred[T], span: Any) -> None:
    """End ``span`` when ``d`` (``(status, body)`` or a failure) fires, with its status."""

    def _status(result: Any) -> Any:
        if isinstance(result, tuple):
            status = result[0]
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_status(_trace.Status(_trace.StatusCode.ERROR))
        return result

    d.addCallback(_status)
    d.addBoth(_end_span, span)


# -- jobs ---------------------------------------------------------------------------------------------


def job_metadata() -> dict[str, Any] | None:
    """The current span's context as a job's ``metadata`` (MAS's ``JobMetadata``), or
    ``None`` when tracing is off or no span is current."""
    if not ENABLED:
        return None
    ctx = _trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return {
        "trace_id": _trace.format_trace_id(ctx.trace_id),
        "span_id": _trace.format_span_id(ctx.span_id),
        "trace_flags": int(ctx.trace_flags),
    }


def _link_from_metadata(metadata: Any) -> list[Any]:
    if not isinstance(metadata, Mapping):
        return []
    try:
        trace_id = int(str(metadata.get("trace_id", "")), 16)
        span_id = int(str(metadata.get("span_id", "")), 16)
        flags = int(metadata.get("trace_flags", 0))
    except (TypeError, ValueError):
        return []
    ctx = _trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=_trace.TraceFlags(flags & 0xFF))
    return [_trace.Link(ctx)] if ctx.is_valid else []


def run_job(queue_name: str, job_id: str, metadata: Any, start: Callable[[], Deferred[T]]) -> Deferred[T]:
    """Run ``start()`` (which starts the job's coroutine) with a ``job.run`` span current,
    linked to the span that scheduled the job; the span ends when the job's Deferred fires.
    With tracing off, just ``start()``."""
    if not ENABLED:
        return start()
    span = _tracer.start_span(
        "job.run",
        context=_context.Context(),  # a root: the job is its own trace, linked to its origin
        kind=_trace.SpanKind.CONSUMER,
        links=_link_from_metadata(metadata),
        attributes={"job.queue.name": queue_name, "job.id": job_id},
    )

    def _start() -> Deferred[T]:
        _context.attach(_trace.set_span_in_context(span))
        return start()

    d = contextvars.copy_context().run(_start)
    d.addBoth(_end_span, span)
    return d


def record_error(description: str) -> None:
    """Mark the current span (a job's) as failed."""
    if ENABLED:
        _trace.get_current_span().set_status(_trace.Status(_trace.StatusCode.ERROR, description))
