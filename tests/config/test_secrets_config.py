# SPDX-License-Identifier: AGPL-3.0-only
"""The ``secrets`` configuration section (MAS ``crates/config/src/sections/secrets.rs``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mas_twisted.config.secrets import SecretsConfig
from mas_twisted.jose.keystore import Keystore
from tests.jose._helpers import (
    ENCRYPTION_HEX,
    FORMAT_NAMES,
    KEY_TYPES,
    PASSWORD,
    encode_key,
    expected_thumbprint,
    is_encrypted,
    load_secrets,
    make_key,
    pem,
    secrets_error,
)

ENCRYPTION_BYTES = bytes.fromhex(ENCRYPTION_HEX)


def write(path: Path, data: bytes | str) -> str:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


# -- encryption / encryption_file ----------------------------------------------------------


def test_inline_encryption_key() -> None:
    config = load_secrets({"encryption": ENCRYPTION_HEX})
    assert config.encryption_key == ENCRYPTION_BYTES
    assert config.keys == []
    assert config.keys_dir is None


def test_inline_encryption_key_upper_case() -> None:
    assert load_secrets({"encryption": ENCRYPTION_HEX.upper()}).encryption_key == ENCRYPTION_BYTES


def test_encryption_from_yaml_folded_scalar() -> None:
    raw = yaml.safe_load(f"secrets:\n  encryption: >-\n    {ENCRYPTION_HEX}\n")
    assert load_secrets(raw["secrets"]).encryption_key == ENCRYPTION_BYTES


@pytest.mark.parametrize(
    "value, detail",
    [
        (ENCRYPTION_HEX[:-1], "got 63 characters"),
        (ENCRYPTION_HEX + "00", "got 66 characters"),
        ("", "got 0 characters"),
        (ENCRYPTION_HEX[:-1] + "g", "non-hexadecimal character at position 64"),
        (ENCRYPTION_HEX + "\n", "whitespace at position 65"),
    ],
)
def test_bad_inline_encryption_key(value: str, detail: str) -> None:
    message = secrets_error({"encryption": value})
    assert "secrets.encryption:" in message
    assert "64 hexadecimal characters" in message
    assert detail in message


def test_unquoted_numeric_encryption_key() -> None:
    # YAML reads an all-digit value as a number; MAS wants a string too.
    message = secrets_error(yaml.safe_load("encryption: " + "1" * 64))
    assert "secrets.encryption" in message
    assert "an integer" in message


def test_encryption_key_is_required_and_not_generated() -> None:
    message = secrets_error({})
    assert "secrets.encryption" in message
    assert "encryption_file" in message


def test_encryption_and_file_are_exclusive(tmp_path: Path) -> None:
    path = write(tmp_path / "enc", ENCRYPTION_HEX)
    message = secrets_error({"encryption": ENCRYPTION_HEX, "encryption_file": path})
    assert "secrets.encryption" in message
    assert "not both" in message


def test_encryption_file_holds_hex(tmp_path: Path) -> None:
    path = write(tmp_path / "enc", ENCRYPTION_HEX)
    assert load_secrets({"encryption_file": path}).encryption_key == ENCRYPTION_BYTES


def test_encryption_file_with_trailing_newline_is_refused(tmp_path: Path) -> None:
    # MAS hex-decodes the raw file content, so the newline `echo` adds makes it invalid.
    path = write(tmp_path / "enc", ENCRYPTION_HEX + "\n")
    message = secrets_error({"encryption_file": path})
    assert "secrets.encryption_file" in message
    assert path in message
    assert "trailing newline" in message


def test_encryption_file_with_raw_bytes_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "enc", os.urandom(32) + b"\xff")
    message = secrets_error({"encryption_file": path})
    assert "secrets.encryption_file" in message
    assert path in message


def test_encryption_file_wrong_length(tmp_path: Path) -> None:
    path = write(tmp_path / "enc", ENCRYPTION_HEX[:32])
    message = secrets_error({"encryption_file": path})
    assert "secrets.encryption_file" in message
    assert "got 32 characters" in message


def test_missing_encryption_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope")
    message = secrets_error({"encryption_file": path})
    assert "secrets.encryption_file" in message
    assert f"file not found: {path}" in message


# -- keys[] --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_key_file_in_every_format(tmp_path: Path, kind: str, fmt: str) -> None:
    key = make_key(kind)
    entry = {"key_file": write(tmp_path / f"{kind}.{fmt}", encode_key(key, fmt))}
    if is_encrypted(fmt):
        entry["password"] = PASSWORD.decode()
    config = load_secrets({"encryption": ENCRYPTION_HEX, "keys": [entry]})
    [loaded] = config.keys
    assert loaded.kid == expected_thumbprint(key)
    assert loaded.source == entry["key_file"]


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_encrypted_key_with_password_file(tmp_path: Path, kind: str) -> None:
    key = make_key(kind)
    config = load_secrets(
        {
            "encryption": ENCRYPTION_HEX,
            "keys": [
                {
                    "key_file": write(tmp_path / "key.der", encode_key(key, "pkcs8-encrypted-der")),
                    "password_file": write(tmp_path / "password", PASSWORD),
                }
            ],
        }
    )
    assert config.keys[0].kid == expected_thumbprint(key)


def test_password_file_content_is_used_verbatim(tmp_path: Path) -> None:
    # MAS does not strip the password file: a trailing newline is part of the password.
    raw = {
        "encryption": ENCRYPTION_HEX,
        "keys": [
            {
                "key_file": write(tmp_path / "key.pem", encode_key(make_key("p256"), "pkcs8-encrypted-pem")),
                "password_file": write(tmp_path / "password", PASSWORD + b"\n"),
            }
        ],
    }
    message = secrets_error(raw)
    assert "secrets.keys[0].key_file" in message
    assert "wrong password" in message


def test_inline_keys_from_yaml_with_kid() -> None:
    p256, rsa_key = make_key("p256"), make_key("rsa")
    indented = "\n".join("        " + line for line in pem(p256).splitlines())
    indented_rsa = "\n".join("        " + line for line in pem(rsa_key).splitlines())
    text = (
        "secrets:\n"
        f"  encryption: {ENCRYPTION_HEX}\n"
        "  keys:\n"
        "    - kid: lekid0\n"
        "      key: |\n"
        f"{indented}\n"
        "    - key: |\n"
        f"{indented_rsa}\n"
    )
    config = load_secrets(yaml.safe_load(text)["secrets"])
    assert [k.kid for k in config.keys] == ["lekid0", expected_thumbprint(rsa_key)]
    assert [k.source for k in config.keys] == ["inline", "inline"]


def test_missing_key_file(tmp_path: Path) -> None:
    good = {"key": pem(make_key("p256"))}
    path = str(tmp_path / "missing.pem")
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [good, {"key_file": path}]})
    assert "secrets.keys[1].key_file" in message
    assert path in message


def test_undecodable_inline_key() -> None:
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [{"key": "definitely not a key"}]})
    assert "secrets.keys[0].key:" in message
    assert "could not load key" in message


def test_undecodable_key_file(tmp_path: Path) -> None:
    path = write(tmp_path / "junk", os.urandom(64))
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [{"key_file": path}]})
    assert "secrets.keys[0].key_file" in message
    assert path in message


def test_wrong_password_inline() -> None:
    encrypted = encode_key(make_key("rsa"), "pkcs8-encrypted-pem").decode()
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [{"key": encrypted, "password": "nope"}]})
    assert "secrets.keys[0].key" in message
    assert "wrong password" in message


def test_encrypted_key_without_password_in_config() -> None:
    encrypted = encode_key(make_key("p384"), "pkcs8-encrypted-pem").decode()
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [{"key": encrypted}]})
    assert "secrets.keys[0].key" in message
    assert "no password" in message


def test_missing_password_file(tmp_path: Path) -> None:
    encrypted = encode_key(make_key("p384"), "pkcs8-encrypted-pem").decode()
    path = str(tmp_path / "pw")
    message = secrets_error(
        {"encryption": ENCRYPTION_HEX, "keys": [{"key": encrypted, "password_file": path}]}
    )
    assert "secrets.keys[0].password_file" in message
    assert path in message


def test_key_and_key_file_are_exclusive(tmp_path: Path) -> None:
    path = write(tmp_path / "k.pem", pem(make_key("p256")))
    message = secrets_error(
        {"encryption": ENCRYPTION_HEX, "keys": [{"key": pem(make_key("p256")), "key_file": path}]}
    )
    assert "secrets.keys[0].key" in message
    assert "not both" in message


def test_key_entry_needs_a_key() -> None:
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [{"kid": "x"}]})
    assert "secrets.keys[0].key" in message
    assert "key_file" in message


def test_password_and_password_file_are_exclusive(tmp_path: Path) -> None:
    encrypted = encode_key(make_key("p384"), "pkcs8-encrypted-pem").decode()
    entry = {"key": encrypted, "password": "hunter2", "password_file": write(tmp_path / "pw", PASSWORD)}
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [entry]})
    assert "secrets.keys[0].password" in message
    assert "not both" in message


def test_unsupported_key_type_in_config(tmp_path: Path) -> None:
    path = write(tmp_path / "p521.pem", pem(make_key("p521")))
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": [{"key_file": path}]})
    assert "secrets.keys[0].key_file" in message
    assert "secp521r1" in message


def test_keys_must_be_a_list() -> None:
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys": {"key": "x"}})
    assert "secrets.keys" in message
    assert "expected a list" in message


# -- keys_dir ------------------------------------------------------------------------------


def test_keys_dir_loads_every_file_before_inline_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "nested").mkdir()  # directories are skipped
    write(keys / "b-ec", pem(make_key("p256")))
    write(keys / "a-rsa.der", encode_key(make_key("rsa"), "pkcs8-der"))
    os.symlink(keys / "b-ec", keys / "c-link")  # symlinks to files are followed
    config = load_secrets(
        {
            "encryption": ENCRYPTION_HEX,
            "keys_dir": str(keys),
            "keys": [{"kid": "inline", "key": pem(make_key("k256"))}],
        }
    )
    assert config.keys_dir == str(keys)
    assert [k.kid for k in config.keys] == [
        expected_thumbprint(make_key("rsa")),
        expected_thumbprint(make_key("p256")),
        expected_thumbprint(make_key("p256")),
        "inline",
    ]
    assert config.keys[0].source == str(keys / "a-rsa.der")


def test_keys_dir_missing(tmp_path: Path) -> None:
    path = str(tmp_path / "nope")
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys_dir": path})
    assert "secrets.keys_dir" in message
    assert path in message


def test_keys_dir_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "README", "these are my keys")
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys_dir": str(tmp_path)})
    assert "secrets.keys_dir" in message
    assert str(tmp_path / "README") in message


def test_keys_dir_does_not_take_encrypted_keys(tmp_path: Path) -> None:
    write(tmp_path / "enc.pem", encode_key(make_key("p256"), "pkcs8-encrypted-pem"))
    message = secrets_error({"encryption": ENCRYPTION_HEX, "keys_dir": str(tmp_path)})
    assert "secrets.keys_dir" in message
    assert "no password" in message


# -- generation ----------------------------------------------------------------------------


def test_generated_section_loads_with_one_key_of_each_type() -> None:
    text = SecretsConfig.generate_config_section()
    raw = yaml.safe_load(text)
    config = load_secrets(raw["secrets"])
    assert len(config.encryption_key) == 32
    assert [k.private_key.description for k in config.keys] == [
        "RSA 2048",
        "EC P-256",
        "EC P-384",
        "EC secp256k1",
    ]
    # Fresh material every time.
    again = load_secrets(yaml.safe_load(SecretsConfig.generate_config_section())["secrets"])
    assert again.encryption_key != config.encryption_key
    assert {k.kid for k in again.keys}.isdisjoint(k.kid for k in config.keys)
    assert Keystore.from_config(config).signing_algorithms() == [
        "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512", "ES256K",
    ]  # fmt: skip
