# SPDX-License-Identifier: AGPL-3.0-only
"""A real Synapse as a test peer, delegating authentication to us
(``synapse-integration.md`` §1a, §5).

Synapse is installed once from PyPI into ``.test-venvs/synapse`` (gitignored; pinned by
:data:`SYNAPSE_REQUIREMENT`) and run in the foreground with a SQLite database, one loopback
``client`` listener (no federation), a generated signing key, file logging and every rate limit
lifted, and ``matrix_authentication_service`` pointing at :attr:`SynapseServer.mas_endpoint`.

Which URL comes first: Synapse does not contact the authentication service when it starts
(§5, "What it logs with MAS not running"); it fetches discovery and introspects lazily, at
the first client request that needs them, and caches a *successful* discovery for the life of
the process. So the harness chooses a free port for our service up front
(:attr:`SynapseServer.mas_port`), starts Synapse pointed at it, and a test then starts
``twistd mas`` on that port with ``matrix.endpoint`` = :attr:`SynapseServer.base_url`.

Use the session-wide instance through the ``synapse`` pytest fixture (import it into the test
module)::

    from tests.integration._synapse import synapse  # noqa: F401 (pytest fixture)

    def test_x(synapse):
        synapse.whoami(token)
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import http.client
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.integration._harness import Response, free_port

#: The Synapse the harness installs: the newest release when this was written.
#: Installing it into a fresh venv took 30 s of wall time (pip cache warm; 2 cores), and the
#: venv is about 250 MB; later runs reuse it.
SYNAPSE_VERSION = "1.163.2"
SYNAPSE_REQUIREMENT = f"matrix-synapse=={SYNAPSE_VERSION}"

#: The last Synapse with the experimental ``msc3861`` delegation (removed in 1.157), whose
#: ``admin_token`` the admin API accepts: the peer for ``matrix.kind: synapse_legacy``. MSC3861
#: needs authlib, hence the ``oidc`` extra. Installing it took 45 s; it is only installed when
#: a test asks for the ``legacy_synapse`` fixture.
LEGACY_SYNAPSE_VERSION = "1.156.0"
LEGACY_SYNAPSE_REQUIREMENT = f"matrix-synapse[oidc]=={LEGACY_SYNAPSE_VERSION}"

REPO = Path(__file__).resolve().parents[2]
VENVS = REPO / ".test-venvs"
SYNAPSE_VENV = VENVS / "synapse"
LEGACY_SYNAPSE_VENV = VENVS / "synapse-legacy"
INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 90.0


def synapse_python(requirement: str = SYNAPSE_REQUIREMENT, venv: Path = SYNAPSE_VENV) -> Path:
    """The Python of a Synapse venv, creating it on first use (under a lock, as several
    test processes may ask at once).

    Raises:
        AssertionError: the venv could not be created or Synapse could not be installed; the
            message says why (usually: no network to PyPI).
    """
    python = venv / "bin" / "python"
    marker = venv / f".installed-{requirement}"
    if marker.exists() and python.exists():
        return python
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and python.exists():
            return python
        if venv.exists():
            shutil.rmtree(venv)  # a half-made venv from an interrupted install
        started = time.monotonic()
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", requirement],
        ]
        for argv in steps:
            try:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"installing {requirement} into {venv} took more than {INSTALL_TIMEOUT_S}s "
                    "(is PyPI reachable?)"
                ) from None
            if out.returncode != 0:
                tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
                raise AssertionError(
                    f"could not install {requirement} into {venv} for the real-Synapse tests "
                    f"(`{' '.join(argv)}` exited with {out.returncode}; is PyPI reachable?):\n{tail}"
                )
        marker.write_text(f"installed in {time.monotonic() - started:.1f}s\n")
        return python


def _db_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg2
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg2.Error)


#: What reading Synapse's database may raise while it is still being created.
_DB_ERRORS = _db_errors()


def _ensure_psycopg2(python: Path) -> None:
    """Synapse's PostgreSQL driver in its venv (``matrix-synapse[postgres]`` pulls it in)."""
    probe = subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        return
    with open(VENVS / "psycopg2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "psycopg2-binary"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    if out.returncode != 0:
        raise AssertionError(
            f"could not install psycopg2-binary into {python.parent.parent} for Synapse on PostgreSQL"
            f" (is PyPI reachable?):\n{out.stdout[-2000:]}{out.stderr[-2000:]}"
        )


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the test process dies, so that a
    run killed with SIGKILL (``timeout -s KILL``, where atexit never runs) leaves no Synapse
    behind. The signal follows the *thread* that started it: start Synapse from the main thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _lifted() -> dict[str, float]:
    return {"per_second": 10000, "burst_count": 100000}


class SynapseServer:
    """One Synapse process with its own directory, database and ports.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/``, Synapse's client API.
        server_name: Synapse's ``server_name`` (our ``matrix.homeserver``).
        secret: the shared secret (our ``matrix.secret``).
        mas_port, mas_endpoint: where Synapse expects this service.
        workdir: config, database, signing key, media and logs.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        server_name: str = "localhost",
        secret: str | None = None,
        mas_port: int | None = None,
        extra_config: dict[str, Any] | None = None,
        legacy_msc3861: bool = False,
        delegate: bool = True,
        postgres_dsn: str | None = None,
    ):
        """
        Args:
            legacy_msc3861: run :data:`LEGACY_SYNAPSE_VERSION` with the old
                ``experimental_features.msc3861`` section instead of
                ``matrix_authentication_service``; the secret is then its ``admin_token``.
            delegate: False to run Synapse with its own password logins, without
                ``matrix_authentication_service`` (a homeserver before a syn2mas migration);
                the secret is then its ``registration_shared_secret``. :meth:`reconfigure`
                switches it over.
            postgres_dsn: run Synapse on this PostgreSQL database (UTF8 with C collation,
                §5) instead of SQLite; psycopg2 is installed into its venv on first use.
        """
        self.legacy_msc3861 = legacy_msc3861
        self.delegate = delegate
        self.postgres_dsn = postgres_dsn
        self.python = (
            synapse_python(LEGACY_SYNAPSE_REQUIREMENT, LEGACY_SYNAPSE_VENV)
            if legacy_msc3861
            else synapse_python()
        )
        self.workdir = workdir
        self.server_name = server_name
        self.secret = secret or "synapse-mas-" + secrets.token_urlsafe(24)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.mas_port = mas_port or free_port()
        self.mas_endpoint = f"http://127.0.0.1:{self.mas_port}/"
        self.db_path = workdir / "homeserver.db"
        self.log_path = workdir / "homeserver.log"
        self.output_path = workdir / "homeserver.out"
        self.config_path = workdir / "homeserver.yaml"
        self.proc: subprocess.Popen | None = None
        self._out: Any = None
        if postgres_dsn is not None:
            _ensure_psycopg2(self.python)
        self._write_config(extra_config or {})

    def _write_config(self, extra: dict[str, Any]) -> None:
        log_config = self.workdir / "log.config"
        log_config.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "formatters": {
                        "precise": {
                            "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"
                        }
                    },
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "filename": str(self.log_path),
                            "formatter": "precise",
                        }
                    },
                    "root": {"level": "INFO", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.base_url,
            "report_stats": False,
            "pid_file": str(self.workdir / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    # No "federation": nothing listens for other servers.
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.db_path)}},
            "media_store_path": str(self.workdir / "media_store"),
            # Created by Synapse at its first start.
            "signing_key_path": str(self.workdir / "signing.key"),
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "log_config": str(log_config),
            "macaroon_secret_key": secrets.token_urlsafe(32),
            "form_secret": secrets.token_urlsafe(32),
            # Run the schema's background updates at once (they finish in well under a second,
            # against a minute with the default pauses): until they have, some calls fail on a
            # fresh SQLite database (reactivate_user answers 500 "ON CONFLICT clause does not
            # match any PRIMARY KEY or UNIQUE constraint": the profiles index is not built yet).
            "background_updates": {
                "sleep_enabled": False,
                "min_batch_size": 1000,
                "default_batch_size": 1000,
            },
            # Tests make many requests in a burst.
            "rc_message": _lifted(),
            "rc_registration": _lifted(),
            "rc_login": {"address": _lifted(), "account": _lifted(), "failed_attempts": _lifted()},
            "rc_admin_redaction": _lifted(),
            "rc_joins": {"local": _lifted(), "remote": _lifted()},
            "rc_joins_per_room": _lifted(),
            "rc_3pid_validation": _lifted(),
            "rc_invites": {"per_room": _lifted(), "per_user": _lifted(), "per_issuer": _lifted()},
            "rc_third_party_invite": _lifted(),
            "rc_media_create": _lifted(),
            "rc_presence": {"per_user": _lifted()},
            "rc_delayed_event_mgmt": _lifted(),
            "rc_room_creation": _lifted(),
            "rc_reports": _lifted(),
            "rc_user_directory": _lifted(),
            "rc_profile": _lifted(),
            "rc_key_requests": _lifted(),
        }
        if self.legacy_msc3861:
            config["experimental_features"] = {
                "msc3861": {
                    "enabled": True,
                    "issuer": self.mas_endpoint,
                    "client_id": "0000000000000000000SYNAPSE",
                    "client_auth_method": "client_secret_basic",
                    "client_secret": secrets.token_urlsafe(24),
                    "admin_token": self.secret,
                }
            }
        elif not self.delegate:
            config["registration_shared_secret"] = self.secret
        else:
            config["matrix_authentication_service"] = {
                "enabled": True,
                "endpoint": self.mas_endpoint,
                "secret": self.secret,
            }
        if self.postgres_dsn is not None:
            from psycopg2.extensions import parse_dsn

            args = {"cp_min": 1, "cp_max": 5, **parse_dsn(self.postgres_dsn)}
            config["database"] = {"name": "psycopg2", "args": args}
        config.update(extra)
        self.config_path.write_text(yaml.safe_dump(config))

    def reconfigure(self, *, delegate: bool, extra_config: dict[str, Any] | None = None) -> None:
        """Rewrite the configuration (while stopped): e.g. delegate to us after a migration."""
        self.delegate = delegate
        self._write_config(extra_config or {})

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> SynapseServer:
        """Start Synapse; wait until ``/_matrix/client/versions`` answers 200 and the database's
        background updates are done."""
        if self.running:
            return self
        self._out = open(self.output_path, "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.workdir,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "PYTHON"))},
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = started + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._close_output()
                raise AssertionError(f"Synapse exited with {code} while starting:\n{self.logs()}")
            try:
                if self.request("GET", "_matrix/client/versions").status == 200 and self.query(
                    "SELECT COUNT(*) FROM background_updates"
                ) == [(0,)]:
                    self.start_seconds = time.monotonic() - started
                    return self
            except (OSError, http.client.HTTPException, *_DB_ERRORS) as e:
                last = e
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"Synapse not ready after {START_TIMEOUT_S}s ({last!r}):\n{self.logs()}")

    def stop(self) -> None:
        """SIGTERM, and wait for the process to end (SIGKILL after 30 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._close_output()

    def _close_output(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self, lines: int = 60) -> str:
        """The end of Synapse's stdout/stderr and of its log file."""
        parts = []
        for path in (self.output_path, self.log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    # -- talking to it ---------------------------------------------------------------------
    def mxid(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def request(self, method: str, path: str, *, token: str | None = None, body: Any = None) -> Response:
        """One request to Synapse's client listener (``path`` without the leading ``/``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {}
        data = None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, "/" + path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
        finally:
            conn.close()

    def whoami(self, token: str) -> Response:
        """``GET /_matrix/client/v3/account/whoami`` with ``token`` (Synapse introspects it at us)."""
        return self.request("GET", "_matrix/client/v3/account/whoami", token=token)

    def profile(self, localpart: str) -> Response:
        """``GET /_matrix/client/v3/profile/{mxid}`` (public: no token needed)."""
        return self.request("GET", f"_matrix/client/v3/profile/{quote(self.mxid(localpart), safe='')}")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows from Synapse's own database, opened read-only: what Synapse actually stored."""
        if self.postgres_dsn is not None:
            import psycopg2

            pg = psycopg2.connect(self.postgres_dsn)
            try:
                pg.set_session(readonly=True)
                with pg.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), params)
                    return [tuple(r) for r in cur.fetchall()]
            finally:
                pg.close()
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def devices(self, localpart: str) -> dict[str, str | None]:
        """The user's visible devices on Synapse: ``{device_id: display_name}``."""
        rows = self.query(
            "SELECT device_id, display_name FROM devices WHERE user_id = ? AND NOT hidden",
            (self.mxid(localpart),),
        )
        return dict(rows)


_shared: dict[bool, SynapseServer] = {}
_shared_lock = threading.Lock()


def shared_synapse(*, legacy_msc3861: bool = False) -> SynapseServer:
    """The one Synapse (of each kind) of this test process, started on first use and stopped
    at exit."""
    with _shared_lock:
        server = _shared.get(legacy_msc3861)
        if server is None:
            workdir = Path(tempfile.mkdtemp(prefix="mas-synapse-"))
            server = SynapseServer(workdir, legacy_msc3861=legacy_msc3861)
            server.start()
            atexit.register(_stop_shared, server, workdir)
            _shared[legacy_msc3861] = server
        elif not server.running:
            server.start()
        return server


def _stop_shared(server: SynapseServer, workdir: Path) -> None:
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """The session's Synapse (starting one costs 2-3 s after the first install).

    A test that stops it (``synapse.stop()``) must ``synapse.start()`` it again before it ends.
    """
    server = shared_synapse()
    yield server
    if not server.running:
        server.start()


@pytest.fixture(scope="session")
def legacy_synapse() -> Iterator[SynapseServer]:
    """The session's :data:`LEGACY_SYNAPSE_VERSION`, in ``msc3861`` mode with the shared secret
    as its ``admin_token`` (for ``matrix.kind: synapse_legacy``)."""
    server = shared_synapse(legacy_msc3861=True)
    yield server
    if not server.running:
        server.start()


@contextlib.contextmanager
def mas_with_synapse(
    tmp: Path,
    engine: str,
    resources: tuple[str, ...] = ("discovery", "human", "oauth", "health"),
    extra_config: dict[str, Any] | None = None,
) -> Iterator[tuple[SynapseServer, Any, dict[str, Any]]]:
    """A real Synapse and a real ``twistd mas`` (with its worker) delegating to each other, on
    ``engine``'s database: ``(synapse, twistd process, our config)``; everything stopped (and a
    PostgreSQL database dropped) afterwards. ``extra_config`` replaces whole sections.

    Our port is chosen first: Synapse is configured with it and starts pointing at it. Each
    call gets its own Synapse: Synapse keeps the first discovery document it fetches for the
    life of its process, and caches introspection answers for two minutes.
    """
    from tests.integration._harness import PostgresDatabase, TwistdProcess, base_config, free_port
    from tests.integration._harness import request as http_request

    db = PostgresDatabase() if engine == "postgres" else None
    synapse_dir = tmp / "synapse"
    synapse_dir.mkdir()
    synapse = SynapseServer(synapse_dir, mas_port=free_port())
    proc = None
    try:
        synapse.start()
        mas_dir = tmp / "mas"
        mas_dir.mkdir()
        config = base_config(mas_dir, database_uri=db.uri if db else None)
        config["http"] = {
            "public_base": synapse.mas_endpoint,
            "listeners": [
                {
                    "name": "web",
                    "resources": [{"name": n} for n in resources],
                    "binds": [{"host": "127.0.0.1", "port": synapse.mas_port}],
                }
            ],
        }
        config["matrix"] = {
            "kind": "synapse",
            "homeserver": synapse.server_name,
            "endpoint": synapse.base_url,
            "secret": synapse.secret,
        }
        # Every test logs in from 127.0.0.1; MAS's default per-IP login limit is 3 a minute.
        config["rate_limiting"] = {"login": {"per_ip": {"burst": 1000, "per_second": 100}}}
        config.update(extra_config or {})
        proc = TwistdProcess(mas_dir, config).start()
        proc.wait_until(lambda: http_request("GET", "/health", port=synapse.mas_port))
        yield synapse, proc, config
    finally:
        if proc is not None:
            proc.stop()
        synapse.stop()
        if db is not None:
            db.drop()
