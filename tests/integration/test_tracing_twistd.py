# SPDX-License-Identifier: AGPL-3.0-only
"""Traces from a real ``twistd mas`` (issue 17, "Spans exported"): ``telemetry.tracing.exporter:
otlp`` pointed at an OTLP/HTTP collector started by the test (``POST /v1/traces``, protobuf
decoded with ``opentelemetry-proto``), ``propagators: [tracecontext]``.

A legacy password login (``POST /_matrix/client/v3/login``) sent with a W3C ``traceparent``
is one trace: the request's server span (the caller's span as its parent), the database
interactions it runs and its homeserver call (``upsert_device``) all carry the caller's trace
id, and the homeserver received ``traceparent`` naming that trace and the client span.

The homeserver is a recording HTTP server, not the shared Synapse of ``_synapse.py``: what is
checked is the header as it arrives on the homeserver's socket, and Synapse logs neither request
headers nor the trace context it was given, so a real Synapse would show nothing more here (its
answers to ``upsert_device`` are tested in ``test_homeserver_synapse.py``). Run on both engines:
the database spans come from each engine's pool.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    eventually,
    free_port,
    mas_cli,
)
from tests.integration._harness import request as http_request

PASSWORD = "correct horse battery staple 42"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


class _Recording(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _CollectorHandler(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: every span of every export, decoded."""

    server: _Recording

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        export = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.server.received.append(
                            {
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "attributes": {a.key: a.value for a in span.attributes},
                                "resource": resource,
                            }
                        )
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


class _HomeserverHandler(BaseHTTPRequestHandler):
    """Synapse's ``/_synapse/mas`` API as far as a login needs it: every call succeeds."""

    server: _Recording

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        self.rfile.read(length)
        with self.server.lock:
            self.server.received.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            )
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    collector = _Recording(_CollectorHandler)
    homeserver = _Recording(_HomeserverHandler)
    db = PostgresDatabase() if request.param == "postgres" else None
    port = free_port()
    config = base_config(tmp_path, database_uri=db.uri if db else None)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": n} for n in ("discovery", "oauth", "compat", "health")],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ],
    }
    config["matrix"] = {
        "kind": "synapse",
        "homeserver": "example.com",
        "endpoint": homeserver.url,
        "secret": "a-secret-shared-with-the-homeserver",
    }
    config["telemetry"] = {
        "tracing": {
            "exporter": "otlp",
            "endpoint": collector.url + "v1/traces",
            "propagators": ["tracecontext"],
        }
    }
    proc = TwistdProcess(tmp_path, config).start()
    try:
        proc.wait_until(lambda: http_request("GET", "/health", port=port))
        yield {
            "engine": request.param,
            "port": port,
            "proc": proc,
            "collector": collector,
            "homeserver": homeserver,
            "tmp": tmp_path,
        }
    finally:
        proc.stop()
        collector.shutdown()
        homeserver.shutdown()
        if db is not None:
            db.drop()


def test_login_request_db_and_homeserver_call_share_the_callers_trace(stack: dict[str, Any]) -> None:
    out = mas_cli(
        stack["tmp"],
        "manage",
        "register-user",
        "--yes",
        "alice",
        "-p",
        PASSWORD,
        "-c",
        str(stack["proc"].config_path),
    )
    assert out.returncode == 0, (out.stdout, out.stderr)

    login = requests.post(
        f"http://127.0.0.1:{stack['port']}/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": PASSWORD,
            "device_id": "TRACEDDEVICE",
        },
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    # The spans are batched; stopping the server flushes them (TelemetryService).
    assert stack["proc"].stop() == 0, stack["proc"].output()

    collector: _Recording = stack["collector"]
    spans = eventually(
        lambda: [s for s in list(collector.received) if s["trace_id"] == CALLER_TRACE],
        what="spans of the caller's trace at the collector",
    )
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)

    assert "POST /_matrix/client/<version>/login" in by_name, sorted(by_name)
    (server,) = by_name["POST /_matrix/client/<version>/login"]
    assert server["parent_span_id"] == CALLER_SPAN
    assert server["attributes"]["http.route"].string_value == "/_matrix/client/<version>/login"
    assert server["attributes"]["http.response.status_code"].int_value == 200
    assert server["resource"]["service.name"] == "matrix-authentication-service"

    db_spans = [s for s in spans if "db.system" in s["attributes"]]
    assert db_spans, sorted(by_name)
    assert {s["attributes"]["db.system"].string_value for s in db_spans} == {stack["engine"]}
    assert all(s["parent_span_id"] == server["span_id"] for s in db_spans)

    (client,) = by_name["POST upsert_device"]
    assert client["parent_span_id"] == server["span_id"]

    homeserver: _Recording = stack["homeserver"]
    upserts = [r for r in homeserver.received if r["path"].startswith("/_synapse/mas/upsert_device")]
    assert len(upserts) == 1, homeserver.received
    assert upserts[0]["headers"]["traceparent"].split("-")[1:3] == [CALLER_TRACE, client["span_id"]]
