# SPDX-License-Identifier: AGPL-3.0-only
"""``kill -9`` under a write load, on PostgreSQL and on SQLite (issue 11 item 4; issue 19's
"answered, then lost" check).

A deployment as an operator runs it: one ``twistd mas --no-worker`` serving the listeners and
one ``mas-cli worker`` on one database (PostgreSQL; or a SQLite file in WAL mode). Threads of
the test drive a concurrent write load, each answer the service acknowledged recorded with its
content in a :class:`Ledger`:

- browser password logins at ``/login`` (each still signed in after the restarts);
- OAuth 2.0: an authorization code through the real browser flow (a signed-in browser,
  ``/authorize`` and the consent form), its exchange at ``/oauth2/token``, refresh-token
  rotations, and revocation at ``/oauth2/revoke`` (which schedules a ``sync-devices`` job in
  the transaction that ends the session);
- the compatibility API: password logins at ``/login`` (with refresh tokens), ``/refresh``,
  and ``/logout`` (which schedules ``sync-devices`` too).

At a seeded moment after N acknowledged writes, the server's and the worker's process groups
get SIGKILL. Both are started again, and then, from the database directly and through the API:

- every answered token exists; every answered code is there and fulfilled;
- no refresh chain is half rotated: each answered refresh token but the newest is consumed,
  and its successor exists; an unfinished session has exactly one live refresh token (the
  newest answered, or, when the kill took a rotation whose answer never came, its successor);
  the access tokens a rotation replaced are inactive at introspection, the newest active;
- a revocation or logout that was answered stays: its session is finished, its tokens inactive;
- no job is lost: for each user, at least as many ``sync-devices`` jobs exist as revocations and
  logouts of that user were answered; each job ends completed (a job its killed worker was
  running is marked lost by the leader and its retry completes); and none runs twice (each job
  id has at most one "Running job" line over every worker log; the homeserver saw each user's
  syncs at least once per completed job and at most once per run);
- the homeserver's devices: every answered compat login's device was created before the
  answer and is still there; the devices of answered logouts are gone.

Each kill comes while a ``sync-devices`` job is in the middle of its homeserver call (the fake
homeserver holds the syncs of one user, ``eve``, until after the kill), so that every cycle
has a job lost with its worker. Several kill/restart cycles run in one test; on SQLite they
alternate ``sqlite_synchronous`` between ``full`` and ``normal``. The test ends with the newest
refresh token of every live chain used through the API (it works once, and after its successor
was used, a replay is refused) and ``mas-cli manage provision-all-users``, after which the
homeserver holds exactly the devices of the database's live sessions. The counts of
acknowledged writes checked are printed per kind.

The homeserver is :class:`FakeHomeserver`, Synapse's ``/_synapse/mas`` device calls in a thread
of the test (real Synapse runs in the tests of the homeserver integration). A killed worker's
heartbeat is moved back in the database rather than waiting the 2 minutes after which the
leader declares it dead.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import http.client
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
import yaml

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    free_port,
    mas_cli,
    venv_script,
)
from tests.integration._harness import request as http_request
from tests.integration._oauth import CLIENT_URI, REDIRECT_URI, Browser

PASSWORD = "correct horse battery staple 42"
SEED = 20261207
CYCLES = 3
#: The kill comes after this many acknowledged writes (a seeded draw per cycle).
MIN_WRITES, MAX_WRITES = 60, 120
USERS = ("ada", "bob", "cyd", "dee")
#: The user whose device sync is in progress at the homeserver when each kill comes.
HELD_USER = "eve"
OAUTH_THREADS = 3
COMPAT_THREADS = 3
RUNNING_JOB = re.compile(r"Running job (\w+) \(([\w-]+), attempt (\d+)\)")
#: The jobs of the load (and of the users' registration); the cron jobs come and go on their own.
OURS = "queue_name IN ('sync-devices', 'provision-user')"
REGISTERED = re.compile(r"Registered queue worker (\w+)")


class Database:
    """Questions to the service's database, from outside the service."""

    def __init__(self, uri: str):
        self.uri = uri
        self.postgres = uri.startswith("postgres")

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.postgres:
            import psycopg2

            conn = psycopg2.connect(self.uri)
            sql = sql.replace("?", "%s")
        else:
            conn = sqlite3.connect(self.uri.removeprefix("sqlite:///"), timeout=30)
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of logins and jobs connect at once: the default backlog of 5 drops connections.
    request_queue_size = 128
    errors: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A call whose caller was killed before the answer is nothing to report; anything
        # else fails the test.
        error = sys.exc_info()[1]
        if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
            self.errors.append(f"fake homeserver: {error!r}")


class FakeHomeserver:
    """Synapse's ``/_synapse/mas`` API as far as these writes use it, in a thread of the test,
    keeping each user's devices and recording every call. Device writes take a few
    milliseconds, as a homeserver's do, so that a kill can land while a login or a job is
    waiting for one."""

    UPSERT_DELAY_S = 0.01
    SYNC_DELAY_S = 0.03

    def __init__(self, secret: str):
        self.secret = secret
        self.lock = threading.Lock()
        self.devices: dict[str, set[str]] = collections.defaultdict(set)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[str] = []
        #: While clear, a ``sync_devices`` of :data:`HELD_USER` waits (a slow homeserver), so
        #: that the kill takes a worker in the middle of that job.
        self.release = threading.Event()
        self.release.set()
        self.held = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                # One request per connection, said so: without it, Twisted's pool keeps the
                # HTTP/1.0 connection and its next request meets the close.
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(raw)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.secret}":
                    self._answer(403, {"errcode": "M_FORBIDDEN"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                url = urlsplit(self.path)
                localpart = parse_qs(url.query).get("localpart", [""])[0]
                if url.path == "/_synapse/mas/query_user":
                    self._answer(200, {"user_id": f"@{localpart}:example.test", "is_deactivated": False})
                elif url.path == "/_synapse/mas/is_localpart_available":
                    self._answer(200, {})
                else:
                    self._answer(404, {"errcode": "M_UNRECOGNIZED"})

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                route = urlsplit(self.path).path.removeprefix("/_synapse/mas/")
                with fake.lock:
                    fake.calls.append((route, body))
                localpart = body.get("localpart", "")
                if route == "upsert_device":
                    time.sleep(fake.UPSERT_DELAY_S)
                    with fake.lock:
                        fake.devices[localpart].add(body["device_id"])
                elif route == "sync_devices":
                    time.sleep(fake.SYNC_DELAY_S)
                    if localpart == HELD_USER and not fake.release.is_set():
                        fake.held.set()
                        fake.release.wait(120)
                    with fake.lock:
                        fake.devices[localpart] = set(body["devices"])
                elif route == "delete_device":
                    with fake.lock:
                        fake.devices[localpart].discard(body["device_id"])
                elif route != "provision_user":
                    with fake.lock:
                        fake.errors.append(f"unexpected call {route}")
                    self._answer(404, {"errcode": "M_UNRECOGNIZED"})
                    return
                self._answer(200, {})

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.errors = self.errors
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def calls_of(self, route: str, localpart: str) -> int:
        with self.lock:
            return sum(1 for r, body in self.calls if r == route and body.get("localpart") == localpart)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GroupProcess(TwistdProcess):
    """A :class:`TwistdProcess` in a process group of its own, so that ``kill -9`` takes it
    and whatever it started."""

    def start(self) -> GroupProcess:
        env = dict(os.environ)
        env.pop("MAS_CONFIG", None)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self._log.close()

    @property
    def worker_ids(self) -> list[str]:
        return REGISTERED.findall(self.output())


# -- what the clients were told ----------------------------------------------------------------
class Chain:
    """One session as its client knows it: the token pairs it was given, newest last."""

    def __init__(self, kind: str, user: str, cycle: int):
        self.kind = kind  # "oauth" or "compat"
        self.user = user
        self.cycle = cycle
        self.pairs: list[tuple[str, str]] = []
        self.ended = False  # a revocation / logout was answered
        #: The request that never got an answer (the kill came first): "exchange", "refresh",
        #: "end", or None.
        self.pending: str | None = None
        self.code: str | None = None
        self.device_id: str | None = None


class Ledger:
    """Every acknowledged write, by kind, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chains: list[Chain] = []
        self.codes: list[str] = []
        self.acks: collections.Counter[str] = collections.Counter()
        self.jobs_acked: collections.Counter[str] = collections.Counter()
        #: The browsers whose password login at ``/login`` was answered (303 and a session).
        self.browsers: list[tuple[str, Browser]] = []
        self.errors: list[str] = []

    def ack(self, kind: str) -> None:
        with self.lock:
            self.acks[kind] += 1

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.acks.values())

    def new_chain(self, kind: str, user: str, cycle: int) -> Chain:
        chain = Chain(kind, user, cycle)
        with self.lock:
            self.chains.append(chain)
        return chain


class Unanswered(Exception):
    """The request got no answer (the server died under it)."""


def _http(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise Unanswered(repr(e)) from e
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else {}
    except ValueError:
        return resp.status, {"raw": raw.decode(errors="replace")}


def post_form(
    port: int, path: str, data: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    return _http(
        port,
        "POST",
        path,
        urlencode(data).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
    )


def post_json(port: int, path: str, data: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return _http(port, "POST", path, json.dumps(data).encode(), headers)


# -- the deployment --------------------------------------------------------------------------------
class Deployment:
    def __init__(self, tmp: Path, engine: str):
        self.tmp = tmp
        self.engine = engine
        self.pg = PostgresDatabase() if engine == "postgres" else None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        config = base_config(tmp, database_uri=self.pg.uri if self.pg else None)
        config["http"] = {
            "public_base": self.base,
            "listeners": [
                {
                    "name": "web",
                    "resources": [{"name": n} for n in ("discovery", "human", "oauth", "compat", "health")],
                    "binds": [{"host": "127.0.0.1", "port": self.port}],
                }
            ],
        }
        self.homeserver = FakeHomeserver(config["matrix"]["secret"])
        config["matrix"].update(
            homeserver="example.test", kind="synapse", endpoint=f"http://127.0.0.1:{self.homeserver.port}/"
        )
        unlimited = {"burst": 100_000, "per_second": 10_000}
        config["rate_limiting"] = {"login": {"per_ip": unlimited, "per_account": unlimited}}
        self.config = config
        self.secret = config["matrix"]["secret"]
        self.db = Database(config["database"]["uri"])
        self.server: GroupProcess | None = None
        self.worker: GroupProcess | None = None
        self.generation = 0
        self.worker_logs: list[GroupProcess] = []

    def start(self) -> None:
        self.generation += 1
        if self.engine == "sqlite":
            # Every other run on sqlite_synchronous: normal, which must survive kill -9 as
            # well as the default full (mas_twisted/storage/engines/sqlite.py).
            self.config["database"]["sqlite_synchronous"] = "normal" if self.generation % 2 == 0 else "full"
        server_dir = self.tmp / f"server{self.generation}"
        worker_dir = self.tmp / f"worker{self.generation}"
        server_dir.mkdir()
        worker_dir.mkdir()
        self.server = GroupProcess(server_dir, self.config, args=["--no-worker"]).start()
        self.worker = GroupProcess(worker_dir, self.config)
        self.worker.argv = [venv_script("mas-cli"), "-c", str(self.worker.config_path), "worker"]
        self.worker.start()
        self.worker_logs.append(self.worker)
        self.server.wait_until(lambda: http_request("GET", "/health", port=self.port), timeout=90)
        worker = self.worker
        worker.wait_until(lambda: worker.worker_ids or _fail("worker not registered yet"), timeout=90)

    def kill9(self) -> None:
        assert self.server is not None and self.worker is not None
        # Both at once, as a power cut of the machine's processes would.
        for process in (self.server, self.worker):
            assert process.proc is not None and process.proc.poll() is None, process.output()
            os.killpg(process.proc.pid, signal.SIGKILL)
        self.server.kill9()
        self.worker.kill9()

    def stop(self) -> None:
        for process in (self.server, self.worker):
            if process is not None and process.proc is not None and process.proc.poll() is None:
                process.stop()
        self.homeserver.stop()
        if self.pg is not None:
            self.pg.drop()

    @property
    def config_path(self) -> Path:
        assert self.server is not None
        return self.server.config_path

    def introspect(self, token: str) -> dict[str, Any]:
        status, body = post_form(
            self.port, "/oauth2/introspect", {"token": token}, {"Authorization": f"Bearer {self.secret}"}
        )
        assert status == 200, body
        return body


def _fail(message: str) -> Any:
    raise AssertionError(message)


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: Any, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path, request.param)
    try:
        config_path = tmp_path / "setup.yaml"
        config_path.write_text(yaml.safe_dump(deployment.config))
        out = mas_cli(tmp_path, "database", "migrate", "-c", str(config_path))
        assert out.returncode == 0, out.stderr
        for user in (*USERS, HELD_USER):
            out = mas_cli(
                tmp_path,
                "manage",
                "register-user",
                user,
                "-p",
                PASSWORD,
                "-y",
                "--skip-homeserver-check",
                "-c",
                str(config_path),
            )
            assert out.returncode == 0, out.stderr
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


# -- the load ----------------------------------------------------------------------------------------
class Client:
    """An OAuth 2.0 client registered once, and its users' signed-in browsers."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        resp = requests.post(
            deployment.base + "oauth2/registration",
            json={
                "client_uri": CLIENT_URI,
                "redirect_uris": [REDIRECT_URI],
                "client_name": "crash test",
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        info = resp.json()
        self.client_id = info["client_id"]
        self.client_secret = info["client_secret"]
        self.browsers: dict[str, Browser] = {}

    def browser(self, user: str) -> Browser:
        """A browser signed in as ``user`` (the session survives restarts: it is in the database)."""
        if user not in self.browsers:
            self.browsers[user] = sign_in(self.deployment.base, user)
        return self.browsers[user]

    def auth(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}


def sign_in(base: str, user: str) -> Browser:
    """A new browser, signed in as ``user`` through the ``/login`` form."""
    browser = Browser(base)
    try:
        page = browser.follow(browser.get("/login"))
        assert page.status_code == 200, page.text
        answer = browser.submit(page, {"username": user, "password": PASSWORD})
    except requests.RequestException as e:
        raise Unanswered(repr(e)) from e
    assert answer.status_code == 303 and "session" in answer.cookies, (answer.status_code, answer.text[:300])
    return browser


VERIFIER = "v" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def new_code(client: Client, browser: Browser, state: str) -> str:
    """An authorization code, through the browser: ``/authorize``, the consent form, the callback."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": state,
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        }
    )
    try:
        resp = browser.follow(browser.get("/authorize?" + query), until=REDIRECT_URI)
        if resp.status_code == 200 and "/consent/" in resp.url:
            resp = browser.follow(browser.submit(resp, {}, button=("action", "consent")), until=REDIRECT_URI)
    except requests.RequestException as e:
        raise Unanswered(repr(e)) from e
    if resp.status_code not in (302, 303):
        raise AssertionError(f"authorization ended at {resp.status_code} {resp.url}: {resp.text[:500]}")
    location = urljoin(resp.url, resp.headers["location"])
    assert location.startswith(REDIRECT_URI), location
    return parse_qs(urlsplit(location).query)["code"][0]


def oauth_load(client: Client, ledger: Ledger, rng: random.Random, stop: threading.Event, cycle: int) -> None:
    port = client.deployment.port
    while not stop.is_set():
        user = rng.choice(USERS)
        if rng.random() < 0.25:
            browser = sign_in(client.deployment.base, user)
            with ledger.lock:
                ledger.browsers.append((user, browser))
            ledger.ack("browser login")
        else:
            browser = client.browser(user)
        code = new_code(client, browser, f"s{rng.random()}")
        with ledger.lock:
            ledger.codes.append(code)
        ledger.ack("code")
        chain = ledger.new_chain("oauth", user, cycle)
        chain.code = code
        chain.pending = "exchange"
        status, body = post_form(
            port,
            "/oauth2/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": VERIFIER,
                **client.auth(),
            },
        )
        assert status == 200, ("code exchange", status, body)
        chain.pairs.append((body["access_token"], body["refresh_token"]))
        chain.pending = None
        ledger.ack("code exchange")
        for _ in range(rng.randint(0, 3)):
            if stop.is_set():
                return
            chain.pending = "refresh"
            status, body = post_form(
                port,
                "/oauth2/token",
                {"grant_type": "refresh_token", "refresh_token": chain.pairs[-1][1], **client.auth()},
            )
            assert status == 200, ("oauth refresh", status, body)
            chain.pairs.append((body["access_token"], body["refresh_token"]))
            chain.pending = None
            ledger.ack("oauth refresh")
        if rng.random() < 0.5 and not stop.is_set():
            access, refresh = chain.pairs[-1]
            token, hint = rng.choice([(access, "access_token"), (refresh, "refresh_token")])
            chain.pending = "end"
            status, body = post_form(
                port, "/oauth2/revoke", {"token": token, "token_type_hint": hint, **client.auth()}
            )
            assert status == 200, ("revocation", status, body)
            chain.ended = True
            chain.pending = None
            ledger.ack("revocation")
            with ledger.lock:
                ledger.jobs_acked[user] += 1


def compat_load(port: int, ledger: Ledger, rng: random.Random, stop: threading.Event, cycle: int) -> None:
    while not stop.is_set():
        user = rng.choice(USERS)
        chain = ledger.new_chain("compat", user, cycle)
        chain.pending = "exchange"
        status, body = post_json(
            port,
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": PASSWORD,
                "refresh_token": True,
            },
        )
        assert status == 200, ("compat login", user, status, body)
        chain.pairs.append((body["access_token"], body["refresh_token"]))
        chain.device_id = body["device_id"]
        chain.pending = None
        ledger.ack("compat login")
        for _ in range(rng.randint(0, 3)):
            if stop.is_set():
                return
            chain.pending = "refresh"
            status, body = post_json(
                port, "/_matrix/client/v3/refresh", {"refresh_token": chain.pairs[-1][1]}
            )
            assert status == 200, ("compat refresh", status, body)
            chain.pairs.append((body["access_token"], body["refresh_token"]))
            chain.pending = None
            ledger.ack("compat refresh")
        if rng.random() < 0.5 and not stop.is_set():
            chain.pending = "end"
            status, body = post_json(port, "/_matrix/client/v3/logout", {}, token=chain.pairs[-1][0])
            assert status == 200, (status, body)
            chain.ended = True
            chain.pending = None
            ledger.ack("compat logout")
            with ledger.lock:
                ledger.jobs_acked[user] += 1


def run_thread(ledger: Ledger, body: Callable[..., None], *args: Any) -> threading.Thread:
    def _run() -> None:
        try:
            body(*args)
        except Unanswered:
            pass  # the kill: the chain keeps its pending request
        except Exception as e:  # an answer that was not what it should be
            with ledger.lock:
                ledger.errors.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    return thread


def held_user_session(port: int, ledger: Ledger, cycle: int) -> None:
    """A compat login and logout of :data:`HELD_USER`: the logout's ``sync-devices`` job is the
    one the homeserver holds until after the kill."""
    chain = ledger.new_chain("compat", HELD_USER, cycle)
    chain.pending = "exchange"
    status, body = post_json(
        port,
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": HELD_USER},
            "password": PASSWORD,
            "refresh_token": True,
        },
    )
    assert status == 200, (status, body)
    chain.pairs.append((body["access_token"], body["refresh_token"]))
    chain.device_id = body["device_id"]
    chain.pending = None
    ledger.ack("compat login")
    chain.pending = "end"
    status, body = post_json(port, "/_matrix/client/v3/logout", {}, token=chain.pairs[-1][0])
    assert status == 200, (status, body)
    chain.ended = True
    chain.pending = None
    ledger.ack("compat logout")
    with ledger.lock:
        ledger.jobs_acked[HELD_USER] += 1


def load_until_killed(deployment: Deployment, client: Client, ledger: Ledger, cycle: int) -> int:
    """Run the load until N more writes were acknowledged and a ``sync-devices`` job is in the
    middle of its homeserver call, then kill -9; N."""
    rng = random.Random(SEED * 100 + cycle)
    target = rng.randint(MIN_WRITES, MAX_WRITES)
    start = ledger.total
    stop = threading.Event()
    homeserver = deployment.homeserver
    homeserver.held.clear()
    homeserver.release.clear()
    threads = [
        run_thread(ledger, oauth_load, client, ledger, random.Random(rng.random()), stop, cycle)
        for _ in range(OAUTH_THREADS)
    ] + [
        run_thread(ledger, compat_load, deployment.port, ledger, random.Random(rng.random()), stop, cycle)
        for _ in range(COMPAT_THREADS)
    ]
    threads.append(run_thread(ledger, held_user_session, deployment.port, ledger, cycle))
    deadline = time.monotonic() + 90
    while ledger.total - start < target or not homeserver.held.is_set():
        assert not ledger.errors, ledger.errors
        assert any(t.is_alive() for t in threads), "every load thread ended"
        assert time.monotonic() < deadline, f"only {ledger.total - start} writes in 90 s"
        time.sleep(0.005)
    deployment.kill9()
    stop.set()
    homeserver.release.set()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a load thread hung"
    assert not ledger.errors, ledger.errors
    return target


# -- the checks ---------------------------------------------------------------------------------------
class Checked(collections.Counter):
    pass


def check_oauth_chain(deployment: Deployment, chain: Chain, checked: Checked) -> None:
    db = deployment.db
    assert chain.code is not None
    grant = db.execute(
        "SELECT fulfilled_at, exchanged_at, oauth2_session_id FROM oauth2_authorization_grants"
        " WHERE authorization_code = ?",
        (chain.code,),
    )
    assert len(grant) == 1 and grant[0][0] is not None, (chain.code, grant)
    checked["codes"] += 1
    if not chain.pairs:
        # The exchange never got its answer: all of it or nothing of it.
        _, exchanged_at, session_id = grant[0]
        assert (exchanged_at is None) == (session_id is None), grant
        if session_id is not None:
            assert _live_refresh_tokens(db, "oauth", session_id) in (0, 1)
        return
    refresh = {
        token: (rid, consumed, revoked, next_id, session_id)
        for token, rid, consumed, revoked, next_id, session_id in db.execute(
            "SELECT refresh_token, oauth2_refresh_token_id, consumed_at, revoked_at,"
            " next_oauth2_refresh_token_id, oauth2_session_id FROM oauth2_refresh_tokens"
            " WHERE oauth2_session_id = (SELECT oauth2_session_id FROM oauth2_authorization_grants"
            " WHERE authorization_code = ?)",
            (chain.code,),
        )
    }
    access = {
        token
        for (token,) in db.execute(
            "SELECT access_token FROM oauth2_access_tokens WHERE oauth2_session_id = ?", (grant[0][2],)
        )
    }
    (finished_at,) = db.execute(
        "SELECT finished_at FROM oauth2_sessions WHERE oauth2_session_id = ?", (grant[0][2],)
    )[0]
    ids = {row[0] for row in refresh.values()}
    for n, (access_token, refresh_token) in enumerate(chain.pairs):
        assert access_token in access, f"answered access token {n} of an OAuth chain is missing"
        assert refresh_token in refresh, f"answered refresh token {n} of an OAuth chain is missing"
        checked["oauth access tokens"] += 1
        checked["oauth refresh tokens"] += 1
        _rid, consumed, _revoked, next_id, _ = refresh[refresh_token]
        if n < len(chain.pairs) - 1:
            assert consumed is not None and next_id in ids, (
                f"refresh token {n} was rotated but is not consumed"
            )
    newest_rt = refresh[chain.pairs[-1][1]]
    rotated_unanswered = newest_rt[1] is not None
    if rotated_unanswered:
        assert chain.pending == "refresh", (
            "the newest answered refresh token is consumed, by no answered request"
        )
        assert newest_rt[3] in ids
    if chain.ended:
        assert finished_at is not None, "an answered revocation did not stay"
        checked["revocations"] += 1
    elif chain.pending != "end":
        assert finished_at is None, "a session nobody revoked is finished"
    if finished_at is None:
        assert _live_refresh_tokens(db, "oauth", grant[0][2]) == 1, "a session is half rotated"
    # Through the API.
    for n, (access_token, refresh_token) in enumerate(chain.pairs):
        newest = n == len(chain.pairs) - 1
        active = newest and finished_at is None and not rotated_unanswered
        seen = deployment.introspect(access_token)
        assert seen["active"] is active, (n, len(chain.pairs), chain.ended, chain.pending, seen)
        seen = deployment.introspect(refresh_token)
        assert seen["active"] is active, (n, len(chain.pairs), chain.ended, chain.pending, seen)


def check_compat_chain(deployment: Deployment, chain: Chain, checked: Checked) -> None:
    db = deployment.db
    if not chain.pairs:
        return
    rows = db.execute(
        "SELECT s.compat_session_id, s.finished_at FROM compat_sessions AS s"
        " JOIN compat_access_tokens AS t ON t.compat_session_id = s.compat_session_id"
        " WHERE t.access_token = ?",
        (chain.pairs[0][0],),
    )
    assert len(rows) == 1, "an answered compat login is missing"
    session_id, finished_at = rows[0]
    checked["compat logins"] += 1
    with deployment.homeserver.lock:
        upserted = {b["device_id"] for r, b in deployment.homeserver.calls if r == "upsert_device"}
    assert chain.device_id in upserted, "a compat login was answered before its device was created"
    refresh = {
        token: (rid, consumed)
        for token, rid, consumed in db.execute(
            "SELECT refresh_token, compat_refresh_token_id, consumed_at FROM compat_refresh_tokens"
            " WHERE compat_session_id = ?",
            (session_id,),
        )
    }
    access = {
        token
        for (token,) in db.execute(
            "SELECT access_token FROM compat_access_tokens WHERE compat_session_id = ?", (session_id,)
        )
    }
    for n, (access_token, refresh_token) in enumerate(chain.pairs):
        assert access_token in access, f"answered compat access token {n} is missing"
        assert refresh_token in refresh, f"answered compat refresh token {n} is missing"
        checked["compat access tokens"] += 1
        checked["compat refresh tokens"] += 1
        if n < len(chain.pairs) - 1:
            assert refresh[refresh_token][1] is not None, (
                f"compat refresh token {n} was rotated, not consumed"
            )
    rotated_unanswered = refresh[chain.pairs[-1][1]][1] is not None
    if rotated_unanswered:
        assert chain.pending == "refresh", (
            "the newest compat refresh token is consumed, by no answered request"
        )
    if chain.ended:
        assert finished_at is not None, "an answered logout did not stay"
        checked["logouts"] += 1
    elif chain.pending != "end":
        assert finished_at is None, "a compat session nobody logged out is finished"
    if finished_at is None:
        assert _live_refresh_tokens(db, "compat", session_id) == 1, "a compat session is half rotated"
    for n, (access_token, _refresh_token) in enumerate(chain.pairs):
        newest = n == len(chain.pairs) - 1
        active = newest and finished_at is None and not rotated_unanswered
        seen = deployment.introspect(access_token)
        assert seen["active"] is active, (n, len(chain.pairs), chain.ended, chain.pending, seen)


def _live_refresh_tokens(db: Database, kind: str, session_id: str) -> int:
    if kind == "oauth":
        sql = (
            "SELECT COUNT(*) FROM oauth2_refresh_tokens WHERE oauth2_session_id = ?"
            " AND consumed_at IS NULL AND revoked_at IS NULL"
        )
    else:
        sql = "SELECT COUNT(*) FROM compat_refresh_tokens WHERE compat_session_id = ? AND consumed_at IS NULL"
    return db.execute(sql, (session_id,))[0][0]


def check_global_invariants(db: Database) -> None:
    """Over the whole database: no unfinished session without exactly one live refresh token,
    no consumed refresh token without its successor."""
    half = db.execute(
        "SELECT s.oauth2_session_id, COUNT(r.oauth2_refresh_token_id) FROM oauth2_sessions AS s"
        " LEFT JOIN oauth2_refresh_tokens AS r ON r.oauth2_session_id = s.oauth2_session_id"
        " AND r.consumed_at IS NULL AND r.revoked_at IS NULL"
        " WHERE s.finished_at IS NULL GROUP BY s.oauth2_session_id HAVING COUNT(r.oauth2_refresh_token_id) <> 1"
    )
    assert half == [], half
    orphans = db.execute(
        "SELECT r.oauth2_refresh_token_id FROM oauth2_refresh_tokens AS r"
        " LEFT JOIN oauth2_refresh_tokens AS n ON n.oauth2_refresh_token_id = r.next_oauth2_refresh_token_id"
        " WHERE r.consumed_at IS NOT NULL AND n.oauth2_refresh_token_id IS NULL"
    )
    assert orphans == [], orphans
    compat_half = db.execute(
        "SELECT s.compat_session_id, COUNT(r.compat_refresh_token_id) FROM compat_sessions AS s"
        " LEFT JOIN compat_refresh_tokens AS r ON r.compat_session_id = s.compat_session_id"
        " AND r.consumed_at IS NULL"
        " WHERE s.finished_at IS NULL GROUP BY s.compat_session_id HAVING COUNT(r.compat_refresh_token_id) <> 1"
    )
    assert compat_half == [], compat_half


def release_dead_workers(deployment: Deployment) -> None:
    """Move the killed workers' heartbeats back past the 2 minutes after which the leader
    declares them dead and retries their running jobs."""
    assert deployment.worker is not None
    live = set(deployment.worker.worker_ids)
    for process in deployment.worker_logs:
        for worker_id in process.worker_ids:
            if worker_id not in live:
                deployment.db.execute(
                    "UPDATE queue_workers SET last_seen_at = last_seen_at - 180000"
                    " WHERE queue_worker_id = ? AND shutdown_at IS NULL",
                    (worker_id,),
                )


def settle(db: Database, timeout: float = 90) -> None:
    """Wait until no job of the load is waiting or running."""
    deadline = time.monotonic() + timeout
    while True:
        open_jobs = db.execute(
            "SELECT queue_job_id, queue_name, status, started_by, scheduled_at FROM queue_jobs"
            f" WHERE status IN ('available', 'running', 'scheduled') AND {OURS}"
        )
        if not open_jobs:
            return
        assert time.monotonic() < deadline, f"jobs still open after {timeout} s: {open_jobs}"
        time.sleep(0.3)


def sync_jobs_by_user(db: Database) -> dict[str, list[tuple[str, str, int]]]:
    """user id → its ``sync-devices`` jobs: (id, status, attempt)."""
    jobs: dict[str, list[tuple[str, str, int]]] = collections.defaultdict(list)
    for job_id, status, attempt, payload in db.execute(
        "SELECT queue_job_id, status, attempt, CAST(payload AS TEXT) FROM queue_jobs"
        " WHERE queue_name = 'sync-devices'"
    ):
        jobs[json.loads(payload)["user_id"]].append((job_id, status, attempt))
    return jobs


def check_jobs(deployment: Deployment, ledger: Ledger, checked: Checked) -> None:
    db = deployment.db
    release_dead_workers(deployment)
    settle(db)
    users = dict(db.execute("SELECT username, user_id FROM users"))
    by_user = sync_jobs_by_user(db)
    for user, acked in ledger.jobs_acked.items():
        first_attempts = [j for j in by_user[users[user]] if j[2] == 0]
        assert len(first_attempts) >= acked, (
            f"{user}: {acked} acknowledged job-scheduling writes, {len(first_attempts)} jobs"
        )
        checked["jobs scheduled"] += acked
    # Every job ends completed, itself or through its retries.
    jobs = {
        job_id: (status, next_id)
        for job_id, status, next_id in db.execute(
            f"SELECT queue_job_id, status, next_attempt_id FROM queue_jobs WHERE {OURS}"
        )
    }
    for job_id, (status, next_id) in jobs.items():
        seen = job_id
        while status != "completed":
            assert next_id is not None and next_id in jobs, f"job {seen} ended {status} with no retry"
            seen = next_id
            status, next_id = jobs[next_id]
        if jobs[job_id][0] == "lost":
            checked["jobs lost with a worker, retried"] += 1
    # None ran twice; the homeserver saw each user's syncs once per run at most, and at least
    # once per completed job.
    runs: collections.Counter[str] = collections.Counter()
    for process in deployment.worker_logs:
        for job_id, _queue, _attempt in RUNNING_JOB.findall(process.output()):
            runs[job_id] += 1
    twice = [job_id for job_id, n in runs.items() if n > 1]
    assert twice == [], twice
    checked["jobs run once"] = len(runs)
    names = {user_id: name for name, user_id in users.items()}
    for user_id, user_jobs in by_user.items():
        completed = sum(1 for _, status, _ in user_jobs if status == "completed")
        started = sum(runs[job_id] for job_id, _, _ in user_jobs)
        calls = deployment.homeserver.calls_of("sync_devices", names[user_id])
        assert completed <= calls <= started, (names[user_id], completed, calls, started)
    # The homeserver's devices: those of the live compat sessions the clients were given, not
    # those of the sessions they ended.
    devices = deployment.homeserver.devices
    for chain in ledger.chains:
        if chain.kind != "compat" or chain.device_id is None:
            continue
        if chain.ended:
            assert chain.device_id not in devices[chain.user], (
                f"{chain.user}: an ended session's device stayed"
            )
            checked["devices removed"] += 1
        elif chain.pending != "end":
            assert chain.device_id in devices[chain.user], f"{chain.user}: a live session's device is missing"
            checked["devices present"] += 1


def check_browser_sessions(client: Client, ledger: Ledger, checked: Checked) -> None:
    """Each answered browser login is still signed in: ``/authorize`` goes to the consent page
    or the client, never to the login form."""
    for n, (_user, browser) in enumerate(ledger.browsers):
        new_code(client, browser, f"check{n}")
        checked["browser sessions"] += 1


def check_all(deployment: Deployment, client: Client, ledger: Ledger) -> Checked:
    checked = Checked()
    check_browser_sessions(client, ledger, checked)
    check_global_invariants(deployment.db)
    for chain in ledger.chains:
        if chain.kind == "oauth":
            check_oauth_chain(deployment, chain, checked)
        else:
            check_compat_chain(deployment, chain, checked)
    check_jobs(deployment, ledger, checked)
    return checked


def use_newest_refresh_tokens(
    deployment: Deployment, client: Client, ledger: Ledger, checked: Checked
) -> None:
    """Through the API: the newest answered refresh token of each live chain works; its
    successor too; and then a replay of it is refused."""
    port = deployment.port
    for chain in ledger.chains:
        if not chain.pairs or chain.ended or chain.pending == "end":
            continue
        newest = chain.pairs[-1][1]
        if chain.kind == "oauth":

            def refresh(token: str) -> tuple[int, Any]:
                return post_form(
                    port,
                    "/oauth2/token",
                    {"grant_type": "refresh_token", "refresh_token": token, **client.auth()},
                )
        else:

            def refresh(token: str) -> tuple[int, Any]:
                return post_json(port, "/_matrix/client/v3/refresh", {"refresh_token": token})

        status, first = refresh(newest)
        if chain.kind == "compat" and chain.pending == "refresh" and status == 401:
            continue  # the kill took a rotation whose answer never came: that token was used
        assert status == 200, (chain.kind, chain.pending, first)
        status, second = refresh(first["refresh_token"])
        assert status == 200, (chain.kind, second)
        status, replay = refresh(newest)
        assert status in (400, 401), (chain.kind, replay)
        checked["refresh tokens used once"] += 1


def check_devices_in_sync(deployment: Deployment) -> int:
    """After ``mas-cli manage provision-all-users`` (a provision and a device sync per user)
    has run: the homeserver has exactly the devices of the database's live sessions."""
    out = mas_cli(deployment.tmp, "-c", str(deployment.config_path), "manage", "provision-all-users")
    assert out.returncode == 0, out.stderr
    settle(deployment.db)
    live: dict[str, set[str]] = collections.defaultdict(set)
    for username, device_id in deployment.db.execute(
        "SELECT u.username, s.device_id FROM compat_sessions AS s JOIN users AS u ON u.user_id = s.user_id"
        " WHERE s.finished_at IS NULL"
    ):
        live[username].add(device_id)
    for user in (*USERS, HELD_USER):
        assert deployment.homeserver.devices[user] == live[user], user
    return sum(len(d) for d in live.values())


def test_kill_9_under_write_load(deployment: Deployment) -> None:
    ledger = Ledger()
    client = Client(deployment)
    for user in USERS:
        client.browser(user)
    settle(deployment.db)  # the registrations' provisioning
    totals = Checked()
    for cycle in range(CYCLES):
        started = time.monotonic()
        mode = deployment.config["database"].get("sqlite_synchronous", "")
        target = load_until_killed(deployment, client, ledger, cycle)
        deployment.start()
        checked = check_all(deployment, client, ledger)
        print(
            f"\n[{deployment.engine}{' ' + mode if mode else ''}] cycle {cycle + 1}: killed after {target} more acknowledged writes"
            f" ({dict(ledger.acks)} so far); checked after restart: {dict(checked)}"
            f" ({time.monotonic() - started:.1f} s)"
        )
        totals = checked
    # Every kind of write was acknowledged (and so checked) at least once on this engine: a
    # kind the load never reached would otherwise pass unchecked.
    kinds = (
        "browser login", "code", "code exchange", "oauth refresh", "revocation",
        "compat login", "compat refresh", "compat logout",
    )  # fmt: skip
    assert {kind: ledger.acks[kind] for kind in kinds if ledger.acks[kind] == 0} == {}, dict(ledger.acks)
    assert sum(ledger.jobs_acked.values()) > 0, "no job was acknowledged"
    use_newest_refresh_tokens(deployment, client, ledger, totals)
    totals["devices in sync"] = check_devices_in_sync(deployment)
    assert not deployment.homeserver.errors, deployment.homeserver.errors
    print(
        f"[{deployment.engine}] acknowledged writes checked over {CYCLES} kill -9 cycles: {dict(ledger.acks)};"
        f" {dict(totals)}"
    )
