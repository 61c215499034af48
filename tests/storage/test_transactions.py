# SPDX-License-Identifier: AGPL-3.0-only
"""``run_txn`` and what the pool does around it: commit, rollback, dry runs, a connection
lost mid-transaction (rerun once on a new connection) or at commit (never rerun), the
health ping, and SQL logging that never shows bound values."""

from __future__ import annotations

import logging
import os
import sqlite3
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.trial import unittest

from mas_twisted.storage.database import DatabasePool, LoggingTransaction, run_txn
from mas_twisted.storage.engines import create_engine
from mas_twisted.storage.engines.sqlite import Sqlite3Engine
from tests.unittest import MasTestCase
from tests.utils import make_db_config, temp_dir


class _FakeAdbapiConnection:
    """What ``adbapi.Connection`` promises ``DatabasePool``: after a failure on a dead
    connection, ``rollback`` drops it from the pool and raises ``ConnectionLost``."""

    def __init__(self, pool: _FakeAdbapiPool, raw: sqlite3.Connection):
        self._pool = pool
        self._connection = raw

    def cursor(self) -> Any:
        if self._connection in self._pool.dead:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection.cursor()

    def commit(self) -> None:
        if self._pool.lose_at_commit:
            self._pool.lose_at_commit = False
            self._pool.dead.add(self._connection)
            raise sqlite3.OperationalError("server closed the connection unexpectedly")
        self._connection.commit()

    def rollback(self) -> None:
        if self._connection in self._pool.dead:
            # adbapi closes the connection it could not roll back (the server has
            # discarded its transaction), then raises.
            self._connection.close()
            raise adbapi.ConnectionLost()
        self._connection.rollback()


class _FakeAdbapiPool:
    """``runWithConnection`` on the calling thread, handing out one connection; ``connect``
    opens a new one, as adbapi does when ``DatabasePool`` replaces a lost connection."""

    def __init__(self, path: str):
        self.path = path
        self.dead: set[sqlite3.Connection] = set()
        self.opened: list[sqlite3.Connection] = []
        self.lose_at_commit = False
        self.connection = _FakeAdbapiConnection(self, self.connect())

    def connect(self) -> sqlite3.Connection:
        raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.1)
        self.opened.append(raw)
        return raw

    def runWithConnection(self, func: Any, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.maybeDeferred(func, self.connection, *args, **kwargs)

    def close(self) -> None:
        for raw in self.opened:
            raw.close()


class ConnectionLossTestCase(unittest.TestCase):
    def setUp(self) -> None:
        path = os.path.join(temp_dir(self), "loss.db")
        self.engine = Sqlite3Engine(make_db_config({"uri": "sqlite:///" + path}))
        setup = sqlite3.connect(path)
        setup.execute("CREATE TABLE t (x TEXT)")
        setup.commit()
        setup.close()
        self.adbapi_pool = _FakeAdbapiPool(path)
        self.addCleanup(self.adbapi_pool.close)
        self.pool = DatabasePool(self.engine, self.adbapi_pool)  # type: ignore[arg-type]
        self.calls = 0

    def rows(self) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.adbapi_pool.path)
        try:
            return conn.execute("SELECT x FROM t ORDER BY x").fetchall()
        finally:
            conn.close()

    def run_interaction(self, func: Any) -> defer.Deferred[Any]:
        return defer.ensureDeferred(self.pool.runInteraction("lossy", func))

    def test_lost_before_commit_reruns_once_on_a_new_connection(self) -> None:
        first_raw = self.adbapi_pool.connection._connection

        def _txn(txn: LoggingTransaction) -> str:
            self.calls += 1
            txn.execute("INSERT INTO t (x) VALUES (?)", (f"attempt {self.calls}",))
            if self.calls == 1:
                # The server went away while the transaction ran: nothing was committed.
                self.adbapi_pool.dead.add(first_raw)
                raise sqlite3.OperationalError("server closed the connection unexpectedly")
            return "done"

        with self.assertLogs("mas_twisted.storage.database", "WARNING") as logs:
            result = self.successResultOf(self.run_interaction(_txn))
        self.assertEqual(result, "done")
        self.assertEqual(self.calls, 2)
        self.assertIn("retrying on a new connection", logs.output[0])
        # The second attempt ran on a new connection and committed there, alone.
        self.assertIsNot(self.adbapi_pool.connection._connection, first_raw)
        self.assertEqual(len(self.adbapi_pool.opened), 2)
        self.assertEqual(self.rows(), [("attempt 2",)])

    def test_lost_twice_gives_up(self) -> None:
        def _txn(txn: LoggingTransaction) -> None:
            self.calls += 1
            self.adbapi_pool.dead.add(self.adbapi_pool.connection._connection)
            raise sqlite3.OperationalError("server closed the connection unexpectedly")

        with self.assertLogs("mas_twisted.storage.database", "WARNING"):
            self.failureResultOf(self.run_interaction(_txn), adbapi.ConnectionLost)
        self.assertEqual(self.calls, 2)

    def test_lost_at_commit_is_never_rerun(self) -> None:
        def _txn(txn: LoggingTransaction) -> None:
            self.calls += 1
            txn.execute("INSERT INTO t (x) VALUES (?)", ("once",))

        self.adbapi_pool.lose_at_commit = True
        failure = self.failureResultOf(self.run_interaction(_txn), sqlite3.OperationalError)
        # The commit may have reached the server: the caller hears of the commit's error,
        # and the transaction function ran exactly once.
        self.assertIn("server closed the connection", str(failure.value))
        self.assertEqual(self.calls, 1)
        self.assertEqual(len(self.adbapi_pool.opened), 1)

    def test_after_callbacks_run_only_for_the_attempt_that_committed(self) -> None:
        calls: list[int] = []

        def _txn(txn: LoggingTransaction) -> None:
            self.calls += 1
            txn.call_after(calls.append, self.calls)
            if self.calls == 1:
                self.adbapi_pool.dead.add(self.adbapi_pool.connection._connection)
                raise sqlite3.OperationalError("server closed the connection unexpectedly")

        with self.assertLogs("mas_twisted.storage.database", "WARNING"):
            self.successResultOf(self.run_interaction(_txn))
        self.assertEqual(calls, [2])


class RunTxnTestCase(unittest.TestCase):
    """The one blocking transaction helper the pool, the migrations and config sync share."""

    def setUp(self) -> None:
        path = os.path.join(temp_dir(self), "txn.db")
        self.db_config = make_db_config({"uri": "sqlite:///" + path})
        self.engine = create_engine(self.db_config)
        self.conn = self.engine.connect()
        self.addCleanup(self.conn.close)
        self.conn.execute("CREATE TABLE t (x TEXT)")

    def count(self) -> int:
        other = self.engine.connect()
        try:
            return other.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        finally:
            other.close()

    def insert(self, txn: LoggingTransaction) -> str:
        txn.execute("INSERT INTO t (x) VALUES (?)", ("a",))
        return "inserted"

    def test_commits(self) -> None:
        self.assertEqual(run_txn(self.conn, self.engine, "insert", self.insert), "inserted")
        self.assertEqual(self.count(), 1)

    def test_rolls_back_on_error(self) -> None:
        def _fails(txn: LoggingTransaction) -> None:
            self.insert(txn)
            raise ValueError("no")

        with self.assertRaises(ValueError):
            run_txn(self.conn, self.engine, "fails", _fails)
        self.assertEqual(self.count(), 0)
        # The connection is usable again.
        run_txn(self.conn, self.engine, "insert", self.insert)
        self.assertEqual(self.count(), 1)

    def test_dry_run_rolls_back_and_returns(self) -> None:
        self.assertEqual(run_txn(self.conn, self.engine, "dry", self.insert, rollback=True), "inserted")
        self.assertEqual(self.count(), 0)

    def test_write_takes_the_lock_up_front(self) -> None:
        other = self.engine.connect()
        self.addCleanup(other.close)
        other.execute("PRAGMA busy_timeout = 0")

        def _holds(txn: LoggingTransaction) -> None:
            # BEGIN IMMEDIATE: another writer is locked out before this one writes.
            with self.assertRaises(sqlite3.OperationalError):
                other.execute("BEGIN IMMEDIATE")

        run_txn(self.conn, self.engine, "write", _holds, write=True)


class PingTestCase(MasTestCase):
    def test_ping(self) -> None:
        self.get_success(self.db_pool.ping())

    def test_ping_of_an_unreachable_database_fails(self) -> None:
        pool = self.test_db.make_pool(make_db_config({"uri": "sqlite:////proc/mas.db"}), self.reactor)
        self.get_failure(pool.ping(), sqlite3.OperationalError)


class SqlLoggingTestCase(MasTestCase):
    def test_bound_values_are_never_logged(self) -> None:
        secret = "mat_Sup3rS3cretTokenValue"
        with self.assertLogs("mas_twisted.storage", logging.DEBUG) as logs:
            self.get_success(
                self.db_pool.execute(
                    "find_client", "SELECT oauth2_client_id FROM oauth2_clients WHERE client_name = ?", secret
                )
            )
        statements = [line for line in logs.output if "[SQL]" in line and "SELECT" in line]
        self.assertEqual(len(statements), 1, logs.output)
        self.assertIn("WHERE client_name = ?", statements[0])
        for line in logs.output:
            self.assertNotIn(secret, line)
