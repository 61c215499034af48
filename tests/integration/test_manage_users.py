# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage`` commands that change users and schedule jobs for the homeserver, run as
an operator runs them (a real ``mas-cli`` process), on SQLite and PostgreSQL: what each
command writes, and the jobs it leaves for the worker, in the same transaction; and
``register-user`` asking a real Synapse whether a name is free (refusing while it is down)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration._harness import PostgresDatabase, base_config, mas_cli, query
from tests.integration._synapse import SynapseServer, synapse  # noqa: F401 (pytest fixture)


class Workdir(type(Path())):  # type: ignore[misc]
    """The command's working directory, knowing its database."""

    def __new__(cls, path: Path, database_uri: str) -> Workdir:
        self = super().__new__(cls, path)
        self.database_uri = database_uri
        return self

    def __init__(self, path: Path, database_uri: str) -> None:
        pass


@pytest.fixture(params=["sqlite", "postgres"])
def workdir(request: Any, tmp_path: Path) -> Any:
    database_uri = None
    if request.param == "postgres":
        db = PostgresDatabase()
        request.addfinalizer(db.drop)
        database_uri = db.uri
    config = base_config(tmp_path, database_uri=database_uri)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = mas_cli(tmp_path, "database", "migrate")
    assert out.returncode == 0, out.stderr
    return Workdir(tmp_path, config["database"]["uri"])


def cli(workdir: Path, *args: str) -> Any:
    out = mas_cli(workdir, "manage", *args)
    return out


def jobs(workdir: Path) -> list[tuple[str, Any]]:
    rows = query(workdir.database_uri, "SELECT queue_name, payload FROM queue_jobs ORDER BY queue_job_id")  # type: ignore[attr-defined]
    return [(name, json.loads(payload)) for name, payload in rows]


def test_user_lifecycle_commands(workdir: Path) -> None:
    db = workdir.database_uri  # type: ignore[attr-defined]
    # No homeserver runs beside this test: the username check is skipped (the test below asks one).
    out = cli(
        workdir,
        "register-user",
        "--yes",
        "alice",
        "-d",
        "Alice A.",
        "-e",
        "alice@example.test",
        "--skip-homeserver-check",
    )
    assert out.returncode == 0, out.stderr
    ((user_id,),) = query(db, "SELECT user_id FROM users WHERE username = 'alice'")
    # Registration schedules the provisioning, with the display name.
    assert jobs(workdir) == [("provision-user", {"user_id": user_id, "set_display_name": "Alice A."})]

    out = cli(workdir, "lock-user", "alice", "--deactivate")
    assert out.returncode == 0, out.stderr
    assert query(db, f"SELECT locked_at IS NOT NULL FROM users WHERE user_id = '{user_id}'")[0][0]
    # (ids order by time only across milliseconds: one command's jobs are compared as a set)
    assert sorted(jobs(workdir)[1:], key=str) == sorted(
        [
            ("provision-user", {"user_id": user_id, "set_display_name": None}),
            ("deactivate-user", {"user_id": user_id, "hs_erase": False}),
        ],
        key=str,
    )

    out = cli(workdir, "unlock-user", "alice")
    assert out.returncode == 0, out.stderr
    assert not query(db, f"SELECT locked_at IS NOT NULL FROM users WHERE user_id = '{user_id}'")[0][0]
    assert jobs(workdir)[-1] == ("provision-user", {"user_id": user_id, "set_display_name": None})

    before = len(jobs(workdir))
    out = cli(workdir, "unlock-user", "alice", "--reactivate")
    assert out.returncode == 0, out.stderr
    assert sorted(jobs(workdir)[before:], key=str) == sorted(
        [
            ("provision-user", {"user_id": user_id, "set_display_name": None}),
            ("reactivate-user", {"user_id": user_id}),
        ],
        key=str,
    )

    # Admins.
    assert cli(workdir, "promote-admin", "alice").returncode == 0
    listed = cli(workdir, "list-admin-users")
    assert listed.returncode == 0 and listed.stdout.split() == ["alice"]
    assert cli(workdir, "demote-admin", "alice").returncode == 0
    assert cli(workdir, "list-admin-users").stdout.split() == []

    # Emails.
    before = len(jobs(workdir))
    assert cli(workdir, "add-email", "alice", "second@example.test").returncode == 0
    emails = query(db, f"SELECT email FROM user_emails WHERE user_id = '{user_id}' ORDER BY email")
    assert [e for (e,) in emails] == ["alice@example.test", "second@example.test"]
    assert jobs(workdir)[before:] == [("provision-user", {"user_id": user_id, "set_display_name": None})]
    bad = cli(workdir, "add-email", "alice", "not-an-address")
    assert bad.returncode == 1 and "Invalid email address" in bad.stderr

    # Sessions: a dry run counts, the real run ends them and syncs the devices.
    query_count = lambda: query(db, "SELECT COUNT(*) FROM user_sessions WHERE finished_at IS NULL")[0][0]
    from tests.integration._harness import run_sql

    run_sql(
        db,
        f"INSERT INTO user_sessions (user_session_id, user_id, created_at) VALUES ('01HSESSION0000000000000000', '{user_id}', 1)",
    )
    dry = cli(workdir, "kill-sessions", "alice", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would end 1 active browser session" in dry.stderr
    assert query_count() == 1
    before = len(jobs(workdir))
    assert cli(workdir, "kill-sessions", "alice").returncode == 0
    assert query_count() == 0
    assert jobs(workdir)[before:] == [("sync-devices", {"user_id": user_id})]

    # Everybody.
    assert cli(workdir, "register-user", "--yes", "bob", "--skip-homeserver-check").returncode == 0
    before = len(jobs(workdir))
    assert cli(workdir, "provision-all-users").returncode == 0
    assert sorted(p["user_id"] for _, p in jobs(workdir)[before:]) == sorted(
        u for (u,) in query(db, "SELECT user_id FROM users")
    )

    # Unknown users.
    for command in (
        ["lock-user", "nobody"],
        ["unlock-user", "nobody"],
        ["kill-sessions", "nobody"],
        ["promote-admin", "nobody"],
    ):
        out = cli(workdir, *command)
        assert out.returncode == 1 and "User not found" in out.stderr, command


def test_register_user_needs_the_homeserver(workdir: Path, synapse: SynapseServer) -> None:
    """MAS's rule: a username the homeserver has not confirmed free is never registered. Here a
    real Synapse is asked (``/_synapse/mas/is_localpart_available``); stopped, it cannot
    answer, and ``register-user`` refuses with one line and creates nothing."""
    db = workdir.database_uri  # type: ignore[attr-defined]
    config_path = workdir / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["matrix"] = {
        "kind": "synapse",
        "homeserver": synapse.server_name,
        "endpoint": synapse.base_url,
        "secret": synapse.secret,
    }
    config_path.write_text(yaml.safe_dump(config))
    # Each run (one per engine, one Synapse per session) asks about names of its own.
    suffix = secrets.token_hex(4)
    taken, carol, dave = f"taken-{suffix}", f"carol-{suffix}", f"dave-{suffix}"

    def users() -> list[str]:
        return [u for (u,) in query(db, "SELECT username FROM users ORDER BY username")]

    # A name Synapse already has is refused.
    provisioned = synapse.request(
        "POST",
        "_synapse/mas/provision_user",
        token=synapse.secret,
        body={"localpart": taken, "locked": False},
    )
    assert provisioned.status == 201, provisioned.body
    out = cli(workdir, "register-user", "--yes", taken)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().splitlines() == ["mas-cli: Username not available on homeserver"]
    assert users() == [] and jobs(workdir) == []

    synapse.stop()
    try:
        out = cli(workdir, "register-user", "--yes", carol, "-d", "Carol")
        assert out.returncode == 1, (out.stdout, out.stderr)
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith("mas-cli: Could not check the username on the homeserver: "), line
        assert "Traceback" not in out.stderr
        assert users() == [] and jobs(workdir) == []

        # Skipping the check is explicit; the provisioning job waits for the homeserver.
        out = cli(workdir, "register-user", "--yes", dave, "--skip-homeserver-check")
        assert out.returncode == 0, out.stderr
        assert users() == [dave]
        ((dave_id,),) = query(db, f"SELECT user_id FROM users WHERE username = '{dave}'")
        assert jobs(workdir) == [("provision-user", {"user_id": dave_id, "set_display_name": None})]
    finally:
        synapse.start()

    # With Synapse back, the same name registers.
    out = cli(workdir, "register-user", "--yes", carol, "-d", "Carol")
    assert out.returncode == 0, out.stderr
    assert users() == sorted([carol, dave])
    ((carol_id,),) = query(db, f"SELECT user_id FROM users WHERE username = '{carol}'")
    assert jobs(workdir)[-1] == ("provision-user", {"user_id": carol_id, "set_display_name": "Carol"})
