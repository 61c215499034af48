# SPDX-License-Identifier: AGPL-3.0-only
"""GCRA rate limits (MAS's ``crates/handlers/src/rate_limit.rs``), on the fake clock.

On PostgreSQL (``MAS_TEST_POSTGRES_DSN``) the limiter under test is the shared one (its state
in ``rate_limits``), on SQLite the in-memory one: the same behaviour either way.
"""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mas_twisted.handlers.rate_limit import KeyedGcra, RateLimitExceededError, SharedGcra
from mas_twisted.storage.stores.rate_limits import _take_cell_txn
from tests.unittest import MasTestCase, override_config

ALICE = "01H00000000000000000ALICE0"
BOB = "01H000000000000000000BOB00"


class RateLimiterTests(MasTestCase):
    def allowed(self, ip: str | None, user: str) -> bool:
        d = defer.ensureDeferred(self.server.get_rate_limiter().check_password(ip, user))
        self.reactor.advance(0)
        result: list[Any] = []
        d.addBoth(result.append)
        self.assertTrue(result, "the check did not finish")
        if isinstance(result[0], Failure):
            result[0].trap(RateLimitExceededError)
            return False
        return True

    def refusal(self, coro: Any) -> RateLimitExceededError:
        failure = self.get_failure(coro, RateLimitExceededError)
        error = failure.value
        assert isinstance(error, RateLimitExceededError)
        return error

    def test_limiter_kind_follows_the_engine(self) -> None:
        limiter = self.server.get_rate_limiter()
        shared = self.test_db.engine_name == "postgres"
        self.assertEqual(limiter.shared, shared)
        self.assertIsInstance(limiter.login_per_ip, SharedGcra if shared else KeyedGcra)

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

    def test_refused_check_consumes_nothing(self) -> None:
        for _ in range(3):
            self.assertTrue(self.allowed("192.0.2.1", ALICE))
        # Hammering while refused does not push the next cell further away.
        for _ in range(10):
            self.assertFalse(self.allowed("192.0.2.1", ALICE))
        self.reactor.advance(20)
        self.assertTrue(self.allowed("192.0.2.1", ALICE))
        self.assertFalse(self.allowed("192.0.2.1", ALICE))

    def test_refusal_says_which_limit_and_when(self) -> None:
        limiter = self.server.get_rate_limiter()
        for _ in range(3):
            self.get_success(limiter.check_password("192.0.2.1", ALICE))
        failure = self.refusal(limiter.check_password("192.0.2.1", ALICE))
        self.assertEqual(failure.limit, "login.per_ip")
        self.assertEqual(failure.code, 429)
        self.assertAlmostEqual(failure.retry_after, 20.0)

    @override_config({"rate_limiting": {"login": {"per_account": {"burst": 2, "per_second": 0.5}}}})
    def test_configured_per_account_limit(self) -> None:
        self.assertTrue(self.allowed("192.0.2.1", ALICE))
        self.assertTrue(self.allowed("192.0.2.2", ALICE))
        failure = self.refusal(self.server.get_rate_limiter().check_password("192.0.2.3", ALICE))
        self.assertEqual(failure.limit, "login.per_account")
        self.reactor.advance(2)
        self.assertTrue(self.allowed("192.0.2.4", ALICE))

    def test_unknown_client_ip_shares_one_key(self) -> None:
        for _ in range(3):
            self.assertTrue(self.allowed(None, ALICE))
        self.assertFalse(self.allowed(None, BOB))

    def test_email_limits_ignore_case(self) -> None:
        limiter = self.server.get_rate_limiter()
        # account_recovery.per_address: 3, then 1 an hour.
        self.get_success(limiter.check_account_recovery("192.0.2.1", "Alice@Example.com"))
        self.get_success(limiter.check_account_recovery("192.0.2.2", "alice@example.com"))
        self.get_success(limiter.check_account_recovery("192.0.2.3", "ALICE@EXAMPLE.COM"))
        failure = self.refusal(limiter.check_account_recovery("192.0.2.4", "alice@example.COM"))
        self.assertEqual(failure.limit, "account_recovery.per_address")

    def test_concurrent_checks_allow_exactly_the_burst(self) -> None:
        # Twenty checks in flight at once from one IP: three pass (the burst), whichever the
        # engine (on PostgreSQL every statement queues on the one row).
        limiter = self.server.get_rate_limiter()
        ds = [defer.ensureDeferred(limiter.check_registration("192.0.2.9")) for _ in range(20)]
        results: list[bool] = []
        for d in ds:
            d.addCallbacks(
                lambda _: results.append(True), lambda f: results.append(not f.trap(RateLimitExceededError))
            )
        self.reactor.advance(0)
        self.assertEqual(len(results), 20)
        self.assertEqual(results.count(True), 3)

    def test_idle_keys_are_forgotten(self) -> None:
        gcra = self.server.get_rate_limiter().make_limit("test", burst=2, per_second=1.0)

        def count() -> int:
            if isinstance(gcra, KeyedGcra):
                return len(gcra)
            return self.get_success(self.server.get_stores().rate_limits.count())

        self.get_success(gcra.check("a"))
        self.get_success(gcra.check("b"))
        self.assertEqual(count(), 2)
        self.reactor.advance(61)
        self.get_success(gcra.check("c"))
        # a and b are back to a full burst, so their state was dropped.
        self.assertEqual(count(), 1)
        self.get_success(gcra.check("a"))
        self.get_success(gcra.check("a"))
        self.get_failure(gcra.check("a"), RateLimitExceededError)


class SharedRateLimitTests(MasTestCase):
    """What the database holds, and checks racing on real connections from several threads."""

    def test_keys_are_not_stored_in_clear(self) -> None:
        limiter = self.server.get_rate_limiter()
        self.get_success(limiter.check_account_recovery("192.0.2.77", "carol@example.com"))
        if self.test_db.engine_name == "sqlite":
            # One process: the state is in memory and the table does not exist.
            rows = self.get_success(
                self.db_pool.runInteraction("tables", _table_names)  # type: ignore[arg-type]
            )
            self.assertNotIn("rate_limits", rows)
            return
        dump = self.get_success(self.db_pool.runInteraction("dump", _dump_rate_limits))
        self.assertEqual(len(dump), 2)
        blob = b"".join(bytes(key) for _name, key, _tat in dump)
        self.assertNotIn(b"192.0.2.77", blob)
        self.assertNotIn(b"carol", blob)
        self.assertEqual(
            {name for name, _k, _t in dump}, {"account_recovery.per_ip", "account_recovery.per_address"}
        )

    def test_threads_on_their_own_connections_never_exceed_the_burst(self) -> None:
        if self.test_db.engine_name == "sqlite":
            # One process, one reactor thread: nothing to race; the in-memory limit is what
            # RateLimiterTests covers. Assert that this engine really is the in-memory one.
            self.assertFalse(self.server.get_rate_limiter().shared)
            return
        contenders, per_thread, burst = 8, 5, 7
        gcra = self.server.get_rate_limiter().make_limit("race", burst=burst, per_second=0.001)
        assert isinstance(gcra, SharedGcra)
        key_hash = gcra.key_hash("198.51.100.1")
        period = 1000 * 1_000_000_000
        tolerance = (burst - 1) * period
        now = round(self.clock.time() * 1_000_000_000)
        conns = []
        for _ in range(contenders):
            conn = self.db_pool.engine.connect()
            self.addCleanup(conn.close)
            conns.append(conn)
        barrier = threading.Barrier(contenders)
        allowed: list[int] = []
        errors: list[BaseException] = []

        def _contend(i: int) -> None:
            barrier.wait()
            try:
                for _ in range(per_thread):
                    wait = self.db_pool.new_transaction(
                        conns[i],
                        "race_take_cell",
                        [],
                        None,
                        _take_cell_txn,
                        ("race", key_hash, now, period, tolerance),
                        {},
                    )
                    if wait is None:
                        allowed.append(i)
            except BaseException as e:  # reported to the test thread
                errors.append(e)

        threads = [threading.Thread(target=_contend, args=(i,)) for i in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
            self.assertFalse(thread.is_alive(), "a contender hung")
        self.assertEqual(errors, [])
        # 40 attempts at the same instant: exactly the burst got through.
        self.assertEqual(len(allowed), burst)
        # And the stored TAT is exactly burst periods ahead: refusals changed nothing.
        dump = self.get_success(self.db_pool.runInteraction("dump", _dump_rate_limits))
        self.assertEqual([int(tat) for _n, _k, tat in dump], [now + burst * period])


def _dump_rate_limits(txn: Any) -> list[Any]:
    from mas_twisted.storage.stores.rate_limits import TABLE

    txn.execute(f"SELECT limit_name, key_hash, tat FROM {TABLE}")
    return list(txn.fetchall())


def _table_names(txn: Any) -> list[str]:
    txn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return [row[0] for row in txn.fetchall()]
