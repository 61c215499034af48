# SPDX-License-Identifier: AGPL-3.0-only
"""Symmetric encryption of secrets at rest and in cookies (MAS ``crates/keystore/src/encrypter.rs``).

ChaCha20-Poly1305 (RFC 8439) under the 32-byte ``secrets.encryption`` key. A sealed value
is the standard, padded base64 (RFC 4648 §4) of ``nonce (12 bytes) || ciphertext || tag (16
bytes)``, the string format MAS stores client secrets in, so values written by one can be
read by the other. Every message gets a fresh random nonce.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

KEY_LENGTH = 32
NONCE_LENGTH = 12
TAG_LENGTH = 16


class DecryptError(Exception):
    """A sealed value could not be opened: not base64, too short, tampered with, or another key."""


class Encrypter:
    """Seals and opens values with one ChaCha20-Poly1305 key.

    Example::

        encrypter = Encrypter(config.secrets.encryption_key)
        stored = encrypter.encrypt_to_string("client-secret")
        assert encrypter.decrypt_string(stored) == "client-secret"
    """

    def __init__(self, key: bytes):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_LENGTH:
            raise ValueError(f"the encryption key must be {KEY_LENGTH} bytes")
        self._aead = ChaCha20Poly1305(bytes(key))

    def encrypt(self, plaintext: bytes) -> str:
        """Seal ``plaintext`` under a fresh random nonce; returns base64 text."""
        nonce = os.urandom(NONCE_LENGTH)
        sealed = self._aead.encrypt(nonce, bytes(plaintext), None)
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, text: str) -> bytes:
        """Open a value made by :meth:`encrypt` (or by MAS with the same key).

        Raises:
            DecryptError: the text is not canonical padded base64, is shorter than a nonce
                and a tag, or fails authentication (tampered, or sealed under another key).
        """
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise DecryptError("sealed value is not base64")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptError("sealed value is not base64")
        # Refuse alternative spellings of the same bytes (non-zero padding bits), as
        # MAS's strict decoder does, so a value has exactly one accepted form.
        if base64.b64encode(raw).decode("ascii") != text:
            raise DecryptError("sealed value is not canonical base64")
        if len(raw) < NONCE_LENGTH + TAG_LENGTH:
            raise DecryptError("sealed value is too short")
        nonce, sealed = raw[:NONCE_LENGTH], raw[NONCE_LENGTH:]
        try:
            return self._aead.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise DecryptError("sealed value failed authentication")

    def encrypt_to_string(self, plaintext: str) -> str:
        """Seal a text value (UTF-8)."""
        return self.encrypt(plaintext.encode("utf-8"))

    def decrypt_string(self, text: str) -> str:
        """Open a value sealed by :meth:`encrypt_to_string`.

        Raises:
            DecryptError: as :meth:`decrypt`, or the plaintext is not UTF-8.
        """
        data = self.decrypt(text)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("sealed value is not UTF-8 text")
