# SPDX-License-Identifier: AGPL-3.0-only
"""The ``database`` section: MAS's keys, defaults and checks, plus ``sqlite://`` URIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mas_twisted.api.errors import ConfigError
from mas_twisted.config.database import DatabaseConfig
from mas_twisted.storage.engines.postgres import PostgresEngine
from tests.utils import make_db_config


def load(section: Any) -> DatabaseConfig:
    return make_db_config(section)


def error(section: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(section)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_match_mas() -> None:
    config = load(None)
    assert config.uri == "postgresql://"
    assert config.engine_name == "postgres"
    assert (config.max_connections, config.min_connections) == (10, 0)
    assert (config.connect_timeout, config.idle_timeout, config.max_lifetime) == (30, 600, 1800)
    assert config.ssl_mode is None and config.host is None


def test_uri() -> None:
    config = load({"uri": "postgresql://user:password@host/database", "max_connections": 3})
    assert config.uri == "postgresql://user:password@host/database"
    assert config.max_connections == 3
    assert config.describe_target() == "PostgreSQL database database on host"


def test_separate_keys() -> None:
    config = load(
        {"host": "db.example.com", "port": 5433, "username": "mas", "password": "secret", "database": "mas"}
    )
    assert config.uri is None
    assert (config.host, config.port, config.username, config.password, config.database) == (
        "db.example.com",
        5433,
        "mas",
        "secret",
        "mas",
    )
    assert config.engine_name == "postgres"


def test_uri_and_separate_keys_are_exclusive() -> None:
    message = error({"uri": "postgresql://h/d", "host": "h", "database": "d"})
    assert message.startswith("Invalid configuration at database.uri: uri must not be specified")
    assert "host, database" in message


def test_password_and_password_file_are_exclusive() -> None:
    assert "database.password:" in error({"password": "a", "password_file": "/run/secrets/pw"})


def test_password_file_is_read_and_trimmed_when_loading(tmp_path: Path) -> None:
    # MAS reads and trims it (crates/cli/src/util.rs); a missing file is a config error.
    path = tmp_path / "pw"
    path.write_text("  from-a-file\n")
    config = load({"host": "db", "password_file": str(path)})
    assert config.password == "from-a-file"
    assert config.password_file == str(path)
    args, kwargs = PostgresEngine(config).connect_args()
    assert kwargs["password"] == "from-a-file"
    missing = str(tmp_path / "nope")
    message = error({"host": "db", "password_file": missing})
    assert message == f"Invalid configuration at database.password_file: file not found: {missing}"


def test_socket_wins_over_host_as_in_sqlx() -> None:
    config = load({"host": "db.example.com", "socket": "/run/postgresql", "database": "mas"})
    args, kwargs = PostgresEngine(config).connect_args()
    assert kwargs["host"] == "/run/postgresql"
    assert config.describe_target() == "PostgreSQL database mas on /run/postgresql"
    assert PostgresEngine(load({"host": "db.example.com"})).connect_args()[1]["host"] == "db.example.com"


def test_tls_pairs() -> None:
    assert "ssl_ca must not be specified if ssl_ca_file" in error({"ssl_ca": "PEM", "ssl_ca_file": "/ca.pem"})
    message = error({"ssl_key_file": "/key.pem"})
    assert "database.ssl_key" in message and "both a ssl_certificate and a ssl_key" in message
    config = load({"ssl_mode": "verify-full", "ssl_certificate_file": "/c.pem", "ssl_key_file": "/k.pem"})
    assert config.ssl_mode == "verify-full"
    assert "expected one of disable, allow, prefer, require, verify-ca, verify-full" in error(
        {"ssl_mode": "on"}
    )


def test_numbers_are_checked() -> None:
    assert "database.max_connections: must be at least 1, got 0" in error({"max_connections": 0})
    assert "database.port: must be at most 65535" in error({"host": "h", "port": 70000})
    assert "database.connect_timeout: expected an integer, got 'soon'" in error({"connect_timeout": "soon"})


def test_null_timeouts_disable_them() -> None:
    config = load({"idle_timeout": None, "max_lifetime": None})
    assert config.idle_timeout is None and config.max_lifetime is None


@pytest.mark.parametrize(
    "uri,path",
    [
        ("sqlite:///mas.db", "mas.db"),
        ("sqlite:///data/mas.db", "data/mas.db"),
        ("sqlite:////var/lib/mas/mas.db", "/var/lib/mas/mas.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_uris(uri: str, path: str) -> None:
    config = load({"uri": uri})
    assert config.engine_name == "sqlite"
    assert config.sqlite_path == path


def test_bad_uris() -> None:
    assert "database.uri: a sqlite URI has no host part" in error({"uri": "sqlite://host/mas.db"})
    assert "expected a postgresql://, postgres:// or sqlite:// URI, got 'mysql://h/d'" in error(
        {"uri": "mysql://h/d"}
    )
    assert "TLS options only apply to PostgreSQL" in error({"uri": "sqlite:///mas.db", "ssl_mode": "require"})


def test_generated_section_is_sqlite() -> None:
    import yaml

    section = yaml.safe_load(DatabaseConfig.generate_config_section())["database"]
    assert load(section).engine_name == "sqlite"


def test_sqlite_synchronous() -> None:
    """Our extension: FULL unless asked for NORMAL; a bad value and a PostgreSQL URI are refused."""
    assert load({"uri": "sqlite:///mas.db"}).sqlite_synchronous == "full"
    assert "sqlite_synchronous" not in load({"uri": "sqlite:///mas.db"}).to_dict()
    config = load({"uri": "sqlite:///mas.db", "sqlite_synchronous": "normal"})
    assert config.sqlite_synchronous == "normal"
    assert config.to_dict()["sqlite_synchronous"] == "normal"
    assert "database.sqlite_synchronous: expected one of full, normal; got 'off'" in error(
        {"uri": "sqlite:///mas.db", "sqlite_synchronous": "off"}
    )
    assert "database.sqlite_synchronous: only applies to SQLite" in error(
        {"uri": "postgresql://h/d", "sqlite_synchronous": "full"}
    )


@pytest.mark.parametrize(("setting", "pragma"), [(None, 2), ("full", 2), ("normal", 1)])
def test_sqlite_connections_are_wal_and_synchronous(tmp_path: Path, setting: str | None, pragma: int) -> None:
    from mas_twisted.storage.engines.sqlite import Sqlite3Engine

    section: dict[str, Any] = {"uri": f"sqlite:///{tmp_path / 'mas.db'}"}
    if setting is not None:
        section["sqlite_synchronous"] = setting
    conn = Sqlite3Engine(load(section)).connect()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (pragma,)
    finally:
        conn.close()
