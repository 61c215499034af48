# SPDX-License-Identifier: AGPL-3.0-only
"""In-memory, keyed rate limits on abusable actions (MAS's ``crates/handlers/src/rate_limit.rs``).

Each limit of the ``rate_limiting`` section is a GCRA (generic cell rate algorithm, the
"virtual scheduling" form of ITU-T I.371) per key: a key may act ``burst`` times at once, and
one more time every ``1 / per_second`` seconds after that. Per key, only the theoretical
arrival time (TAT) is kept: an action at time ``t`` is allowed when
``t >= TAT - (burst - 1) * T``, and then ``TAT = max(TAT, t) + T``. A refused action changes
nothing. Keys whose TAT has passed are forgotten (they are back to a full burst anyway), at
most once a minute.

The checks mirror MAS's ``Limiter``: a password check is limited per requester (the client
IP, ``None`` when unknown) and then per account, so a request refused for its IP costs the
account nothing. Email addresses are compared in lower case. Time is the server clock's.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING

from mas_twisted.api.errors import MasError

if TYPE_CHECKING:
    from mas_twisted.config.rate_limiting import RateLimiter as LimiterConfig
    from mas_twisted.server import MasServer
    from mas_twisted.util.clock import Clock

logger = logging.getLogger(__name__)

#: How often forgotten keys are swept out, in seconds.
SWEEP_INTERVAL = 60
NANOS = 1_000_000_000


class RateLimitExceededError(MasError):
    """An action was refused by a rate limit.

    Attributes:
        limit: which limit refused it (``"login.per_ip"``, ``"login.per_account"``…).
        key: the key that ran out (an IP, a user id, an address…), for logs.
        retry_after: seconds until the key may act again.
    """

    def __init__(self, limit: str, key: Hashable, retry_after: float):
        super().__init__("Too many requests", code=429, debug=f"rate limit {limit} exceeded for {key}")
        self.limit = limit
        self.key = key
        self.retry_after = retry_after


class KeyedGcra:
    """One GCRA limit, with a state per key."""

    def __init__(self, name: str, burst: int, per_second: float, clock: Clock):
        if burst < 1 or per_second <= 0:
            raise ValueError("a rate limit needs burst >= 1 and per_second > 0")
        self.name = name
        # Integer nanoseconds (as MAS's governor), so that adding up periods never drifts.
        self._period = max(1, round(NANOS / per_second))
        self._tolerance = (burst - 1) * self._period
        self._clock = clock
        self._tat: dict[Hashable, int] = {}
        self._last_sweep = self._now()

    @classmethod
    def from_config(cls, name: str, config: LimiterConfig, clock: Clock) -> KeyedGcra:
        return cls(name, config.burst, config.per_second, clock)

    def _now(self) -> int:
        return round(self._clock.time() * NANOS)

    def check(self, key: Hashable) -> None:
        """Take one cell for ``key``.

        Raises:
            RateLimitExceededError: the key has no cell left; nothing was taken.
        """
        now = self._now()
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


class RateLimiter:
    """Every limit of the ``rate_limiting`` section, with MAS's checks."""

    def __init__(self, server: MasServer):
        config = server.config.rate_limiting
        clock = server.get_clock()
        self.login_per_ip = KeyedGcra.from_config("login.per_ip", config.login_per_ip, clock)
        self.login_per_account = KeyedGcra.from_config("login.per_account", config.login_per_account, clock)
        self.registration = KeyedGcra.from_config("registration", config.registration, clock)
        self.account_recovery_per_ip = KeyedGcra.from_config(
            "account_recovery.per_ip", config.account_recovery_per_ip, clock
        )
        self.account_recovery_per_address = KeyedGcra.from_config(
            "account_recovery.per_address", config.account_recovery_per_address, clock
        )
        self.email_authentication_per_ip = KeyedGcra.from_config(
            "email_authentication.per_ip", config.email_authentication_per_ip, clock
        )
        self.email_authentication_per_address = KeyedGcra.from_config(
            "email_authentication.per_address", config.email_authentication_per_address, clock
        )
        self.email_authentication_emails_per_session = KeyedGcra.from_config(
            "email_authentication.emails_per_session", config.email_authentication_emails_per_session, clock
        )
        self.email_authentication_attempt_per_session = KeyedGcra.from_config(
            "email_authentication.attempt_per_session", config.email_authentication_attempt_per_session, clock
        )

    def check_password(self, requester_ip: str | None, user_id: str) -> None:
        """A password check for ``user_id`` from ``requester_ip``: per IP, then per account.

        Raises:
            RateLimitExceededError: one of the two limits is exhausted.
        """
        if requester_ip is None:
            logger.warning("Could not infer the client IP address for a rate-limited password check")
        self.login_per_ip.check(requester_ip)
        self.login_per_account.check(user_id)

    def check_registration(self, requester_ip: str | None) -> None:
        self.registration.check(requester_ip)

    def check_account_recovery(self, requester_ip: str | None, email: str) -> None:
        self.account_recovery_per_ip.check(requester_ip)
        # Lower-cased, so that changing the case does not dodge the limit.
        self.account_recovery_per_address.check(email.lower())

    def check_email_authentication_email(self, requester_ip: str | None, email: str) -> None:
        self.email_authentication_per_ip.check(requester_ip)
        self.email_authentication_per_address.check(email.lower())

    def check_email_authentication_send_code(
        self, requester_ip: str | None, authentication_id: str, email: str
    ) -> None:
        self.check_email_authentication_email(requester_ip, email)
        self.email_authentication_emails_per_session.check(authentication_id)

    def check_email_authentication_attempt(self, authentication_id: str) -> None:
        self.email_authentication_attempt_per_session.check(authentication_id)
