# SPDX-License-Identifier: AGPL-3.0-only
"""GCRA rate limits (MAS's ``crates/handlers/src/rate_limit.rs``), on the fake clock."""

from __future__ import annotations

from mas_twisted.handlers.rate_limit import KeyedGcra, RateLimitExceededError
from tests.unittest import MasTestCase, override_config

ALICE = "01H00000000000000000ALICE0"
BOB = "01H000000000000000000BOB00"


class RateLimiterTests(MasTestCase):
    def allowed(self, ip: str, user: str) -> bool:
        try:
            self.server.get_rate_limiter().check_password(ip, user)
        except RateLimitExceededError:
            return False
        return True

    def test_password_check_limits_like_mas(self) -> None:
        # MAS's test_password_check_limiter, with the default limits (3 per IP then 3 a
        # minute; 1800 per account then 1800 an hour) and a clock that does not move.
        requesters = [f"{a}.{a}.{b}.{b}" for a in range(256) for b in range(3)]
        self.assertTrue(self.allowed(requesters[0], ALICE))
        self.assertTrue(self.allowed(requesters[0], ALICE))
        self.assertTrue(self.allowed(requesters[0], ALICE))
        # The fourth time from the same IP is refused, for any account.
        self.assertFalse(self.allowed(requesters[0], ALICE))
        self.assertFalse(self.allowed(requesters[0], BOB))
        # Another IP may still try the account.
        self.assertTrue(self.allowed(requesters[1], ALICE))
        # 4 cells of alice's 1800 are used; spread the rest over other IPs.
        for requester in requesters[2:600]:
            self.assertTrue(self.allowed(requester, ALICE))
            self.assertTrue(self.allowed(requester, ALICE))
            self.assertTrue(self.allowed(requester, ALICE))
            self.assertFalse(self.allowed(requester, ALICE))
        # 4 + 598 * 3 = 1798 cells used: two more, then the account is limited.
        self.assertTrue(self.allowed(requesters[600], ALICE))
        self.assertTrue(self.allowed(requesters[601], ALICE))
        self.assertFalse(self.allowed(requesters[602], ALICE))
        # Other accounts are not.
        self.assertTrue(self.allowed(requesters[603], BOB))

    def test_cells_come_back_at_the_configured_rate(self) -> None:
        for _ in range(3):
            self.assertTrue(self.allowed("192.0.2.1", ALICE))
        self.assertFalse(self.allowed("192.0.2.1", ALICE))
        # 3 a minute: one cell every 20 seconds.
        self.reactor.advance(19.9)
        self.assertFalse(self.allowed("192.0.2.1", ALICE))
        self.reactor.advance(0.1)
        self.assertTrue(self.allowed("192.0.2.1", ALICE))
        self.assertFalse(self.allowed("192.0.2.1", ALICE))
        # After a full minute the whole burst is back, and no more.
        self.reactor.advance(60)
        for _ in range(3):
            self.assertTrue(self.allowed("192.0.2.1", ALICE))
        self.assertFalse(self.allowed("192.0.2.1", ALICE))

    def test_refusal_says_which_limit_and_when(self) -> None:
        limiter = self.server.get_rate_limiter()
        for _ in range(3):
            limiter.check_password("192.0.2.1", ALICE)
        failure = self.assertRaises(RateLimitExceededError, limiter.check_password, "192.0.2.1", ALICE)
        self.assertEqual(failure.limit, "login.per_ip")
        self.assertEqual(failure.code, 429)
        self.assertAlmostEqual(failure.retry_after, 20.0)

    @override_config({"rate_limiting": {"login": {"per_account": {"burst": 2, "per_second": 0.5}}}})
    def test_configured_per_account_limit(self) -> None:
        self.assertTrue(self.allowed("192.0.2.1", ALICE))
        self.assertTrue(self.allowed("192.0.2.2", ALICE))
        failure = self.assertRaises(
            RateLimitExceededError, self.server.get_rate_limiter().check_password, "192.0.2.3", ALICE
        )
        self.assertEqual(failure.limit, "login.per_account")
        self.reactor.advance(2)
        self.assertTrue(self.allowed("192.0.2.4", ALICE))

    def test_unknown_client_ip_shares_one_key(self) -> None:
        for _ in range(3):
            self.assertTrue(self.allowed(None, ALICE))  # type: ignore[arg-type]
        self.assertFalse(self.allowed(None, BOB))  # type: ignore[arg-type]

    def test_email_limits_ignore_case(self) -> None:
        limiter = self.server.get_rate_limiter()
        # account_recovery.per_address: 3, then 1 an hour.
        limiter.check_account_recovery("192.0.2.1", "Alice@Example.com")
        limiter.check_account_recovery("192.0.2.2", "alice@example.com")
        limiter.check_account_recovery("192.0.2.3", "ALICE@EXAMPLE.COM")
        failure = self.assertRaises(
            RateLimitExceededError, limiter.check_account_recovery, "192.0.2.4", "alice@example.COM"
        )
        self.assertEqual(failure.limit, "account_recovery.per_address")

    def test_idle_keys_are_forgotten(self) -> None:
        gcra = KeyedGcra("test", burst=2, per_second=1.0, clock=self.clock)
        gcra.check("a")
        gcra.check("b")
        self.assertEqual(len(gcra), 2)
        self.reactor.advance(61)
        gcra.check("c")
        # a and b are back to a full burst, so their state was dropped.
        self.assertEqual(len(gcra), 1)
        gcra.check("a")
        gcra.check("a")
        self.assertRaises(RateLimitExceededError, gcra.check, "a")
