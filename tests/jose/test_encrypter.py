# SPDX-License-Identifier: AGPL-3.0-only
"""ChaCha20-Poly1305 sealing of secrets (MAS ``crates/keystore/src/encrypter.rs``)."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from mas_twisted.jose.encrypter import DecryptError, Encrypter

KEY = bytes(range(32))


def test_round_trip() -> None:
    encrypter = Encrypter(KEY)
    for plaintext in (b"", b"x", b"client secret", os.urandom(1000)):
        assert encrypter.decrypt(encrypter.encrypt(plaintext)) == plaintext


def test_string_helpers_round_trip_unicode() -> None:
    encrypter = Encrypter(KEY)
    sealed = encrypter.encrypt_to_string("sécret ✓")
    assert isinstance(sealed, str)
    assert encrypter.decrypt_string(sealed) == "sécret ✓"


def test_format_is_padded_standard_base64_of_nonce_ciphertext_tag() -> None:
    plaintext = b"some-client-secret"
    sealed = Encrypter(KEY).encrypt(plaintext)
    raw = base64.b64decode(sealed, validate=True)
    assert base64.b64encode(raw).decode() == sealed
    assert len(raw) == 12 + len(plaintext) + 16
    # Opening it with the AEAD directly shows the layout: nonce first, then ciphertext+tag.
    assert ChaCha20Poly1305(KEY).decrypt(raw[:12], raw[12:], None) == plaintext


def test_opens_values_sealed_elsewhere_with_the_same_key() -> None:
    # A value in MAS's format made without this class (as MAS stores client secrets).
    nonce = bytes(12)
    sealed = base64.b64encode(nonce + ChaCha20Poly1305(KEY).encrypt(nonce, b"from MAS", None)).decode()
    assert Encrypter(KEY).decrypt(sealed) == b"from MAS"


def test_random_nonce_per_message() -> None:
    encrypter = Encrypter(KEY)
    sealed = {encrypter.encrypt(b"same") for _ in range(20)}
    assert len(sealed) == 20
    assert len({base64.b64decode(s)[:12] for s in sealed}) == 20


@pytest.mark.parametrize("position", [0, 11, 12, 15, -16, -1])
def test_tampering_is_detected(position: int) -> None:
    encrypter = Encrypter(KEY)
    raw = bytearray(base64.b64decode(encrypter.encrypt(b"do not touch")))
    raw[position] ^= 0x01
    with pytest.raises(DecryptError):
        encrypter.decrypt(base64.b64encode(bytes(raw)).decode())


def test_truncation_is_detected() -> None:
    encrypter = Encrypter(KEY)
    raw = base64.b64decode(encrypter.encrypt(b"do not touch"))
    with pytest.raises(DecryptError):
        encrypter.decrypt(base64.b64encode(raw[:-1]).decode())


def test_wrong_key() -> None:
    sealed = Encrypter(KEY).encrypt(b"secret")
    with pytest.raises(DecryptError):
        Encrypter(bytes(32)).decrypt(sealed)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        base64.b64encode(bytes(27)).decode(),  # shorter than nonce + tag
        base64.urlsafe_b64encode(b"\xfb\xff" * 20).decode(),  # URL-safe alphabet
        base64.b64encode(bytes(40)).decode().rstrip("="),  # padding dropped
        base64.b64encode(bytes(40)).decode()[:-2] + "B=",  # non-canonical trailing bits
        "é" * 40,
    ],
)
def test_malformed_input(text: str) -> None:
    with pytest.raises(DecryptError):
        Encrypter(KEY).decrypt(text)


def test_non_utf8_plaintext_in_decrypt_string() -> None:
    encrypter = Encrypter(KEY)
    with pytest.raises(DecryptError):
        encrypter.decrypt_string(encrypter.encrypt(b"\xff\xfe"))


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), "0" * 32])
def test_key_must_be_32_bytes(key: object) -> None:
    with pytest.raises(ValueError):
        Encrypter(key)  # type: ignore[arg-type]
