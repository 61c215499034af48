# SPDX-License-Identifier: AGPL-3.0-only
"""``kill -9`` of ``mas-cli syn2mas migrate`` at several points, then a run that ends with the
same rows as an uninterrupted one (issue 16, "safe to interrupt").

Everything a run migrates is written in one transaction (``mas_twisted.storage.syn2mas``), so
a killed run must leave no migrated row, only its unfinished ``syn2mas_runs`` row, which the
next run reports before it starts over. The Synapse side is a synthetic database with the
subset of Synapse's schema that syn2mas reads (``tests/syn2mas/_synapse.py``), large enough
(20,000 users) that a run lasts long enough to be killed in the middle.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration._harness import PostgresDatabase, query, venv_script
from tests.syn2mas._synapse import PEPPER, SCHEMA_SUBSET, SERVER_NAME

USERS = 20_000

#: Log lines after which the run is killed: the transaction has begun (providers synced),
#: users are written, access tokens are written.
KILL_POINTS = ("Syncing providers", "Read 20000 users rows", "access_tokens rows")

#: What a migration writes, without the ids (drawn afresh by every run).
CONTENT = {
    "users": "SELECT username, created_at, locked_at, deactivated_at, can_request_admin FROM users",
    "user_passwords": "SELECT u.username, p.hashed_password, p.version FROM user_passwords p JOIN users u USING (user_id)",
    "user_emails": "SELECT u.username, e.email FROM user_emails e JOIN users u USING (user_id)",
    "compat_sessions": "SELECT u.username, s.device_id, s.human_name, s.last_active_ip"
    " FROM compat_sessions s JOIN users u USING (user_id)",
    "compat_access_tokens": "SELECT s.device_id, t.access_token, t.expires_at FROM compat_access_tokens t"
    " JOIN compat_sessions s USING (compat_session_id)",
    "compat_refresh_tokens": "SELECT a.access_token, r.refresh_token FROM compat_refresh_tokens r"
    " JOIN compat_access_tokens a USING (compat_access_token_id)",
}


@pytest.fixture(scope="module")
def homeserver(tmp_path_factory: Any) -> Path:
    """A synthetic Synapse SQLite database and its homeserver.yaml."""
    workdir = tmp_path_factory.mktemp("synthetic-synapse")
    db = workdir / "homeserver.db"
    conn = sqlite3.connect(db)
    for statement in SCHEMA_SUBSET:
        conn.execute(statement)
    users = [(f"@user{i}:{SERVER_NAME}", "$2b$04$" + "a" * 53, 1_600_000_000 + i) for i in range(USERS)]
    conn.executemany("INSERT INTO users (name, password_hash, creation_ts) VALUES (?, ?, ?)", users)
    conn.executemany(
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) VALUES (?, 'email', ?, 1, 1)",
        [(name, f"user{i}@example.com") for i, (name, _, _) in enumerate(users)],
    )
    conn.executemany(
        "INSERT INTO devices (user_id, device_id, display_name, ip, hidden) VALUES (?, ?, ?, '10.0.0.1', 0)",
        [(name, f"DEV{i}", f"Device {i}") for i, (name, _, _) in enumerate(users)],
    )
    conn.executemany(
        "INSERT INTO access_tokens (id, user_id, device_id, token) VALUES (?, ?, ?, ?)",
        [(i, name, f"DEV{i}", f"syt_token_{i}") for i, (name, _, _) in enumerate(users)],
    )
    conn.executemany(
        "INSERT INTO refresh_tokens (id, user_id, device_id, token) VALUES (?, ?, ?, ?)",
        [(i, name, f"DEV{i}", f"syr_refresh_{i}") for i, (name, _, _) in enumerate(users[: USERS // 2])],
    )
    conn.executemany(
        "INSERT INTO access_tokens (id, user_id, device_id, token, refresh_token_id, used) VALUES (?, ?, ?, ?, ?, 0)",
        [
            (USERS + i, name, f"DEV{i}", f"syt_refreshable_{i}", i)
            for i, (name, _, _) in enumerate(users[: USERS // 2])
        ],
    )
    conn.commit()
    conn.close()
    config = workdir / "homeserver.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server_name": SERVER_NAME,
                "password_config": {"pepper": PEPPER},
                "database": {"name": "sqlite3", "args": {"database": str(db)}},
            }
        )
    )
    return config


def _target(tmp: Path, engine: str, databases: list[PostgresDatabase]) -> tuple[Path, str]:
    tmp.mkdir()
    if engine == "postgres":
        db = PostgresDatabase()
        databases.append(db)
        uri = db.uri
    else:
        uri = f"sqlite:///{tmp / 'mas.db'}"
    config = tmp / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"uri": uri},
                "secrets": {"encryption": "0123456789abcdef" * 4},
                "matrix": {"homeserver": SERVER_NAME, "secret": "s", "endpoint": "http://127.0.0.1:9/"},
                "passwords": {
                    "schemes": [
                        {
                            "version": 1,
                            "algorithm": "bcrypt",
                            "unicode_normalization": True,
                            "secret": PEPPER,
                        },
                        {"version": 2, "algorithm": "argon2id"},
                    ]
                },
            }
        )
    )
    return config, uri


def _argv(config: Path, homeserver: Path) -> list[str]:
    return [
        venv_script("mas-cli"),
        "-c",
        str(config),
        "syn2mas",
        "--synapse-config",
        str(homeserver),
        "migrate",
    ]


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MAS_")}, "MAS_LOG_LEVEL": "info"}


def _migrate(config: Path, homeserver: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(config, homeserver), capture_output=True, text=True, timeout=300, env=_env())


def _kill_after(config: Path, homeserver: Path, marker: str) -> None:
    """Start a run and SIGKILL it as soon as its log shows ``marker``."""
    proc = subprocess.Popen(
        _argv(config, homeserver), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env()
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before {marker!r}:\n{''.join(seen)}"


def _content(uri: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(query(uri, sql)) for table, sql in CONTENT.items()}


@pytest.fixture
def databases() -> Iterator[list[PostgresDatabase]]:
    made: list[PostgresDatabase] = []
    yield made
    for db in made:
        db.drop()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_killed_run_leaves_nothing_and_the_next_one_completes(
    homeserver: Path, tmp_path: Path, engine: str, databases: list[PostgresDatabase]
) -> None:
    reference_config, reference_uri = _target(tmp_path / "reference", engine, databases)
    done = _migrate(reference_config, homeserver)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _content(reference_uri)
    assert len(expected["users"]) == USERS and len(expected["compat_refresh_tokens"]) == USERS // 2

    config, uri = _target(tmp_path / "killed", engine, databases)
    for marker in KILL_POINTS:
        _kill_after(config, homeserver, marker)
        # Nothing migrated survives the kill; the run's row says it never finished.
        assert query(uri, "SELECT COUNT(*) FROM users") == [(0,)], marker
        assert query(uri, "SELECT COUNT(*) FROM compat_access_tokens") == [(0,)], marker
        assert query(uri, "SELECT COUNT(*) FROM syn2mas_runs WHERE finished_at IS NULL") == [(1,)], marker

    again = _migrate(config, homeserver)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "was interrupted; the database rolled back everything it had written" in again.stderr
    assert _content(uri) == expected
    assert query(uri, "SELECT COUNT(*) FROM syn2mas_runs WHERE finished_at IS NULL") == [(0,)]
