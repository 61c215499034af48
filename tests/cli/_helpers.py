# SPDX-License-Identifier: AGPL-3.0-only
"""Running ``mas-cli`` as an operator does: a subprocess against a migrated database (SQLite by
default, PostgreSQL with ``MAS_TEST_POSTGRES_DSN``), and the pytest fixtures that make one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.utils import EmptyDatabase

ENCRYPTION_KEY = "0123456789abcdef" * 4


def mas_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAS_")}
    return subprocess.run(
        [sys.executable, "-m", "mas_twisted.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin if stdin is not None else "",
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmptyDatabase]:
    database = EmptyDatabase(str(tmp_path / "db"))
    yield database
    database.cleanup()


@pytest.fixture
def config(tmp_path: Path, db: EmptyDatabase) -> str:
    data: dict[str, Any] = {
        "database": db.config_section,
        "secrets": {"encryption": ENCRYPTION_KEY},
        "matrix": {"homeserver": "example.com", "secret": "shared-secret"},
        "passwords": {"schemes": [{"version": 1, "algorithm": "argon2id"}]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    result = mas_cli("database", "migrate", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return str(path)
