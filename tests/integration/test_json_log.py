# SPDX-License-Identifier: AGPL-3.0-only
"""A real ``twistd mas`` with ``MAS_LOG_FORMAT=json`` writes the access line of a request as a
JSON object with the request-log fields (MAS's ``docs/reference/request-log.md``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration._harness import TwistdProcess, base_config, eventually, free_port, request


def _objects(output: str) -> list[dict]:
    """The JSON objects on twistd's lines (after its ``<time> [<namespace>#<level>] `` prefix)."""
    found = []
    for line in output.splitlines():
        start = line.find("] {")
        if start != -1:
            found.append(json.loads(line[start + 2 :]))
    return found


def test_json_access_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAS_LOG_FORMAT", "json")
    port = free_port()
    config = base_config(tmp_path)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [
            {"name": "web", "resources": [{"name": "health"}], "binds": [{"host": "127.0.0.1", "port": port}]}
        ],
    }
    proc = TwistdProcess(tmp_path, config).start()
    try:
        proc.wait_until(lambda: request("GET", "/health?token=secret", port=port))
        access = eventually(
            lambda: [o for o in _objects(proc.output()) if o.get("http_path") == "/health"],
            what="access line",
        )[0]
    finally:
        assert proc.stop() == 0, proc.output()
    assert access["logger"] == "mas_twisted.access.web"
    assert access["http_method"] == "GET" and access["http_status"] == 200
    assert access["request_id"].startswith("GET-")
    assert access["client_address"] == "127.0.0.1"
    assert access["sent_bytes"] == 2 and access["elapsed_ms"] >= 0
    assert "secret" not in proc.output()
    assert any(o["logger"] == "mas_twisted.app.service" for o in _objects(proc.output()))
