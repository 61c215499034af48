# SPDX-License-Identifier: AGPL-3.0-only
"""The ``passwords`` section: hashing schemes, peppers and MAS's checks."""

from __future__ import annotations

from typing import Any

from mas_twisted.config.passwords import PasswordScheme, PasswordsConfig
from tests.config._helpers import FIXTURES, assert_config_error, load, read_section


def passwords(**keys: Any) -> PasswordsConfig:
    return read_section(PasswordsConfig, keys)


def test_defaults() -> None:
    config = load().passwords
    assert config.enabled is True
    assert config.minimum_complexity == 3
    assert config.schemes == [PasswordScheme(version=1, algorithm="argon2id")]
    assert config.current_scheme == PasswordScheme(version=1, algorithm="argon2id")
    scheme = config.schemes[0]
    assert scheme.secret is None
    assert scheme.unicode_normalization is False
    assert scheme.bcrypt_cost == 12


def test_highest_version_is_current_whatever_the_order() -> None:
    config = passwords(
        schemes=[
            {"version": 2, "algorithm": "argon2id"},
            {"version": 5, "algorithm": "bcrypt", "cost": 10},
            {"version": 1, "algorithm": "pbkdf2"},
        ]
    )
    assert config.current_scheme == PasswordScheme(version=5, algorithm="bcrypt", cost=10)
    assert [s.version for s in config.schemes_by_version()] == [5, 2, 1]
    assert config.current_scheme.bcrypt_cost == 10


def test_peppers() -> None:
    config = passwords(
        schemes=[
            {"version": 1, "algorithm": "argon2id", "secret": "inline-pepper"},
            # A pepper file is used byte for byte: its newline stays.
            {
                "version": 2,
                "algorithm": "bcrypt",
                "secret_file": str(FIXTURES / "pepper.bin"),
                "unicode_normalization": True,
            },
        ],
        minimum_complexity=0,
    )
    assert config.schemes[0].secret == b"inline-pepper"
    assert config.schemes[1].secret == b"pepper-from-file\n"
    assert config.schemes[1].unicode_normalization is True
    assert config.minimum_complexity == 0


def test_disabled_needs_no_scheme_and_reads_no_pepper() -> None:
    config = passwords(enabled=False, schemes=[])
    assert config.enabled is False
    assert config.schemes == []
    assert config.current_scheme is None
    config = passwords(
        enabled=False,
        schemes=[
            {"version": 1, "algorithm": "argon2id", "secret_file": "/nonexistent/pepper"},
            {"version": 1, "algorithm": "bcrypt"},
        ],
    )
    assert config.schemes[0].secret is None


def test_enabled_needs_a_scheme() -> None:
    assert_config_error(lambda: passwords(schemes=[]), ("passwords", "schemes"), "[]")


def test_versions_must_be_distinct() -> None:
    assert_config_error(
        lambda: passwords(
            schemes=[
                {"version": 1, "algorithm": "argon2id"},
                {"version": 2, "algorithm": "argon2id"},
                {"version": 1, "algorithm": "bcrypt"},
            ]
        ),
        ("passwords", "schemes", 2, "version"),
        "version 1",
        "schemes[0]",
    )


def test_unknown_algorithm() -> None:
    assert_config_error(
        lambda: passwords(schemes=[{"version": 1, "algorithm": "md5"}]),
        ("passwords", "schemes", 0, "algorithm"),
        "'md5'",
    )


def test_version_and_algorithm_are_required() -> None:
    assert_config_error(
        lambda: passwords(schemes=[{"algorithm": "bcrypt"}]),
        ("passwords", "schemes", 0, "version"),
        "missing",
    )
    assert_config_error(
        lambda: passwords(schemes=[{"version": 1}]), ("passwords", "schemes", 0, "algorithm"), "missing"
    )


def test_version_is_a_16_bit_number() -> None:
    assert_config_error(
        lambda: passwords(schemes=[{"version": 70000, "algorithm": "bcrypt"}]),
        ("passwords", "schemes", 0, "version"),
        "70000",
    )
    assert_config_error(
        lambda: passwords(schemes=[{"version": "one", "algorithm": "bcrypt"}]),
        ("passwords", "schemes", 0, "version"),
        "'one'",
    )


def test_bcrypt_cost_bounds() -> None:
    assert_config_error(
        lambda: passwords(schemes=[{"version": 1, "algorithm": "bcrypt", "cost": 3}]),
        ("passwords", "schemes", 0, "cost"),
        "3",
    )
    assert_config_error(
        lambda: passwords(schemes=[{"version": 1, "algorithm": "bcrypt", "cost": 32}]),
        ("passwords", "schemes", 0, "cost"),
        "32",
    )


def test_pepper_and_pepper_file_are_exclusive() -> None:
    assert_config_error(
        lambda: passwords(
            schemes=[
                {
                    "version": 1,
                    "algorithm": "argon2id",
                    "secret": "a",
                    "secret_file": str(FIXTURES / "pepper.bin"),
                }
            ]
        ),
        ("passwords", "schemes", 0, "secret"),
        "secret_file",
    )


def test_missing_pepper_file() -> None:
    assert_config_error(
        lambda: passwords(
            schemes=[{"version": 1, "algorithm": "argon2id", "secret_file": "/nonexistent/pepper"}]
        ),
        ("passwords", "schemes", 0, "secret_file"),
        "/nonexistent/pepper",
    )


def test_wrong_types() -> None:
    assert_config_error(lambda: passwords(enabled="yes"), ("passwords", "enabled"), "'yes'")
    assert_config_error(
        lambda: passwords(minimum_complexity="high"), ("passwords", "minimum_complexity"), "'high'"
    )
    assert_config_error(lambda: passwords(minimum_complexity=-1), ("passwords", "minimum_complexity"), "-1")
    assert_config_error(lambda: passwords(schemes={"version": 1}), ("passwords", "schemes"), "a mapping")
    assert_config_error(lambda: passwords(schemes=["argon2id"]), ("passwords", "schemes", 0), "'argon2id'")
