# SPDX-License-Identifier: AGPL-3.0-only
"""syn2mas on a database written by a real Synapse (issue 16, inventory §13).

One Synapse per module is filled by :func:`tests.integration._syn2mas.populated_synapse`
(password logins with and without refresh tokens, a pepper, an email and a phone number, a
deactivated, a locked and an admin user, an appservice user, an admin's "login as" token) and
stopped. Then each test migrates it into a fresh database of ours and looks at what a user or
an operator sees: the ``check`` report and exit status, the rows, and finally Synapse
delegating to us, where the old tokens, the old refresh token and the old passwords still work.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    query,
    venv_script,
)
from tests.integration._harness import request as http_request
from tests.integration._syn2mas import (
    PASSWORDS,
    SynapseHome,
    SynapsePostgresDatabase,
    mas_config_for,
    populated_synapse,
)


@pytest.fixture(scope="module", params=["synapse-sqlite", "synapse-postgres"])
def home(request: Any, tmp_path_factory: Any) -> Iterator[SynapseHome]:
    """The homeserver, on each of Synapse's engines."""
    workdir = tmp_path_factory.mktemp("synapse-home")
    if request.param == "synapse-postgres":
        db = SynapsePostgresDatabase()
        try:
            yield populated_synapse(workdir, postgres_dsn=db.dsn)
        finally:
            db.drop()
    else:
        yield populated_synapse(workdir)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: Any, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder and the URI of an empty database of ours."""
    if request.param == "postgres":
        db = PostgresDatabase()
        try:
            yield tmp_path, db.uri
        finally:
            db.drop()
    else:
        yield tmp_path, f"sqlite:///{tmp_path / 'mas.db'}"


def _write_config(workdir: Path, config: dict[str, Any]) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(workdir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAS_")}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=300, cwd=workdir, env=env)


def _syn2mas(workdir: Path, config: Path, home: SynapseHome, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(
        workdir,
        venv_script("mas-cli"),
        "-c",
        str(config),
        "syn2mas",
        "--synapse-config",
        str(home.config_path),
        *args,
    )


def _ready_config(workdir: Path, home: SynapseHome, uri: str) -> Path:
    return _write_config(workdir, mas_config_for(home, base_config(workdir, database_uri=uri)))


def test_check_names_what_blocks_and_what_to_consider(home: SynapseHome, tmp_path: Path) -> None:
    # The generated configuration hashes with argon2id as version 1 and has no pepper.
    config = base_config(tmp_path)
    config["matrix"]["homeserver"] = "other.example"
    out = _syn2mas(tmp_path, _write_config(tmp_path, config), home, "check")
    assert out.returncode == 10, out.stdout + out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("ERROR ")]
    assert any("version 1 uses argon2id" in line and "bcrypt" in line for line in errors), out.stdout
    assert any("no secret but Synapse has a pepper" in line for line in errors), out.stdout
    assert any("matrix.homeserver is 'other.example'" in line and "'localhost'" in line for line in errors)

    # With Synapse's pepper as version 1 and its server name: only warnings are left.
    out = _syn2mas(tmp_path, _write_config(tmp_path, mas_config_for(home, config)), home, "check")
    assert out.returncode == 11, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert not [line for line in lines if line.startswith("ERROR")], out.stdout
    warnings = [line for line in lines if line.startswith("WARN ")]
    assert any("1 third-party id(s) other than email" in line for line in warnings), out.stdout
    assert any("1 access token(s) made by an admin to act as another user" in line for line in warnings)
    # check writes nothing.
    assert query(f"sqlite:///{tmp_path / 'mas.db'}", "SELECT COUNT(*) FROM users") == [(0,)]


def test_the_seeds_advisor_command(home: SynapseHome, tmp_path: Path) -> None:
    # Without our configuration, only Synapse's side is checked.
    out = _run(
        tmp_path, venv_script("syn2mas"), "--command=advisor", f"--synapseConfigFile={home.config_path}"
    )
    assert out.returncode == 11, out.stdout + out.stderr
    assert any(line.startswith("WARN ") and "other than email" in line for line in out.stdout.splitlines())

    config = _ready_config(tmp_path, home, f"sqlite:///{tmp_path / 'mas.db'}")
    out = _run(
        tmp_path,
        venv_script("syn2mas"),
        "--command",
        "migrate",
        "--synapseConfigFile",
        str(home.config_path),
        "--masConfigFile",
        str(config),
        "--dryRun",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "everything written was rolled back" in out.stdout
    assert query(f"sqlite:///{tmp_path / 'mas.db'}", "SELECT COUNT(*) FROM users") == [(0,)]


def test_dry_run_writes_and_reverts(home: SynapseHome, target: tuple[Path, str]) -> None:
    workdir, uri = target
    config = _ready_config(workdir, home, uri)
    out = _syn2mas(workdir, config, home, "migrate", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Dry run: would migrate" in out.stdout and "5 users" in out.stdout, out.stdout
    for table in ("users", "user_passwords", "compat_sessions", "compat_access_tokens", "syn2mas_runs"):
        assert query(uri, f"SELECT COUNT(*) FROM {table}") == [(0,)], table


def test_migrate_writes_users_sessions_and_tokens(home: SynapseHome, target: tuple[Path, str]) -> None:
    workdir, uri = target
    config = _ready_config(workdir, home, uri)
    out = _syn2mas(workdir, config, home, "migrate")
    assert out.returncode == 0, out.stdout + out.stderr

    users = {
        r[0]: r[1:]
        for r in query(
            uri, "SELECT username, can_request_admin, locked_at, deactivated_at, created_at FROM users"
        )
    }
    # The appservice's user is not migrated.
    assert sorted(users) == ["alice", "bob", "carol", "dave", "erin"]
    created = {name: row[3] for name, row in users.items()}
    assert bool(users["alice"][0]) and not bool(users["bob"][0])
    assert users["carol"][2] == created["carol"] and users["carol"][1] is None
    assert users["dave"][1] == created["dave"] and users["dave"][2] is None
    synapse_created = dict(home.synapse.query("SELECT name, creation_ts FROM users"))
    assert created["bob"] == synapse_created["@bob:localhost"] * 1000

    # Hashes verbatim, as version 1 (deactivating carol erased hers).
    synapse_hashes = dict(home.synapse.query("SELECT name, password_hash FROM users"))
    assert synapse_hashes["@carol:localhost"] is None
    passwords = query(
        uri,
        "SELECT u.username, p.hashed_password, p.version FROM user_passwords p JOIN users u USING (user_id)",
    )
    assert {(name, h, int(v)) for name, h, v in passwords} == {
        (name, synapse_hashes[f"@{name}:localhost"], 1) for name in ("alice", "bob", "dave", "erin")
    }

    assert query(uri, "SELECT u.username, e.email FROM user_emails e JOIN users u USING (user_id)") == [
        ("bob", "bob@example.com")
    ]
    assert query(
        uri,
        "SELECT u.username, t.medium, t.address FROM user_unsupported_third_party_ids t JOIN users u USING (user_id)",
    ) == [("bob", "msisdn", "15551234567")]

    sessions = {
        (r[0], r[1]): r[2:]
        for r in query(
            uri,
            "SELECT u.username, s.device_id, s.human_name, s.is_synapse_admin, s.last_active_ip"
            " FROM compat_sessions s JOIN users u USING (user_id)",
        )
    }
    assert sessions["alice", "ALICEDEV"][0] == "Alice laptop" and bool(sessions["alice", "ALICEDEV"][1])
    assert sessions["bob", "BOBPHONE"][0] == "Bob phone" and not bool(sessions["bob", "BOBPHONE"][1])
    assert sessions["bob", "BOBPHONE"][2] == "127.0.0.1"
    # Carol is deactivated: nothing of hers. The admin's "login as erin" token is not migrated.
    assert not [key for key in sessions if key[0] == "carol"]

    tokens = dict(
        query(
            uri,
            "SELECT t.access_token, s.device_id FROM compat_access_tokens t JOIN compat_sessions s"
            " USING (compat_session_id)",
        )
    )
    for (_, device), token in home.tokens.items():
        assert tokens[token] == device
    assert home.puppet_token not in tokens
    expiry = dict(home.synapse.query("SELECT token, valid_until_ms FROM access_tokens"))
    phone_token = home.tokens["bob", "BOBPHONE"]
    assert query(
        uri, f"SELECT expires_at FROM compat_access_tokens WHERE access_token = '{phone_token}'"
    ) == [(expiry[phone_token],)]
    assert query(
        uri,
        "SELECT r.refresh_token, a.access_token FROM compat_refresh_tokens r"
        " JOIN compat_access_tokens a USING (compat_access_token_id)",
    ) == [(home.refresh_token, phone_token)]
    assert [r[1] is not None for r in query(uri, "SELECT syn2mas_run_id, finished_at FROM syn2mas_runs")] == [
        True
    ]

    # A second run refuses: the database is no longer empty.
    again = _syn2mas(workdir, config, home, "migrate")
    assert again.returncode == 10, again.stdout + again.stderr
    assert "already holds a completed migration" in again.stdout


def _post(port: int, path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, json.loads(payload) if payload else None
    finally:
        conn.close()


def _password_login(port: int, user: str, password: str) -> tuple[int, Any]:
    return _post(
        port,
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password},
    )


def test_after_migration_nobody_is_logged_out(home: SynapseHome, target: tuple[Path, str]) -> None:
    """Synapse delegating to us on the migrated database: old tokens, refresh token and
    passwords keep working. Synapse is started delegating to us, then stopped and given its
    own configuration back."""
    workdir, uri = target
    synapse = home.synapse
    config = mas_config_for(home, base_config(workdir, database_uri=uri), kind="synapse")
    out = _syn2mas(workdir, _write_config(workdir, config), home, "migrate")
    assert out.returncode == 0, out.stdout + out.stderr

    config["http"] = {
        "public_base": synapse.mas_endpoint,
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": n} for n in ("discovery", "human", "oauth", "compat", "health")],
                "binds": [{"host": "127.0.0.1", "port": synapse.mas_port}],
            }
        ],
    }
    config["rate_limiting"] = {"login": {"per_ip": {"burst": 1000, "per_second": 100}}}
    proc = TwistdProcess(workdir, config).start()
    synapse.reconfigure(delegate=True, extra_config={"app_service_config_files": []})
    try:
        proc.wait_until(lambda: http_request("GET", "/health", port=synapse.mas_port))
        synapse.start()

        # The old access tokens work at Synapse, on the same devices.
        for (localpart, device), token in home.tokens.items():
            resp = synapse.whoami(token)
            if localpart == "dave":
                assert resp.status == 401, resp.body  # locked
                continue
            assert resp.status == 200, (localpart, resp.body)
            assert resp.json()["user_id"] == f"@{localpart}:localhost"
            assert resp.json()["device_id"] == device
        assert synapse.whoami(home.puppet_token).status == 401

        # The old refresh token works at our compat /refresh, and keeps the device.
        status, body = _post(
            synapse.mas_port, "/_matrix/client/v3/refresh", {"refresh_token": home.refresh_token}
        )
        assert status == 200, body
        resp = synapse.whoami(body["access_token"])
        assert resp.status == 200 and resp.json()["device_id"] == "BOBPHONE", resp.body

        # The old password works (bcrypt + pepper, NFKC), is re-hashed, and works again.
        status, body = _password_login(synapse.mas_port, "bob", PASSWORDS["bob"])
        assert status == 200, body
        versions = sorted(
            int(r[0])
            for r in query(
                uri,
                "SELECT p.version FROM user_passwords p JOIN users u USING (user_id) WHERE u.username = 'bob'",
            )
        )
        assert versions == [1, 2]
        status, body = _password_login(synapse.mas_port, "bob", PASSWORDS["bob"])
        assert status == 200, body
        assert synapse.whoami(body["access_token"]).status == 200
        assert _password_login(synapse.mas_port, "bob", "wrong")[0] == 403
        # Deactivated and locked users stay out.
        assert _password_login(synapse.mas_port, "carol", PASSWORDS["carol"])[0] in (401, 403)
        assert _password_login(synapse.mas_port, "dave", PASSWORDS["dave"])[0] in (401, 403)
    finally:
        synapse.stop()
        proc.stop()
        home.restore_config()
