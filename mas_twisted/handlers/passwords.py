# SPDX-License-Identifier: AGPL-3.0-only
"""Password hashing, verification, upgrade and complexity (MAS's ``crates/handlers/src/passwords.rs``).

Schemes come from ``passwords.schemes``; the highest version hashes new passwords and the
others only verify old hashes, which a successful login replaces with a hash of the current
scheme (:meth:`PasswordManager.verify_and_upgrade`). The hash strings are the PHC / modular
crypt formats MAS writes, so hashes move between the two services unchanged:

- ``argon2id``: ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`` with MAS's parameters (the
  RustCrypto defaults: 19 MiB, 2 passes, 1 lane, 16-byte salt, 32-byte output). The pepper is
  Argon2's secret input ``K``, which argon2-cffi only exposes through its low-level
  ``argon2_ctx`` binding.
- ``bcrypt``: ``$2b$<cost>$…`` with the configured cost (default 12); the pepper is appended
  to the password, and the password is cut at 72 bytes as bcrypt itself does.
- ``pbkdf2``: ``$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`` (HMAC-SHA-256, 600 000 rounds);
  the pepper is appended to the password.

A scheme with ``unicode_normalization`` applies NFKC first (Synapse's normalisation, for
imported hashes). Salts come from the operating system's CSPRNG.

Hashing is CPU-bound (≈ 17 ms for argon2id, far more for pbkdf2), so it runs on a thread pool
of its own, bounded to one thread per spare core (at least one): a burst of logins queues
there instead of taking every core from the reactor or the database threads.

New passwords must reach ``passwords.minimum_complexity`` as scored by zxcvbn (0 to 4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import bcrypt
from argon2.low_level import ARGON2_VERSION, Type, core, ffi, lib
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from mas_twisted.api.errors import MasError
from mas_twisted.config.passwords import (
    ALGORITHM_ARGON2ID,
    ALGORITHM_BCRYPT,
    ALGORITHM_PBKDF2,
    PasswordScheme,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

R = TypeVar("R")

# argon2id parameters MAS uses (RustCrypto's ``argon2::Params::default()``).
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
ARGON2_OUTPUT_LENGTH = 32
# pbkdf2 parameters MAS uses (RustCrypto's ``pbkdf2::Params::default()``).
PBKDF2_ROUNDS = 600_000
PBKDF2_OUTPUT_LENGTH = 32
SALT_LENGTH = 16
BCRYPT_MAX_PASSWORD_BYTES = 72

#: zxcvbn refuses longer inputs; the strength of a longer password is judged on its start.
ZXCVBN_MAX_LENGTH = 72


class PasswordManagerDisabledError(MasError):
    """Passwords are switched off (``passwords.enabled: false``)."""

    def __init__(self) -> None:
        super().__init__("Password login is disabled")


class UnknownSchemeError(MasError):
    """A stored hash names a scheme version that is not configured any more."""

    def __init__(self, version: int):
        super().__init__(
            "Hashing scheme not found", debug=f"no passwords.schemes entry has version {version}"
        )
        self.version = version


class PasswordHashError(MasError):
    """A stored hash cannot be parsed (corrupt, or written by an unknown algorithm)."""


@attrs.frozen
class VerificationResult:
    """The outcome of :meth:`PasswordManager.verify_and_upgrade`.

    ``upgrade`` is ``(version, hash)`` of the password re-hashed with the current scheme when
    the stored hash used an older one and the password matched; save it as a new password.
    """

    success: bool
    upgrade: tuple[int, str] | None = None


# -- encodings ------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    """PHC strings use standard base64 without padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise PasswordHashError("password hash is not valid base64")


def _phc_params(text: str) -> dict[str, str]:
    params = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PasswordHashError("malformed parameters in password hash")
        params[name] = value
    return params


def _int_param(params: dict[str, str], name: str) -> int:
    try:
        value = int(params[name])
    except (KeyError, ValueError):
        raise PasswordHashError(f"password hash lacks a valid {name} parameter")
    if value <= 0:
        raise PasswordHashError(f"password hash has an invalid {name} parameter")
    return value


# -- algorithms -----------------------------------------------------------------------------

_ARGON2_TYPES = {"argon2id": Type.ID, "argon2i": Type.I, "argon2d": Type.D}


def argon2_raw(
    password: bytes,
    salt: bytes,
    *,
    secret: bytes | None,
    memory_kib: int,
    time_cost: int,
    parallelism: int,
    output_length: int,
    variant: Type = Type.ID,
    version: int = ARGON2_VERSION,
) -> bytes:
    """Argon2 with the optional secret ``K`` (RFC 9106 §3.1), through ``argon2_ctx``."""
    out = ffi.new("uint8_t[]", output_length)
    pwd = ffi.new("uint8_t[]", password) if password else ffi.NULL
    slt = ffi.new("uint8_t[]", salt)
    sec = ffi.new("uint8_t[]", secret) if secret else ffi.NULL
    ctx = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": output_length,
            "pwd": pwd,
            "pwdlen": len(password),
            "salt": slt,
            "saltlen": len(salt),
            "secret": sec,
            "secretlen": len(secret) if secret else 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": time_cost,
            "m_cost": memory_kib,
            "lanes": parallelism,
            "threads": parallelism,
            "version": version,
            "allocate_cbk": ffi.NULL,
            "free_cbk": ffi.NULL,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    rc = core(ctx, variant.value)
    if rc != lib.ARGON2_OK:
        raise PasswordHashError(f"argon2 failed: {ffi.string(lib.argon2_error_message(rc)).decode()}")
    return bytes(ffi.buffer(out, output_length))


def _argon2_hash(password: bytes, pepper: bytes | None) -> str:
    salt = os.urandom(SALT_LENGTH)
    digest = argon2_raw(
        password,
        salt,
        secret=pepper,
        memory_kib=ARGON2_MEMORY_KIB,
        time_cost=ARGON2_TIME_COST,
        parallelism=ARGON2_PARALLELISM,
        output_length=ARGON2_OUTPUT_LENGTH,
    )
    return (
        f"$argon2id$v={ARGON2_VERSION}$m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST},p={ARGON2_PARALLELISM}"
        f"${_b64encode(salt)}${_b64encode(digest)}"
    )


def _argon2_verify(hashed: str, password: bytes, pepper: bytes | None) -> bool:
    # $<variant>[$v=<version>]$m=..,t=..,p=..$<salt>$<hash>, with the parameters of the hash.
    parts = hashed.split("$")
    if len(parts) == 6:
        _, variant, version_field, param_field, salt_b64, hash_b64 = parts
        version_params = _phc_params(version_field)
        version = _int_param(version_params, "v")
    elif len(parts) == 5:
        _, variant, param_field, salt_b64, hash_b64 = parts
        version = 0x10
    else:
        raise PasswordHashError("malformed argon2 hash")
    if variant not in _ARGON2_TYPES or version not in (0x10, 0x13):
        raise PasswordHashError("unsupported argon2 variant or version")
    params = _phc_params(param_field)
    expected = _b64decode(hash_b64)
    if not expected:
        raise PasswordHashError("argon2 hash has an empty output")
    digest = argon2_raw(
        password,
        _b64decode(salt_b64),
        secret=pepper,
        memory_kib=_int_param(params, "m"),
        time_cost=_int_param(params, "t"),
        parallelism=_int_param(params, "p"),
        output_length=len(expected),
        variant=_ARGON2_TYPES[variant],
        version=version,
    )
    return hmac.compare_digest(digest, expected)


def _bcrypt_input(password: bytes, pepper: bytes | None) -> bytes:
    data = password + (pepper or b"")
    # bcrypt only reads the first 72 bytes; newer Python bindings refuse longer input.
    return data[:BCRYPT_MAX_PASSWORD_BYTES]


def _bcrypt_hash(password: bytes, pepper: bytes | None, cost: int) -> str:
    return bcrypt.hashpw(_bcrypt_input(password, pepper), bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode(
        "ascii"
    )


def _bcrypt_verify(hashed: str, password: bytes, pepper: bytes | None) -> bool:
    try:
        return bcrypt.checkpw(_bcrypt_input(password, pepper), hashed.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise PasswordHashError("malformed bcrypt hash")


_PBKDF2_DIGESTS = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}


def _pbkdf2_hash(password: bytes, pepper: bytes | None) -> str:
    salt = os.urandom(SALT_LENGTH)
    digest = hashlib.pbkdf2_hmac(
        "sha256", password + (pepper or b""), salt, PBKDF2_ROUNDS, PBKDF2_OUTPUT_LENGTH
    )
    return (
        f"$pbkdf2-sha256$i={PBKDF2_ROUNDS},l={PBKDF2_OUTPUT_LENGTH}${_b64encode(salt)}${_b64encode(digest)}"
    )


def _pbkdf2_verify(hashed: str, password: bytes, pepper: bytes | None) -> bool:
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] not in _PBKDF2_DIGESTS:
        raise PasswordHashError("malformed pbkdf2 hash")
    _, ident, param_field, salt_b64, hash_b64 = parts
    params = _phc_params(param_field)
    expected = _b64decode(hash_b64)
    length = _int_param(params, "l") if "l" in params else len(expected)
    if length != len(expected):
        raise PasswordHashError("pbkdf2 hash length does not match its l parameter")
    digest = hashlib.pbkdf2_hmac(
        _PBKDF2_DIGESTS[ident],
        password + (pepper or b""),
        _b64decode(salt_b64),
        _int_param(params, "i"),
        length,
    )
    return hmac.compare_digest(digest, expected)


class Hasher:
    """One entry of ``passwords.schemes``: hash and verify, blocking (call from a thread)."""

    def __init__(self, scheme: PasswordScheme):
        self.version = scheme.version
        self.algorithm = scheme.algorithm
        self.cost = scheme.bcrypt_cost
        self.pepper = scheme.secret
        self.unicode_normalization = scheme.unicode_normalization

    def _prepare(self, password: str) -> bytes:
        if self.unicode_normalization:
            password = unicodedata.normalize("NFKC", password)
        return password.encode("utf-8")

    def hash_blocking(self, password: str) -> str:
        data = self._prepare(password)
        if self.algorithm == ALGORITHM_ARGON2ID:
            return _argon2_hash(data, self.pepper)
        if self.algorithm == ALGORITHM_BCRYPT:
            return _bcrypt_hash(data, self.pepper, self.cost)
        if self.algorithm == ALGORITHM_PBKDF2:
            return _pbkdf2_hash(data, self.pepper)
        raise PasswordHashError(f"unknown password algorithm {self.algorithm!r}")

    def verify_blocking(self, hashed: str, password: str) -> bool:
        data = self._prepare(password)
        if self.algorithm == ALGORITHM_ARGON2ID:
            return _argon2_verify(hashed, data, self.pepper)
        if self.algorithm == ALGORITHM_BCRYPT:
            return _bcrypt_verify(hashed, data, self.pepper)
        if self.algorithm == ALGORITHM_PBKDF2:
            return _pbkdf2_verify(hashed, data, self.pepper)
        raise PasswordHashError(f"unknown password algorithm {self.algorithm!r}")


def default_pool_size() -> int:
    """One hashing thread per core the reactor does not need, and at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def password_strength(password: str) -> int:
    """zxcvbn's score of ``password``, from 0 (guessable) to 4 (very hard to guess).

    The empty password scores 0 (the Python zxcvbn raises ``IndexError`` on it; the Rust one
    MAS uses scores it 0).
    """
    from zxcvbn import zxcvbn

    if not password:
        return 0

    return int(zxcvbn(password[:ZXCVBN_MAX_LENGTH], max_length=ZXCVBN_MAX_LENGTH)["score"])


class PasswordManager:
    """Hashes and checks passwords on a bounded thread pool of its own.

    Args:
        server: the container; reads ``passwords`` from its config and uses its reactor.
        threadpool: the pool to hash on (tests pass a threadless one); by default a
            :class:`~twisted.python.threadpool.ThreadPool` of :func:`default_pool_size`
            threads, started on first use and stopped when the reactor shuts down.
    """

    def __init__(self, server: MasServer, *, threadpool: Any = None, pool_size: int | None = None):
        config = server.config.passwords
        self._reactor = server.get_reactor()
        self.enabled: bool = config.enabled
        self.minimum_complexity: int = config.minimum_complexity
        self._hashers: dict[int, Hasher] = {s.version: Hasher(s) for s in config.schemes}
        current = config.current_scheme
        self._current: Hasher | None = (
            self._hashers[current.version] if current is not None and self.enabled else None
        )
        self.pool_size = pool_size if pool_size is not None else default_pool_size()
        self._threadpool = threadpool
        self._owns_pool = threadpool is None
        self._pool_started = False
        self._shutdown_trigger: Any = None

    @property
    def current_version(self) -> int:
        return self._require_current().version

    def _require_current(self) -> Hasher:
        if self._current is None:
            raise PasswordManagerDisabledError()
        return self._current

    # -- the thread pool ------------------------------------------------------------------
    def _pool(self) -> Any:
        if self._threadpool is None:
            self._threadpool = ThreadPool(minthreads=0, maxthreads=self.pool_size, name="password-hashing")
        if not self._pool_started:
            self._pool_started = True
            if self._owns_pool:
                self._threadpool.start()
                self._shutdown_trigger = self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return self._threadpool

    def stop(self) -> None:
        """Stop the hashing threads (waits for the current jobs); the reactor does this at shutdown."""
        if self._owns_pool and self._pool_started and self._threadpool is not None:
            self._pool_started = False
            self._threadpool.stop()
            self._threadpool = None
            if self._shutdown_trigger is not None:
                try:
                    self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
                except (ValueError, KeyError):
                    pass  # already fired: we are being called by it
                self._shutdown_trigger = None

    async def _run(self, func: Callable[..., R], *args: Any) -> R:
        return await deferToThreadPool(self._reactor, self._pool(), func, *args)

    # -- the API --------------------------------------------------------------------------
    def is_password_complex_enough(self, password: str) -> bool:
        """Whether ``password`` reaches ``passwords.minimum_complexity``.

        Raises:
            PasswordManagerDisabledError: passwords are switched off.
        """
        self._require_current()
        return password_strength(password) >= self.minimum_complexity

    async def hash(self, password: str) -> tuple[int, str]:
        """Hash with the current scheme: ``(version, hash)``.

        Raises:
            PasswordManagerDisabledError: passwords are switched off.
        """
        hasher = self._require_current()
        hashed = await self._run(hasher.hash_blocking, password)
        return hasher.version, hashed

    async def verify(self, version: int, password: str, hashed: str) -> bool:
        """Whether ``password`` matches ``hashed``, made by the scheme ``version``.

        Raises:
            PasswordManagerDisabledError: passwords are switched off.
            UnknownSchemeError: no scheme has this version.
            PasswordHashError: the stored hash cannot be parsed.
        """
        self._require_current()
        hasher = self._hashers.get(version)
        if hasher is None:
            raise UnknownSchemeError(version)
        return await self._run(hasher.verify_blocking, hashed, password)

    async def verify_and_upgrade(self, version: int, password: str, hashed: str) -> VerificationResult:
        """Verify, and when the hash is from an older scheme, re-hash with the current one.

        The re-hash only happens once the password matched, so a wrong guess costs one hash,
        not two.
        """
        current = self._require_current()
        if not await self.verify(version, password, hashed):
            return VerificationResult(success=False)
        if version == current.version:
            return VerificationResult(success=True)
        return VerificationResult(success=True, upgrade=await self.hash(password))
