# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage issue-user-registration-token`` with MAS's options, run as an operator runs
it (a subprocess against a migrated database, SQLite or PostgreSQL with
``MAS_TEST_POSTGRES_DSN``)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.cli._helpers import (  # noqa: F401 - pytest fixtures
    config,
    db,
    homeserver,
    mas_cli,
)
from tests.utils import EmptyDatabase

TOKEN_LINE = re.compile(r"^Created user registration token: (\S+)$", re.M)


def issue(config: str, tmp_path: Path, *args: str) -> str:
    result = mas_cli("manage", "issue-user-registration-token", "-c", config, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    match = TOKEN_LINE.search(result.stdout)
    assert match, result.stdout
    return match.group(1)


def token_row(db: EmptyDatabase, token: str) -> tuple[object, ...]:
    [row] = db.query(
        "SELECT usage_limit, times_used, expires_at, revoked_at, created_at FROM user_registration_tokens"
        " WHERE token = ?",
        (token,),
    )
    return tuple(row)


def test_defaults_random_token_used_once_never_expiring(
    config: str, db: EmptyDatabase, tmp_path: Path
) -> None:
    token = issue(config, tmp_path)
    assert re.fullmatch(r"[A-Za-z0-9]{12}", token)
    usage_limit, times_used, expires_at, revoked_at, _ = token_row(db, token)
    assert (usage_limit, times_used, expires_at, revoked_at) == (1, 0, None, None)


def test_options(config: str, db: EmptyDatabase, tmp_path: Path) -> None:
    before = int(time.time() * 1000)
    token = issue(config, tmp_path, "--token", "welcome-2026", "--usage-limit", "5", "--expires-in", "3600")
    assert token == "welcome-2026"
    usage_limit, times_used, expires_at, _, created_at = token_row(db, token)
    assert (usage_limit, times_used) == (5, 0)
    assert isinstance(created_at, int) and created_at >= before
    assert expires_at == created_at + 3_600_000

    unlimited = issue(config, tmp_path, "--unlimited")
    assert token_row(db, unlimited)[0] is None


def test_refusals(config: str, db: EmptyDatabase, tmp_path: Path) -> None:
    issue(config, tmp_path, "--token", "taken")
    for args, message in (
        (("--token", "taken"), "exists already"),
        (("--token", " spaced "), "spaces"),
        (("--usage-limit", "2", "--unlimited"), "not allowed with argument"),
        (("--usage-limit", "-1"), "out of range"),
        (("--expires-in", "soon"), "invalid number"),
    ):
        result = mas_cli("manage", "issue-user-registration-token", "-c", config, *args, cwd=tmp_path)
        assert result.returncode != 0, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
    assert len(db.query("SELECT token FROM user_registration_tokens")) == 1
