# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage register-user`` and ``manage set-password``, run as subprocesses against a
migrated database (SQLite by default, PostgreSQL with ``MAS_TEST_POSTGRES_DSN``) and a small
stand-in for Synapse's ``/_synapse/mas/is_localpart_available`` (the real Synapse is in
``tests/integration/test_manage_users.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mas_twisted.config.passwords import PasswordScheme
from mas_twisted.handlers.passwords import Hasher
from tests.cli._helpers import (  # noqa: F401 - pytest fixtures
    ENCRYPTION_KEY,
    FakeHomeserver,
    closed_port,
    config,
    db,
    homeserver,
    mas_cli,
    set_matrix,
)
from tests.utils import EmptyDatabase

PASSWORD = "correct horse battery staple"


def users(db: EmptyDatabase) -> list[tuple[Any, ...]]:
    return db.query("SELECT user_id, username, can_request_admin, locked_at FROM users ORDER BY username")


def current_password(db: EmptyDatabase, username: str) -> tuple[str, int]:
    rows = db.query(
        "SELECT p.hashed_password, p.version FROM user_passwords p JOIN users u ON u.user_id = p.user_id"
        " WHERE u.username = ? ORDER BY p.created_at DESC, p.user_password_id DESC",
        (username,),
    )
    return rows[0][0], rows[0][1]


def argon2_matches(hashed: str, password: str) -> bool:
    return Hasher(PasswordScheme(version=1, algorithm="argon2id")).verify_blocking(hashed, password)


def test_register_user(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    result = mas_cli(
        "manage",
        "register-user",
        "-c",
        config,
        "--yes",
        "@alice:example.com",
        "-p",
        PASSWORD,
        "-e",
        "alice@example.org",
        "-e",
        "a@example.net",
        "--admin",
        "-d",
        "Alice",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "User registered" in result.stderr
    assert "@alice:example.com" in result.stdout
    assert "********" in result.stdout and PASSWORD not in result.stdout + result.stderr
    ((user_id, username, admin, locked_at),) = users(db)
    assert (username, bool(admin), locked_at) == ("alice", True, None)
    assert len(user_id) == 26
    hashed, version = current_password(db, "alice")
    assert version == 1 and hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert argon2_matches(hashed, PASSWORD)
    emails = db.query("SELECT email FROM user_emails WHERE user_id = ? ORDER BY email", (user_id,))
    assert emails == [("a@example.net",), ("alice@example.org",)]


def test_register_user_without_password_or_email(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    result = mas_cli("manage", "register-user", "-c", config, "-y", "bob", "--no-admin", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No email address provided" in result.stderr
    assert [(u[1], bool(u[2])) for u in users(db)] == [("bob", False)]
    assert db.query("SELECT COUNT(*) FROM user_passwords") == [(0,)]


def test_register_user_refusals_write_nothing(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    weak = mas_cli("manage", "register-user", "-c", config, "-y", "carol", "-p", "password", cwd=tmp_path)
    assert weak.returncode == 1
    assert "That password is too weak." in weak.stderr
    assert users(db) == []
    # --yes needs a username.
    missing = mas_cli("manage", "register-user", "-c", config, "-y", cwd=tmp_path)
    assert missing.returncode == 2
    assert "username" in missing.stderr
    # -a and -A together are refused.
    both = mas_cli("manage", "register-user", "-c", config, "-y", "carol", "-a", "-A", cwd=tmp_path)
    assert both.returncode == 2
    # An invalid name, and then a taken one.
    bad = mas_cli("manage", "register-user", "-c", config, "-y", "Carol Smith", cwd=tmp_path)
    assert bad.returncode == 1 and "Invalid username" in bad.stderr
    assert mas_cli("manage", "register-user", "-c", config, "-y", "carol", cwd=tmp_path).returncode == 0
    taken = mas_cli("manage", "register-user", "-c", config, "-y", "@carol:example.com", cwd=tmp_path)
    assert taken.returncode == 1
    assert "User already exists" in taken.stderr
    assert [u[1] for u in users(db)] == ["carol"]


def test_register_user_weak_password_can_be_allowed(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    result = mas_cli(
        "manage",
        "register-user",
        "-c",
        config,
        "-y",
        "dave",
        "-p",
        "password",
        "--ignore-password-complexity",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert argon2_matches(current_password(db, "dave")[0], "password")


def test_register_user_interactively(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    # No username: asked for (an invalid answer is asked again); then confirmed.
    result = mas_cli(
        "manage",
        "register-user",
        "-c",
        config,
        "-e",
        "erin@example.org",
        cwd=tmp_path,
        stdin="Not Valid\nerin\ny\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Invalid username" in result.stderr
    assert "mas-cli manage register-user --yes erin --email erin@example.org" in result.stdout
    assert [u[1] for u in users(db)] == ["erin"]
    # Declining creates nothing.
    result = mas_cli("manage", "register-user", "-c", config, "frank", cwd=tmp_path, stdin="n\n")
    assert result.returncode == 0
    assert "Aborted" in result.stderr
    assert [u[1] for u in users(db)] == ["erin"]


def queue_jobs(db: EmptyDatabase) -> list[tuple[Any, ...]]:
    return db.query("SELECT queue_name FROM queue_jobs ORDER BY queue_job_id")


def test_register_user_asks_the_homeserver(
    tmp_path: Path, db: EmptyDatabase, config: str, homeserver: FakeHomeserver
) -> None:
    homeserver.taken.add("zoe")
    taken = mas_cli("manage", "register-user", "-c", config, "-y", "@zoe:example.com", cwd=tmp_path)
    assert taken.returncode == 1
    assert taken.stderr.strip().splitlines()[-1] == "mas-cli: Username not available on homeserver"
    assert users(db) == [] and queue_jobs(db) == []
    assert homeserver.asked == ["zoe"]

    free = mas_cli("manage", "register-user", "-c", config, "-y", "yann", cwd=tmp_path)
    assert free.returncode == 0, free.stderr
    assert homeserver.asked == ["zoe", "yann"]
    assert [u[1] for u in users(db)] == ["yann"]
    assert queue_jobs(db) == [("provision-user",)]


def test_register_user_refused_when_the_homeserver_cannot_answer(
    tmp_path: Path, db: EmptyDatabase, config: str
) -> None:
    # MAS refuses a name the homeserver has not confirmed: nothing is created, one line says why.
    set_matrix(config, endpoint=f"http://127.0.0.1:{closed_port()}/")
    down = mas_cli("manage", "register-user", "-c", config, "-y", "alice", "-p", PASSWORD, cwd=tmp_path)
    assert down.returncode == 1, (down.stdout, down.stderr)
    assert "Traceback" not in down.stderr
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith("mas-cli: Could not check the username on the homeserver: ")
    assert "is_localpart_available" in line and "refused" in line
    assert "User registered" not in down.stderr + down.stdout
    assert users(db) == [] and queue_jobs(db) == []
    assert db.query("SELECT COUNT(*) FROM user_passwords") == [(0,)]

    # Asked for interactively, the same: no other name could be checked either.
    asked = mas_cli("manage", "register-user", "-c", config, cwd=tmp_path, stdin="alice\ny\n")
    assert asked.returncode == 1
    assert asked.stderr.strip().splitlines()[-1].startswith("mas-cli: Could not check the username")
    assert users(db) == [] and queue_jobs(db) == []

    # The operator can skip the check explicitly; the provisioning job is then queued as usual.
    skipped = mas_cli(
        "manage", "register-user", "-c", config, "-y", "alice", "--skip-homeserver-check", cwd=tmp_path
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "User registered" in skipped.stderr
    assert [u[1] for u in users(db)] == ["alice"]
    assert queue_jobs(db) == [("provision-user",)]
    # The local checks still apply without the homeserver.
    again = mas_cli(
        "manage", "register-user", "-c", config, "-y", "alice", "--skip-homeserver-check", cwd=tmp_path
    )
    assert again.returncode == 1 and "User already exists" in again.stderr
    assert [u[1] for u in users(db)] == ["alice"]


def test_set_password(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    assert (
        mas_cli(
            "manage", "register-user", "-c", config, "-y", "alice", "-p", PASSWORD, cwd=tmp_path
        ).returncode
        == 0
    )
    new_password = "another fine long passphrase"
    result = mas_cli("manage", "set-password", "-c", config, "alice", new_password, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Password changed" in result.stderr
    hashed, _ = current_password(db, "alice")
    assert argon2_matches(hashed, new_password)
    assert db.query("SELECT COUNT(*) FROM user_passwords") == [(2,)]

    weak = mas_cli("manage", "set-password", "-c", config, "alice", "password", cwd=tmp_path)
    assert weak.returncode == 1 and "That password is too weak." in weak.stderr
    assert argon2_matches(current_password(db, "alice")[0], new_password)
    forced = mas_cli(
        "manage", "set-password", "-c", config, "alice", "password", "--ignore-complexity", cwd=tmp_path
    )
    assert forced.returncode == 0, forced.stderr
    assert argon2_matches(current_password(db, "alice")[0], "password")

    unknown = mas_cli("manage", "set-password", "-c", config, "nobody", new_password, cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == "mas-cli: User not found"


def test_unmigrated_database_is_one_line(tmp_path: Path) -> None:
    fresh = EmptyDatabase(str(tmp_path / "fresh"))
    try:
        path = tmp_path / "fresh.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "database": fresh.config_section,
                    "secrets": {"encryption": ENCRYPTION_KEY},
                    "matrix": {"secret": "s"},
                }
            )
        )
        result = mas_cli("manage", "set-password", "-c", str(path), "alice", PASSWORD, cwd=tmp_path)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "database migrate" in result.stderr
    finally:
        fresh.cleanup()
