# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli doctor`` against a real stack: a real Synapse delegating to a real ``twistd mas``
(``mas_with_synapse``), the reverse proxy of the nginx sample (``RoutingProxy``) and a
``.well-known/matrix/client`` server sending clients to the proxy. Healthy: exit 0; each
broken piece: its line and exit 1. One Synapse for the module (starting one is slow)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration._harness import free_port, mas_cli
from tests.integration._proxy import RoutingProxy
from tests.integration._synapse import mas_with_synapse


class WellKnown:
    """Serves ``/.well-known/matrix/client`` with :attr:`base_url`."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = json.dumps({"m.homeserver": {"base_url": owner.base_url}}).encode()
                self.send_response(200 if self.path == "/.well-known/matrix/client" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stack:
    def __init__(
        self, tmp: Path, synapse: Any, config: dict[str, Any], proxy: RoutingProxy, well_known: WellKnown
    ):
        self.tmp, self.synapse, self.config, self.proxy, self.well_known = (
            tmp,
            synapse,
            config,
            proxy,
            well_known,
        )

    def doctor(self, **changes: Any) -> tuple[int, str]:
        """Run ``mas-cli doctor`` with the service's configuration, sections replaced by ``changes``."""
        config = {**self.config, **changes}
        path = self.tmp / "doctor.yaml"
        path.write_text(yaml.safe_dump(config))
        result = mas_cli(self.tmp, "doctor", "-c", str(path), "--well-known-base", self.well_known.url)
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        return result.returncode, output


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"doctor-{request.param}")
    resources = ("discovery", "human", "oauth", "compat", "health")
    with mas_with_synapse(tmp, request.param, resources=resources) as (synapse, _proc, config):
        proxy = RoutingProxy(synapse.mas_endpoint, synapse.base_url).start()
        well_known = WellKnown(proxy.base_url + "/")
        try:
            yield Stack(tmp, synapse, config, proxy, well_known)
        finally:
            well_known.stop()
            proxy.stop()


def line(output: str, name: str) -> str:
    found = [text for text in output.splitlines() if f" {name}:" in text]
    assert found, output
    return found[0]


def test_healthy_stack(stack: Stack) -> None:
    code, output = stack.doctor()
    assert code == 0, output
    for name in (
        "discovery",
        "client well-known",
        "homeserver",
        "token check",
        "shared secret",
        "compat login",
    ):
        assert line(output, name).startswith("✅"), output
    assert "❌" not in output, output
    assert "no problem found" in output
    # The compat login went through the proxy to us.
    assert ("mas", "GET /_matrix/client/v3/login") in stack.proxy.seen


def test_wrong_secret(stack: Stack) -> None:
    code, output = stack.doctor(matrix={**stack.config["matrix"], "secret": "not-the-shared-secret"})
    assert code == 1, output
    assert line(output, "shared secret").startswith("❌"), output
    assert "refused matrix.secret" in line(output, "shared secret")
    assert "not-the-shared-secret" not in output


def test_wrong_endpoint(stack: Stack) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"
    code, output = stack.doctor(matrix={**stack.config["matrix"], "endpoint": closed})
    assert code == 1, output
    assert line(output, "homeserver").startswith("❌ homeserver: cannot reach the homeserver"), output
    assert " shared secret:" not in output


def test_proxy_not_routing_compat(stack: Stack) -> None:
    # Clients sent straight to Synapse: a delegating Synapse does not serve /login (404).
    stack.well_known.base_url = stack.synapse.base_url
    try:
        code, output = stack.doctor()
    finally:
        stack.well_known.base_url = stack.proxy.base_url + "/"
    assert code == 1, output
    assert line(output, "compat login").startswith("❌"), output
    assert "answered 404" in line(output, "compat login")
    assert "reverse-proxy.html" in line(output, "compat login")


def test_smtp_down(stack: Stack) -> None:
    port = free_port()
    code, output = stack.doctor(
        email={"transport": "smtp", "mode": "plain", "hostname": "localhost", "port": port}
    )
    assert code == 1, output
    assert line(output, "email").startswith("❌"), output
    assert f"localhost:{port}" in line(output, "email")


def test_synapse_not_delegating(stack: Stack) -> None:
    # The well-known sends clients to a Synapse with its own logins (no
    # matrix_authentication_service section): no auth_metadata, and its own /login.
    from tests.integration._synapse import SynapseServer

    workdir = stack.tmp / "own-logins"
    workdir.mkdir(exist_ok=True)
    other = SynapseServer(workdir, delegate=False).start()
    stack.well_known.base_url = other.base_url
    try:
        code, output = stack.doctor()
    finally:
        stack.well_known.base_url = stack.proxy.base_url + "/"
        other.stop()
    assert code == 1, output
    metadata = [text for text in output.splitlines() if " auth metadata:" in text]
    assert len(metadata) == 2 and all(text.startswith("❌") for text in metadata), output
    assert "matrix_authentication_service" in metadata[0]
    assert "answered by something else" in line(output, "compat login"), output
