# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli config generate --synapse-config`` on the ``homeserver.yaml`` a real Synapse wrote
(``--generate-config``) and a second file with a pepper, an email relay and registration
settings (merged as Synapse merges them): our ``config check`` accepts the output,
``syn2mas check`` accepts the pair once Synapse has made its database, and Synapse itself
accepts its configuration changed as the command says (the section added, the settings named
removed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.integration._harness import free_port, mas_cli
from tests.integration._harness import request as http_request
from tests.integration._synapse import _die_with_parent, synapse_python

PEPPER = "generated-pepper-0123"


def _synapse(python: Path, workdir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "PYTHON"))}
    return subprocess.run(
        [str(python), *argv], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )


def _run_once(python: Path, workdir: Path, configs: list[Path], port: int) -> None:
    """Start Synapse until it answers (so that it creates its database), then stop it."""
    argv = [str(python), "-m", "synapse.app.homeserver"]
    for path in configs:
        argv += ["-c", str(path)]
    log = open(workdir / "synapse.out", "wb")
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "PYTHON"))},
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (workdir / "synapse.out").read_text()[-3000:]
            try:
                if http_request("GET", "/health", port=port).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("Synapse did not start:\n" + (workdir / "synapse.out").read_text()[-3000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _merge(*paths: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in paths:
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def test_generated_homeserver_yaml(tmp_path: Path) -> None:
    python = synapse_python()
    hs_dir = tmp_path / "synapse"
    hs_dir.mkdir()
    homeserver = hs_dir / "homeserver.yaml"
    out = _synapse(
        python,
        hs_dir,
        "-m",
        "synapse.app.homeserver",
        "--server-name",
        "generated.test",
        "--config-path",
        str(homeserver),
        "--data-directory",
        str(hs_dir),
        "--generate-config",
        "--report-stats=no",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    port = free_port()
    extra = hs_dir / "extra.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                # Another port than the generated 8008, on IPv4 loopback only.
                "listeners": [
                    {
                        "port": port,
                        "bind_addresses": ["127.0.0.1"],
                        "type": "http",
                        "x_forwarded": True,
                        "resources": [{"names": ["client", "federation"], "compress": False}],
                    }
                ],
                "trusted_key_servers": [],
                "password_config": {"pepper": PEPPER},
                "bcrypt_rounds": 4,
                "refresh_token_lifetime": "1h",
                "email": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": free_port(),
                    "smtp_user": "synapse",
                    "smtp_pass": "relay-password",
                    "force_tls": True,
                    "notif_from": "%(app)s <noreply@generated.test>",
                },
            }
        )
    )
    configs = [homeserver, extra]
    parsed = _synapse(python, hs_dir, "-m", "synapse.config", "-c", str(homeserver), "-c", str(extra))
    assert parsed.returncode == 0 and "Config parses OK" in parsed.stdout, parsed.stdout + parsed.stderr

    workdir = tmp_path / "mas"
    workdir.mkdir()
    generated = mas_cli(
        workdir,
        "config",
        "generate",
        "--synapse-config",
        str(homeserver),
        "--synapse-config",
        str(extra),
        "-o",
        "config.yaml",
    )
    assert generated.returncode == 0, generated.stderr
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    assert config["matrix"]["homeserver"] == "generated.test"
    assert config["matrix"]["endpoint"] == f"http://127.0.0.1:{port}/"
    assert config["passwords"]["schemes"][0] == {
        "version": 1,
        "algorithm": "bcrypt",
        "unicode_normalization": True,
        "cost": 4,
        "secret": PEPPER,
    }
    assert config["email"]["mode"] == "tls" and config["email"]["from"] == "Matrix <noreply@generated.test>"

    check = mas_cli(workdir, "config", "check", "-c", "config.yaml")
    assert check.returncode == 0, check.stderr
    assert "Configuration file looks good" in check.stderr
    # The relay does not exist: said, but not an error.
    assert "cannot use the SMTP relay" in check.stderr

    # Synapse makes its database at its first start; then syn2mas checks the pair.
    _run_once(python, hs_dir, configs, port)
    syn2mas = mas_cli(
        workdir,
        "syn2mas",
        "-c",
        "config.yaml",
        "--synapse-config",
        str(homeserver),
        "--synapse-config",
        str(extra),
        "check",
    )
    report = syn2mas.stdout + syn2mas.stderr
    assert syn2mas.returncode in (0, 11), report
    assert "ERROR" not in report, report

    # Synapse accepts its configuration changed as printed.
    lines = generated.stdout
    added = yaml.safe_load(lines.split("# And remove")[0])
    assert added["matrix_authentication_service"]["secret"] == config["matrix"]["secret"]
    removed = re.findall(r"^#   - ([a-z0-9_.]+)", lines, re.MULTILINE)
    assert "password_config" in removed and "refresh_token_lifetime" in removed
    final = _merge(homeserver, extra)
    for key in removed:
        final.pop(key, None)
    final.update(added)
    delegating = hs_dir / "delegating.yaml"
    delegating.write_text(yaml.safe_dump(final))
    parsed = _synapse(python, hs_dir, "-m", "synapse.config", "-c", str(delegating))
    assert parsed.returncode == 0 and "Config parses OK" in parsed.stdout, parsed.stdout + parsed.stderr
    # And before removing them it would not.
    refused = dict(_merge(homeserver, extra), **added)
    (hs_dir / "refused.yaml").write_text(yaml.safe_dump(refused))
    parsed = _synapse(python, hs_dir, "-m", "synapse.config", "-c", str(hs_dir / "refused.yaml"))
    assert parsed.returncode != 0, parsed.stdout
