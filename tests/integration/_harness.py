# SPDX-License-Identifier: AGPL-3.0-only
"""Running the real ``twistd mas`` in a subprocess and talking to it over real sockets."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

VENV_BIN = Path(sys.executable).parent


def venv_script(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        raise AssertionError(
            f"{path} is missing: install the project into this virtualenv first (scripts/setup.sh test)"
        )
    return str(path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_dsn() -> str:
    dsn = os.environ.get("MAS_TEST_POSTGRES_DSN")
    if not dsn:
        raise AssertionError(
            "MAS_TEST_POSTGRES_DSN is not set: the PostgreSQL end-to-end tests need a server "
            "(scripts/test.sh sets postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    return dsn


class PostgresDatabase:
    """A throw-away database on the test server, dropped on :meth:`drop`."""

    def __init__(self) -> None:
        import psycopg2
        from psycopg2.extensions import make_dsn, parse_dsn

        self._psycopg2 = psycopg2
        self.admin_dsn = postgres_dsn()
        self.name = "mas_e2e_" + uuid.uuid4().hex[:12]
        conn = psycopg2.connect(self.admin_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.name}"')
        conn.close()
        params = parse_dsn(self.admin_dsn)
        params["dbname"] = self.name
        self.dsn = make_dsn(**params)
        user = params.get("user", "postgres")
        host = params.get("host", "127.0.0.1")
        port = params.get("port", "5432")
        password = params.get("password")
        auth = f"{user}:{password}@" if password else f"{user}@"
        self.uri = f"postgresql://{auth}{host}:{port}/{self.name}"

    def drop(self) -> None:
        conn = self._psycopg2.connect(self.admin_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.name,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        conn.close()


def base_config(tmp: Path, *, database_uri: str | None = None) -> dict[str, Any]:
    """A complete configuration from ``mas-cli config generate``, pointed at ``tmp``."""
    out = subprocess.run(
        [venv_script("mas-cli"), "config", "generate"], capture_output=True, text=True, timeout=120, cwd=tmp
    )
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    config["database"] = {"uri": database_uri or f"sqlite:///{tmp / 'mas.db'}"}
    # No homeserver runs beside these tests: ``synapse_read_only`` (a MAS setting for trial
    # rollouts) makes every write to it a no-op, so that token issue (which creates the
    # device on the homeserver) and the provisioning jobs do not depend on one. The tests of
    # the homeserver integration run a real Synapse and use ``synapse``.
    config["matrix"]["kind"] = "synapse_read_only"
    return config


class TwistdProcess:
    """``twistd --nodaemon mas -c config.yaml`` in a folder of its own."""

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any],
        *,
        args: Sequence[str] = (),
        wrapper: Sequence[str] = (),
        pidfile: str = "",
    ):
        self.workdir = workdir
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "twistd.out"
        self.argv = [
            *wrapper,
            venv_script("twistd"),
            "--nodaemon",
            f"--pidfile={pidfile}",
            "mas",
            "-c",
            str(self.config_path),
            *args,
        ]
        self.proc: subprocess.Popen | None = None

    def start(self) -> TwistdProcess:
        env = dict(os.environ)
        env.pop("MAS_CONFIG", None)
        self._log = open(self.log_path, "wb")
        # cwd outside the checkout: the plugin must be found through the installed package,
        # not because the current directory happens to contain twisted/plugins/.
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"twistd exited with {self.proc.returncode}:\n{self.output()}")
            try:
                return probe()
            except (OSError, http.client.HTTPException, AssertionError) as e:
                last = e
                time.sleep(0.2)
        raise AssertionError(f"twistd not ready after {timeout}s ({last!r}):\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM, then wait. Returns 0 for a clean shutdown: twistd re-raises the signal
        after its orderly shutdown, so a clean stop ends with status -SIGTERM."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        code = self.proc.returncode
        if code == -signal.SIGTERM and "Server Shut Down." in self.output():
            return 0
        return code


def run_sql(database_uri: str, sql: str) -> None:
    """Run one statement on the test database and commit (to set up a scenario)."""
    from mas_twisted.storage.engines import create_engine
    from tests.utils import make_db_config

    engine = create_engine(make_db_config({"uri": database_uri}))
    conn = engine.connect()
    try:
        cur = conn.cursor()
        cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


def query(database_uri: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query on the test database."""
    from mas_twisted.storage.engines import create_engine
    from tests.utils import make_db_config

    conn = create_engine(make_db_config({"uri": database_uri})).connect()
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        conn.close()


def mas_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAS_")}
    return subprocess.run(
        [venv_script("mas-cli"), *args], capture_output=True, text=True, timeout=120, cwd=workdir, env=env
    )


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 5.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    path: str,
    *,
    port: int | None = None,
    unix: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> Response:
    if unix is not None:
        conn: http.client.HTTPConnection = UnixHTTPConnection(unix)
    elif tls_context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=5, context=tls_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


#: How long a queued job may take to reach Synapse.
JOB_TIMEOUT_S = 30.0


def eventually(probe: Callable[[], Any], timeout: float = JOB_TIMEOUT_S, what: str = "") -> Any:
    """``probe()``'s first truthy answer, polled every 0.2 s."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout}s: {what} (last answer {answer!r})")
        time.sleep(0.2)
