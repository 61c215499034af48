# SPDX-License-Identifier: AGPL-3.0-only
"""Running ``mas-cli`` as an operator does: a subprocess against a migrated database (SQLite by
default, PostgreSQL with ``MAS_TEST_POSTGRES_DSN``), the pytest fixtures that make one, and a small
stand-in for Synapse's ``/_synapse/mas/is_localpart_available`` (the real Synapse is in
``tests/integration/test_manage_users.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.utils import EmptyDatabase

ENCRYPTION_KEY = "0123456789abcdef" * 4


def mas_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAS_")}
    return subprocess.run(
        [sys.executable, "-m", "mas_twisted.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin if stdin is not None else "",
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmptyDatabase]:
    database = EmptyDatabase(str(tmp_path / "db"))
    yield database
    database.cleanup()


class FakeHomeserver:
    """Answers ``GET /_synapse/mas/is_localpart_available`` as Synapse does: 200 for a free
    name, 400 ``M_USER_IN_USE`` for one in :attr:`taken`; records the localparts asked about."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.asked: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/_synapse/mas/is_localpart_available":
                    self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
                    return
                if self.headers.get("Authorization") != "Bearer shared-secret":
                    self._answer(403, {"errcode": "M_FORBIDDEN", "error": "Forbidden"})
                    return
                localpart = parse_qs(url.query)["localpart"][0]
                fake.asked.append(localpart)
                if localpart in fake.taken:
                    self._answer(400, {"errcode": "M_USER_IN_USE", "error": "User ID already taken."})
                else:
                    self._answer(200, {})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def homeserver() -> Iterator[FakeHomeserver]:
    fake = FakeHomeserver()
    yield fake
    fake.stop()


def closed_port() -> int:
    """A local port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_matrix(path: str, **matrix: Any) -> None:
    data = yaml.safe_load(Path(path).read_text())
    data["matrix"].update(matrix)
    Path(path).write_text(yaml.safe_dump(data))


@pytest.fixture
def config(tmp_path: Path, db: EmptyDatabase, homeserver: FakeHomeserver) -> str:
    data: dict[str, Any] = {
        "database": db.config_section,
        "secrets": {"encryption": ENCRYPTION_KEY},
        "matrix": {"homeserver": "example.com", "secret": "shared-secret", "endpoint": homeserver.endpoint},
        "passwords": {"schemes": [{"version": 1, "algorithm": "argon2id"}]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    result = mas_cli("database", "migrate", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return str(path)
