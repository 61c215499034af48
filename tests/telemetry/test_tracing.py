# SPDX-License-Identifier: AGPL-3.0-only
"""OpenTelemetry traces (``mas_twisted/telemetry/tracing.py``, MAS's
``crates/cli/src/telemetry.rs``): a request through the production listener gets a server span
named by its route template, its database interaction and homeserver call are its children, the
homeserver sees ``traceparent`` with the request's trace id (when a propagator is configured: MAS
writes none by default), an incoming ``traceparent`` is the parent, and a job scheduled while
handling the request carries the trace context in its ``metadata`` and links its ``job.run``
span to it. Spans go to the SDK's in-memory exporter; the OTLP path is
``tests/integration/test_tracing_twistd.py``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from klein import Klein
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_trace_id
from treq.testing import StubTreq
from twisted.internet import task

from mas_twisted.app.listeners import ListenerResource, MountedApp
from mas_twisted.config.telemetry import TracingConfig
from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.modern import SynapseConnection
from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.telemetry import tracing
from tests.homeserver._helpers import Recorder
from tests.unittest import MasTestCase

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_PARENT = "00f067aa0ba902b7"


class _Probe:
    """A resource that does what a real endpoint does: one transaction, one homeserver call,
    one job scheduled in its own transaction."""

    app = Klein()

    def __init__(self, server: Any, connection: SynapseConnection):
        self.server = server
        self.connection = connection

    @app.route("/probe/<name>", methods=["GET"])
    async def probe(self, request: Any, name: str) -> bytes:
        def _txn(txn: LoggingTransaction) -> int:
            return 1

        await self.server.get_db_pool().runInteraction("probe_txn", _txn)
        await self.connection.query_user(name)
        await self.server.get_stores().queue.schedule_job("01JOBTRACE00000000000000AA", "probe-queue", {})
        return b"ok"


class TracingTestCase(MasTestCase):
    propagators: tuple[str, ...] = ("tracecontext",)

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.exporter = InMemorySpanExporter()
        tracing.setup(
            TracingConfig(exporter="otlp", propagators=self.propagators),
            version="test",
            exporter=self.exporter,
        )
        self.addCleanup(tracing.setup, TracingConfig(), version="test")
        self.recorder = Recorder()
        self.stub = StubTreq(self.recorder)
        transport = HttpTransport(reactor, client=self.stub)
        self.connection = SynapseConnection(
            "example.com", "http://synapse.test:8008/", "secret", transport, user_agent="test"
        )
        # treq's stub answers when flushed: flush it as the fake clock moves.
        self.flusher = task.LoopingCall(self.stub.flush)
        self.flusher.clock = reactor
        self.flusher.start(0.05)
        self.addCleanup(self.flusher.stop)
        listener = server.config.http.listeners[0]
        resource = ListenerResource(listener, [MountedApp(_Probe(server, self.connection))])
        self.site = self.make_listener_site(resource, listener)

    def request_probe(self, headers: list[tuple[str, str]] = []) -> Any:  # noqa: B006
        from tests.server import make_request

        self.recorder.answer(
            200,
            {
                "user_id": "@alice:example.com",
                "display_name": None,
                "avatar_url": None,
                "is_suspended": False,
                "is_deactivated": False,
            },
        )
        channel = make_request(self.reactor, self.site, "GET", "/probe/alice", headers=headers)
        self.assertEqual(channel.code, 200, channel.text_body if hasattr(channel, "text_body") else None)
        return channel

    def spans(self) -> dict[str, Any]:
        return {span.name: span for span in self.exporter.get_finished_spans()}

    def test_request_db_and_homeserver_share_the_trace(self) -> None:
        self.request_probe()
        spans = self.spans()
        server = spans["GET /probe/<name>"]
        self.assertEqual(server.kind, SpanKind.SERVER)
        self.assertEqual(server.attributes["http.route"], "/probe/<name>")
        self.assertEqual(server.attributes["http.response.status_code"], 200)
        self.assertEqual(server.attributes["mas.listener"], "web")
        db = spans["probe_txn"]
        client = spans["GET query_user"]
        trace_id = server.context.trace_id
        self.assertEqual(db.context.trace_id, trace_id)
        self.assertEqual(db.parent.span_id, server.context.span_id)
        self.assertEqual(client.context.trace_id, trace_id)
        self.assertEqual(client.parent.span_id, server.context.span_id)
        self.assertEqual(client.attributes["http.response.status_code"], 200)
        # The homeserver saw the client span's context in traceparent.
        (hs_request,) = self.recorder.requests
        (traceparent,) = hs_request["headers"]["traceparent"]
        version, tid, sid, flags = traceparent.split("-")
        self.assertEqual(tid, format_trace_id(trace_id))
        self.assertEqual(int(sid, 16), client.context.span_id)
        self.assertEqual(int(flags, 16) & 1, 1)  # sampled

    def test_incoming_traceparent_is_the_parent(self) -> None:
        self.request_probe(headers=[("traceparent", f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01")])
        server = self.spans()["GET /probe/<name>"]
        self.assertEqual(format_trace_id(server.context.trace_id), INCOMING_TRACE)
        self.assertEqual(server.parent.span_id, int(INCOMING_PARENT, 16))
        self.assertTrue(server.parent.is_remote)
        (hs_request,) = self.recorder.requests
        self.assertIn(INCOMING_TRACE, hs_request["headers"]["traceparent"][0])

    def test_unknown_route_is_named_by_its_method(self) -> None:
        from tests.server import make_request

        channel = make_request(self.reactor, self.site, "GET", "/nowhere")
        self.assertEqual(channel.code, 404)
        (span,) = self.exporter.get_finished_spans()
        self.assertEqual(span.name, "GET")
        self.assertNotIn("http.route", span.attributes)

    def test_job_metadata_carries_the_trace_and_the_run_links_to_it(self) -> None:
        self.request_probe()
        server = self.spans()["GET /probe/<name>"]
        job = self.get_success(self.server.get_stores().queue.get_job("01JOBTRACE00000000000000AA"))
        assert job is not None
        self.assertEqual(job.metadata["trace_id"], format_trace_id(server.context.trace_id))
        self.assertEqual(int(job.metadata["span_id"], 16), server.context.span_id)
        self.assertEqual(job.metadata["trace_flags"] & 1, 1)  # sampled

        from twisted.internet import defer

        seen: list[Any] = []

        async def _run() -> None:
            seen.append(tracing.job_metadata())
            tracing.record_error("boom")

        self.get_success(
            tracing.run_job("probe-queue", job.id, job.metadata, lambda: defer.ensureDeferred(_run()))
        )
        run = self.spans()["job.run"]
        self.assertEqual(run.attributes["job.queue.name"], "probe-queue")
        (link,) = run.links
        self.assertEqual(link.context.trace_id, server.context.trace_id)
        self.assertEqual(link.context.span_id, server.context.span_id)
        # The job is its own trace, and the span is current while it runs.
        self.assertNotEqual(run.context.trace_id, server.context.trace_id)
        self.assertEqual(seen[0]["span_id"], f"{run.context.span_id:016x}")
        self.assertEqual(run.status.description, "boom")


class NoPropagatorTestCase(TracingTestCase):
    """MAS's default, ``propagators: []``: spans, but no trace context read or written."""

    propagators = ()

    def test_request_db_and_homeserver_share_the_trace(self) -> None:
        self.request_probe(headers=[("traceparent", f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01")])
        spans = self.spans()
        server = spans["GET /probe/<name>"]
        self.assertIsNone(server.parent)
        self.assertEqual(spans["GET query_user"].context.trace_id, server.context.trace_id)
        (hs_request,) = self.recorder.requests
        self.assertNotIn("traceparent", hs_request["headers"])

    def test_incoming_traceparent_is_the_parent(self) -> None:
        pass  # nothing is read without a propagator (tested above)


class JaegerPropagatorTestCase(TracingTestCase):
    propagators = ("jaeger",)

    def test_request_db_and_homeserver_share_the_trace(self) -> None:
        self.request_probe()
        server = self.spans()["GET /probe/<name>"]
        (hs_request,) = self.recorder.requests
        self.assertNotIn("traceparent", hs_request["headers"])
        (uber,) = hs_request["headers"]["uber-trace-id"]
        self.assertEqual(int(uber.split(":")[0], 16), server.context.trace_id)

    def test_incoming_traceparent_is_the_parent(self) -> None:
        pass  # W3C headers are not read with only jaeger configured


class OffTestCase(MasTestCase):
    def test_off_imports_nothing_and_records_nothing(self) -> None:
        """``exporter: none`` (the default): no SDK module is imported by the whole service."""
        code = (
            "import sys\n"
            "from types import SimpleNamespace\n"
            "from mas_twisted.config.telemetry import SentryConfig, TracingConfig\n"
            "import mas_twisted.app.service, mas_twisted.queue.worker, mas_twisted.server\n"
            "from mas_twisted.telemetry import setup_telemetry, tracing, sentry\n"
            "setup_telemetry(SimpleNamespace(tracing=TracingConfig(), sentry=SentryConfig()), version='x')\n"
            "assert not tracing.ENABLED and not sentry.ENABLED\n"
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'sentry_sdk'))))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "[]", out.stderr)
        self.assertFalse(tracing.ENABLED)
        self.assertIsNone(tracing.job_metadata())
