# SPDX-License-Identifier: AGPL-3.0-only
"""Concurrent exchanges and refreshes on real connections: exactly one request wins.

Each test runs the stores' transaction functions on separate database connections from
separate threads, the way the server's connection pool does under load. On PostgreSQL
(``MAS_TEST_POSTGRES_DSN``) the loser's conditional ``UPDATE`` waits on the winner's row
lock and then matches nothing; on SQLite (a file shared by the connections) it waits for
the write lock. Either way nothing of the loser is written.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.prepare_database import prepare_database
from mas_twisted.storage.stores.authorization_grants import exchange_authorization_grant_txn
from mas_twisted.storage.stores.device_code_grants import exchange_device_code_grant_txn
from mas_twisted.storage.stores.refresh_tokens import RaceLostError, rotate_refresh_token_txn
from mas_twisted.types.oauth2 import AuthorizationGrant, DeviceCodeGrant, RefreshToken
from tests.storage._base import API_SCOPE, OAuth2StoreTestCase
from tests.utils import make_db_config, temp_dir

CONTENDERS = 6


class RaceTestCase(OAuth2StoreTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        if self.test_db.engine_name == "sqlite":
            # In-memory databases are private to a connection: race on a shared file instead.
            path = os.path.abspath(os.path.join(temp_dir(self), "race.db"))
            db_config = make_db_config({"uri": "sqlite:///" + path, "connect_timeout": 10})
            prepare_database(db_config)
            self.db_pool = self.test_db.make_pool(db_config, self.reactor)
            server._db_pool = self.db_pool
        super().prepare(reactor, clock, server)

    # -- connections and threads ------------------------------------------------------------
    def connect(self) -> Any:
        conn = self.db_pool.engine.connect()
        self.addCleanup(conn.close)
        return conn

    def run_txn(self, conn: Any, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func`` in one transaction on ``conn`` as the pool does (with its retries)."""
        return self.db_pool.new_transaction(conn, func.__name__, [], None, func, args, {})

    def race(self, attempts: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Start every attempt at once, each on its own connection; their results (or exceptions)."""
        conns = [self.connect() for _ in attempts]
        barrier = threading.Barrier(len(attempts))
        results: list[Any] = [None] * len(attempts)

        def _run(i: int) -> None:
            func, args = attempts[i]
            barrier.wait()
            try:
                results[i] = self.run_txn(conns[i], func, *args)
            except Exception as e:  # reported to the test thread
                results[i] = e

        threads = [threading.Thread(target=_run, args=(i,)) for i in range(len(attempts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
            self.assertFalse(thread.is_alive(), "a contender hung")
        return results

    def wait_until_blocked(self, conn: Any, thread: threading.Thread) -> None:
        """Wait until ``conn``'s transaction waits for a lock (PostgreSQL), or a while (SQLite)."""
        if self.test_db.engine_name != "postgres":
            time.sleep(0.3)
            self.assertTrue(thread.is_alive(), "the second transaction did not wait for the first")
            return
        pid = conn.get_backend_pid()
        admin = self.connect()
        admin.autocommit = True
        cur = admin.cursor()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            row = cur.fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)
        self.fail("the second transaction never waited for the first one's row lock")

    def interleave(
        self,
        first: tuple[Callable[..., Any], tuple[Any, ...]],
        second: tuple[Callable[..., Any], tuple[Any, ...]],
    ) -> tuple[Any, Any]:
        """Run ``first`` up to its commit, start ``second`` (which must block), then commit ``first``."""
        conn1, conn2 = self.connect(), self.connect()
        engine = self.db_pool.engine
        cursor = conn1.cursor()
        txn = LoggingTransaction(cursor, "first", engine)
        engine.begin(txn)
        first_result = first[0](txn, *first[1])
        outcome: list[Any] = []

        def _second() -> None:
            try:
                outcome.append(self.run_txn(conn2, second[0], *second[1]))
            except Exception as e:
                outcome.append(e)

        thread = threading.Thread(target=_second)
        thread.start()
        self.wait_until_blocked(conn2, thread)
        conn1.commit()
        cursor.close()
        thread.join(30)
        self.assertFalse(thread.is_alive(), "the second transaction hung")
        return first_result, outcome[0]

    # -- fixtures ---------------------------------------------------------------------------
    def fulfilled_grant(self) -> AuthorizationGrant:
        grant = AuthorizationGrant(
            id=self.new_id(),
            client_id=self.client.id,
            redirect_uri="https://app.example.com/cb",
            scope=f"openid {API_SCOPE}",
            created_at=self.now(),
            response_mode="query",
            code=f"code{self._seq:028d}",
        )
        self.get_success(self.stores.authorization_grants.add_authorization_grant(grant))
        return self.get_success(
            self.stores.authorization_grants.fulfill_authorization_grant(grant, self.browser.id)
        )

    def grant_exchange(self, grant: AuthorizationGrant) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        session = self.make_session(scope=grant.scope_string)
        access, refresh = self.make_pair(session)
        return exchange_authorization_grant_txn, (
            grant.exchange(self.now(), session.id),
            session,
            access,
            refresh,
        )

    def rotation(
        self, old: RefreshToken, lost_successor: RefreshToken | None = None
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        access, refresh = self.make_pair(self.session(old.session_id))
        return rotate_refresh_token_txn, (old, access, refresh, lost_successor)

    def assert_token_pairs(self, sessions: int, access_tokens: int, refresh_tokens: int) -> None:
        self.assertEqual(
            (
                self.count("oauth2_sessions"),
                self.count("oauth2_access_tokens"),
                self.count("oauth2_refresh_tokens"),
            ),
            (sessions, access_tokens, refresh_tokens),
        )


class ConcurrentCodeExchangeTestCase(RaceTestCase):
    def test_blocked_exchange_loses_after_the_first_commits(self) -> None:
        grant = self.fulfilled_grant()
        first = self.grant_exchange(grant)
        second = self.grant_exchange(grant)
        won_first, won_second = self.interleave(first, second)
        self.assertIs(won_first, True)
        self.assertIs(won_second, False)
        self.assert_token_pairs(1, 1, 1)
        stored = self.get_success(self.stores.authorization_grants.get_authorization_grant(grant.id))
        self.assertEqual(stored.oauth2_session_id, first[1][1].id)  # type: ignore[union-attr]

    def test_exactly_one_of_many_concurrent_exchanges_wins(self) -> None:
        grant = self.fulfilled_grant()
        attempts = [self.grant_exchange(grant) for _ in range(CONTENDERS)]
        results = self.race(attempts)
        self.assertEqual(sorted(results, key=repr), [False] * (CONTENDERS - 1) + [True], results)
        winner = attempts[results.index(True)][1][1]
        self.assert_token_pairs(1, 1, 1)
        stored = self.get_success(self.stores.authorization_grants.get_authorization_grant(grant.id))
        self.assertEqual(stored.oauth2_session_id, winner.id)  # type: ignore[union-attr]
        self.assertEqual(self.session(winner.id), winner)


class ConcurrentDeviceCodeExchangeTestCase(RaceTestCase):
    def test_exactly_one_poll_gets_tokens(self) -> None:
        grant = DeviceCodeGrant(
            id=self.new_id(),
            client_id=self.client.id,
            scope="openid",
            user_code="RACE01",
            device_code="d" * 32,
            created_at=self.now(),
            expires_at=self.now() + 1_200_000,
        )
        self.get_success(self.stores.device_code_grants.add_device_code_grant(grant))
        fulfilled = self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser.id)
        )
        attempts = []
        for _ in range(CONTENDERS):
            session = self.make_session(scope="openid")
            access, refresh = self.make_pair(session)
            attempts.append(
                (
                    exchange_device_code_grant_txn,
                    (fulfilled.exchange(self.now(), session.id), session, access, refresh),
                )
            )
        results = self.race(attempts)
        self.assertEqual(results.count(True), 1, results)
        self.assertEqual(results.count(False), CONTENDERS - 1, results)
        self.assert_token_pairs(1, 1, 1)


class ConcurrentRefreshTestCase(RaceTestCase):
    def test_blocked_refresh_loses_after_the_first_commits(self) -> None:
        _, _, refresh = self.start_session()
        first = self.rotation(refresh)
        won_first, won_second = self.interleave(first, self.rotation(refresh))
        self.assertIs(won_first, True)
        self.assertIs(won_second, False)
        self.assert_token_pairs(1, 2, 2)
        self.assertEqual(self.refresh(refresh.id).next_refresh_token_id, first[1][2].id)  # type: ignore[union-attr]

    def test_exactly_one_of_many_concurrent_refreshes_wins(self) -> None:
        _, _, refresh = self.start_session()
        attempts = [self.rotation(refresh) for _ in range(CONTENDERS)]
        results = self.race(attempts)
        self.assertEqual(results.count(True), 1, results)
        self.assertEqual(results.count(False), CONTENDERS - 1, results)
        self.assert_token_pairs(1, 2, 2)
        winner_refresh = attempts[results.index(True)][1][2]
        self.assertTrue(self.refresh(winner_refresh.id).is_valid)  # type: ignore[union-attr]

    def test_double_refresh_against_a_normal_refresh_of_the_successor(self) -> None:
        # The client refreshed once (successor issued), then, at the same time, presents the old
        # token again (double refresh) and the successor (normal refresh): one of them wins.
        _, _, refresh = self.start_session()
        first = self.rotation(refresh)
        self.assertTrue(self.run_txn(self.connect(), first[0], *first[1]))
        successor = self.refresh(first[1][2].id)
        consumed = self.refresh(refresh.id)
        assert successor is not None and consumed is not None

        normal = self.rotation(successor)
        double = self.rotation(consumed, lost_successor=successor)
        won_normal, outcome = self.interleave(normal, double)
        self.assertIs(won_normal, True)
        # The double refresh found its successor consumed and rolled back.
        self.assertIsInstance(outcome, RaceLostError)
        self.assert_token_pairs(1, 3, 3)
        self.assertEqual(self.refresh(refresh.id).next_refresh_token_id, successor.id)  # type: ignore[union-attr]
        self.assertIsNone(self.refresh(double[1][2].id))
        self.assertTrue(self.refresh(normal[1][2].id).is_valid)  # type: ignore[union-attr]
