# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage issue-compatibility-token`` run as an operator runs it (a subprocess
against a migrated database, SQLite or PostgreSQL with ``MAS_TEST_POSTGRES_DSN``)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli._helpers import (  # noqa: F401 - pytest fixtures
    closed_port,
    config,
    db,
    homeserver,
    mas_cli,
    set_matrix,
)
from tests.utils import EmptyDatabase

TOKEN_LINE = re.compile(r"^Compatibility token issued: (mct_[A-Za-z0-9]{30}_[A-Za-z0-9]{6})$", re.M)


def _register(config: str, tmp_path: Path) -> None:
    result = mas_cli("manage", "register-user", "alice", "-y", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_issue_token(config: str, db: EmptyDatabase, tmp_path: Path) -> None:
    set_matrix(config, kind="synapse_read_only")
    _register(config, tmp_path)
    result = mas_cli("manage", "issue-compatibility-token", "alice", "MYDEVICE01", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    match = TOKEN_LINE.search(result.stdout)
    assert match, result.stdout
    assert match.group(1) not in result.stderr  # the token is printed, not logged
    rows = db.query(
        "SELECT s.device_id, s.is_synapse_admin, t.expires_at, t.access_token FROM compat_sessions s"
        " JOIN compat_access_tokens t ON t.compat_session_id = s.compat_session_id"
    )
    assert [(r[0], bool(r[1]), r[2], r[3]) for r in rows] == [("MYDEVICE01", False, None, match.group(1))]

    result = mas_cli(
        "manage",
        "issue-compatibility-token",
        "alice",
        "--yes-i-want-to-grant-synapse-admin-privileges",
        "-c",
        config,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = db.query("SELECT device_id FROM compat_sessions WHERE is_synapse_admin ORDER BY compat_session_id")
    assert len(rows) == 1 and re.fullmatch(r"[A-Za-z0-9]{10}", rows[0][0])


def test_unknown_user(config: str, db: EmptyDatabase, tmp_path: Path) -> None:
    set_matrix(config, kind="synapse_read_only")
    result = mas_cli("manage", "issue-compatibility-token", "nobody", "-c", config, cwd=tmp_path)
    assert result.returncode == 1
    assert "User not found" in result.stderr
    assert db.query("SELECT COUNT(*) FROM compat_sessions")[0][0] == 0


def test_homeserver_down(config: str, db: EmptyDatabase, tmp_path: Path) -> None:
    set_matrix(config, kind="synapse_read_only")
    _register(config, tmp_path)
    jobs_before = db.query("SELECT COUNT(*) FROM queue_jobs WHERE queue_name = 'sync-devices'")[0][0]
    set_matrix(config, kind="synapse", endpoint=f"http://127.0.0.1:{closed_port()}/")
    result = mas_cli("manage", "issue-compatibility-token", "alice", "DEVICE0001", "-c", config, cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Compatibility token issued" not in result.stdout
    assert db.query("SELECT COUNT(*) FROM compat_sessions")[0][0] == 0
    jobs_after = db.query("SELECT COUNT(*) FROM queue_jobs WHERE queue_name = 'sync-devices'")[0][0]
    assert jobs_after == jobs_before + 1
