# SPDX-License-Identifier: AGPL-3.0-only
"""Finding and merging configuration files as ``mas-cli`` does: repeated ``-c``, the
``MAS_CONFIG`` list, ``./config.yaml``; mappings merge, lists concatenate, scalars are replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mas_twisted.api.errors import ConfigError
from mas_twisted.config.root import RootConfig
from tests.config._helpers import ENCRYPTION_KEY

BASE = {
    "secrets": {"encryption": ENCRYPTION_KEY},
    "matrix": {"secret": "from-base", "homeserver": "base.example.com"},
    "passwords": {"schemes": [{"version": 1, "algorithm": "bcrypt"}], "minimum_complexity": 1},
    "upstream_oauth2": {
        "providers": [
            {
                "id": "01M89BQ1ETN8RC4EH849N8832S",
                "issuer": "https://a.example/",
                "client_id": "a",
                "token_endpoint_auth_method": "none",
            }
        ]
    },
}

OVERLAY = {
    "matrix": {"homeserver": "overlay.example.com"},
    "passwords": {"schemes": [{"version": 2, "algorithm": "argon2id"}]},
    "upstream_oauth2": {
        "providers": [
            {
                "id": "01M89BQ1ETN8RC4EH849N8832T",
                "issuer": "https://b.example/",
                "client_id": "b",
                "token_endpoint_auth_method": "none",
            }
        ]
    },
    "account": {"password_registration_enabled": True},
}


def write(path: Path, data: Any) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def check_merged(config: RootConfig) -> None:
    # Mappings merge key by key: the secret comes from the first file, the server name from the second.
    assert config.matrix.secret == "from-base"
    assert config.matrix.homeserver == "overlay.example.com"
    # Lists are appended.
    assert [s.version for s in config.passwords.schemes] == [1, 2]
    assert [p.client_id for p in config.upstream_oauth2.providers] == ["a", "b"]
    # Untouched keys survive, new sections are added.
    assert config.passwords.minimum_complexity == 1
    assert config.account.password_registration_enabled is True


def test_two_files_merge_in_order(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    overlay = write(tmp_path / "overlay.yaml", OVERLAY)
    config = RootConfig.load([base, overlay], environ={})
    check_merged(config)
    assert config.paths == (base, overlay)


def test_later_file_replaces_scalars(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    overlay = write(
        tmp_path / "overlay.yaml",
        {"matrix": {"secret": "from-overlay"}, "passwords": {"minimum_complexity": 4}},
    )
    config = RootConfig.load([base, overlay], environ={})
    assert config.matrix.secret == "from-overlay"
    assert config.passwords.minimum_complexity == 4
    # The other way round, the base wins.
    config = RootConfig.load([overlay, base], environ={})
    assert config.matrix.secret == "from-base"
    assert config.passwords.minimum_complexity == 1


def test_mas_config_lists_files_separated_by_colons(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    overlay = write(tmp_path / "overlay.yaml", OVERLAY)
    config = RootConfig.load(None, environ={"MAS_CONFIG": f"{base}:{overlay}"})
    check_merged(config)
    assert config.paths == (base, overlay)


def test_command_line_files_win_over_mas_config(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    other = write(tmp_path / "other.yaml", dict(BASE, matrix={"secret": "other"}))
    config = RootConfig.load([other], environ={"MAS_CONFIG": base})
    assert config.matrix.secret == "other"


def test_default_is_config_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", BASE)
    monkeypatch.chdir(tmp_path)
    config = RootConfig.load(None, environ={})
    assert config.matrix.homeserver == "base.example.com"
    assert config.paths == ("config.yaml",)


def test_environment_fills_in_below_the_files(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", {"secrets": BASE["secrets"], "matrix": {"secret": "s"}})
    config = RootConfig.load([base], environ={"MAS_MATRIX_HOMESERVER": "env.example.com"})
    assert config.matrix.homeserver == "env.example.com"


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as info:
        RootConfig.load([missing], environ={})
    assert missing in str(info.value)


def test_missing_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        RootConfig.load(None, environ={})
    assert "config.yaml" in str(info.value)


def test_dump_tree_is_the_parsed_merged_config(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", BASE)
    overlay = write(tmp_path / "overlay.yaml", dict(OVERLAY, not_a_section={"x": 1}))
    tree = RootConfig.load([base, overlay], environ={}).dump_tree()
    assert tree["matrix"] == {
        "kind": "synapse",
        "homeserver": "overlay.example.com",
        "secret": "from-base",
        "endpoint": "http://localhost:8008/",
    }
    assert tree["passwords"]["schemes"] == [
        {"version": 1, "algorithm": "bcrypt"},
        {"version": 2, "algorithm": "argon2id"},
    ]
    assert "not_a_section" not in tree


def test_yaml_1_2_scalars_as_mas_reads_them(tmp_path) -> None:
    """MAS reads YAML 1.2: yes/on are strings, 0600 is decimal, 0o600 octal, dates strings."""
    from mas_twisted.config.loader import read_yaml_file

    path = tmp_path / "c.yaml"
    path.write_text("a: yes\nb: on\nc: 0600\nd: 0o600\ne: true\nf: 1e3\ng: 0x1f\nh: 2024-01-01\ni: False\n")
    assert read_yaml_file(str(path)) == {
        "a": "yes",
        "b": "on",
        "c": 600,
        "d": 0o600,
        "e": True,
        "f": 1000.0,
        "g": 31,
        "h": "2024-01-01",
        "i": False,
    }
