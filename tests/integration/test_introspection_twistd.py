# SPDX-License-Identifier: AGPL-3.0-only
"""Introspection in the real ``twistd mas`` process, as Synapse calls it: answers over TCP
from the database pool's threads, and the activity tracker's last flush when the process
stops (SIGTERM), so that no recorded use is lost. Tokens are minted with bench/introspect's
``mint.py``, which this also checks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.integration._harness import PostgresDatabase, TwistdProcess, base_config, free_port, request

ROOT = Path(__file__).resolve().parents[2]

ENGINES = ["sqlite"] + (["postgres"] if os.environ.get("MAS_TEST_POSTGRES_DSN") else [])


@pytest.fixture(params=ENGINES, name="database_uri")
def _database_uri(request: Any, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mas.db'}"
    else:
        db = PostgresDatabase()
        try:
            yield db.uri
        finally:
            db.drop()


def _query(database_uri: str, sql: str) -> list[tuple[Any, ...]]:
    from mas_twisted.storage.engines import create_engine
    from tests.utils import make_db_config

    conn = create_engine(make_db_config({"uri": database_uri})).connect()
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        conn.close()


def _introspect(port: int, token: str, authorization: str) -> Any:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/oauth2/introspect",
            body=urlencode({"token": token, "token_type_hint": "access_token"}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": authorization,
                "X-MAS-Supports-Device-Id": "1",
            },
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _healthy(port: int) -> bool:
    response = request("GET", "/health", port=port)
    assert response.status == 200, response.body
    return True


def test_synapse_introspection_and_flush_on_shutdown(tmp_path: Path, database_uri: str) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.introspect.mint import mint_tokens

    port = free_port()
    config = base_config(tmp_path, database_uri=database_uri)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": "oauth"}, {"name": "health"}],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ],
    }
    secret = config["matrix"]["secret"]
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    tokens_path = tmp_path / "tokens.txt"
    mint_tokens(config_path, 3, tokens_path, "oauth")
    tokens = tokens_path.read_text().split()
    assert len(tokens) == 3

    process = TwistdProcess(tmp_path, config).start()
    try:
        process.wait_until(lambda: _healthy(port))
        status, body = _introspect(port, tokens[0], f"Bearer {secret}")
        assert status == 200, body
        reply = json.loads(body)
        assert reply["active"] is True
        assert reply["username"] == "bench"
        assert reply["token_type"] == "access_token"
        scope = reply["scope"].split(" ")
        assert "urn:matrix:client:api:*" in scope and "urn:matrix:org.matrix.msc2967.client:api:*" in scope
        devices = [t for t in scope if t.startswith("urn:matrix:client:device:")]
        assert len(devices) == 1
        assert (
            devices[0].replace("urn:matrix:client:device:", "urn:matrix:org.matrix.msc2967.client:device:")
            in scope
        )
        # Several at once (they share one query), and a wrong secret.
        for token in tokens:
            assert json.loads(_introspect(port, token, f"Bearer {secret}")[1])["active"] is True
        status, body = _introspect(port, tokens[1], "Bearer not-the-secret")
        assert status == 401 and json.loads(body)["error"] == "access_denied"
    finally:
        assert process.stop() == 0, process.output()

    # The last flush ran during the orderly shutdown.
    used = _query(database_uri, "SELECT COUNT(*) FROM oauth2_access_tokens WHERE first_used_at IS NOT NULL")
    assert used[0][0] == 3, process.output()
    active = _query(database_uri, "SELECT COUNT(*) FROM oauth2_sessions WHERE last_active_at IS NOT NULL")
    assert active[0][0] == 3
