# SPDX-License-Identifier: AGPL-3.0-only
"""Shared fixtures for the keystore tests: generated keys in every format, and an
RFC 7638 thumbprint computed straight from ``cryptography``'s numbers, without going
through the code under test."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mas_twisted.api.errors import ConfigError
from mas_twisted.config._base import Reader
from mas_twisted.config.secrets import SecretsConfig

PASSWORD = b"hunter2"
ENCRYPTION_HEX = "0000111122223333444455556666777788889999aaaabbbbccccddddeeeeffff"

KEY_TYPES = ("rsa", "p256", "p384", "k256")
#: (name, encoding, private format, encrypted)
FORMATS = (
    ("traditional-pem", serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, False),
    ("pkcs8-pem", serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, False),
    ("pkcs8-encrypted-pem", serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, True),
    ("traditional-der", serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, False),
    ("pkcs8-der", serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, False),
    ("pkcs8-encrypted-der", serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, True),
)
FORMAT_NAMES = tuple(f[0] for f in FORMATS)


def make_key(kind: str, index: int = 0) -> Any:
    """A cached private key; ``index`` gives distinct keys of the same kind."""
    return _make_key(kind, index)


@functools.cache
def _make_key(kind: str, index: int) -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "k256": ec.SECP256K1(), "p521": ec.SECP521R1()}[
        kind
    ]
    return ec.generate_private_key(curve)


def encode_key(key: Any, fmt: str, password: bytes = PASSWORD) -> bytes:
    for name, encoding, private_format, encrypted in FORMATS:
        if name == fmt:
            algorithm = (
                serialization.BestAvailableEncryption(password) if encrypted else serialization.NoEncryption()
            )
            return key.private_bytes(encoding, private_format, algorithm)
    raise AssertionError(f"unknown format {fmt}")


def is_encrypted(fmt: str) -> bool:
    return "encrypted" in fmt


def pem(key: Any) -> str:
    return encode_key(key, "traditional-pem").decode("ascii")


def _b64url_uint(value: int, length: int | None = None) -> str:
    if length is None:
        length = (value.bit_length() + 7) // 8
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def expected_public_jwk(key: Any) -> dict[str, str]:
    """The RFC 7517/7518 public members of ``key``, built from its numbers."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp256k1": "secp256k1"}[key.curve.name]
    size = (key.curve.key_size + 7) // 8
    point = key.public_key().public_numbers()
    return {"kty": "EC", "crv": crv, "x": _b64url_uint(point.x, size), "y": _b64url_uint(point.y, size)}


def expected_thumbprint(key: Any) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, no whitespace."""
    jwk = expected_public_jwk(key)
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def load_secrets(raw: dict[str, Any]) -> SecretsConfig:
    """Read a ``secrets`` mapping the way ``RootConfig`` does."""
    config = SecretsConfig(None)
    config.read_config(Reader(raw, ("secrets",)), {"secrets": raw})
    return config


def secrets_error(raw: dict[str, Any]) -> str:
    """The one-line message of the ConfigError that reading ``raw`` raises."""
    try:
        load_secrets(raw)
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message, message
        return message
    raise AssertionError("expected a ConfigError")
