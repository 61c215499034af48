# SPDX-License-Identifier: AGPL-3.0-only
"""``kill -9`` under a write load, on PostgreSQL and on SQLite (issue 11 item 4; issue 19's
"answered, then lost" check).

A deployment as an operator runs it: one ``twistd mas --no-worker`` serving the listeners and
one ``mas-cli worker`` on one database (PostgreSQL; or a SQLite file in WAL mode). Threads of
the test drive a concurrent write load, each answer the service acknowledged recorded with its
content in a :class:`Ledger`:

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
  id has at most one "Running job" line over every worker log).

Several kill/restart cycles run in one test; the last one ends with the newest refresh token of
every live chain used through the API: it works once, and after its successor was used, a
replay is refused. The counts of acknowledged writes checked are printed per kind.

The homeserver is ``synapse_read_only`` (its writes are no-ops, as in the scale-out test): the
jobs' side effects are their rows and the worker's log. A killed worker's heartbeat is moved
back in the database rather than waiting the 2 minutes after which the leader declares it dead.
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
import threading
import time
from collections.abc import Callable, Iterator
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


class Ledger:
    """Every acknowledged write, by kind, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chains: list[Chain] = []
        self.codes: list[str] = []
        self.acks: collections.Counter[str] = collections.Counter()
        self.jobs_acked: collections.Counter[str] = collections.Counter()
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


def post_form(port: int, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, Any]:
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
                    "resources": [
                        {"name": n} for n in ("discovery", "human", "oauth", "compat", "health")
                    ],
                    "binds": [{"host": "127.0.0.1", "port": self.port}],
                }
            ],
        }
        config["matrix"]["homeserver"] = "example.test"
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
        for user in USERS:
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
            browser = Browser(self.deployment.base)
            page = browser.follow(browser.get("/login"))
            assert page.status_code == 200, page.text
            done = browser.follow(browser.submit(page, {"username": user, "password": PASSWORD}))
            assert done.status_code == 200, done.text
            self.browsers[user] = browser
        return self.browsers[user]

    def auth(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}


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
        assert status == 200, (status, body)
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
            assert status == 200, (status, body)
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
            assert status == 200, (status, body)
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
        assert status == 200, (status, body)
        chain.pairs.append((body["access_token"], body["refresh_token"]))
        chain.pending = None
        ledger.ack("compat login")
        for _ in range(rng.randint(0, 3)):
            if stop.is_set():
                return
            chain.pending = "refresh"
            status, body = post_json(port, "/_matrix/client/v3/refresh", {"refresh_token": chain.pairs[-1][1]})
            assert status == 200, (status, body)
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


def run_thread(ledger: Ledger, body: Callable[[], None]) -> threading.Thread:
    def _run() -> None:
        try:
            body()
        except Unanswered:
            pass  # the kill: the chain keeps its pending request
        except Exception as e:  # an answer that was not what it should be
            with ledger.lock:
                ledger.errors.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    return thread


def load_until_killed(deployment: Deployment, client: Client, ledger: Ledger, cycle: int) -> int:
    """Run the load until N more writes were acknowledged, then kill -9; N."""
    rng = random.Random(SEED * 100 + cycle)
    target = rng.randint(MIN_WRITES, MAX_WRITES)
    start = ledger.total
    stop = threading.Event()
    threads = [
        run_thread(ledger, lambda r=random.Random(rng.random()): oauth_load(client, ledger, r, stop, cycle))
        for _ in range(OAUTH_THREADS)
    ] + [
        run_thread(
            ledger, lambda r=random.Random(rng.random()): compat_load(deployment.port, ledger, r, stop, cycle)
        )
        for _ in range(COMPAT_THREADS)
    ]
    deadline = time.monotonic() + 90
    while ledger.total - start < target:
        assert not ledger.errors, ledger.errors
        assert any(t.is_alive() for t in threads), "every load thread ended"
        assert time.monotonic() < deadline, f"only {ledger.total - start} writes in 90 s"
        time.sleep(0.005)
    deployment.kill9()
    stop.set()
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
            assert consumed is not None and next_id in ids, f"refresh token {n} was rotated but is not consumed"
    newest_rt = refresh[chain.pairs[-1][1]]
    rotated_unanswered = newest_rt[1] is not None
    if rotated_unanswered:
        assert chain.pending == "refresh", "the newest answered refresh token is consumed, by no answered request"
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
            assert refresh[refresh_token][1] is not None, f"compat refresh token {n} was rotated, not consumed"
    rotated_unanswered = refresh[chain.pairs[-1][1]][1] is not None
    if rotated_unanswered:
        assert chain.pending == "refresh", "the newest compat refresh token is consumed, by no answered request"
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


def check_jobs(deployment: Deployment, ledger: Ledger, checked: Checked) -> None:
    db = deployment.db
    release_dead_workers(deployment)

    def settled() -> bool:
        open_jobs = db.execute(
            f"SELECT COUNT(*) FROM queue_jobs WHERE status IN ('available', 'running', 'scheduled') AND {OURS}"
        )[0][0]
        return open_jobs == 0

    deadline = time.monotonic() + 90
    while not settled():
        assert time.monotonic() < deadline, db.execute(
            "SELECT queue_job_id, queue_name, status, started_by FROM queue_jobs"
            f" WHERE status IN ('available', 'running', 'scheduled') AND {OURS}"
        )
        time.sleep(0.3)
    users = dict(db.execute("SELECT username, user_id FROM users"))
    for user, acked in ledger.jobs_acked.items():
        rows = db.execute(
            "SELECT queue_job_id, status, next_attempt_id FROM queue_jobs WHERE queue_name = 'sync-devices'"
            " AND attempt = 0 AND CAST(payload AS TEXT) LIKE ?",
            (f"%{users[user]}%",),
        )
        assert len(rows) >= acked, f"{user}: {acked} acknowledged job-scheduling writes, {len(rows)} jobs"
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
    runs: collections.Counter[str] = collections.Counter()
    for process in deployment.worker_logs:
        for job_id, _queue, _attempt in RUNNING_JOB.findall(process.output()):
            runs[job_id] += 1
    twice = [job_id for job_id, n in runs.items() if n > 1]
    assert twice == [], twice
    checked["jobs run once"] = len(runs)


def check_all(deployment: Deployment, ledger: Ledger) -> Checked:
    checked = Checked()
    check_global_invariants(deployment.db)
    for chain in ledger.chains:
        if chain.kind == "oauth":
            check_oauth_chain(deployment, chain, checked)
        else:
            check_compat_chain(deployment, chain, checked)
    check_jobs(deployment, ledger, checked)
    return checked


def use_newest_refresh_tokens(deployment: Deployment, client: Client, ledger: Ledger, checked: Checked) -> None:
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
                    port, "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": token, **client.auth()}
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


def test_kill_9_under_write_load(deployment: Deployment) -> None:
    ledger = Ledger()
    client = Client(deployment)
    for user in USERS:
        client.browser(user)
    totals = Checked()
    for cycle in range(CYCLES):
        started = time.monotonic()
        target = load_until_killed(deployment, client, ledger, cycle)
        deployment.start()
        checked = check_all(deployment, ledger)
        print(
            f"\n[{deployment.engine}] cycle {cycle + 1}: killed after {target} more acknowledged writes"
            f" ({dict(ledger.acks)} so far); checked after restart: {dict(checked)}"
            f" ({time.monotonic() - started:.1f} s)"
        )
        totals = checked
    use_newest_refresh_tokens(deployment, client, ledger, totals)
    print(
        f"[{deployment.engine}] acknowledged writes checked over {CYCLES} kill -9 cycles: {dict(ledger.acks)};"
        f" {dict(totals)}"
    )
