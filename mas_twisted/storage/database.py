# SPDX-License-Identifier: AGPL-3.0-only
"""``DatabasePool``: transactions on a thread pool, for PostgreSQL and SQLite.

A slim port of the pattern of Synapse's ``synapse/storage/database.py`` (STYLE.md §1.3,
§5.6) over :class:`twisted.enterprise.adbapi.ConnectionPool`:

- :meth:`DatabasePool.runInteraction` runs ``func(txn, *args)`` in a pool thread inside one
  transaction, commits it, or rolls it back when ``func`` raises. A serialization failure
  or deadlock (``engine.is_deadlock``) reruns ``func`` up to :data:`MAX_TXN_RETRIES` times,
  so a transaction function must not have side effects outside the database.
- The work is shielded from cancellation (:func:`delay_cancellation`): Klein cancels a
  handler's Deferred when the client disconnects, but the database thread carries on, so
  the caller only sees ``CancelledError`` once the transaction has committed or rolled back.
- :class:`LoggingTransaction` logs every statement on one line at DEBUG with the ``desc``
  of its transaction (never the bound values, which include tokens and password hashes)
  and turns our ``?`` placeholders into the driver's style.
- :func:`run_txn` is the one place that begins, commits and rolls back a transaction on a
  blocking connection: the pool's threads, the migrations and ``config sync`` all use it.
- ``simple_*`` helpers (each with a ``_txn`` twin) cover plain CRUD. Table and column names
  come from code, never from a request; values are always bound parameters.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    TypeVar,
)

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.python.failure import Failure

from mas_twisted import metrics
from mas_twisted.api.errors import RowsAffectedError
from mas_twisted.storage.engines import BaseEngine, create_engine
from mas_twisted.telemetry import tracing

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorCore

    from mas_twisted.config.database import DatabaseConfig

logger = logging.getLogger(__name__)
sql_logger = logging.getLogger("mas_twisted.storage.SQL")
transaction_logger = logging.getLogger("mas_twisted.storage.txn")

R = TypeVar("R")

#: How often a transaction is rerun after a serialization failure or deadlock.
MAX_TXN_RETRIES = 5

_txn_counter = itertools.count(1)

Row = tuple[Any, ...]


def delay_cancellation(deferred: defer.Deferred[R]) -> defer.Deferred[R]:
    """Wrap ``deferred`` so that cancelling the wrapper waits for ``deferred`` to finish.

    The wrapper then fails with :class:`~twisted.internet.defer.CancelledError`, but only
    after the original work is done; ``deferred`` itself is never cancelled, and its own
    result is dropped (a failure is logged).
    """

    def _cancel(wrapper: defer.Deferred[R]) -> None:
        wrapper.pause()
        wrapper.errback(Failure(defer.CancelledError()))

        def _resume(result: Any) -> None:
            if isinstance(result, Failure):
                logger.warning(
                    "Work finished with an error after its caller was cancelled: %s", result.getErrorMessage()
                )
            wrapper.unpause()

        deferred.addBoth(_resume)

    wrapper: defer.Deferred[R] = defer.Deferred(_cancel)

    def _forward(result: Any) -> Any:
        if wrapper.called:
            # Cancelled: _resume (added after us) deals with the result.
            return result
        if isinstance(result, Failure):
            wrapper.errback(result)
        else:
            wrapper.callback(result)
        return None

    deferred.addBoth(_forward)
    return wrapper


def one_line(sql: str) -> str:
    return " ".join(sql.split())


class LoggingTransaction:
    """A DB-API cursor that logs its statements and speaks the ``?`` parameter style.

    Transaction functions receive one of these; besides ``execute``/``fetch*``/``rowcount``
    it offers :meth:`call_after`, for work that must only happen once the transaction has
    committed (waking up a worker, say).
    """

    __slots__ = ("txn", "name", "engine", "_after_callbacks")

    def __init__(
        self,
        txn: Any,
        name: str,
        engine: BaseEngine,
        after_callbacks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] | None = None,
    ):
        self.txn = txn
        self.name = name
        self.engine = engine
        self._after_callbacks = after_callbacks if after_callbacks is not None else []

    @property
    def database_engine(self) -> BaseEngine:
        return self.engine

    def call_after(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the reactor thread after this transaction commits (never if it fails)."""
        self._after_callbacks.append((callback, args, kwargs))

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._do_execute(self.txn.execute, sql, tuple(args))

    def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        self._do_execute(self.txn.executemany, sql, [tuple(a) for a in args])

    def _do_execute(self, method: Callable[..., Any], sql: str, args: Any) -> None:
        converted = self.engine.convert_param_style(sql)
        if sql_logger.isEnabledFor(logging.DEBUG):
            # Never the bound values: they include tokens and password hashes.
            sql_logger.debug("[SQL] {%s} %s", self.name, one_line(sql))
        start = time.monotonic()
        try:
            if args:
                method(converted, args)
            else:
                # Without arguments psycopg2 leaves "%" alone, as SQLite does.
                method(converted)
        except Exception as e:
            sql_logger.debug("[SQL FAIL] {%s} %s", self.name, e)
            raise
        finally:
            if sql_logger.isEnabledFor(logging.DEBUG):
                sql_logger.debug("[SQL time] {%s} %.6f sec", self.name, time.monotonic() - start)

    def fetchone(self) -> Row | None:
        return self.txn.fetchone()

    def fetchall(self) -> list[Row]:
        return self.txn.fetchall()

    def fetchmany(self, size: int) -> list[Row]:
        return self.txn.fetchmany(size)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.txn)

    @property
    def rowcount(self) -> int:
        return self.txn.rowcount

    @property
    def description(self) -> Any:
        return self.txn.description

    @property
    def lastrowid(self) -> Any:
        return self.txn.lastrowid

    def close(self) -> None:
        self.txn.close()


def make_in_list_sql_clause(
    engine: BaseEngine, column: str, values: Collection[Any]
) -> tuple[str, list[Any]]:
    """``column`` matches one of ``values``: ``col = ANY(?)`` on PostgreSQL, ``col IN (?, …)`` on SQLite."""
    return engine.in_list_clause(column, values)


def _where(keyvalues: Mapping[str, Any]) -> tuple[str, list[Any]]:
    if not keyvalues:
        return "", []
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in keyvalues.items():
        if value is None:
            clauses.append(f"{column} IS NULL")
        else:
            clauses.append(f"{column} = ?")
            args.append(value)
    return " WHERE " + " AND ".join(clauses), args


def _rows(txn: LoggingTransaction) -> list[Row]:
    if txn.description is None:
        return []
    return [tuple(row) for row in txn.fetchall()]


AfterCallbacks = list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]


def run_txn(
    conn: Any,
    engine: BaseEngine,
    desc: str,
    func: Callable[[LoggingTransaction], R],
    *,
    write: bool = False,
    rollback: bool = False,
    after_callbacks: AfterCallbacks | None = None,
) -> R:
    """Run ``func(txn)`` in one transaction on ``conn``, blocking; its result.

    The transaction commits when ``func`` returns (or rolls back if ``rollback``, for a dry
    run) and rolls back when it raises. ``write`` takes the write lock up front where the
    engine has one (SQLite's ``BEGIN IMMEDIATE``). Nothing is retried here.

    Raises:
        Whatever ``func``, the driver or the commit raised, after rolling back. When the
        rollback finds the connection gone (adbapi's ``ConnectionLost``), that is raised
        instead, unless the commit had been sent: then the commit's own error is raised,
        since the transaction may have committed and must not be run again.
    """
    cursor = conn.cursor()
    txn = LoggingTransaction(cursor, desc, engine, after_callbacks)
    committing = False
    try:
        if write:
            engine.begin_write(txn)
        else:
            engine.begin(txn)
        result = func(txn)
        if rollback:
            conn.rollback()
        else:
            committing = True
            conn.commit()
        return result
    except BaseException as e:
        try:
            conn.rollback()
        except adbapi.ConnectionLost:
            if committing:
                raise e from None
            raise
        except Exception:
            # The original error says more than the failed rollback (a closed connection).
            logger.debug("Rolling back %s failed too", desc, exc_info=True)
        raise
    finally:
        try:
            cursor.close()
        except Exception:
            pass


class DatabasePool:
    """Transactions against one database, run on adbapi's thread pool.

    Args:
        engine: the engine of the connections ``conn_pool`` makes.
        conn_pool: an adbapi pool whose ``cp_openfun`` is ``engine.on_new_connection``.
    """

    def __init__(self, engine: BaseEngine, conn_pool: adbapi.ConnectionPool):
        self.engine = engine
        self._db_pool = conn_pool
        # When each pooled connection was opened and last used (``id`` of the DB-API
        # connection → monotonic seconds), for ``max_lifetime`` and ``idle_timeout``.
        self._conn_opened: dict[int, float] = {}
        self._conn_used: dict[int, float] = {}
        self._monotonic: Callable[[], float] = time.monotonic
        metrics.watch_pool(conn_pool)

    # -- running work ---------------------------------------------------------------------
    async def runInteraction(
        self,
        desc: str,
        func: Callable[..., R],
        *args: Any,
        isolation_level: str | None = None,
        **kwargs: Any,
    ) -> R:
        """Run ``func(txn, *args, **kwargs)`` in one transaction and return its result.

        ``func`` may be called several times (after a serialization failure or deadlock),
        so it must only touch the database. ``desc`` names the transaction in logs; by
        convention it is the calling method's name.

        Args:
            isolation_level: ``"serializable"`` or ``"repeatable read"`` for this
                transaction on PostgreSQL (the default is READ COMMITTED); ignored on SQLite.

        Raises:
            CancelledError: the caller was cancelled; the transaction had finished by then.
            Whatever ``func`` or the driver raised, after rolling back.
        """
        after_callbacks: AfterCallbacks = []
        d = self._run_in_pool(
            self._new_transaction_or_reconnect,
            desc,
            after_callbacks,
            isolation_level,
            func,
            args,
            kwargs,
            metrics_desc=desc,
        )
        if tracing.ENABLED:
            tracing.db_span(desc, self.engine.name, d)

        def _run_after(result: R) -> R:
            for callback, cb_args, cb_kwargs in after_callbacks:
                try:
                    callback(*cb_args, **cb_kwargs)
                except Exception:
                    logger.exception("Callback after transaction %s failed", desc)
            return result

        d.addCallback(_run_after)
        return await delay_cancellation(d)

    async def runWithConnection(self, func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``func(conn, *args, **kwargs)`` with a raw connection from the pool.

        adbapi commits after ``func`` returns and rolls back if it raises. Prefer
        :meth:`runInteraction`, which also logs and retries.
        """
        return await delay_cancellation(self._run_in_pool(func, *args, **kwargs))

    async def run_read(self, desc: str, func: Callable[..., R], *args: Any) -> R:
        """Run the read-only ``func(txn, *args)`` on a pooled connection, outside a transaction.

        For the hot path of one ``SELECT``: PostgreSQL runs it in autocommit mode, saving the
        ``BEGIN`` and ``COMMIT`` round trips of :meth:`runInteraction` (SQLite connections are
        in autocommit mode already). ``func`` must not write. A connection found dead is
        replaced by the pool, and the read is tried once more on a new one.
        """
        engine = self.engine
        autocommit = engine.name == "postgres"

        def _read(conn: Any) -> R:
            raw = getattr(conn, "_connection", conn)  # adbapi's wrapper around the DB-API connection
            if autocommit:
                raw.autocommit = True
            cursor = raw.cursor()
            try:
                return func(LoggingTransaction(cursor, desc, engine), *args)
            finally:
                # Either fails only on a dead connection, which the pool drops when adbapi
                # rolls back after the error.
                try:
                    cursor.close()
                except engine.module.Error:
                    pass
                if autocommit:
                    try:
                        raw.autocommit = False
                    except engine.module.Error:
                        pass

        async def _read_retrying_once() -> R:
            try:
                return await delay_cancellation(self._run_in_pool(_read, metrics_desc=desc))
            except (engine.module.OperationalError, engine.module.InterfaceError) as e:
                logger.warning("Read %s failed on a pooled connection (%s); retrying once", desc, e)
                return await delay_cancellation(self._run_in_pool(_read, metrics_desc=desc))

        if tracing.ENABLED:
            return await tracing.db_span(desc, engine.name, defer.ensureDeferred(_read_retrying_once()))
        return await _read_retrying_once()

    def _run_in_pool(
        self, func: Callable[..., R], *args: Any, metrics_desc: str = "run_with_connection", **kwargs: Any
    ) -> defer.Deferred[R]:
        # The pool thread sees the caller's context variables (the request id for logs).
        ctx = contextvars.copy_context()
        # Timed for mas_db_interaction_{schedule,duration}_seconds (mas_twisted.metrics).
        submitted = time.monotonic()

        def _in_context(conn: Any) -> R:
            started = time.monotonic()
            try:
                return ctx.run(func, conn, *args, **kwargs)
            finally:
                metrics.record_db_interaction(metrics_desc, started - submitted, time.monotonic() - started)

        return self._db_pool.runWithConnection(_in_context)

    def _new_transaction_or_reconnect(self, conn: Any, desc: str, *args: Any) -> Any:
        try:
            return self.new_transaction(conn, desc, *args)
        except adbapi.ConnectionLost:
            # adbapi found the connection dead while rolling back (so nothing was committed)
            # and dropped it from the pool: run the transaction once more on a new one.
            logger.warning("Lost the database connection during %s; retrying on a new connection", desc)
            conn._connection = self._db_pool.connect()
            return self.new_transaction(conn, desc, *args)

    def new_transaction(
        self,
        conn: Any,
        desc: str,
        after_callbacks: AfterCallbacks,
        isolation_level: str | None,
        func: Callable[..., R],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> R:
        """Run ``func`` in a transaction on ``conn``, rerunning it on a retryable error. Runs in a pool thread."""
        name = f"{desc}-{next(_txn_counter)}"
        engine = self.engine
        self._recycle_if_stale(conn, name)
        if isolation_level is not None:
            engine.set_isolation_level(conn, isolation_level)
        try:
            for attempt in itertools.count(1):
                transaction_logger.debug("[TXN START] {%s}", name)
                start = time.monotonic()
                try:
                    result = run_txn(
                        conn,
                        engine,
                        name,
                        lambda txn: func(txn, *args, **kwargs),
                        after_callbacks=after_callbacks,
                    )
                except Exception as e:
                    del after_callbacks[:]
                    if engine.is_deadlock(e) and attempt <= MAX_TXN_RETRIES:
                        logger.warning(
                            "[TXN DEADLOCK] {%s} attempt %d of %d: %s", name, attempt, MAX_TXN_RETRIES, e
                        )
                        continue
                    transaction_logger.debug("[TXN FAIL] {%s} %s", name, e)
                    raise
                transaction_logger.debug("[TXN END] {%s} %.6f sec", name, time.monotonic() - start)
                return result
            raise AssertionError("unreachable")
        finally:
            if isolation_level is not None:
                try:
                    engine.set_isolation_level(conn, None)
                except Exception:
                    logger.warning("Could not reset the isolation level after %s", name, exc_info=True)

    def _recycle_if_stale(self, conn: Any, name: str) -> None:
        """Replace a connection older than ``max_lifetime`` or idle for ``idle_timeout`` (MAS's pool
        settings) before using it, so that a connection a server or firewall dropped is not tried."""
        if not self.engine.recycles_connections:
            return
        raw = getattr(conn, "_connection", None)  # adbapi.Connection wraps the DB-API connection
        if raw is None:
            return
        config = self.engine.config
        now = self._monotonic()
        opened = self._conn_opened.setdefault(id(raw), now)
        used = self._conn_used.get(id(raw), now)
        too_old = config.max_lifetime is not None and now - opened > config.max_lifetime
        too_idle = config.idle_timeout is not None and now - used > config.idle_timeout
        if too_old or too_idle:
            logger.debug("{%s} replacing a database connection (%s)", name, "lifetime" if too_old else "idle")
            self._conn_opened.pop(id(raw), None)
            self._conn_used.pop(id(raw), None)
            conn.reconnect()
            raw = conn._connection
            self._conn_opened[id(raw)] = now
        self._conn_used[id(raw)] = now

    async def execute(self, desc: str, sql: str, *args: Any) -> list[Row]:
        """Run one statement in its own transaction; the rows it returns, if any."""

        def _execute_txn(txn: LoggingTransaction) -> list[Row]:
            txn.execute(sql, args)
            return _rows(txn)

        return await self.runInteraction(desc, _execute_txn)

    async def ping(self) -> None:
        """Check that the database answers (``/health``).

        Raises:
            Whatever the driver raised when the database cannot be reached.
        """

        def _ping_txn(txn: LoggingTransaction) -> None:
            txn.execute("SELECT 1")
            txn.fetchall()

        await self.runInteraction("ping", _ping_txn)

    def close(self) -> None:
        """Close every connection of the pool."""
        metrics.unwatch_pool(self._db_pool)
        self._db_pool.close()

    # -- simple CRUD ----------------------------------------------------------------------
    async def simple_insert(self, table: str, values: Mapping[str, Any], desc: str = "simple_insert") -> None:
        await self.runInteraction(desc, self.simple_insert_txn, table, values)

    @staticmethod
    def simple_insert_txn(txn: LoggingTransaction, table: str, values: Mapping[str, Any]) -> None:
        columns = list(values)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        txn.execute(sql, [values[c] for c in columns])

    async def simple_insert_many(
        self,
        table: str,
        keys: Sequence[str],
        values: Iterable[Sequence[Any]],
        desc: str = "simple_insert_many",
    ) -> None:
        await self.runInteraction(desc, self.simple_insert_many_txn, table, keys, list(values))

    @staticmethod
    def simple_insert_many_txn(
        txn: LoggingTransaction, table: str, keys: Sequence[str], values: Iterable[Sequence[Any]]
    ) -> None:
        rows = [tuple(v) for v in values]
        if not rows:
            return
        sql = f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join('?' for _ in keys)})"
        txn.executemany(sql, rows)

    async def simple_select_one(
        self,
        table: str,
        keyvalues: Mapping[str, Any],
        retcols: Sequence[str],
        allow_none: bool = False,
        desc: str = "simple_select_one",
    ) -> Row | None:
        """The one row matching ``keyvalues``, as a tuple of ``retcols``.

        Raises:
            RowsAffectedError: no row matched (unless ``allow_none``, which returns ``None``),
                or more than one did.
        """
        return await self.runInteraction(
            desc, self.simple_select_one_txn, table, keyvalues, retcols, allow_none
        )

    @staticmethod
    def simple_select_one_txn(
        txn: LoggingTransaction,
        table: str,
        keyvalues: Mapping[str, Any],
        retcols: Sequence[str],
        allow_none: bool = False,
    ) -> Row | None:
        where, args = _where(keyvalues)
        txn.execute(f"SELECT {', '.join(retcols)} FROM {table}{where}", args)
        rows = txn.fetchall()
        if len(rows) > 1:
            raise RowsAffectedError(1, len(rows))
        if not rows:
            if allow_none:
                return None
            raise RowsAffectedError(1, 0)
        return tuple(rows[0])

    async def simple_select_one_onecol(
        self,
        table: str,
        keyvalues: Mapping[str, Any],
        retcol: str,
        allow_none: bool = False,
        desc: str = "simple_select_one_onecol",
    ) -> Any:
        row = await self.simple_select_one(table, keyvalues, (retcol,), allow_none=allow_none, desc=desc)
        return None if row is None else row[0]

    async def simple_select_onecol(
        self, table: str, keyvalues: Mapping[str, Any], retcol: str, desc: str = "simple_select_onecol"
    ) -> list[Any]:
        return await self.runInteraction(desc, self.simple_select_onecol_txn, table, keyvalues, retcol)

    @staticmethod
    def simple_select_onecol_txn(
        txn: LoggingTransaction, table: str, keyvalues: Mapping[str, Any], retcol: str
    ) -> list[Any]:
        where, args = _where(keyvalues)
        txn.execute(f"SELECT {retcol} FROM {table}{where}", args)
        return [row[0] for row in txn.fetchall()]

    async def simple_select_list(
        self,
        table: str,
        keyvalues: Mapping[str, Any] | None,
        retcols: Sequence[str],
        order_by: str | None = None,
        desc: str = "simple_select_list",
    ) -> list[Row]:
        """Every row matching ``keyvalues`` (all rows if ``None``), optionally ordered by ``order_by``."""
        return await self.runInteraction(
            desc, self.simple_select_list_txn, table, keyvalues, retcols, order_by
        )

    @staticmethod
    def simple_select_list_txn(
        txn: LoggingTransaction,
        table: str,
        keyvalues: Mapping[str, Any] | None,
        retcols: Sequence[str],
        order_by: str | None = None,
    ) -> list[Row]:
        where, args = _where(keyvalues or {})
        order = f" ORDER BY {order_by}" if order_by else ""
        txn.execute(f"SELECT {', '.join(retcols)} FROM {table}{where}{order}", args)
        return [tuple(row) for row in txn.fetchall()]

    async def simple_select_many(
        self,
        table: str,
        column: str,
        iterable: Collection[Any],
        retcols: Sequence[str],
        keyvalues: Mapping[str, Any] | None = None,
        desc: str = "simple_select_many",
    ) -> list[Row]:
        """Rows whose ``column`` is one of ``iterable`` (and which match ``keyvalues``)."""
        return await self.runInteraction(
            desc, self.simple_select_many_txn, table, column, list(iterable), retcols, keyvalues
        )

    def simple_select_many_txn(
        self,
        txn: LoggingTransaction,
        table: str,
        column: str,
        iterable: Collection[Any],
        retcols: Sequence[str],
        keyvalues: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        if not iterable:
            return []
        clause, args = make_in_list_sql_clause(txn.engine, column, iterable)
        where, more_args = _where(keyvalues or {})
        where = f"{where} AND {clause}" if where else f" WHERE {clause}"
        txn.execute(f"SELECT {', '.join(retcols)} FROM {table}{where}", more_args + args)
        return [tuple(row) for row in txn.fetchall()]

    async def simple_update(
        self,
        table: str,
        keyvalues: Mapping[str, Any],
        updatevalues: Mapping[str, Any],
        desc: str = "simple_update",
    ) -> int:
        """Update every row matching ``keyvalues``; how many matched."""
        return await self.runInteraction(desc, self.simple_update_txn, table, keyvalues, updatevalues)

    @staticmethod
    def simple_update_txn(
        txn: LoggingTransaction, table: str, keyvalues: Mapping[str, Any], updatevalues: Mapping[str, Any]
    ) -> int:
        if not updatevalues:
            raise ValueError("simple_update needs at least one column to set")
        where, args = _where(keyvalues)
        sets = ", ".join(f"{column} = ?" for column in updatevalues)
        txn.execute(f"UPDATE {table} SET {sets}{where}", list(updatevalues.values()) + args)
        return txn.rowcount

    async def simple_update_one(
        self,
        table: str,
        keyvalues: Mapping[str, Any],
        updatevalues: Mapping[str, Any],
        desc: str = "simple_update_one",
    ) -> None:
        """Update exactly one row.

        Raises:
            RowsAffectedError: no row, or several, matched ``keyvalues`` (nothing is changed then).
        """
        await self.runInteraction(desc, self.simple_update_one_txn, table, keyvalues, updatevalues)

    @classmethod
    def simple_update_one_txn(
        cls,
        txn: LoggingTransaction,
        table: str,
        keyvalues: Mapping[str, Any],
        updatevalues: Mapping[str, Any],
    ) -> None:
        count = cls.simple_update_txn(txn, table, keyvalues, updatevalues)
        if count != 1:
            # Raising rolls the whole transaction back, so several rows are never changed.
            raise RowsAffectedError(1, count)

    async def simple_upsert(
        self,
        table: str,
        keyvalues: Mapping[str, Any],
        values: Mapping[str, Any],
        insertion_values: Mapping[str, Any] | None = None,
        desc: str = "simple_upsert",
    ) -> None:
        """Insert a row, or update ``values`` of the row that has ``keyvalues``.

        ``keyvalues`` must be covered by a unique index or primary key (``ON CONFLICT``);
        ``insertion_values`` are only written when the row is new.
        """
        await self.runInteraction(desc, self.simple_upsert_txn, table, keyvalues, values, insertion_values)

    @staticmethod
    def simple_upsert_txn(
        txn: LoggingTransaction,
        table: str,
        keyvalues: Mapping[str, Any],
        values: Mapping[str, Any],
        insertion_values: Mapping[str, Any] | None = None,
    ) -> None:
        if not keyvalues:
            raise ValueError("simple_upsert needs the key columns")
        row = {**keyvalues, **(insertion_values or {}), **values}
        columns = list(row)
        conflict = ", ".join(keyvalues)
        if values:
            action = "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
        else:
            action = "DO NOTHING"
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            f" ON CONFLICT ({conflict}) {action}"
        )
        txn.execute(sql, [row[c] for c in columns])

    async def simple_delete(
        self, table: str, keyvalues: Mapping[str, Any], desc: str = "simple_delete"
    ) -> int:
        """Delete every row matching ``keyvalues``; how many were deleted."""
        return await self.runInteraction(desc, self.simple_delete_txn, table, keyvalues)

    @staticmethod
    def simple_delete_txn(txn: LoggingTransaction, table: str, keyvalues: Mapping[str, Any]) -> int:
        if not keyvalues:
            # A typo must not empty a table: use execute("DELETE FROM t") for that.
            raise ValueError("simple_delete needs at least one key column")
        where, args = _where(keyvalues)
        txn.execute(f"DELETE FROM {table}{where}", args)
        return txn.rowcount

    async def simple_delete_one(
        self, table: str, keyvalues: Mapping[str, Any], desc: str = "simple_delete_one"
    ) -> None:
        """Delete exactly one row.

        Raises:
            RowsAffectedError: no row, or several, matched (nothing is deleted then).
        """
        await self.runInteraction(desc, self.simple_delete_one_txn, table, keyvalues)

    @classmethod
    def simple_delete_one_txn(cls, txn: LoggingTransaction, table: str, keyvalues: Mapping[str, Any]) -> None:
        count = cls.simple_delete_txn(txn, table, keyvalues)
        if count != 1:
            raise RowsAffectedError(1, count)


def make_database_pool(db_config: DatabaseConfig, reactor: IReactorCore | None = None) -> DatabasePool:
    """The pool the server uses (``MasServer.get_db_pool()``).

    Nothing connects until the first transaction runs; the schema must have been prepared
    by :func:`mas_twisted.storage.prepare_database.prepare_database` before that.
    """
    engine = create_engine(db_config)
    args, kwargs = engine.connect_args()
    conn_pool = adbapi.ConnectionPool(
        engine.module_name,
        *args,
        cp_openfun=engine.on_new_connection,
        cp_reactor=reactor,
        cp_noisy=False,
        **engine.pool_args(),
        **kwargs,
    )
    logger.debug("Database pool for the %s", db_config.describe_target())
    return DatabasePool(engine, conn_pool)
