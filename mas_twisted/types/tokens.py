# SPDX-License-Identifier: AGPL-3.0-only
"""Token strings: their types, how they are generated and how a presented token is classified.

MAS behaviour (``crates/data-model/src/tokens.rs``, inventory §2.5), bit-exact:

- a token is ``{prefix}_{random}_{crc}``: a three-letter prefix naming its type (``mat`` OAuth
  access, ``mar`` OAuth refresh, ``mct`` compat access, ``mcr`` compat refresh, ``mpt``
  personal access), 30 characters drawn from ``[A-Za-z0-9]``, and the CRC-32/ISO-HDLC
  (``zlib.crc32``) of ``{prefix}_{random}`` written in base 62 with the *least* significant
  digit first, then left-padded with ``0`` to six characters;
- classification accepts the tokens syn2mas imports from Synapse without any check:
  ``syt_…`` and Synapse macaroons (base64url that decodes to bytes whose 4..13 are
  ``location ``) are compat access tokens, ``syr_…`` compat refresh tokens. Anything else
  must split into exactly three ``_``-separated parts of lengths 3/30/6 (else
  :class:`InvalidTokenFormatError`), with a known prefix (else
  :class:`UnknownTokenPrefixError`) and a matching checksum (else :class:`InvalidTokenCrcError`);
- against an RFC 7009 / RFC 7662 ``token_type_hint``, every access type matches
  ``access_token`` and every refresh type ``refresh_token``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mas_twisted.util.rand import TokenGenerator

#: Length of the random part of a token.
RANDOM_PART_LENGTH = 30
#: Length of the checksum part of a token.
CRC_PART_LENGTH = 6

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


class TokenFormatError(ValueError):
    """A presented token is not one this service could have issued."""


class InvalidTokenFormatError(TokenFormatError):
    """The token does not have the ``xxx_<30>_<6>`` shape."""

    def __init__(self) -> None:
        super().__init__("invalid token format")


class UnknownTokenPrefixError(TokenFormatError):
    """The token has the right shape but a prefix that names no token type."""

    def __init__(self, prefix: str):
        super().__init__(f"unknown token prefix {prefix!r}")
        self.prefix = prefix


class InvalidTokenCrcError(TokenFormatError):
    """The token's checksum does not match its first two parts (a typo, or a forged token)."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"invalid crc {got!r}, expected {expected!r}")
        self.expected = expected
        self.got = got


def base62_crc(value: str) -> str:
    """The six-character checksum of ``value``: base-62 CRC-32, least significant digit first."""
    crc = zlib.crc32(value.encode("utf-8"))
    digits = ""
    while crc > 0:
        digits += _BASE62[crc % 62]
        crc //= 62
    return digits.rjust(CRC_PART_LENGTH, "0")


def is_likely_synapse_macaroon(token: str) -> bool:
    """Whether ``token`` looks like a Synapse macaroon: unpadded base64url whose first caveat is
    ``location`` (bytes 4..13 are ``b"location "``). Non-canonical base64 is not accepted."""
    if not _BASE64URL_RE.fullmatch(token) or len(token) % 4 == 1:
        return False
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return False
    # Refuse encodings whose unused trailing bits are set: there is only one valid
    # encoding of a byte string, as for MAS's constant-time decoder.
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != token:
        return False
    return decoded[4:13] == b"location "


class TokenType(enum.Enum):
    """The kinds of token this service issues, by prefix."""

    ACCESS_TOKEN = "mat"
    REFRESH_TOKEN = "mar"
    COMPAT_ACCESS_TOKEN = "mct"
    COMPAT_REFRESH_TOKEN = "mcr"
    PERSONAL_ACCESS_TOKEN = "mpt"

    @property
    def prefix(self) -> str:
        return self.value

    @property
    def is_access_token(self) -> bool:
        """Whether this type answers the ``access_token`` hint."""
        return self in _ACCESS_TYPES

    @property
    def is_refresh_token(self) -> bool:
        """Whether this type answers the ``refresh_token`` hint."""
        return self in _REFRESH_TYPES

    @property
    def is_compat(self) -> bool:
        return self in (TokenType.COMPAT_ACCESS_TOKEN, TokenType.COMPAT_REFRESH_TOKEN)

    @property
    def hint(self) -> str:
        """The RFC 7009 ``token_type_hint`` value this type matches (and introspection's ``token_type``)."""
        return "access_token" if self.is_access_token else "refresh_token"

    def __str__(self) -> str:
        return _DISPLAY[self]

    @classmethod
    def match_prefix(cls, prefix: str) -> TokenType | None:
        """The type a prefix names, counting Synapse's ``syt``/``syr`` as compat tokens."""
        return _BY_PREFIX.get(prefix)

    def format(self, random_part: str) -> str:
        """The full token for a given random part: ``{prefix}_{random_part}_{crc}``."""
        base = f"{self.prefix}_{random_part}"
        return f"{base}_{base62_crc(base)}"

    def generate(self, generator: TokenGenerator) -> str:
        """A new token of this type, with 30 random alphanumerics from ``generator``."""
        return self.format(generator.alphanumeric(RANDOM_PART_LENGTH))

    def matches_hint(self, hint: str | None) -> bool:
        """Whether a token of this type fits the ``token_type_hint`` a client sent.

        No hint matches every type; an unknown hint matches none.
        """
        if hint is None:
            return True
        if hint == "access_token":
            return self.is_access_token
        if hint == "refresh_token":
            return self.is_refresh_token
        return False

    @classmethod
    def check(cls, token: str) -> TokenType:
        """Classify a presented token.

        Raises:
            InvalidTokenFormatError, UnknownTokenPrefixError, InvalidTokenCrcError.
        """
        # Tokens imported from Synapse are taken as they are.
        if token.startswith("syt_") or is_likely_synapse_macaroon(token):
            return cls.COMPAT_ACCESS_TOKEN
        if token.startswith("syr_"):
            return cls.COMPAT_REFRESH_TOKEN

        parts = token.split("_")
        if len(parts) != 3:
            raise InvalidTokenFormatError()
        prefix, random_part, crc = parts
        # Lengths in bytes, as MAS measures them.
        if (
            len(prefix.encode("utf-8")) != 3
            or len(random_part.encode("utf-8")) != RANDOM_PART_LENGTH
            or len(crc.encode("utf-8")) != CRC_PART_LENGTH
        ):
            raise InvalidTokenFormatError()

        token_type = cls.match_prefix(prefix)
        if token_type is None:
            raise UnknownTokenPrefixError(prefix)

        expected = base62_crc(f"{token_type.prefix}_{random_part}")
        if crc != expected:
            raise InvalidTokenCrcError(expected, crc)
        return token_type


_ACCESS_TYPES = frozenset(
    {TokenType.ACCESS_TOKEN, TokenType.COMPAT_ACCESS_TOKEN, TokenType.PERSONAL_ACCESS_TOKEN}
)
_REFRESH_TYPES = frozenset({TokenType.REFRESH_TOKEN, TokenType.COMPAT_REFRESH_TOKEN})

_BY_PREFIX: dict[str, TokenType] = {
    "mat": TokenType.ACCESS_TOKEN,
    "mar": TokenType.REFRESH_TOKEN,
    "mct": TokenType.COMPAT_ACCESS_TOKEN,
    "syt": TokenType.COMPAT_ACCESS_TOKEN,
    "mcr": TokenType.COMPAT_REFRESH_TOKEN,
    "syr": TokenType.COMPAT_REFRESH_TOKEN,
    "mpt": TokenType.PERSONAL_ACCESS_TOKEN,
}

_DISPLAY: dict[TokenType, str] = {
    TokenType.ACCESS_TOKEN: "access token",
    TokenType.REFRESH_TOKEN: "refresh token",
    TokenType.COMPAT_ACCESS_TOKEN: "compat access token",
    TokenType.COMPAT_REFRESH_TOKEN: "compat refresh token",
    TokenType.PERSONAL_ACCESS_TOKEN: "personal access token",
}
