# SPDX-License-Identifier: AGPL-3.0-only
"""Reading Synapse's configuration files as Synapse merges them (``--synapse-config``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mas_twisted.api.errors import ConfigError
from mas_twisted.syn2mas.synapse_config import SynapseDatabase, load_synapse_config


def _write(path: Path, data: object) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_files_merge_top_level_keys_in_order(tmp_path: Path) -> None:
    main = _write(
        tmp_path / "homeserver.yaml",
        {
            "server_name": "example.com",
            "password_config": {"pepper": "first", "localdb_enabled": False},
            "database": {"name": "sqlite3", "args": {"database": "/data/homeserver.db"}},
        },
    )
    # A later file replaces a whole top-level key, as Synapse's read_config_files does.
    secrets = _write(tmp_path / "secrets.yaml", {"password_config": {"pepper": "second"}})
    config = load_synapse_config([main, secrets])
    assert config.pepper == "second"
    assert config.password_localdb_enabled is True
    assert config.database == SynapseDatabase(kind="sqlite", path="/data/homeserver.db")
    assert config.bcrypt_rounds == 12 and config.enable_3pid_changes is None


def test_a_directory_stands_for_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    _write(conf / "00-base.yaml", {"server_name": "a.example", "allow_guest_access": True})
    _write(conf / "10-override.yaml", {"server_name": "b.example"})
    (conf / "notes.txt").write_text("not config")
    config = load_synapse_config([str(conf)])
    assert config.server_name == "b.example" and config.allow_guest_access


def test_postgres_args_become_a_dsn_and_oidc_ids_get_synapses_prefix(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "hs.yaml",
        {
            "server_name": "example.com",
            "database": {
                "name": "psycopg2",
                "args": {
                    "user": "syn apse",
                    "password": "p@ss",
                    "database": "synapse",
                    "host": "db",
                    "port": 5433,
                },
            },
            "oidc_config": {"enabled": True, "issuer": "https://legacy/"},
            "oidc_providers": [
                {"idp_id": "google", "issuer": "https://accounts.google.com/"},
                {"idp_id": "oidc-keycloak", "issuer": "https://kc/"},
                {"idp_id": "off", "enabled": False},
            ],
            "saml2_config": {"sp_config": {}},
        },
    )
    config = load_synapse_config([path])
    assert config.database == SynapseDatabase(
        kind="postgres", dsn="postgresql://syn%20apse:p%40ss@db:5433/synapse"
    )
    # Synapse's order (oidc_providers, then the legacy oidc_config), and its prefix: an idp_id
    # that already starts with "oidc-" is prefixed again (synapse/config/oidc.py).
    assert [(p.idp_id, p.issuer) for p in config.oidc_providers] == [
        ("oidc-google", "https://accounts.google.com/"),
        ("oidc-oidc-keycloak", "https://kc/"),
        ("oidc", "https://legacy/"),
    ]
    assert config.saml2_enabled and not config.cas_enabled


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "--synapse-config"),
        (["missing.yaml"], "cannot read Synapse's configuration"),
    ],
)
def test_unusable_files_are_one_line_errors(tmp_path: Path, files: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_synapse_config([str(tmp_path / f) for f in files])


def test_no_server_name_or_an_unknown_engine(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server_name"):
        load_synapse_config([_write(tmp_path / "a.yaml", {"report_stats": False})])
    with pytest.raises(ConfigError, match="unknown database engine"):
        load_synapse_config(
            [_write(tmp_path / "b.yaml", {"server_name": "x", "database": {"name": "mysql"}})]
        )


def test_database_uri_override() -> None:
    assert SynapseDatabase.from_uri("postgresql://u@h/db") == SynapseDatabase(
        kind="postgres", dsn="postgresql://u@h/db"
    )
    assert SynapseDatabase.from_uri("sqlite:///var/hs.db") == SynapseDatabase(
        kind="sqlite", path="/var/hs.db"
    )
    with pytest.raises(ConfigError, match="--synapse-database-uri"):
        SynapseDatabase.from_uri("mysql://x")
