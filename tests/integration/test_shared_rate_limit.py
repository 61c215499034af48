# SPDX-License-Identifier: AGPL-3.0-only
"""Rate limits shared by two real server processes on one PostgreSQL database (beyond MAS,
whose limits live in each process: N processes behind a load balancer allow N times the limit).

Two ``twistd mas`` processes on one database, the requests of one client IP alternating between
them as a round-robin load balancer would send them: compat password logins
(``POST /_matrix/client/v3/login``, the ``rate_limiting.login.per_ip`` limit) with a wrong
password, so that each allowed attempt answers 403 and a limited one 429 ``M_LIMIT_EXCEEDED``.
On PostgreSQL the number answered before the first 429 is the configured burst, not twice it;
on SQLite (one process per database is the supported deployment, the limits stay in memory)
each process keeps its own limit, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    free_port,
    mas_cli,
    request,
)

BURST = 4
USER = "rita"
PASSWORD = "correct horse battery staple"


def _login(port: int, password: str) -> tuple[int, dict[str, Any]]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps(
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": USER},
                "password": password,
            }
        )
        conn.request(
            "POST", "/_matrix/client/v3/login", body=body, headers={"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


class TwoServers:
    def __init__(self, tmp: Path, engine: str):
        self.pg = PostgresDatabase() if engine == "postgres" else None
        self.ports = [free_port(), free_port()]
        self.config = base_config(tmp, database_uri=self.pg.uri if self.pg else None)
        self.config["rate_limiting"] = {"login": {"per_ip": {"burst": BURST, "per_second": 0.0001}}}
        self.tmp = tmp
        self.servers: list[TwistdProcess] = []

    def config_for(self, port: int) -> dict[str, Any]:
        config = json.loads(json.dumps(self.config))
        config["http"] = {
            "public_base": f"http://127.0.0.1:{self.ports[0]}/",
            "listeners": [
                {
                    "name": "web",
                    "resources": [{"name": n} for n in ("discovery", "human", "oauth", "compat", "health")],
                    "binds": [{"host": "127.0.0.1", "port": port}],
                }
            ],
        }
        return config

    def setup(self) -> None:
        config_path = self.tmp / "setup.yaml"
        config_path.write_text(yaml.safe_dump(self.config_for(self.ports[0])))
        out = mas_cli(self.tmp, "database", "migrate", "-c", str(config_path))
        assert out.returncode == 0, out.stderr
        out = mas_cli(
            self.tmp,
            "manage",
            "register-user",
            USER,
            "-p",
            PASSWORD,
            "-y",
            "--skip-homeserver-check",
            "-c",
            str(config_path),
        )
        assert out.returncode == 0, out.stderr
        for i, port in enumerate(self.ports):
            workdir = self.tmp / f"server{i}"
            workdir.mkdir()
            # One worker is enough; the second process serves HTTP only.
            args = [] if i == 0 else ["--no-worker"]
            server = TwistdProcess(workdir, self.config_for(port), args=args).start()
            self.servers.append(server)
        for server, port in zip(self.servers, self.ports, strict=True):
            server.wait_until(lambda port=port: request("GET", "/health", port=port))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.pg is not None:
            self.pg.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def servers(request: Any, tmp_path: Path) -> Iterator[TwoServers]:
    deployment = TwoServers(tmp_path, request.param)
    try:
        deployment.setup()
        yield deployment
    finally:
        deployment.stop()


def _answers(servers: TwoServers, count: int) -> list[tuple[int, int, str | None]]:
    """``count`` wrong-password logins alternating between the two servers: (server, status, errcode)."""
    out = []
    for n in range(count):
        which = n % 2
        status, body = _login(servers.ports[which], "wrong password")
        out.append((which, status, body.get("errcode")))
    return out


def test_the_login_limit_holds_across_two_processes(servers: TwoServers) -> None:
    answers = _answers(servers, 3 * BURST)
    statuses = [status for _which, status, _code in answers]
    assert set(statuses) <= {403, 429}, answers
    first_limited = statuses.index(429)
    limited = [code for _w, status, code in answers if status == 429]
    assert set(limited) == {"M_LIMIT_EXCEEDED"}, answers
    if servers.pg is not None:
        # Shared: the configured burst in all, whichever process answered.
        assert first_limited == BURST, answers
        assert statuses[BURST:] == [429] * (2 * BURST), answers
        assert {which for which, status, _c in answers if status == 429} == {0, 1}
    else:
        # In memory per process: each of the two allows its own burst.
        assert statuses.count(403) == 2 * BURST, answers
        assert statuses[2 * BURST :] == [429] * BURST, answers
    # A refused attempt costs nothing: the right password is refused too (the IP is out of
    # cells), on both servers, rather than being let through by a lucky counter.
    for port in servers.ports:
        status, body = _login(port, PASSWORD)
        assert (status, body.get("errcode")) == (429, "M_LIMIT_EXCEEDED"), body
