# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli config check|dump|generate|sync``, run as a subprocess the way an operator runs it.

A configuration error must end the command with a non-zero status and exactly one line on
stderr that names the YAML path, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.config._helpers import ENCRYPTION_KEY, FIXTURES, minimal
from tests.utils import EmptyDatabase

CLIENT_ID = "01M89BQ1ETN8RC4EH849N8832K"
PROVIDER_ID = "01M89BQ1ETN8RC4EH849N8832S"


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


def write(path: Path, data: Any) -> str:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def assert_one_line_error(result: subprocess.CompletedProcess, path: str, value: str) -> None:
    assert result.returncode != 0, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert path in lines[0], lines[0]
    assert value in lines[0], lines[0]
    assert result.stdout == ""


# -- check ------------------------------------------------------------------------------------


def test_check_good_config(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal())
    result = mas_cli("config", "check", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Configuration file looks good" in result.stderr
    assert config in result.stderr


def test_check_config_before_the_subcommand_and_default_file(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal())
    result = mas_cli("-c", config, "config", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Without -c, ./config.yaml is read.
    result = mas_cli("config", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "config.yaml" in result.stderr


def test_check_merges_several_files(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", {"secrets": {"encryption": ENCRYPTION_KEY}})
    overlay = write(tmp_path / "overlay.yaml", {"matrix": {"secret": "s"}})
    result = mas_cli("config", "check", "-c", base, "-c", overlay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Either file alone lacks a required section.
    assert_one_line_error(mas_cli("config", "check", "-c", base, cwd=tmp_path), "matrix", "missing")


def test_wrong_type(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal(passwords={"enabled": "yes"}))
    assert_one_line_error(
        mas_cli("config", "check", "-c", config, cwd=tmp_path), "passwords.enabled", "'yes'"
    )


def test_unknown_listener_resource(tmp_path: Path) -> None:
    http = {
        "public_base": "https://auth.example.com/",
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": "discovery"}, {"name": "graphiql"}],
                "binds": [{"address": "[::]:8080"}],
            }
        ],
    }
    config = write(tmp_path / "config.yaml", minimal(http=http))
    assert_one_line_error(
        mas_cli("config", "check", "-c", config, cwd=tmp_path),
        "http.listeners[0].resources[1].name",
        "'graphiql'",
    )


def test_missing_key_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    config = write(
        tmp_path / "config.yaml",
        minimal(secrets={"encryption": ENCRYPTION_KEY, "keys": [{"kid": "a", "key_file": missing}]}),
    )
    assert_one_line_error(
        mas_cli("config", "check", "-c", config, cwd=tmp_path), "secrets.keys[0].key_file", missing
    )


def test_bad_encryption_key_length(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal(secrets={"encryption": "abcd" * 15}))
    assert_one_line_error(mas_cli("config", "check", "-c", config, cwd=tmp_path), "secrets.encryption", "60")


def test_bad_client_id(tmp_path: Path) -> None:
    config = write(
        tmp_path / "config.yaml", minimal(clients=[{"client_id": "my-client", "client_auth_method": "none"}])
    )
    assert_one_line_error(
        mas_cli("config", "check", "-c", config, cwd=tmp_path), "clients[0].client_id", "'my-client'"
    )


def test_missing_config_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    result = mas_cli("config", "check", "-c", missing, cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert missing in result.stderr


def test_unparsable_yaml(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", "matrix: [unclosed\n")
    result = mas_cli("config", "check", "-c", config, cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "line" in result.stderr and config in result.stderr


# -- dump -------------------------------------------------------------------------------------


#: What MAS's ``config dump`` prints for ``minimal()``: its parsed RootConfig, with the
#: defaults of the sections it always prints and without those it skips at their defaults.
MINIMAL_DUMP: dict[str, Any] = {
    "http": {
        "listeners": [
            {
                "name": "web",
                "resources": [
                    {"name": "discovery"},
                    {"name": "human"},
                    {"name": "oauth"},
                    {"name": "compat"},
                    {"name": "graphql"},
                    {"name": "assets"},
                ],
                "binds": [{"address": "[::]:8080"}],
                "proxy_protocol": False,
            },
            {
                "name": "internal",
                "resources": [{"name": "health"}],
                "binds": [{"host": "localhost", "port": 8081}],
                "proxy_protocol": False,
            },
        ],
        "trusted_proxies": [
            "192.168.0.0/16",
            "172.16.0.0/12",
            "10.0.0.0/10",
            "127.0.0.1/8",
            "fd00::/8",
            "::1/128",
        ],
        "public_base": "http://[::]:8080/",
        "issuer": "http://[::]:8080/",
    },
    "database": {
        "uri": "postgresql://",
        "max_connections": 10,
        "min_connections": 0,
        "connect_timeout": 30,
        "idle_timeout": 600,
        "max_lifetime": 1800,
    },
    "email": {
        "from": '"Authentication Service" <root@localhost>',
        "reply_to": '"Authentication Service" <root@localhost>',
        "transport": "blackhole",
    },
    "secrets": {"encryption": ENCRYPTION_KEY},
    "passwords": {
        "enabled": True,
        "schemes": [{"version": 1, "algorithm": "argon2id"}],
        "minimum_complexity": 3,
    },
    "matrix": {
        "kind": "synapse",
        "homeserver": "localhost:8008",
        "secret": "shared-secret",
        "endpoint": "http://localhost:8008/",
    },
}


def test_dump_prints_the_parsed_config_with_defaults(tmp_path: Path) -> None:
    base = write(
        tmp_path / "base.yaml", minimal(passwords={"schemes": [{"version": 1, "algorithm": "bcrypt"}]})
    )
    overlay = write(
        tmp_path / "overlay.yaml", {"passwords": {"schemes": [{"version": 2, "algorithm": "argon2id"}]}}
    )
    result = mas_cli("config", "dump", "-c", base, "-c", overlay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dumped = yaml.safe_load(result.stdout)
    expected = dict(MINIMAL_DUMP)
    expected["passwords"] = {
        "enabled": True,
        "schemes": [{"version": 1, "algorithm": "bcrypt"}, {"version": 2, "algorithm": "argon2id"}],
        "minimum_complexity": 3,
    }
    assert dumped == expected
    assert list(dumped) == ["http", "database", "email", "secrets", "passwords", "matrix"]
    # The dump is itself a valid configuration, which dumps the same again.
    again = write(tmp_path / "dumped.yaml", result.stdout)
    assert mas_cli("config", "check", "-c", again, cwd=tmp_path).returncode == 0
    assert yaml.safe_load(mas_cli("config", "dump", "-c", again, cwd=tmp_path).stdout) == expected


def test_config_files_on_both_sides_of_the_subcommand_are_all_read(tmp_path: Path) -> None:
    # MAS's -c is global and appends: `mas-cli -c a config dump -c b` merges a and b.
    base = write(tmp_path / "base.yaml", minimal())
    overlay = write(tmp_path / "overlay.yaml", {"matrix": {"homeserver": "overlay.example.com"}})
    third = write(tmp_path / "third.yaml", {"branding": {"service_name": "Third"}})
    result = mas_cli("-c", base, "config", "-c", overlay, "dump", "-c", third, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dumped = yaml.safe_load(result.stdout)
    assert dumped["matrix"]["secret"] == "shared-secret"  # from base, before the subcommand
    assert dumped["matrix"]["homeserver"] == "overlay.example.com"  # between the two words
    assert dumped["branding"] == {"service_name": "Third"}  # after the subcommand
    # Without the file given first, the required sections are missing.
    result = mas_cli("config", "check", "-c", overlay, cwd=tmp_path)
    assert result.returncode != 0
    result = mas_cli("-c", base, "config", "check", "-c", overlay, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_dump_to_a_file(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal())
    out = tmp_path / "out.yaml"
    result = mas_cli("config", "dump", "-c", config, "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert yaml.safe_load(out.read_text()) == MINIMAL_DUMP


def test_dump_refuses_an_invalid_config(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal(experimental={"access_token_ttl": "5m"}))
    assert_one_line_error(
        mas_cli("config", "dump", "-c", config, cwd=tmp_path), "experimental.access_token_ttl", "'5m'"
    )


# -- generate ---------------------------------------------------------------------------------


def test_generate_to_stdout_then_check(tmp_path: Path) -> None:
    result = mas_cli("config", "generate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    generated = yaml.safe_load(result.stdout)
    assert len(generated["secrets"]["keys"]) == 4
    path = write(tmp_path / "config.yaml", result.stdout)
    check = mas_cli("config", "check", "-c", path, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "Configuration file looks good" in check.stderr


def test_generate_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "generated.yaml"
    result = mas_cli("config", "generate", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert yaml.safe_load(out.read_text())["matrix"]["homeserver"] == "localhost:8008"


# -- sync -------------------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmptyDatabase]:
    """An empty database: a SQLite file, or a new PostgreSQL database with MAS_TEST_POSTGRES_DSN."""
    db = EmptyDatabase(str(tmp_path / "db"))
    yield db
    db.cleanup()


def sync_config(tmp_path: Path, database: EmptyDatabase, **sections: Any) -> str:
    return write(tmp_path / "config.yaml", minimal(database=database.config_section, **sections))


CLIENT = {"client_id": CLIENT_ID, "client_auth_method": "client_secret_basic", "client_secret": "s3cr3t"}
PROVIDER = {
    "id": PROVIDER_ID,
    "issuer": "https://id.example.com/",
    "client_id": "mas",
    "client_secret_file": str(FIXTURES / "provider-secret.txt"),
    "token_endpoint_auth_method": "client_secret_post",
}


def count(database: EmptyDatabase, table: str) -> int:
    return database.query(f"SELECT COUNT(*) FROM {table}")[0][0]


def test_sync_dry_run_writes_nothing(tmp_path: Path, database: EmptyDatabase) -> None:
    config = sync_config(tmp_path, database, clients=[CLIENT], upstream_oauth2={"providers": [PROVIDER]})
    result = mas_cli("config", "sync", "--dry-run", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # As in MAS, the schema is brought up to date even for a dry run; nothing else is written.
    assert count(database, "oauth2_clients") == 0
    assert count(database, "upstream_oauth_providers") == 0


def test_sync_stores_clients_and_providers(tmp_path: Path, database: EmptyDatabase) -> None:
    config = sync_config(tmp_path, database, clients=[CLIENT], upstream_oauth2={"providers": [PROVIDER]})
    result = mas_cli("config", "sync", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert count(database, "oauth2_clients") == 1
    assert count(database, "upstream_oauth_providers") == 1
    # Removing the client from the file and pruning deletes it.
    config = sync_config(tmp_path, database, upstream_oauth2={"providers": [PROVIDER]})
    result = mas_cli("config", "sync", "--prune", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert count(database, "oauth2_clients") == 0
    assert count(database, "upstream_oauth_providers") == 1


def test_sync_refuses_an_invalid_config(tmp_path: Path, database: EmptyDatabase) -> None:
    config = sync_config(tmp_path, database, clients=[dict(CLIENT, client_secret=None)])
    assert_one_line_error(
        mas_cli("config", "sync", "-c", config, cwd=tmp_path),
        "clients[0].client_auth_method",
        "client_secret_basic",
    )


@pytest.mark.parametrize("command", ["check", "dump", "generate", "sync"])
def test_help(tmp_path: Path, command: str) -> None:
    result = mas_cli("config", command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert f"config {command}" in result.stdout


def test_unexpected_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unittest import mock

    from mas_twisted.cli.main import main as cli_main

    config = write(tmp_path / "config.yaml", minimal())
    with mock.patch("mas_twisted.cli.config.run_check", side_effect=KeyError("surprise")):
        assert cli_main(["config", "check", "-c", config]) == 1
    err = capsys.readouterr().err
    assert (
        err == "mas-cli: unexpected error: KeyError: 'surprise' (set MAS_LOG_LEVEL=debug for the traceback)\n"
    )


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", minimal(database={"uri": "sqlite:////proc/mas.db"}))
    for args in (("database", "migrate"), ("config", "sync")):
        result = mas_cli(*args, "-c", config, cwd=tmp_path)
        assert result.returncode == 1, result
        lines = [line for line in result.stderr.splitlines() if line.startswith("mas-cli: ")]
        assert lines == [
            "mas-cli: could not connect to the SQLite database /proc/mas.db: unable to open database file"
        ], result.stderr
        assert "Traceback" not in result.stderr
