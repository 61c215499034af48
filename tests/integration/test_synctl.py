# SPDX-License-Identifier: AGPL-3.0-only
"""``synctl-mas`` starts a daemonized ``twistd mas``, refuses a double start, and stops it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.integration._harness import base_config, free_port, request

SYNCTL = Path(__file__).resolve().parents[2] / "synctl-mas"


def synctl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SYNCTL), *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def _pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status


def test_start_stop_restart(tmp_path: Path) -> None:
    port = free_port()
    config = base_config(tmp_path)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [
            {"name": "web", "resources": [{"name": "health"}], "binds": [{"host": "127.0.0.1", "port": port}]}
        ],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    pidfile = tmp_path / "mas.pid"
    try:
        started = synctl("start", str(config_path), cwd=tmp_path)
        assert started.returncode == 0, started.stderr + started.stdout
        assert "started mas" in started.stdout
        pid = int(pidfile.read_text())
        assert _pid_alive(pid)
        assert (tmp_path / "mas.log").exists()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert request("GET", "/health", port=port).body == b"ok"
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "mas.log").read_text()
                time.sleep(0.2)

        again = synctl("start", str(config_path), cwd=tmp_path)
        assert again.returncode == 0
        assert "already running" in again.stdout
        assert int(pidfile.read_text()) == pid

        restarted = synctl("restart", str(config_path), cwd=tmp_path)
        assert restarted.returncode == 0, restarted.stderr
        new_pid = int(pidfile.read_text())
        assert new_pid != pid and not _pid_alive(pid) and _pid_alive(new_pid)
        pid = new_pid
    finally:
        stopped = synctl("stop", str(config_path), cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert not _pid_alive(pid)
    assert not pidfile.exists()


def test_start_reports_a_failed_start(tmp_path: Path) -> None:
    port = free_port()
    config = base_config(tmp_path)
    config["http"] = {
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": "nonsense"}],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ]
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = synctl("start", str(config_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "failed to start" in result.stderr
    assert not (tmp_path / "mas.pid").exists()


def test_missing_config(tmp_path: Path) -> None:
    result = synctl("start", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "mas-cli config generate" in result.stderr
