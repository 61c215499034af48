# SPDX-License-Identifier: AGPL-3.0-only
"""The ``secrets`` section: encryption key and signing keys (MAS ``crates/config/src/sections/secrets.rs``).

MAS semantics kept here:

- exactly one of ``encryption`` (64 hex characters, either case) and ``encryption_file`` is
  required; nothing is generated when both are missing. The file must hold the 64 hex
  characters and nothing else: MAS decodes its raw content, so even a trailing newline is
  refused;
- ``keys[]`` entries take ``key`` (inline PEM) or ``key_file`` (PEM or DER), an optional
  ``password`` or ``password_file`` (raw file bytes, not stripped) and an optional ``kid``,
  which defaults to the RFC 7638 thumbprint;
- ``keys_dir`` loads every regular file of a directory (symlinks followed, subdirectories
  skipped) as an unencrypted key whose ``kid`` is its thumbprint. Those keys come before the
  ``keys[]`` entries. MAS takes them in directory order; we sort by file name so the order
  is stable.

Keys are loaded and checked here, when the configuration is read, so that
``mas-cli config check`` reports a bad key with its YAML path.
"""

from __future__ import annotations

import binascii
import logging
import os
import string
from typing import Any

import attrs

from mas_twisted.api.errors import ConfigError, PathElement
from mas_twisted.config._base import Config, JsonDict, Reader, describe, read_file
from mas_twisted.jose.keys import KeyLoadError, PrivateKey, generate_private_key, load_private_key

logger = logging.getLogger(__name__)

ENCRYPTION_KEY_LENGTH = 32
_HEX_DIGITS = frozenset(string.hexdigits)


def _decode_hex_key(value: str) -> bytes | str:
    """32 bytes from 64 hex characters, or a description of what is wrong (never the value)."""
    expected = f"expected {2 * ENCRYPTION_KEY_LENGTH} hexadecimal characters ({ENCRYPTION_KEY_LENGTH} bytes)"
    for i, ch in enumerate(value):
        if ch not in _HEX_DIGITS:
            what = "whitespace" if ch.isspace() else "a non-hexadecimal character"
            return f"{expected}, found {what} at position {i + 1}"
    if len(value) != 2 * ENCRYPTION_KEY_LENGTH:
        return f"{expected}, got {len(value)} characters"
    return binascii.unhexlify(value)


def _read_encryption_key(r: Reader) -> bytes:
    inline = r.data.get("encryption")
    path = r.data.get("encryption_file")
    if inline is not None and path is not None:
        raise r.error("encryption", "set either encryption or encryption_file, not both")
    if inline is not None:
        if not isinstance(inline, str):
            raise r.error(
                "encryption",
                f"expected a string of {2 * ENCRYPTION_KEY_LENGTH} hexadecimal characters, got {_kind(inline)}"
                " (quote the value in YAML)",
            )
        key = _decode_hex_key(inline)
        if isinstance(key, str):
            raise r.error("encryption", key)
        return key
    if path is not None:
        path = r.str("encryption_file", allow_empty=False)
        data = read_file(path, r.at("encryption_file"), binary=True)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            text = None
        key = _decode_hex_key(text) if text is not None else "expected hexadecimal text, found binary data"
        if isinstance(key, str):
            hint = " (a trailing newline is not allowed)" if data.rstrip() != data else ""
            raise r.error("encryption_file", f"file {path}: {key}{hint}")
        return key
    raise r.error("encryption", "missing required value (set encryption or encryption_file)")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return describe(value)


@attrs.frozen(eq=False)
class KeyConfig:
    """One signing key, loaded: an item of ``secrets.keys`` or a file of ``secrets.keys_dir``."""

    #: The effective key ID: the configured ``kid``, else the RFC 7638 thumbprint.
    kid: str
    private_key: PrivateKey
    #: Where the key came from, for messages: ``inline`` or the file path.
    source: str
    #: YAML path of the key value (``secrets.keys[0].key_file``).
    path: tuple[PathElement, ...]
    #: The entry as configured, in MAS's order (``kid``, ``password_file``/``password``,
    #: ``key_file``/``key``), for ``config dump``; empty for a ``keys_dir`` key.
    configured: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, r: Reader) -> KeyConfig:
        kid = r.str("kid")
        if r.has("key_file") and not r.has("key"):
            source = r.str("key_file", allow_empty=False)
            key_path = r.at("key_file")
        else:
            source = "inline"
            key_path = r.at("key")
        data = r.secret("key", required=True, binary=True)
        password = r.secret("password", binary=True)
        try:
            private_key = load_private_key(data, password)
        except KeyLoadError as e:
            where = f"key file {source}" if source != "inline" else "key"
            raise ConfigError(f"could not load {where}: {e}", key_path)
        configured = tuple(
            (name, r.str(name))
            for name in ("kid", "password_file", "password", "key_file", "key")
            if r.has(name)
        )
        return cls(
            kid=private_key.thumbprint() if kid is None else kid,
            private_key=private_key,
            source=source,
            path=key_path,
            configured=configured,
        )

    @classmethod
    def from_file(cls, path: str, config_path: tuple[PathElement, ...]) -> KeyConfig:
        """A ``keys_dir`` key: unencrypted, ``kid`` from its thumbprint."""
        data = read_file(path, config_path, binary=True)
        try:
            private_key = load_private_key(data)
        except KeyLoadError as e:
            raise ConfigError(f"could not load key file {path}: {e}", config_path)
        return cls(kid=private_key.thumbprint(), private_key=private_key, source=path, path=config_path)


def _read_keys_dir(directory: str, config_path: tuple[PathElement, ...]) -> list[KeyConfig]:
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        raise ConfigError(f"directory not found: {directory}", config_path)
    except NotADirectoryError:
        raise ConfigError(f"expected a directory, got a file: {directory}", config_path)
    except OSError as e:
        raise ConfigError(f"could not list {directory}: {e.strerror}", config_path)
    keys = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            keys.append(KeyConfig.from_file(path, config_path))
        else:
            logger.debug("Skipping %s in secrets.keys_dir: not a regular file", path)
    return keys


class SecretsConfig(Config):
    """``secrets``: the 32-byte encryption key and the signing keys."""

    section = "secrets"
    required = True

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.encryption_key: bytes = _read_encryption_key(r)
        #: The file the encryption key was read from, if it was.
        self.encryption_file: str | None = r.str("encryption_file") if r.has("encryption_file") else None
        self.keys_dir: str | None = r.str("keys_dir")
        keys: list[KeyConfig] = []
        if self.keys_dir is not None:
            keys.extend(_read_keys_dir(self.keys_dir, r.at("keys_dir")))
        listed = [KeyConfig.parse(item) for item in r.children("keys")]
        keys.extend(listed)
        #: ``keys_dir`` keys first, then ``keys[]``, as MAS orders them.
        self.keys: list[KeyConfig] = keys
        #: The ``keys[]`` entries (None when the key is absent), for ``config dump``.
        self.listed_keys: list[KeyConfig] | None = listed if r.has("keys") else None

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises it: the encryption key in lower-case hex (or its file's path),
        then ``keys[]`` as configured and ``keys_dir``; the keys' files are not read."""
        out: dict[str, Any] = {}
        if self.encryption_file is not None:
            out["encryption_file"] = self.encryption_file
        else:
            out["encryption"] = self.encryption_key.hex()
        if self.listed_keys is not None:
            out["keys"] = [dict(key.configured) for key in self.listed_keys]
        if self.keys_dir is not None:
            out["keys_dir"] = self.keys_dir
        return out

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        """A fresh encryption key and one RSA, P-256, P-384 and secp256k1 key, as MAS generates."""
        lines = [
            "secrets:",
            f"  encryption: {os.urandom(ENCRYPTION_KEY_LENGTH).hex()}",
            "  keys:",
        ]
        for kind in ("rsa", "p256", "p384", "k256"):
            pem = generate_private_key(kind).to_pem()
            lines.append("    - key: |")
            lines.extend("        " + line for line in pem.strip().splitlines())
        return "\n".join(lines) + "\n"
