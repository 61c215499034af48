"""Keyed rate limits on abusable actions (MAS's ``crates/handlers/src/rate_limit.rs``), shared
across processes on PostgreSQL.

Each limit of the ``rate_limiting`` section is a GCRA (generic cell rate algorithm, the
"virtual scheduling" form of ITU-T I.371) per key: a key may act ``burst`` times at once, and
one more time every ``1 / per_second`` seconds after that. Per key, only the theoretical
arrival time (TAT) is kept: an action at time ``t`` is allowed when
``t >= TAT - (burst - 1) * T``, and then ``TAT = max(TAT, t) + T``. A refused action changes
nothing. Keys whose TAT has passed are forgotten (they are back to a full burst anyway), at
most once a minute.

Where the TAT lives depends on the database (beyond MAS, which keeps it in each process, so
that N processes allow N times the limit):

- PostgreSQL: :class:`SharedGcra`, one row per limit and key in ``rate_limits``
  (``storage/stores/rate_limits.py``), taken with one atomic statement, so every process
  behind a load balancer shares one limit. Keys are stored as an HMAC-SHA256 under a key
  derived from ``secrets.encryption``, never as the IP or address itself.
- SQLite (one process): :class:`KeyedGcra`, a dict in memory.

The checks mirror MAS's ``Limiter``: a password check is limited per requester (the client
IP, ``None`` when unknown) and then per account, so a request refused for its IP costs the
account nothing. Email addresses are compared in lower case. Time is the server clock's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING, Protocol

from mas_twisted.api.errors import MasError

if TYPE_CHECKING:
    from mas_twisted.config.rate_limiting import RateLimiter as LimiterConfig
    from mas_twisted.server import MasServer
    from mas_twisted.storage.stores.rate_limits import RateLimitStore
    from mas_twisted.util.clock import Clock

logger = logging.getLogger(__name__)

#: How often forgotten keys are swept out, in seconds.
SWEEP_INTERVAL = 60
NANOS = 1_000_000_000
#: Derives the key-hashing secret from ``secrets.encryption`` (so that it is no other use's key).
KEY_SECRET_INFO = b"mas-twisted rate-limit keys"

#: A limit's key: an IP (``None`` when unknown), a user id, a lower-cased address, a session id.
Key = str | None


class RateLimitExceededError(MasError):
    """An action was refused by a rate limit.

    Attributes:
        limit: which limit refused it (``"login.per_ip"``, ``"login.per_account"``…).
        key: the key that ran out (an IP, a user id, an address…), for logs.
        retry_after: seconds until the key may act again.
    """

    def __init__(self, limit: str, key: Key, retry_after: float):
        super().__init__("Too many requests", code=429, debug=f"rate limit {limit} exceeded for {key}")
        self.limit = limit
        self.key = key
        self.retry_after = retry_after


class Limit(Protocol):
    """One keyed limit, wherever its state lives."""

    name: str

    async def check(self, key: Key) -> None:
        """Take one cell for ``key``.

        Raises:
            RateLimitExceededError: the key has no cell left; nothing was taken.
        """


def _gcra_params(burst: int, per_second: float) -> tuple[int, int]:
    """(period, tolerance) in integer nanoseconds (as MAS's governor), so that adding up
    periods never drifts."""
    if burst < 1 or per_second <= 0:
        raise ValueError("a rate limit needs burst >= 1 and per_second > 0")
    period = max(1, round(NANOS / per_second))
    return period, (burst - 1) * period


def _now_ns(clock: Clock) -> int:
    return round(clock.time() * NANOS)


class KeyedGcra:
    """One GCRA limit, with a state per key in this process's memory (SQLite, tests)."""

    def __init__(self, name: str, burst: int, per_second: float, clock: Clock):
        self.name = name
        self._period, self._tolerance = _gcra_params(burst, per_second)
        self._clock = clock
        self._tat: dict[Key, int] = {}
        self._last_sweep = _now_ns(clock)

    @classmethod
    def from_config(cls, name: str, config: LimiterConfig, clock: Clock) -> KeyedGcra:
        return cls(name, config.burst, config.per_second, clock)

    async def check(self, key: Key) -> None:
        """Take one cell for ``key`` (see :class:`Limit`)."""
        now = _now_ns(self._clock)
        self._maybe_sweep(now)
        tat = self._tat.get(key, now)
        allowed_from = tat - self._tolerance
        if now < allowed_from:
            raise RateLimitExceededError(self.name, key, (allowed_from - now) / NANOS)
        self._tat[key] = max(tat, now) + self._period

    def _maybe_sweep(self, now: int) -> None:
        if now - self._last_sweep < SWEEP_INTERVAL * NANOS:
            return
        self._last_sweep = now
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    def __len__(self) -> int:
        """How many keys have a state (for tests and metrics)."""
        return len(self._tat)


class _Pruner:
    """Deletes the expired rows of every shared limit, at most once a minute per process
    (prune-on-write: the check that finds the minute over pays for one ``DELETE``)."""

    def __init__(self, store: RateLimitStore, clock: Clock):
        self._store = store
        self._last = _now_ns(clock)

    async def maybe_prune(self, now: int) -> None:
        if now - self._last < SWEEP_INTERVAL * NANOS:
            return
        self._last = now
        try:
            deleted = await self._store.prune(now)
        except Exception:
            # The limit itself still holds; the rows go at the next sweep.
            logger.warning("Could not prune expired rate-limit rows", exc_info=True)
            return
        logger.debug("Pruned %d expired rate-limit rows", deleted)


class SharedGcra:
    """One GCRA limit whose state is in PostgreSQL, shared by every process on the database."""

    def __init__(
        self,
        name: str,
        burst: int,
        per_second: float,
        clock: Clock,
        store: RateLimitStore,
        key_secret: bytes,
        pruner: _Pruner,
    ):
        self.name = name
        self._period, self._tolerance = _gcra_params(burst, per_second)
        self._clock = clock
        self._store = store
        self._key_secret = key_secret
        self._pruner = pruner

    def key_hash(self, key: Key) -> bytes:
        """The HMAC-SHA256 of ``key`` that stands for it in the database."""
        encoded = b"\x00" if key is None else b"\x01" + key.encode("utf-8")
        return hmac.new(self._key_secret, encoded, hashlib.sha256).digest()

    async def check(self, key: Key) -> None:
        """Take one cell for ``key`` (see :class:`Limit`)."""
        now = _now_ns(self._clock)
        await self._pruner.maybe_prune(now)
        wait = await self._store.take_cell(self.name, self.key_hash(key), now, self._period, self._tolerance)
        if wait is not None:
            raise RateLimitExceededError(self.name, key, wait / NANOS)


class RateLimiter:
    """Every limit of the ``rate_limiting`` section, with MAS's checks (``server.get_rate_limiter()``)."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        #: Whether the limits are shared through the database (PostgreSQL) or per process.
        self.shared = server.get_db_pool().engine.name == "postgres"
        if self.shared:
            self._store: RateLimitStore | None = server.get_stores().rate_limits
            self._key_secret = hmac.new(
                server.config.secrets.encryption_key, KEY_SECRET_INFO, hashlib.sha256
            ).digest()
            self._pruner: _Pruner | None = _Pruner(self._store, self._clock)
        else:
            self._store = None
            self._pruner = None
            self._key_secret = b""
        config = server.config.rate_limiting

        def limit(name: str, c: LimiterConfig) -> Limit:
            return self.make_limit(name, c.burst, c.per_second)

        self.login_per_ip = limit("login.per_ip", config.login_per_ip)
        self.login_per_account = limit("login.per_account", config.login_per_account)
        self.registration = limit("registration", config.registration)
        self.account_recovery_per_ip = limit("account_recovery.per_ip", config.account_recovery_per_ip)
        self.account_recovery_per_address = limit(
            "account_recovery.per_address", config.account_recovery_per_address
        )
        self.email_authentication_per_ip = limit(
            "email_authentication.per_ip", config.email_authentication_per_ip
        )
        self.email_authentication_per_address = limit(
            "email_authentication.per_address", config.email_authentication_per_address
        )
        self.email_authentication_emails_per_session = limit(
            "email_authentication.emails_per_session", config.email_authentication_emails_per_session
        )
        self.email_authentication_attempt_per_session = limit(
            "email_authentication.attempt_per_session", config.email_authentication_attempt_per_session
        )

    def make_limit(self, name: str, burst: int, per_second: float) -> Limit:
        """A limit named ``name`` (unique per process: it keys the shared rows), shared on
        PostgreSQL and in memory on SQLite."""
        if self._store is not None and self._pruner is not None:
            return SharedGcra(
                name, burst, per_second, self._clock, self._store, self._key_secret, self._pruner
            )
        return KeyedGcra(name, burst, per_second, self._clock)

    async def check_password(self, requester_ip: str | None, user_id: str) -> None:
        """A password check for ``user_id`` from ``requester_ip``: per IP, then per account.

        Raises:
            RateLimitExceededError: one of the two limits is exhausted.
        """
        if requester_ip is None:
            logger.warning("Could not infer the client IP address for a rate-limited password check")
        await self.login_per_ip.check(requester_ip)
        await self.login_per_account.check(user_id)

    async def check_registration(self, requester_ip: str | None) -> None:
        await self.registration.check(requester_ip)

    async def check_account_recovery(self, requester_ip: str | None, email: str) -> None:
        await self.account_recovery_per_ip.check(requester_ip)
        # Lower-cased, so that changing the case does not dodge the limit.
        await self.account_recovery_per_address.check(email.lower())

    async def check_email_authentication_email(self, requester_ip: str | None, email: str) -> None:
        await self.email_authentication_per_ip.check(requester_ip)
        await self.email_authentication_per_address.check(email.lower())

    async def check_email_authentication_send_code(
        self, requester_ip: str | None, authentication_id: str, email: str
    ) -> None:
        await self.check_email_authentication_email(requester_ip, email)
        await self.email_authentication_emails_per_session.check(authentication_id)

    async def check_email_authentication_attempt(self, authentication_id: str) -> None:
        await self.email_authentication_attempt_per_session.check(authentication_id)
