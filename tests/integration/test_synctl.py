# SPDX-License-Identifier: AGPL-3.0-only
"""``synctl-mas`` (Synapse's ``synctl`` conventions, synapse-integration.md §6) against a real
daemonized ``twistd mas``: start reports "started" only once ``/health`` answers, a double
start is reported, a stale pid file is removed, stop waits for the exit, restart replaces
the process, and every failure to start exits non-zero with the log hint."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not _pid_alive(proc.pid)
    return proc.pid


def _write_config(tmp_path: Path, listeners: list[dict[str, Any]], port: int) -> Path:
    config = base_config(tmp_path)
    config["http"] = {"public_base": f"http://127.0.0.1:{port}/", "listeners": listeners}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _health_listener(port: int, resources: tuple[str, ...] = ("health",)) -> dict[str, Any]:
    return {
        "name": "web",
        "resources": [{"name": name} for name in resources],
        "binds": [{"host": "127.0.0.1", "port": port}],
    }


@pytest.fixture
def stop_after(tmp_path: Path) -> Iterator[list[Path]]:
    """Config files whose daemon is stopped (by pid file) when the test ends, pass or fail."""
    configs: list[Path] = []
    yield configs
    for config in configs:
        synctl("stop", str(config), cwd=tmp_path)


def test_start_stop_restart(tmp_path: Path, stop_after: list[Path]) -> None:
    port = free_port()
    config_path = _write_config(tmp_path, [_health_listener(port)], port)
    stop_after.append(config_path)
    pidfile = tmp_path / "mas.pid"

    started = synctl("start", str(config_path), cwd=tmp_path)
    assert started.returncode == 0, started.stderr + started.stdout
    assert "started mas" in started.stdout
    # "started" is only printed once /health answers: no waiting needed here.
    assert request("GET", "/health", port=port).body == b"ok"
    pid = int(pidfile.read_text())
    assert _pid_alive(pid)
    assert (tmp_path / "mas.log").exists()

    again = synctl("start", str(config_path), cwd=tmp_path)
    assert again.returncode == 0
    assert f"mas already running (pid {pid})" in again.stdout
    assert int(pidfile.read_text()) == pid

    restarted = synctl("restart", str(config_path), cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert "stopped mas" in restarted.stdout and "started mas" in restarted.stdout
    new_pid = int(pidfile.read_text())
    assert new_pid != pid and not _pid_alive(pid) and _pid_alive(new_pid)
    assert request("GET", "/health", port=port).body == b"ok"

    stopped = synctl("stop", str(config_path), cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped mas" in stopped.stdout
    # stop waits for the exit: the process is gone and twistd removed its pid file.
    assert not _pid_alive(new_pid)
    assert not pidfile.exists()
    with pytest.raises(OSError):
        request("GET", "/health", port=port)


def test_stale_pidfile_is_removed_and_start_proceeds(tmp_path: Path, stop_after: list[Path]) -> None:
    port = free_port()
    config_path = _write_config(tmp_path, [_health_listener(port)], port)
    stop_after.append(config_path)
    pidfile = tmp_path / "mas.pid"
    dead = _dead_pid()
    pidfile.write_text(f"{dead}\n")

    started = synctl("start", str(config_path), cwd=tmp_path)
    assert started.returncode == 0, started.stderr + started.stdout
    assert f"Removing stale pid file {pidfile} (pid {dead} is not running)" in started.stdout
    assert "started mas" in started.stdout
    assert int(pidfile.read_text()) != dead
    assert request("GET", "/health", port=port).body == b"ok"


def test_stop_when_not_running(tmp_path: Path) -> None:
    port = free_port()
    config_path = _write_config(tmp_path, [_health_listener(port)], port)
    pidfile = tmp_path / "mas.pid"

    missing = synctl("stop", str(config_path), cwd=tmp_path)
    assert missing.returncode == 0
    assert f"No running mas found (no pid file at {pidfile})" in missing.stdout

    dead = _dead_pid()
    pidfile.write_text(f"{dead}\n")
    stale = synctl("stop", str(config_path), cwd=tmp_path)
    assert stale.returncode == 0
    assert f"mas not running (pid {dead})" in stale.stdout
    assert not pidfile.exists()


def test_start_without_health_resource_checks_the_process(tmp_path: Path, stop_after: list[Path]) -> None:
    port = free_port()
    config_path = _write_config(tmp_path, [_health_listener(port, ("discovery",))], port)
    stop_after.append(config_path)
    started = synctl("start", str(config_path), cwd=tmp_path)
    assert started.returncode == 0, started.stderr + started.stdout
    assert "No listener serves the health resource" in started.stdout
    assert "started mas" in started.stdout
    assert _pid_alive(int((tmp_path / "mas.pid").read_text()))
    assert request("GET", "/.well-known/openid-configuration", port=port).status == 200


def test_start_reports_a_bad_config(tmp_path: Path) -> None:
    port = free_port()
    config_path = _write_config(tmp_path, [_health_listener(port, ("nonsense",))], port)
    result = synctl("start", str(config_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "mas failed to start (exit code: 1)" in result.stderr
    assert f"Check {tmp_path / 'mas.log'}, or run synctl-mas with --no-daemonize." in result.stderr
    assert "nonsense" in result.stderr + result.stdout  # twistd mas's own line names the key
    assert "started mas" not in result.stdout
    assert not (tmp_path / "mas.pid").exists()


def test_start_reports_a_daemon_that_dies_after_forking(tmp_path: Path) -> None:
    """The port is taken: the daemon fails after twistd's parent returned (the case where
    Synapse's synctl says "started"); synctl-mas reports the failure instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config_path = _write_config(tmp_path, [_health_listener(port)], port)
        result = synctl("start", str(config_path), cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "started mas" not in result.stdout
    assert "Check " in result.stderr and "--no-daemonize" in result.stderr
    assert "Address already in use" in (tmp_path / "mas.log").read_text() + result.stderr
    assert not (tmp_path / "mas.pid").exists()


def test_missing_config(tmp_path: Path) -> None:
    result = synctl("start", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "mas-cli config generate" in result.stderr
