# SPDX-License-Identifier: AGPL-3.0-only
"""The whole stack end to end (issue 5): a real ``twistd mas`` with its job worker, on SQLite
and on PostgreSQL, and a real Synapse delegating authentication to it
(``synapse-integration.md`` §1a, §2, §3, §5). Everything asserted is what a user or an
operator can see: Synapse's answers (its client API, its ``/_synapse/mas`` API with the shared
secret, its own database read-only), our HTTP answers, and the ``queue_jobs`` table.

Each engine gets its own Synapse, started before our service on the port chosen for it:
Synapse keeps the first discovery document it fetches for the life of its process, and
caches introspection answers for two minutes, so one Synapse is never shared by two of our
services (and a test that stops it disturbs no other module).

- A user registered with ``mas-cli manage register-user`` appears on Synapse once the worker
  ran ``provision-user``.
- An OAuth login (authorization code + PKCE through the real forms) gives a token Synapse
  accepts at once: the token endpoint created the device before answering.
- Revocation: once ``sync-devices`` ran, the device is gone from Synapse and it refuses the
  token.
- ``lock-user``: a token issued before the lock is inactive at our introspection and refused
  by Synapse; ``lock-user --deactivate``: Synapse reports the user deactivated.
- Synapse down: ``provision-user`` fails, a retry is scheduled 5 s later, and the user is
  created when Synapse is back.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.integration._harness import TwistdProcess, eventually, mas_cli, query
from tests.integration._oauth import PASSWORD, REDIRECT_URI, Browser, introspect, register
from tests.integration._synapse import SynapseServer, mas_with_synapse

API_SCOPE = "urn:matrix:client:api:*"
#: Long enough for the worker (wakes every ~1 s) to pick a job up and run it.


class Stack:
    """Our service and its Synapse, for one database engine."""

    def __init__(
        self, engine: str, tmp: Path, synapse: SynapseServer, proc: TwistdProcess, config: dict[str, Any]
    ):
        self.engine = engine
        self.tmp = tmp
        self.synapse = synapse
        self.proc = proc
        self.config = config
        self.port = synapse.mas_port
        self.base = synapse.mas_endpoint
        self.database_uri = config["database"]["uri"]
        self.secret = config["matrix"]["secret"]
        self.metadata = requests.get(self.base + ".well-known/openid-configuration", timeout=10).json()

    # -- the shape test_oauth_flow's helpers expect ------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return {"base": self.base, "metadata": self.metadata, "secret": self.secret}[key]

    def manage(self, *args: str) -> Any:
        out = mas_cli(self.tmp, "manage", *args, "-c", str(self.proc.config_path))
        assert out.returncode == 0, (out.stdout, out.stderr)
        return out

    def synapse_user(self, localpart: str) -> Any:
        """Synapse's own record of the user (``GET /_synapse/mas/query_user``), or ``None``
        when it has none (404)."""
        resp = self.synapse.request(
            "GET", f"_synapse/mas/query_user?localpart={quote(localpart)}", token=self.synapse.secret
        )
        if resp.status == 404:
            return None
        assert resp.status == 200, (resp.status, resp.body)
        return resp.json()

    def jobs(self, queue_name: str, user_id: str) -> list[dict[str, Any]]:
        """The user's rows of one queue, oldest first."""
        columns = (
            "queue_job_id",
            "status",
            "attempt",
            "failed_at",
            "failed_reason",
            "next_attempt_id",
            "scheduled_at",
        )
        rows = query(
            self.database_uri,
            f"SELECT {', '.join(columns)}, payload FROM queue_jobs WHERE queue_name = '{queue_name}'"
            " ORDER BY queue_job_id",
        )
        return [dict(zip(columns, row[:-1])) for row in rows if json.loads(row[-1]).get("user_id") == user_id]

    def user_id(self, username: str) -> str:
        ((user_id,),) = query(self.database_uri, f"SELECT user_id FROM users WHERE username = '{username}'")
        return user_id


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"synapse-e2e-{request.param}")
    with mas_with_synapse(tmp, request.param) as (synapse, proc, config):
        yield Stack(request.param, tmp / "mas", synapse, proc, config)


def ensure_user(stack: Stack, username: str, display_name: str | None = None) -> str:
    """Register ``username`` (unless it is already) and wait until Synapse has it."""
    if not query(stack.database_uri, f"SELECT 1 FROM users WHERE username = '{username}'"):
        args = ["register-user", "--yes", username, "-p", PASSWORD]
        if display_name:
            args += ["-d", display_name]
        stack.manage(*args)
    eventually(lambda: stack.synapse_user(username), what=f"{username} on Synapse")
    return stack.user_id(username)


def log_in(stack: Stack, username: str, device: str) -> dict[str, Any]:
    """An authorization code login with PKCE through the real forms; the token response."""
    md = stack.metadata
    info = register(
        stack,
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    scope = f"openid {API_SCOPE} urn:matrix:client:device:{device}"
    client = OAuth2Session(
        info["client_id"],
        info["client_secret"],
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = uuid.uuid4().hex * 2
    url, _state = client.create_authorization_url(md["authorization_endpoint"], code_verifier=verifier)
    browser = Browser(stack.base)
    page = browser.follow(browser.get(url))
    assert page.status_code == 200 and "password" in page.text, page.text
    page = browser.follow(browser.submit(page, {"username": username, "password": PASSWORD}))
    assert page.status_code == 200 and "/consent/" in page.url, (page.url, page.text)
    callback = browser.follow(browser.submit(page, {}, button=("action", "consent")), until=REDIRECT_URI)
    location = callback.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    token = client.fetch_token(
        md["token_endpoint"], authorization_response=location.split("#", 1)[0], code_verifier=verifier
    )
    token["client"] = client
    return token


def test_registered_user_is_provisioned(stack: Stack) -> None:
    assert stack.synapse_user("alice") is None
    user_id = ensure_user(stack, "alice", "Alice")
    user = stack.synapse_user("alice")
    assert user["user_id"] == stack.synapse.mxid("alice")
    assert user["display_name"] == "Alice" and user["is_deactivated"] is False
    profile = stack.synapse.profile("alice")
    assert profile.status == 200 and profile.json()["displayname"] == "Alice"
    eventually(
        lambda: [j["status"] for j in stack.jobs("provision-user", user_id)] == ["completed"],
        what="provision-user completed",
    )


def test_login_token_works_on_synapse_at_once(stack: Stack) -> None:
    ensure_user(stack, "alice", "Alice")
    token = log_in(stack, "alice", "E2EDEVICE1")
    # No waiting: the token endpoint created the device on Synapse before answering.
    whoami = stack.synapse.whoami(token["access_token"])
    assert whoami.status == 200, whoami.body
    assert whoami.json() == {
        "user_id": stack.synapse.mxid("alice"),
        "device_id": "E2EDEVICE1",
        "is_guest": False,
    }
    assert "E2EDEVICE1" in stack.synapse.devices("alice")

    # Synapse hands out our discovery document (MSC2965).
    ours = requests.get(stack.base + ".well-known/openid-configuration", timeout=10).json()
    resp = stack.synapse.request("GET", "_matrix/client/v1/auth_metadata")
    assert resp.status == 200, resp.body
    theirs = resp.json()
    assert theirs["issuer"] == stack.base == ours["issuer"]
    assert theirs == ours
    # The account management URI that Synapse hands to clients (MSC4191) is a page, not a 404.
    account = requests.get(theirs["account_management_uri"], timeout=10)
    assert account.status_code == 200, (theirs["account_management_uri"], account.status_code)
    assert account.headers["Content-Type"].startswith("text/html"), account.headers


def test_revocation_removes_the_device(stack: Stack) -> None:
    user_id = ensure_user(stack, "alice", "Alice")
    token = log_in(stack, "alice", "E2EDEVICE2")
    assert stack.synapse.whoami(token["access_token"]).status == 200
    syncs_before = len(stack.jobs("sync-devices", user_id))

    resp = token["client"].revoke_token(
        stack.metadata["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token"
    )
    assert resp.status_code == 200, resp.text
    assert introspect(stack, token["access_token"]) == {"active": False}
    eventually(lambda: "E2EDEVICE2" not in stack.synapse.devices("alice"), what="device gone from Synapse")
    eventually(
        lambda: (
            [j["status"] for j in stack.jobs("sync-devices", user_id)[syncs_before:]][-1:] == ["completed"]
        ),
        what="sync-devices completed",
    )
    # Synapse had cached the token as active (2 minutes), but the device is gone: 401.
    whoami = stack.synapse.whoami(token["access_token"])
    assert whoami.status == 401 and whoami.json()["errcode"] == "M_UNKNOWN_TOKEN", whoami.body


def test_locked_user_tokens_are_refused(stack: Stack) -> None:
    ensure_user(stack, "alice", "Alice")
    # Issued before the lock, and never shown to Synapse before it (Synapse caches answers).
    token = log_in(stack, "alice", "E2EDEVICE3")
    assert introspect(stack, token["access_token"])["active"] is True

    stack.manage("lock-user", "alice")
    assert introspect(stack, token["access_token"]) == {"active": False}
    whoami = stack.synapse.whoami(token["access_token"])
    assert whoami.status == 401 and whoami.json()["errcode"] == "M_UNKNOWN_TOKEN", whoami.body
    # The lock reaches Synapse with the next provision-user.
    eventually(
        lambda: (
            stack.synapse.query("SELECT locked FROM users WHERE name = ?", (stack.synapse.mxid("alice"),))
            == [(1,)]
        ),
        what="alice locked on Synapse",
    )
    # A locked user cannot log in again: the right password shows the locked-account page.
    browser = Browser(stack.base)
    page = browser.follow(browser.get("/login"))
    page = browser.submit(page, {"username": "alice", "password": PASSWORD})
    assert page.status_code == 200 and "Account locked" in page.text, (page.status_code, page.text)
    assert "session" not in page.headers.get("set-cookie", ""), page.headers


def test_deactivation_reaches_synapse(stack: Stack) -> None:
    user_id = ensure_user(stack, "bob", "Bob")
    assert stack.synapse_user("bob")["is_deactivated"] is False
    stack.manage("lock-user", "bob", "--deactivate")
    eventually(lambda: stack.synapse_user("bob")["is_deactivated"] is True, what="bob deactivated on Synapse")
    # (Synapse answers before the worker records the outcome.)
    eventually(
        lambda: [j["status"] for j in stack.jobs("deactivate-user", user_id)] == ["completed"],
        what="deactivate-user completed",
    )


def test_jobs_retry_while_synapse_is_down(stack: Stack) -> None:
    synapse = stack.synapse
    synapse.stop()
    try:
        # The homeserver cannot confirm the name while it is down: register-user refuses then,
        # as MAS does, unless told to skip the check (what this test needs, to see the
        # provision-user job retry until Synapse is back).
        stack.manage(
            "register-user", "--yes", "--skip-homeserver-check", "dora", "-p", PASSWORD, "-d", "Dora"
        )
        user_id = stack.user_id("dora")
        # The first attempt fails (connection refused: retryable) and a second is scheduled
        # 5 s after the failure (5 s × 2^0).
        first = eventually(
            lambda: [j for j in stack.jobs("provision-user", user_id) if j["status"] == "failed"],
            what="a failed provision-user attempt",
        )[0]
        assert first["attempt"] == 0 and first["failed_reason"], first
        retry = {j["queue_job_id"]: j for j in stack.jobs("provision-user", user_id)}[
            first["next_attempt_id"]
        ]
        assert retry["attempt"] == 1 and retry["status"] == "scheduled", retry
        assert 4_000 <= retry["scheduled_at"] - first["failed_at"] <= 5_000, (first, retry)
        assert stack.secret not in first["failed_reason"] and synapse.secret not in first["failed_reason"]
    finally:
        synapse.start()
    started = time.monotonic()
    user = eventually(lambda: stack.synapse_user("dora"), what="dora on Synapse after the retry")
    waited = time.monotonic() - started
    assert user["display_name"] == "Dora"
    eventually(
        lambda: (
            [(j["attempt"], j["status"]) for j in stack.jobs("provision-user", user_id)]
            == [(0, "failed"), (1, "completed")]
        ),
        what="attempt 1 completed",
    )
    print(f"[{stack.engine}] dora appeared on Synapse {waited:.1f}s after Synapse was back")
