# SPDX-License-Identifier: AGPL-3.0-only
"""The samples in contrib/: the systemd units parse (``systemd-analyze verify``), the
socket-activated unit pair serves ``/health`` through ``systemd-socket-activate`` with the
unit's own command line, and the nginx and Caddy samples route every compat path of
mas_twisted/urls.py (and only those) to mas-twisted."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mas_twisted import urls
from tests.integration._harness import TwistdProcess, base_config, free_port, request

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
SYSTEMD = CONTRIB / "systemd"
VENV_BIN = str(Path(sys.executable).parent)
#: The paths the units are written with (docs/install.md's layout).
UNIT_VENV_BIN = "/opt/mas-twisted/env/bin"
UNIT_CONFIG = "/etc/mas/config.yaml"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def _exec_start(name: str, config: Path) -> list[str]:
    argv = shlex.split(_unit(name)["Service"]["ExecStart"])
    assert argv[0] == f"{UNIT_VENV_BIN}/twistd", argv
    return [f"{VENV_BIN}/twistd", *[str(config) if a == UNIT_CONFIG else a for a in argv[1:]]]


@pytest.mark.parametrize("unit", ["mas.service", "mas-worker.service", "mas.socket", "mas-activated.service"])
def test_systemd_unit_verifies(tmp_path: Path, unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    for source in SYSTEMD.iterdir():
        # The units name the virtualenv of docs/install.md; verify checks that ExecStart exists.
        (tmp_path / source.name).write_text(source.read_text().replace(UNIT_VENV_BIN, VENV_BIN))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        if unit in line and ("Unknown" in line or "Failed" in line or "not executable" in line)
    ]
    assert result.returncode == 0 and not problems, result.stderr


def test_worker_unit_runs_only_the_worker() -> None:
    assert _unit("mas-worker.service")["Service"]["ExecStart"].split()[-1] == "--worker-only"


def test_socket_activation_with_the_units(tmp_path: Path) -> None:
    """``mas.socket`` + ``mas-activated.service`` as systemd would run them: the socket's
    address and descriptor name, the service's ExecStart, a listener binding ``fd: 0``."""
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is missing (Debian package systemd)"
    socket_unit = _unit("mas.socket")["Socket"]
    assert socket_unit["Service"] == "mas-activated.service"
    host, _, _ = socket_unit["ListenStream"].rpartition(":")
    port = free_port()
    config = base_config(tmp_path)
    config["http"] = {
        "public_base": f"http://{host}:{port}/",
        "listeners": [
            {"name": "web", "resources": [{"name": "health"}, {"name": "discovery"}], "binds": [{"fd": 0}]}
        ],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    argv = _exec_start("mas-activated.service", config_path)
    assert argv[1:3] == ["--nodaemon", "--pidfile="], argv
    proc = TwistdProcess(tmp_path, config)
    proc.argv = [
        activate,
        "-l",
        f"{host}:{port}",
        f"--fdname={socket_unit['FileDescriptorName']}",
        *argv,
    ]
    proc.start()
    try:
        assert proc.wait_until(lambda: request("GET", "/health", host=host, port=port)).body == b"ok"
        discovery = request("GET", "/.well-known/openid-configuration", host=host, port=port).json()
        assert discovery["issuer"]
    finally:
        assert proc.stop() == 0, proc.output()


# -- reverse proxy samples ------------------------------------------------------------------


def _compat_paths() -> list[str]:
    templates = [
        value
        for name, value in vars(urls).items()
        if name.startswith("COMPAT_") and isinstance(value, str) and value.startswith("/_matrix/")
    ]
    assert len(templates) >= 7, templates
    return [t.replace("<version>", "v3").replace("<idp>", "01J0IDP") for t in templates] + [
        t.replace("<version>", "r0").replace("<idp>", "oidc") for t in templates
    ]


NOT_COMPAT = [
    "/_matrix/client/v3/sync",
    "/_matrix/client/v3/account/whoami",
    "/_matrix/client/versions",
    "/_synapse/client/pick_idp",
    "/_matrix/client/v3/rooms/!a:example.com/login_hint",
]


def _nginx_compat_regex() -> re.Pattern[str]:
    text = (CONTRIB / "nginx" / "matrix-with-mas-twisted.conf").read_text()
    found = re.search(r"location ~ (\^/_matrix/client\S+) \{\s*proxy_pass http://mas_twisted;", text)
    assert found, "the nginx sample has no location routing the compat paths to mas_twisted"
    return re.compile(found.group(1))


def _caddy_compat_regex() -> re.Pattern[str]:
    text = (CONTRIB / "caddy" / "Caddyfile").read_text()
    found = re.search(r"@(\w+) path_regexp \w+ (\S+)\n", text)
    assert found, "the Caddyfile has no path_regexp matcher"
    matcher, regex = found.groups()
    handled = re.search(rf"handle @{matcher} \{{(.*?)\n\t\}}", text, re.S)
    assert handled and "reverse_proxy 127.0.0.1:8080" in handled.group(1), "compat matcher not sent to MAS"
    return re.compile(regex)


@pytest.mark.parametrize("sample", ["nginx", "caddy"])
def test_proxy_sample_routes_every_compat_path(sample: str) -> None:
    regex = _nginx_compat_regex() if sample == "nginx" else _caddy_compat_regex()
    missed = [path for path in _compat_paths() if not regex.search(path)]
    assert not missed, f"{sample} sample does not route {missed} to mas-twisted"
    stolen = [path for path in NOT_COMPAT if regex.search(path)]
    assert not stolen, f"{sample} sample sends {stolen} (Synapse's) to mas-twisted"
