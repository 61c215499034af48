# SPDX-License-Identifier: AGPL-3.0-only
"""The ``matrix`` section: defaults, the shared secret (inline or from a file) and errors."""

from __future__ import annotations

from mas_twisted.api.errors import ConfigError
from mas_twisted.config.matrix import MatrixConfig
from mas_twisted.config.root import RootConfig
from tests.config._helpers import MINIMAL, assert_config_error, load, read_section


def test_defaults() -> None:
    config = load()
    assert config.matrix.kind == "synapse"
    assert config.matrix.homeserver == "localhost:8008"
    assert config.matrix.endpoint == "http://localhost:8008/"
    assert config.matrix.secret == "shared-secret"
    assert config.matrix.secret_file is None
    assert not config.matrix.read_only
    assert not config.matrix.uses_legacy_api


def test_every_key() -> None:
    matrix = read_section(
        MatrixConfig,
        {
            "kind": "synapse_read_only",
            "homeserver": "example.com",
            "secret": "s3cr3t",
            "endpoint": "https://hs.example.com/",
        },
    )
    assert matrix.kind == "synapse_read_only"
    assert matrix.read_only
    assert matrix.homeserver == "example.com"
    assert matrix.endpoint == "https://hs.example.com/"
    assert matrix.secret == "s3cr3t"


def test_every_kind_is_accepted() -> None:
    for kind in ("synapse", "synapse_modern", "synapse_legacy", "synapse_read_only"):
        assert read_section(MatrixConfig, {"kind": kind, "secret": "x"}).kind == kind
    assert read_section(MatrixConfig, {"kind": "synapse_legacy", "secret": "x"}).uses_legacy_api


def test_secret_file_is_trimmed(tmp_path) -> None:
    path = tmp_path / "secret"
    path.write_text("  from-a-file \n\n")
    matrix = read_section(MatrixConfig, {"secret_file": str(path)})
    assert matrix.secret == "from-a-file"
    assert matrix.secret_file == str(path)


def test_section_is_required() -> None:
    raw = dict(MINIMAL)
    del raw["matrix"]
    err = assert_config_error(lambda: RootConfig(raw), ("matrix",))
    assert "missing" in str(err)


def test_secret_is_required() -> None:
    assert_config_error(
        lambda: load(matrix={"homeserver": "example.com"}), ("matrix", "secret"), "secret_file"
    )


def test_secret_and_secret_file_are_exclusive(tmp_path) -> None:
    path = tmp_path / "secret"
    path.write_text("x")
    assert_config_error(
        lambda: read_section(MatrixConfig, {"secret": "a", "secret_file": str(path)}),
        ("matrix", "secret"),
        "secret_file",
    )


def test_missing_secret_file(tmp_path) -> None:
    path = tmp_path / "nope"
    assert_config_error(
        lambda: read_section(MatrixConfig, {"secret_file": str(path)}), ("matrix", "secret_file"), str(path)
    )


def test_unknown_kind() -> None:
    assert_config_error(
        lambda: read_section(MatrixConfig, {"kind": "dendrite", "secret": "x"}),
        ("matrix", "kind"),
        "'dendrite'",
    )


def test_bad_endpoint() -> None:
    assert_config_error(
        lambda: read_section(MatrixConfig, {"endpoint": "localhost:8008", "secret": "x"}),
        ("matrix", "endpoint"),
        "'localhost:8008'",
    )


def test_section_of_the_wrong_type() -> None:
    assert_config_error(lambda: load(matrix=["secret"]), ("matrix",), "a list")


def test_wrong_type_of_secret() -> None:
    err = assert_config_error(lambda: read_section(MatrixConfig, {"secret": ["a"]}), ("matrix", "secret"))
    assert isinstance(err, ConfigError)
    assert "expected a string" in str(err)
