# SPDX-License-Identifier: AGPL-3.0-only
"""The ``rate_limiting`` section: GCRA limits on abusable actions.

MAS behaviour (``crates/config/src/sections/rate_limiting.rs``): every limiter is
``{burst, per_second}``: ``burst`` actions at once (a positive 32-bit integer), replenished
at ``per_second`` actions a second (fractional for slower rates). ``per_second`` must be more
than 0 and at most 10^9, so that the replenishment period is a positive number of
nanoseconds. A limiter given in the file needs both keys; an absent one takes MAS's default:

- ``login.per_ip``: 3, then 3 a minute
- ``login.per_account``: 1800, then 1800 an hour
- ``registration``: 3, then 3 an hour
- ``account_recovery.per_ip``: 3, then 3 an hour
- ``account_recovery.per_address``: 3, then 1 an hour
- ``email_authentication.per_ip``: 5, then 1 a minute
- ``email_authentication.per_address``: 3, then 1 an hour
- ``email_authentication.emails_per_session``: 2, then 1 every 5 minutes
- ``email_authentication.attempt_per_session``: 10, then 1 a minute
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from mas_twisted.config._base import Config, JsonDict, Reader

_MAX_PER_SECOND = 1e9


@attrs.frozen
class RateLimiter:
    """One GCRA limiter: ``burst`` actions at once, refilled at ``per_second``."""

    burst: int
    per_second: float

    @property
    def period(self) -> float:
        """Seconds for one action's allowance to come back."""
        return 1.0 / self.per_second

    @classmethod
    def parse(cls, r: Reader) -> RateLimiter:
        burst = r.int("burst", required=True, min=1, max=2**32 - 1)
        per_second = r.float("per_second", None)
        if per_second is None:
            raise r.error("per_second", "missing required value")
        if not (math.isfinite(per_second) and 0 < per_second <= _MAX_PER_SECOND):
            raise r.error("per_second", f"must be more than 0 and at most 1000000000 (1e9), got {per_second}")
        return cls(burst=burst, per_second=per_second)


#: (YAML path below ``rate_limiting``, default, the default's rate in words) for every limiter.
LIMITERS: tuple[tuple[tuple[str, ...], RateLimiter, str], ...] = (
    (("login", "per_ip"), RateLimiter(3, 3 / 60), "3 a minute"),
    (("login", "per_account"), RateLimiter(1800, 1800 / 3600), "1800 an hour"),
    (("registration",), RateLimiter(3, 3 / 3600), "3 an hour"),
    (("account_recovery", "per_ip"), RateLimiter(3, 3 / 3600), "3 an hour"),
    (("account_recovery", "per_address"), RateLimiter(3, 1 / 3600), "1 an hour"),
    (("email_authentication", "per_ip"), RateLimiter(5, 1 / 60), "1 a minute"),
    (("email_authentication", "per_address"), RateLimiter(3, 1 / 3600), "1 an hour"),
    (("email_authentication", "emails_per_session"), RateLimiter(2, 1 / 300), "1 every 5 minutes"),
    (("email_authentication", "attempt_per_session"), RateLimiter(10, 1 / 60), "1 a minute"),
)


#: The limiters in the order MAS serialises them (``RateLimitingConfig``'s field order).
_DUMP_ORDER: tuple[tuple[str, ...], ...] = (
    ("account_recovery", "per_ip"),
    ("account_recovery", "per_address"),
    ("login", "per_ip"),
    ("login", "per_account"),
    ("registration",),
    ("email_authentication", "per_ip"),
    ("email_authentication", "per_address"),
    ("email_authentication", "emails_per_session"),
    ("email_authentication", "attempt_per_session"),
)


def _limiter(r: Reader, path: tuple[str, ...], default: RateLimiter) -> RateLimiter:
    for group in path[:-1]:
        r = r.child(group)
    if r.data.get(path[-1]) is None:
        return default
    return RateLimiter.parse(r.child(path[-1]))


class RateLimitingConfig(Config):
    """``config.rate_limiting``: one :class:`RateLimiter` attribute per limiter."""

    section = "rate_limiting"

    login_per_ip: RateLimiter
    login_per_account: RateLimiter
    registration: RateLimiter
    account_recovery_per_ip: RateLimiter
    account_recovery_per_address: RateLimiter
    email_authentication_per_ip: RateLimiter
    email_authentication_per_address: RateLimiter
    email_authentication_emails_per_session: RateLimiter
    email_authentication_attempt_per_session: RateLimiter

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        for path, default, _ in LIMITERS:
            setattr(self, "_".join(path), _limiter(r, path, default))

    def to_dict(self) -> dict[str, Any]:
        """Every limiter, grouped as in the file and in MAS's field order."""
        out: dict[str, Any] = {}
        for path in _DUMP_ORDER:
            limiter: RateLimiter = getattr(self, "_".join(path))
            node = out
            for group in path[:-1]:
                node = node.setdefault(group, {})
            node[path[-1]] = {"burst": limiter.burst, "per_second": limiter.per_second}
        return out

    def is_default(self) -> bool:
        # MAS skips the section only when every limiter has its default.
        return all(getattr(self, "_".join(path)) == default for path, default, _ in LIMITERS)

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        lines = [
            "# Limits on login attempts, registrations and emails, per client address,",
            "# account or session: `burst` actions at once, refilled at `per_second`",
            "# (the values shown are the defaults).",
            "#rate_limiting:",
        ]
        current_group = None
        for path, default, rate in LIMITERS:
            if len(path) == 2 and path[0] != current_group:
                lines.append(f"#  {path[0]}:")
                current_group = path[0]
            indent = "  " * len(path)
            lines.append(f"#{indent}{path[-1]}:")
            lines.append(f"#{indent}  burst: {default.burst}")
            lines.append(f"#{indent}  per_second: {default.per_second!r}  # {rate}")
            if len(path) == 1:
                current_group = None
        return "\n".join(lines) + "\n"
