# SPDX-License-Identifier: AGPL-3.0-only
"""``DatabasePool``: CRUD helpers, transactions, retries and cancellation, on the test engine."""

from __future__ import annotations

import contextvars
import os
import sqlite3
import threading
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from mas_twisted.api.errors import RowsAffectedError
from mas_twisted.storage.database import (
    MAX_TXN_RETRIES,
    DatabasePool,
    LoggingTransaction,
    make_database_pool,
    make_in_list_sql_clause,
)
from mas_twisted.storage.engines.postgres import PostgresEngine
from mas_twisted.storage.engines.sqlite import Sqlite3Engine
from mas_twisted.storage.prepare_database import prepare_database
from tests.unittest import MasTestCase
from tests.utils import EmptyDatabase, make_db_config, temp_dir

ALICE = "01HZZZZZZZZZZZZZZZZZZZZZA1"
BOB = "01HZZZZZZZZZZZZZZZZZZZZZB2"
CAROL = "01HZZZZZZZZZZZZZZZZZZZZZC3"

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="-")


def client_row(client_id: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    row = {
        "oauth2_client_id": client_id,
        "grant_type_authorization_code": True,
        "grant_type_refresh_token": False,
        "client_name": name,
    }
    row.update(extra)
    return row


class SimpleHelpersTestCase(MasTestCase):
    def test_insert_then_select_one(self) -> None:
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(ALICE, "Alice")))
        row = self.get_success(
            self.db_pool.simple_select_one(
                "oauth2_clients",
                {"oauth2_client_id": ALICE},
                ("client_name", "grant_type_authorization_code"),
            )
        )
        self.assertEqual(row[0], "Alice")
        self.assertIs(bool(row[1]), True)
        self.assertIsInstance(row, tuple)

    def test_select_one_missing(self) -> None:
        row = self.get_success(
            self.db_pool.simple_select_one(
                "oauth2_clients", {"oauth2_client_id": ALICE}, ("client_name",), allow_none=True
            )
        )
        self.assertIsNone(row)
        failure = self.get_failure(
            self.db_pool.simple_select_one("oauth2_clients", {"oauth2_client_id": ALICE}, ("client_name",)),
            RowsAffectedError,
        )
        self.assertEqual((failure.value.expected, failure.value.actual), (1, 0))

    def test_select_one_more_than_one(self) -> None:
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(ALICE, "same")))
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(BOB, "same")))
        failure = self.get_failure(
            self.db_pool.simple_select_one("oauth2_clients", {"client_name": "same"}, ("oauth2_client_id",)),
            RowsAffectedError,
        )
        self.assertEqual(failure.value.actual, 2)

    def test_select_onecol_list_and_many(self) -> None:
        for client_id, name in ((CAROL, "c"), (ALICE, "a"), (BOB, None)):
            self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(client_id, name)))

        names = self.get_success(self.db_pool.simple_select_onecol("oauth2_clients", {}, "client_name"))
        self.assertCountEqual(names, ["a", "c", None])

        # A None value matches NULL.
        nameless = self.get_success(
            self.db_pool.simple_select_onecol("oauth2_clients", {"client_name": None}, "oauth2_client_id")
        )
        self.assertEqual(nameless, [BOB])

        rows = self.get_success(
            self.db_pool.simple_select_list(
                "oauth2_clients", None, ("oauth2_client_id", "client_name"), order_by="oauth2_client_id"
            )
        )
        self.assertEqual(rows, [(ALICE, "a"), (BOB, None), (CAROL, "c")])

        some = self.get_success(
            self.db_pool.simple_select_many(
                "oauth2_clients",
                "oauth2_client_id",
                [ALICE, CAROL, "01HZZZZZZZZZZZZZZZZZZZZZZZ"],
                ("client_name",),
            )
        )
        self.assertCountEqual(some, [("a",), ("c",)])
        none = self.get_success(
            self.db_pool.simple_select_many("oauth2_clients", "oauth2_client_id", [], ("client_name",))
        )
        self.assertEqual(none, [])

    def test_in_list_clause_runs_on_the_engine(self) -> None:
        for client_id in (ALICE, BOB, CAROL):
            self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(client_id)))

        def _txn(txn: LoggingTransaction, values: list[str]) -> list[str]:
            clause, args = make_in_list_sql_clause(txn.engine, "oauth2_client_id", values)
            txn.execute(
                f"SELECT oauth2_client_id FROM oauth2_clients WHERE {clause} ORDER BY oauth2_client_id", args
            )
            return [r[0] for r in txn.fetchall()]

        self.assertEqual(
            self.get_success(self.db_pool.runInteraction("in_list", _txn, [BOB, CAROL])), [BOB, CAROL]
        )
        self.assertEqual(self.get_success(self.db_pool.runInteraction("in_list", _txn, [])), [])

    def test_update_and_update_one(self) -> None:
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(ALICE, "x")))
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(BOB, "x")))

        count = self.get_success(
            self.db_pool.simple_update("oauth2_clients", {"client_name": "x"}, {"logo_uri": "l"})
        )
        self.assertEqual(count, 2)

        self.get_success(
            self.db_pool.simple_update_one(
                "oauth2_clients", {"oauth2_client_id": ALICE}, {"client_name": "Alice"}
            )
        )
        self.assertEqual(
            self.get_success(
                self.db_pool.simple_select_one_onecol(
                    "oauth2_clients", {"oauth2_client_id": ALICE}, "client_name"
                )
            ),
            "Alice",
        )

        # No row: an error, nothing written.
        failure = self.get_failure(
            self.db_pool.simple_update_one(
                "oauth2_clients", {"oauth2_client_id": CAROL}, {"client_name": "C"}
            ),
            RowsAffectedError,
        )
        self.assertEqual(failure.value.actual, 0)

        # Two rows: an error, and both rows keep their value (the update is rolled back).
        self.get_success(self.db_pool.simple_update("oauth2_clients", {}, {"client_name": "same"}))
        failure = self.get_failure(
            self.db_pool.simple_update_one(
                "oauth2_clients", {"client_name": "same"}, {"client_name": "changed"}
            ),
            RowsAffectedError,
        )
        self.assertEqual(failure.value.actual, 2)
        names = self.get_success(self.db_pool.simple_select_onecol("oauth2_clients", {}, "client_name"))
        self.assertEqual(names, ["same", "same"])

    def test_upsert(self) -> None:
        self.get_success(
            self.db_pool.simple_upsert(
                "oauth2_clients",
                {"oauth2_client_id": ALICE},
                {
                    "client_name": "first",
                    "grant_type_authorization_code": True,
                    "grant_type_refresh_token": True,
                },
                insertion_values={"created_at": 1000},
            )
        )
        self.get_success(
            self.db_pool.simple_upsert(
                "oauth2_clients",
                {"oauth2_client_id": ALICE},
                {
                    "client_name": "second",
                    "grant_type_authorization_code": True,
                    "grant_type_refresh_token": True,
                },
                insertion_values={"created_at": 2000},
            )
        )
        rows = self.get_success(
            self.db_pool.simple_select_list(
                "oauth2_clients", {}, ("oauth2_client_id", "client_name", "created_at")
            )
        )
        # Updated in place; the insertion-only value is from the first call.
        self.assertEqual(rows, [(ALICE, "second", 1000)])

    def test_delete(self) -> None:
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(ALICE, "x")))
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(BOB, "x")))
        self.assertEqual(
            self.get_success(self.db_pool.simple_delete("oauth2_clients", {"client_name": "x"})), 2
        )
        self.assertEqual(
            self.get_success(self.db_pool.simple_delete("oauth2_clients", {"client_name": "x"})), 0
        )
        self.get_failure(self.db_pool.simple_delete("oauth2_clients", {}), ValueError)
        self.get_failure(
            self.db_pool.simple_delete_one("oauth2_clients", {"oauth2_client_id": ALICE}), RowsAffectedError
        )

    def test_insert_many_and_execute(self) -> None:
        self.get_success(
            self.db_pool.simple_insert_many(
                "oauth2_clients",
                ("oauth2_client_id", "grant_type_authorization_code", "grant_type_refresh_token"),
                [(ALICE, True, False), (BOB, False, True)],
            )
        )
        rows = self.get_success(
            self.db_pool.execute(
                "count_clients",
                "SELECT COUNT(*) FROM oauth2_clients WHERE grant_type_refresh_token = ?",
                True,
            )
        )
        self.assertEqual(rows, [(1,)])

    def test_sql_is_logged_on_one_line_with_desc(self) -> None:
        with self.assertLogs("mas_twisted.storage.SQL", "DEBUG") as logs:
            self.get_success(
                self.db_pool.execute(
                    "find_by_name",
                    "SELECT oauth2_client_id\n   FROM oauth2_clients\n WHERE client_name = ?",
                    "n",
                )
            )
        statements = [line for line in logs.output if "[SQL]" in line and "SELECT" in line]
        self.assertEqual(len(statements), 1, logs.output)
        self.assertIn("{find_by_name-", statements[0])
        self.assertIn("SELECT oauth2_client_id FROM oauth2_clients WHERE client_name = ?", statements[0])


class ParamStyleTestCase(MasTestCase):
    def test_postgres_rewrites_placeholders(self) -> None:
        engine = PostgresEngine(make_db_config({"uri": "postgresql://"}))
        self.assertEqual(engine.convert_param_style("a = ? AND b IN (?, ?)"), "a = %s AND b IN (%s, %s)")
        self.assertEqual(engine.in_list_clause("c", ["x", "y"]), ("c = ANY(?)", [["x", "y"]]))

    def test_sqlite_keeps_placeholders(self) -> None:
        engine = Sqlite3Engine(make_db_config({"uri": "sqlite:///:memory:"}))
        self.assertEqual(engine.convert_param_style("a = ? AND b = ?"), "a = ? AND b = ?")
        self.assertEqual(engine.in_list_clause("c", ["x", "y"]), ("c IN (?, ?)", ["x", "y"]))
        self.assertEqual(engine.in_list_clause("c", []), ("0 = 1", []))

    def test_deadlock_detection(self) -> None:
        sqlite_engine = Sqlite3Engine(make_db_config({"uri": "sqlite:///:memory:"}))
        self.assertTrue(sqlite_engine.is_deadlock(sqlite3.OperationalError("database is locked")))
        self.assertFalse(sqlite_engine.is_deadlock(sqlite3.OperationalError("no such table: x")))
        self.assertFalse(sqlite_engine.is_deadlock(ValueError("database is locked")))

    def test_split_keys_become_libpq_arguments(self) -> None:
        engine = PostgresEngine(
            make_db_config(
                {"host": "db", "port": 5433, "username": "mas", "password": "pw", "database": "masdb"}
            )
        )
        args, kwargs = engine.connect_args()
        self.assertEqual(args, ())
        self.assertEqual(
            {k: kwargs[k] for k in ("host", "port", "user", "password", "dbname", "connect_timeout")},
            {
                "host": "db",
                "port": 5433,
                "user": "mas",
                "password": "pw",
                "dbname": "masdb",
                "connect_timeout": 30,
            },
        )
        socket_engine = PostgresEngine(make_db_config({"socket": "/run/postgresql"}))
        self.assertEqual(socket_engine.connect_args()[1]["host"], "/run/postgresql")


class TransactionTestCase(MasTestCase):
    def _count(self) -> int:
        rows = self.get_success(self.db_pool.execute("count", "SELECT COUNT(*) FROM oauth2_clients"))
        return int(rows[0][0])

    def test_failing_interaction_rolls_back(self) -> None:
        def _txn(txn: LoggingTransaction) -> None:
            self.db_pool.simple_insert_txn(txn, "oauth2_clients", client_row(ALICE))
            raise ValueError("boom")

        self.get_failure(self.db_pool.runInteraction("failing", _txn), ValueError)
        self.assertEqual(self._count(), 0)

        # The connection is usable afterwards.
        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(BOB)))
        self.assertEqual(self._count(), 1)

    def test_constraint_violation_rolls_back_the_whole_transaction(self) -> None:
        def _txn(txn: LoggingTransaction) -> None:
            self.db_pool.simple_insert_txn(txn, "oauth2_clients", client_row(ALICE))
            self.db_pool.simple_insert_txn(txn, "oauth2_clients", client_row(ALICE))

        failure = self.get_failure(self.db_pool.runInteraction("duplicate", _txn), Exception)
        self.assertTrue(self.db_pool.engine.is_integrity_error(failure.value), failure)
        self.assertEqual(self._count(), 0)

    def test_cancellation_waits_for_the_transaction(self) -> None:
        d = defer.ensureDeferred(
            self.db_pool.simple_insert("oauth2_clients", client_row(ALICE), desc="cancelled")
        )
        self.assertNoResult(d)
        d.cancel()
        # The database work has not run yet, so the caller is not told anything yet either.
        self.assertNoResult(d)
        self.reactor.advance(0)
        self.failureResultOf(d, defer.CancelledError)
        # The transaction committed regardless.
        self.assertEqual(self._count(), 1)

    def test_call_after_runs_only_after_commit(self) -> None:
        calls: list[str] = []

        def _ok(txn: LoggingTransaction) -> None:
            txn.call_after(calls.append, "committed")
            self.db_pool.simple_insert_txn(txn, "oauth2_clients", client_row(ALICE))
            self.assertEqual(calls, [])

        def _fails(txn: LoggingTransaction) -> None:
            txn.call_after(calls.append, "rolled back")
            raise ValueError("no")

        self.get_success(self.db_pool.runInteraction("ok", _ok))
        self.get_failure(self.db_pool.runInteraction("fails", _fails), ValueError)
        self.assertEqual(calls, ["committed"])


class ConnectionRecyclingTestCase(MasTestCase):
    """``max_lifetime`` and ``idle_timeout`` replace pooled PostgreSQL connections before use."""

    def _pool(self, **settings: int) -> DatabasePool:
        pool = self.test_db.make_pool(
            make_db_config({**self.test_db.config_section, **settings}), self.reactor
        )
        pool._monotonic = self.reactor.seconds  # the fake clock drives connection ages
        return pool

    def _backend(self, pool: DatabasePool) -> Any:
        def _txn(txn: LoggingTransaction) -> Any:
            if txn.engine.name == "postgres":
                txn.execute("SELECT pg_backend_pid()")
                return txn.fetchone()[0]
            return txn.txn.connection

        return self.get_success(pool.runInteraction("backend", _txn))

    def test_max_lifetime(self) -> None:
        pool = self._pool(max_lifetime=10)
        first = self._backend(pool)
        self.reactor.advance(5)
        self.assertEqual(self._backend(pool), first)
        self.reactor.advance(6)
        if self.test_db.engine_name == "postgres":
            self.assertNotEqual(self._backend(pool), first)
        else:
            # One SQLite connection for the pool's whole life (an in-memory database would be lost).
            self.assertIs(self._backend(pool), first)

    def test_idle_timeout(self) -> None:
        pool = self._pool(idle_timeout=5)
        first = self._backend(pool)
        for _ in range(3):
            self.reactor.advance(4)
            self.assertEqual(self._backend(pool), first)
        self.reactor.advance(6)
        if self.test_db.engine_name == "postgres":
            self.assertNotEqual(self._backend(pool), first)
        else:
            self.assertIs(self._backend(pool), first)


class ConnectionLossTestCase(MasTestCase):
    def test_transaction_reruns_on_a_new_connection(self) -> None:
        if self.test_db.engine_name == "sqlite":
            # SQLite has no server to lose, and reconnecting would lose an in-memory database.
            self.assertFalse(self.db_pool._db_pool.reconnect)
            return
        import psycopg2

        pid = self.get_success(self.db_pool.execute("backend", "SELECT pg_backend_pid()"))[0][0]
        args, kwargs = self.db_pool.engine.connect_args()
        admin = psycopg2.connect(*args, **kwargs)
        admin.autocommit = True
        self.addCleanup(admin.close)
        cur = admin.cursor()
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            cur.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cur.fetchone()[0] == 0:
                break
            threading.Event().wait(0.01)

        self.get_success(self.db_pool.simple_insert("oauth2_clients", client_row(ALICE, "after")))
        new_pid = self.get_success(self.db_pool.execute("backend", "SELECT pg_backend_pid()"))[0][0]
        self.assertNotEqual(new_pid, pid)
        self.assertEqual(
            self.get_success(self.db_pool.simple_select_onecol("oauth2_clients", {}, "client_name")),
            ["after"],
        )
        # adbapi logs the failed rollback on the dead connection.
        self.flushLoggedErrors()


class RetryTestCase(MasTestCase):
    """A real serialization failure (PostgreSQL) or a locked database (SQLite), then a retry."""

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        if self.test_db.engine_name == "postgres":
            import psycopg2

            args, kwargs = self.db_pool.engine.connect_args()
            self.other = psycopg2.connect(*args, **kwargs)
            self.other.autocommit = True
            self.pool = self.db_pool
            self.get_success(self.pool.simple_insert("oauth2_clients", client_row(ALICE, "initial")))
        else:
            # Locking needs a file that two connections share; a zero busy timeout makes
            # the second writer fail at once instead of waiting.
            path = os.path.join(temp_dir(self), "locking.db")
            db_config = make_db_config({"uri": "sqlite:///" + os.path.abspath(path), "connect_timeout": 0})
            prepare_database(db_config)
            self.pool = self.test_db.make_pool(db_config, self.reactor)
            self.other = sqlite3.connect(os.path.abspath(path), isolation_level=None)
            self.get_success(self.pool.simple_insert("oauth2_clients", client_row(ALICE, "initial")))
        self.addCleanup(self.other.close)

    def _conflicting_update(self, txn: LoggingTransaction, conflict: bool) -> None:
        if self.test_db.engine_name == "postgres":
            # Take the snapshot, let another connection change the row, then write it.
            txn.execute("SELECT client_name FROM oauth2_clients WHERE oauth2_client_id = ?", (ALICE,))
            txn.fetchall()
            if conflict:
                self.other.cursor().execute(
                    "UPDATE oauth2_clients SET client_name = 'other' WHERE oauth2_client_id = %s", (ALICE,)
                )
            txn.execute(
                "UPDATE oauth2_clients SET client_name = ? WHERE oauth2_client_id = ?", ("mine", ALICE)
            )
        else:
            if conflict:
                self.other.execute("BEGIN IMMEDIATE")
                try:
                    txn.execute(
                        "UPDATE oauth2_clients SET client_name = ? WHERE oauth2_client_id = ?",
                        ("mine", ALICE),
                    )
                finally:
                    self.other.execute("ROLLBACK")
            else:
                txn.execute(
                    "UPDATE oauth2_clients SET client_name = ? WHERE oauth2_client_id = ?", ("mine", ALICE)
                )

    def test_retries_after_a_serialization_failure(self) -> None:
        attempts: list[int] = []

        def _txn(txn: LoggingTransaction) -> int:
            attempts.append(1)
            self._conflicting_update(txn, conflict=len(attempts) <= 2)
            return len(attempts)

        result = self.get_success(
            self.pool.runInteraction("retried", _txn, isolation_level="repeatable read")
        )
        self.assertEqual(result, 3)
        name = self.get_success(
            self.pool.simple_select_one_onecol("oauth2_clients", {"oauth2_client_id": ALICE}, "client_name")
        )
        self.assertEqual(name, "mine")

    def test_gives_up_after_the_retries(self) -> None:
        attempts: list[int] = []

        def _txn(txn: LoggingTransaction) -> None:
            attempts.append(1)
            self._conflicting_update(txn, conflict=True)

        failure = self.get_failure(
            self.pool.runInteraction("hopeless", _txn, isolation_level="serializable"), Exception
        )
        self.assertTrue(self.pool.engine.is_deadlock(failure.value), failure)
        self.assertEqual(len(attempts), MAX_TXN_RETRIES + 1)


class RealThreadPoolTestCase(unittest.TestCase):
    """``make_database_pool`` as the server builds it: adbapi threads on the global reactor."""

    async def _exercise(self, pool: DatabasePool) -> tuple[list[Any], str]:
        await pool.simple_insert("oauth2_clients", client_row(ALICE, "threaded"))
        rows = await pool.simple_select_list("oauth2_clients", None, ("oauth2_client_id", "client_name"))

        def _read_context(txn: LoggingTransaction) -> str:
            return REQUEST_ID.get()

        REQUEST_ID.set("req-42")
        seen = await pool.runInteraction("read_context", _read_context)
        return rows, seen

    def test_pool_on_threads(self) -> defer.Deferred[None]:
        from twisted.internet import reactor

        db = EmptyDatabase(temp_dir(self))
        self.addCleanup(db.cleanup)
        prepare_database(db.db_config)
        pool = make_database_pool(db.db_config, reactor)
        self.addCleanup(pool.close)
        main_thread = threading.get_ident()

        def _thread_of(txn: LoggingTransaction) -> int:
            return threading.get_ident()

        async def _run() -> None:
            rows, seen = await self._exercise(pool)
            self.assertEqual(rows, [(ALICE, "threaded")])
            # The caller's context variables reach the pool thread.
            self.assertEqual(seen, "req-42")
            self.assertNotEqual(await pool.runInteraction("thread_of", _thread_of), main_thread)

        return defer.ensureDeferred(_run())
