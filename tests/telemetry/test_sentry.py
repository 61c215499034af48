# SPDX-License-Identifier: AGPL-3.0-only
"""Error reports to Sentry (``mas_twisted/telemetry/sentry.py``; MAS's ``sentry::init`` in
``crates/cli/src/main.rs``): with ``telemetry.sentry.dsn`` set, an unhandled error while
handling a request (answered 500, logged with its traceback) reaches the Sentry ingestion
endpoint the DSN names as an event carrying the exception type and the configured environment.
The endpoint is a real HTTP server started by the test; the SDK sends to it over a socket.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from klein import Klein

from mas_twisted.app.listeners import ListenerResource, MountedApp
from mas_twisted.config.telemetry import SentryConfig
from mas_twisted.rest._base import install_json_error_handlers
from mas_twisted.telemetry import sentry
from tests.server import make_request
from tests.unittest import MasTestCase


class ProbeFailure(Exception):
    pass


class _Failing:
    app = Klein()
    install_json_error_handlers(app)

    @app.route("/boom", methods=["GET"])
    async def boom(self, request: Any) -> bytes:
        raise ProbeFailure("the probe failed")


class _Ingest(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        items = []
        for line in body.split(b"\n"):
            try:
                items.append(json.loads(line))
            except ValueError:
                continue
        self.server.envelopes.append({"path": self.path, "items": items})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


class SentryTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.ingest = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
        self.ingest.envelopes = []  # type: ignore[attr-defined]
        threading.Thread(target=self.ingest.serve_forever, daemon=True).start()
        self.addCleanup(self.ingest.server_close)
        self.addCleanup(self.ingest.shutdown)
        port = self.ingest.server_address[1]
        sentry.setup(
            SentryConfig(dsn=f"http://publickey@127.0.0.1:{port}/42", environment="testing"),
            version="9.9.9",
        )
        self.addCleanup(sentry.shutdown)
        listener = server.config.http.listeners[0]
        self.site = self.make_listener_site(ListenerResource(listener, [MountedApp(_Failing())]), listener)

    def test_unhandled_error_is_reported(self) -> None:
        self.assertTrue(sentry.ENABLED)
        channel = make_request(self.reactor, self.site, "GET", "/boom")
        self.assertEqual(channel.code, 500)
        sentry.shutdown()  # sends what is queued
        deadline = time.monotonic() + 10
        events: list[dict[str, Any]] = []
        while not events and time.monotonic() < deadline:
            for envelope in list(self.ingest.envelopes):  # type: ignore[attr-defined]
                self.assertEqual(envelope["path"], "/api/42/envelope/")
                events += [item for item in envelope["items"] if "exception" in item]
            time.sleep(0.05)
        self.assertTrue(events, self.ingest.envelopes)  # type: ignore[attr-defined]
        (event,) = events
        types = [value["type"] for value in event["exception"]["values"]]
        self.assertIn("ProbeFailure", types)
        self.assertEqual(event["environment"], "testing")
        self.assertEqual(event["release"], "9.9.9")


class SentryOffTestCase(MasTestCase):
    def test_no_dsn_is_off(self) -> None:
        sentry.setup(SentryConfig(), version="x")
        self.assertFalse(sentry.ENABLED)
