# SPDX-License-Identifier: AGPL-3.0-only
"""A small reverse proxy for tests, routing as contrib/nginx/matrix-with-mas-twisted.conf does:
paths matching the sample's compatibility ``location`` regular expression (read from the
sample itself, so the test checks what operators copy) go to mas-twisted, everything else to
Synapse. Requests are forwarded one by one with ``http.client``; enough for a Matrix client."""

from __future__ import annotations

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SAMPLE = Path(__file__).resolve().parents[2] / "contrib" / "nginx" / "matrix-with-mas-twisted.conf"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
}


def compat_location() -> re.Pattern[str]:
    """The regular expression of the sample's ``location ~ …`` block that proxies to mas_twisted."""
    text = SAMPLE.read_text()
    for match in re.finditer(r"location ~ (\S+) \{([^}]*)\}", text):
        if "proxy_pass http://mas_twisted" in match.group(2):
            return re.compile(match.group(1))
    raise AssertionError(f"no location proxying to mas_twisted in {SAMPLE}")


class RoutingProxy:
    def __init__(self, mas_base: str, synapse_base: str):
        self.pattern = compat_location()
        self.routes = {"mas": urlsplit(mas_base), "synapse": urlsplit(synapse_base)}
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                path_only = self.path.split("?", 1)[0]
                target = "mas" if proxy.pattern.search(path_only) else "synapse"
                proxy.seen.append((target, f"{self.command} {path_only}"))
                url = proxy.routes[target]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for key, value in resp.getheaders():
                        if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> RoutingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
