# SPDX-License-Identifier: AGPL-3.0-only
"""Random identifiers, tokens and codes, from one injectable source of randomness.

MAS passes an RNG and a clock to everything that makes ids or secrets, so its tests are
deterministic (``ChaChaRng::seed_from_u64(42)``). :class:`TokenGenerator` is the same idea:
production builds it on :class:`OsRandom` (the OS CSPRNG read in bulk; ``MasServer.get_token_generator``),
tests on ``random.Random(42)`` and the fake clock.

The samplers reproduce MAS's choices (inventory §2.5): alphanumerics as ``rand``'s
``Alphanumeric`` distribution (the top 6 bits of a 32-bit draw, rejected when ≥ 62, into
``A-Z a-z 0-9``), numeric codes uniform over ``0 … 10^n - 1`` and zero-padded, ULIDs from the
clock's milliseconds and 80 random bits, and the lengths MAS uses for each secret.
"""

from __future__ import annotations

import os
import random
import threading
from typing import TYPE_CHECKING, Any, Protocol

from mas_twisted.util.ulid import make_ulid

if TYPE_CHECKING:
    from mas_twisted.types.tokens import TokenType

_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

#: Lengths of MAS's generated secrets.
AUTHORIZATION_CODE_LENGTH = 32
DEVICE_CODE_LENGTH = 32
USER_CODE_LENGTH = 6
CLIENT_SECRET_LENGTH = 20
DEVICE_ID_LENGTH = 10
SSO_LOGIN_TOKEN_LENGTH = 32
RECOVERY_TICKET_LENGTH = 32
REGISTRATION_TOKEN_LENGTH = 12
EMAIL_CODE_DIGITS = 6


class OsRandom(random.Random):
    """:class:`random.Random` over the OS CSPRNG, like :class:`random.SystemRandom`, but
    reading ``os.urandom`` :data:`BUFFER` bytes at a time rather than once per draw.

    Every draw is fresh bytes of ``os.urandom`` (never reused, never derived); a forked
    child drops the bytes it inherited. Not seedable, like ``SystemRandom``.
    """

    #: Bytes read from the OS at a time.
    BUFFER = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._pos = 0
        self._pid = os.getpid()
        super().__init__()

    def seed(self, *args: object, **kwargs: object) -> None:
        """Nothing to seed: the bytes come from the OS."""

    def getstate(self) -> tuple[Any, ...]:
        raise NotImplementedError("OsRandom has no state to save")

    def setstate(self, state: tuple[Any, ...]) -> None:
        raise NotImplementedError("OsRandom has no state to restore")

    def random_bytes(self, n: int) -> bytes:
        """``n`` fresh bytes of the OS CSPRNG."""
        with self._lock:
            pos = self._pos
            if pos + n > len(self._buffer) or self._pid != os.getpid():
                self._buffer = os.urandom(max(self.BUFFER, n))
                self._pid = os.getpid()
                pos = 0
            self._pos = pos + n
            return self._buffer[pos : pos + n]

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        if k == 0:
            return 0
        n = (k + 7) // 8
        return int.from_bytes(self.random_bytes(n), "big") >> (n * 8 - k)

    def random(self) -> float:
        return (int.from_bytes(self.random_bytes(7), "big") >> 3) * 2.0**-53


class _MsecClock(Protocol):
    def time_msec(self) -> int: ...


class TokenGenerator:
    """Everything random the service makes, drawn from ``rng`` (timestamps from ``clock``)."""

    def __init__(self, rng: random.Random, clock: _MsecClock):
        self._rng = rng
        self._clock = clock

    # -- primitives --------------------------------------------------------------------------
    def alphanumeric(self, length: int) -> str:
        """``length`` characters uniform over ``[A-Za-z0-9]`` (``rand``'s ``Alphanumeric``)."""
        rng = self._rng
        if isinstance(rng, OsRandom):
            # The top 6 bits of each byte: the same distribution as the top 6 bits of a
            # 32-bit draw below, for a quarter of the random bytes and no call per character.
            chars: list[str] = []
            while len(chars) < length:
                for byte in rng.random_bytes(length + 4):
                    index = byte >> 2
                    if index < 62:
                        chars.append(_ALPHANUMERIC[index])
            return "".join(chars[:length])
        out: list[str] = []
        getrandbits = rng.getrandbits
        while len(out) < length:
            index = getrandbits(32) >> 26
            if index < 62:
                out.append(_ALPHANUMERIC[index])
        return "".join(out)

    def numeric_code(self, digits: int = EMAIL_CODE_DIGITS) -> str:
        """A code of ``digits`` decimal digits, uniform over ``000…0`` to ``999…9``."""
        return str(self._rng.randrange(10**digits)).zfill(digits)

    def random_bytes(self, length: int) -> bytes:
        if isinstance(self._rng, OsRandom):
            return self._rng.random_bytes(length)
        return self._rng.getrandbits(8 * length).to_bytes(length, "big") if length else b""

    def ulid(self, at_ms: int | None = None) -> str:
        """A new ULID (26 Crockford base-32 characters) stamped ``at_ms``, by default now."""
        ms = self._clock.time_msec() if at_ms is None else at_ms
        return make_ulid(ms, self.random_bytes(10))

    #: STYLE.md's name for :meth:`ulid`.
    new_id = ulid

    # -- MAS's secrets -----------------------------------------------------------------------
    def token(self, token_type: TokenType) -> str:
        """A new ``mat_``/``mar_``/``mct_``/``mcr_``/``mpt_`` token with its checksum."""
        return token_type.generate(self)

    def user_code(self) -> str:
        """An RFC 8628 user code: 6 alphanumerics, upper-cased (so digits and A-Z only)."""
        return self.alphanumeric(USER_CODE_LENGTH).upper()

    def device_code(self) -> str:
        """An RFC 8628 device code: 32 alphanumerics."""
        return self.alphanumeric(DEVICE_CODE_LENGTH)

    def authorization_code(self) -> str:
        """An RFC 6749 §4.1.2 authorization code: 32 alphanumerics."""
        return self.alphanumeric(AUTHORIZATION_CODE_LENGTH)

    def client_secret(self) -> str:
        """A dynamically registered client's secret: 20 alphanumerics."""
        return self.alphanumeric(CLIENT_SECRET_LENGTH)

    def device_id(self) -> str:
        """A generated Matrix device ID: 10 alphanumerics."""
        return self.alphanumeric(DEVICE_ID_LENGTH)

    def sso_login_token(self) -> str:
        """A compat SSO ``loginToken``: 32 alphanumerics."""
        return self.alphanumeric(SSO_LOGIN_TOKEN_LENGTH)

    def recovery_ticket(self) -> str:
        """An account recovery ticket: 32 alphanumerics."""
        return self.alphanumeric(RECOVERY_TICKET_LENGTH)

    def registration_token(self) -> str:
        """A user registration token (default length): 12 alphanumerics."""
        return self.alphanumeric(REGISTRATION_TOKEN_LENGTH)
