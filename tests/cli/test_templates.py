# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli templates check|save``, run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mas_twisted.templating import builtin_templates_dir


def mas_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAS_")}
    return subprocess.run(
        [sys.executable, "-m", "mas_twisted.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_config(path: Path, **extra: Any) -> str:
    data = {"matrix": {"homeserver": "example.com", "secret": "s"}, **extra}
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cli_check(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml")
    result = mas_cli("templates", "check", "-c", cfg, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Rendered" in result.stderr


def test_cli_check_out_dir(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml")
    out = tmp_path / "renders"
    result = mas_cli("templates", "check", "--stabilise", "--out-dir", str(out), "-c", cfg, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "pages_login-index=0.html" in names
    assert "pages_account_locked-index=2.html" in names
    assert "form_post-index=1.html" in names
    # The emails too: subject, text and HTML of each sample.
    assert {"emails_verification-index=0.subject", "emails_verification-index=0.txt"} <= set(names)
    assert "emails_recovery-index=0.html" in names
    assert "Choose a new password" in (out / "emails_recovery-index=0.html").read_text()
    login = (out / "pages_login-index=1.html").read_text()
    assert "Sign in" in login
    # Stable renders are the same on every run.
    again = tmp_path / "again"
    assert (
        mas_cli(
            "templates", "check", "--stabilise", "--out-dir", str(again), "-c", cfg, cwd=tmp_path
        ).returncode
        == 0
    )
    for name in names:
        assert (out / name).read_text() == (again / name).read_text(), name
    # A non-empty directory is refused.
    result = mas_cli("templates", "check", "--out-dir", str(out), "-c", cfg, cwd=tmp_path)
    assert result.returncode == 1
    assert "is not empty, refusing to write" in result.stderr


def test_cli_check_reports_a_broken_override(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides" / "pages"
    overrides.mkdir(parents=True)
    (overrides / "error.html").write_text(
        "{% extends 'base.html' %}{% block content %}{{ nonexistent.attr }}{% endblock %}"
    )
    cfg = write_config(tmp_path / "config.yaml", templates={"path": str(tmp_path / "overrides")})
    result = mas_cli("templates", "check", "-c", cfg, cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nonexistent" in result.stderr and "Traceback" not in result.stderr
    (overrides / "error.html").write_text("{% block content %}")
    result = mas_cli("templates", "check", "-c", cfg, cwd=tmp_path)
    assert result.returncode == 1
    assert "pages/error.html" in result.stderr


def test_cli_save(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml")
    target = tmp_path / "custom"
    result = mas_cli("templates", "save", str(target), "-c", cfg, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (target / "pages" / "login.html").read_text() == Path(
        builtin_templates_dir(), "pages", "login.html"
    ).read_text()
    (target / "pages" / "login.html").write_text("changed")
    result = mas_cli("templates", "save", str(target), "-c", cfg, cwd=tmp_path)
    assert result.returncode == 1
    assert "--overwrite" in result.stderr
    assert (target / "pages" / "login.html").read_text() == "changed"
    assert mas_cli("templates", "save", str(target), "--overwrite", "-c", cfg, cwd=tmp_path).returncode == 0
    assert (target / "pages" / "login.html").read_text() != "changed"
    # The saved set is a valid override.
    cfg = write_config(tmp_path / "config.yaml", templates={"path": str(target)})
    assert mas_cli("templates", "check", "-c", cfg, cwd=tmp_path).returncode == 0


def test_cli_check_reports_a_broken_email_override(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides" / "emails"
    overrides.mkdir(parents=True)
    (overrides / "verification.txt").write_text("Your code: {{ nonexistent.attr }}")
    cfg = write_config(tmp_path / "config.yaml", templates={"path": str(tmp_path / "overrides")})
    result = mas_cli("templates", "check", "-c", cfg, cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nonexistent" in result.stderr and "Traceback" not in result.stderr
