# SPDX-License-Identifier: AGPL-3.0-only
"""Loading signing keys (MAS ``crates/keystore``) and RFC 7638 thumbprints."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519

from mas_twisted.jose.keys import KeyLoadError, jwk_thumbprint, load_private_key
from tests.jose._helpers import (
    FORMAT_NAMES,
    KEY_TYPES,
    PASSWORD,
    encode_key,
    expected_public_jwk,
    expected_thumbprint,
    is_encrypted,
    make_key,
)

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
    "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAt"
    "aSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPk"
    "sINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

DESCRIPTIONS = {"rsa": "RSA 2048", "p256": "EC P-256", "p384": "EC P-384", "k256": "EC secp256k1"}
ALGORITHMS = {
    "rsa": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "p256": ("ES256",),
    "p384": ("ES384",),
    "k256": ("ES256K",),
}


def test_rfc7638_example_thumbprint() -> None:
    assert jwk_thumbprint({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}) == RFC7638_THUMBPRINT


def test_thumbprint_ignores_optional_members() -> None:
    decorated = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "use": "sig"}
    assert jwk_thumbprint(decorated) == RFC7638_THUMBPRINT


def test_thumbprint_refuses_incomplete_jwk() -> None:
    with pytest.raises(KeyLoadError, match="'n'"):
        jwk_thumbprint({"kty": "RSA", "e": "AQAB"})
    with pytest.raises(KeyLoadError, match="oct"):
        jwk_thumbprint({"kty": "oct", "k": "AAAA"})


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_every_format_and_type_loads(kind: str, fmt: str) -> None:
    key = make_key(kind)
    data = encode_key(key, fmt)
    loaded = load_private_key(data, PASSWORD if is_encrypted(fmt) else None)
    assert loaded.description == DESCRIPTIONS[kind]
    assert loaded.algorithms == ALGORITHMS[kind]
    assert loaded.public_parameters() == expected_public_jwk(key)
    assert loaded.thumbprint() == expected_thumbprint(key)


@pytest.mark.parametrize("fmt", [f for f in FORMAT_NAMES if "encrypted" in f])
def test_encrypted_key_without_password(fmt: str) -> None:
    with pytest.raises(KeyLoadError, match="encrypted and no password"):
        load_private_key(encode_key(make_key("p256"), fmt))


@pytest.mark.parametrize("fmt", [f for f in FORMAT_NAMES if "encrypted" not in f])
def test_password_for_unencrypted_key_is_refused(fmt: str) -> None:
    # MAS refuses a password on a key that is not encrypted rather than ignoring it.
    with pytest.raises(KeyLoadError, match="not encrypted but a password"):
        load_private_key(encode_key(make_key("p256"), fmt), PASSWORD)


@pytest.mark.parametrize("fmt", ["pkcs8-encrypted-pem", "pkcs8-encrypted-der"])
def test_wrong_password(fmt: str) -> None:
    with pytest.raises(KeyLoadError, match="wrong password"):
        load_private_key(encode_key(make_key("rsa"), fmt), b"not-the-password")


def test_pem_with_surrounding_text_and_crlf() -> None:
    text = encode_key(make_key("p384"), "pkcs8-pem").decode().replace("\n", "\r\n")
    loaded = load_private_key(("Explanatory text\r\n" + text + "\r\n\r\n").encode())
    assert loaded.thumbprint() == expected_thumbprint(make_key("p384"))


def test_legacy_openssl_encrypted_pem_is_refused() -> None:
    data = make_key("rsa").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(PASSWORD),
    )
    assert b"Proc-Type" in data
    with pytest.raises(KeyLoadError, match="ENCRYPTED PRIVATE KEY"):
        load_private_key(data, PASSWORD)


def test_unsupported_curve_is_refused() -> None:
    with pytest.raises(KeyLoadError, match="unsupported elliptic curve secp521r1"):
        load_private_key(encode_key(make_key("p521"), "pkcs8-pem"))
    with pytest.raises(KeyLoadError, match="unsupported elliptic curve secp521r1"):
        load_private_key(encode_key(make_key("p521"), "traditional-der"))


def test_unsupported_key_types_are_refused() -> None:
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyLoadError, match="unsupported key type Ed25519"):
        load_private_key(ed)
    dsa_pem = dsa.generate_private_key(key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyLoadError, match="unsupported key type DSA"):
        load_private_key(dsa_pem)


def test_public_key_pem_is_refused() -> None:
    public = (
        make_key("p256")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyLoadError, match="unsupported PEM label 'PUBLIC KEY'"):
        load_private_key(public)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"not a key at all", "could not decode"),
        (b"\x30\x03\x02\x01\x00", "could not decode"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n", "no '-----END PRIVATE KEY-----'"),
        (b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", "not valid base64"),
        (
            b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
            "could not decode the PKCS#8 key",
        ),
        (b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n", "does not match"),
    ],
)
def test_undecodable_data(data: bytes, message: str) -> None:
    with pytest.raises(KeyLoadError, match=message):
        load_private_key(data)


def test_second_pem_document_is_refused() -> None:
    one = encode_key(make_key("p256"), "pkcs8-pem")
    with pytest.raises(KeyLoadError, match="single key"):
        load_private_key(one + one)
