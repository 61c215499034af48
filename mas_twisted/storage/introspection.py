# SPDX-License-Identifier: AGPL-3.0-only
"""Reading tokens with their session and user for introspection (RFC 7662, inventory §2.10).

- :class:`TokenSessionUser`: the one ``SELECT`` that reads a token, its session and the
  session's user through the token's unique index, and the split of its row into the three
  models. OAuth 2.0 access and refresh tokens and the compatibility tokens all read this way.
- :class:`IntrospectionQuery`: such a statement for several tokens at once (the requests
  that arrive together), with the decoding of its rows.
- :class:`IntrospectionReader`: runs those statements without the database thread pool
  where it can. Handing work to a pool thread and back costs more than the query, and the
  two threads then fight over the GIL (measured with bench/introspect: 1.6× the throughput
  on SQLite, 1.2× on PostgreSQL). :class:`~mas_twisted.storage.stores.Stores` builds one
  and gives it to the stores whose tokens are introspected.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.types.oauth2 import TokenOwner

logger = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S")

#: At most this many tokens per statement.
INTROSPECTION_BATCH_MAX = 500


def owner_from_columns(user_id: Any, username: Any, locked_at: Any, deactivated_at: Any) -> TokenOwner | None:
    """The :class:`TokenOwner` of a ``LEFT JOIN users`` (``None`` when the session has no user)."""
    if user_id is None:
        return None
    return TokenOwner(user_id=user_id, username=username, locked_at=locked_at, deactivated_at=deactivated_at)


@attrs.frozen
class TokenSessionUser(Generic[T, S]):
    """A token table joined to its session and the session's user, in one ``SELECT``.

    ``token_model`` and ``session_model`` have ``COLUMNS`` and ``from_row``; the session's
    key column has the same name in both tables. ``user_optional``: sessions may have no
    user (OAuth 2.0 ``client_credentials``), so the users are ``LEFT JOIN``ed.
    """

    token_table: str
    token_model: Any
    token_column: str
    session_table: str
    session_key: str
    session_model: Any
    user_optional: bool = False

    def select(self, condition: str = "= ?") -> str:
        """The statement; ``condition`` follows the token column in its ``WHERE``."""
        join = "LEFT JOIN" if self.user_optional else "JOIN"
        return (
            "SELECT "
            + ", ".join(f"t.{c}" for c in self.token_model.COLUMNS)
            + ", "
            + ", ".join(f"s.{c}" for c in self.session_model.COLUMNS)
            + ", u.user_id, u.username, u.locked_at, u.deactivated_at"
            f" FROM {self.token_table} AS t"
            f" JOIN {self.session_table} AS s ON s.{self.session_key} = t.{self.session_key}"
            f" {join} users AS u ON u.user_id = s.user_id"
            f" WHERE t.{self.token_column} {condition}"
        )

    @property
    def token_index(self) -> int:
        """The token column's index in a row."""
        return int(self.token_model.COLUMNS.index(self.token_column))

    def decoder(self, result: Callable[[T, S, Any], R]) -> Callable[[Sequence[Any]], R]:
        """A function from a row to ``result(token, session, owner)`` (``owner`` ``None`` when
        the session has no user); the split is worked out once, here."""
        n_token = len(self.token_model.COLUMNS)
        end = n_token + len(self.session_model.COLUMNS)
        token_from_row = self.token_model.from_row
        session_from_row = self.session_model.from_row

        def decode(row: Sequence[Any]) -> R:
            return result(
                token_from_row(row[:n_token]),
                session_from_row(row[n_token:end]),
                owner_from_columns(*row[end:]),
            )

        return decode

    def lookup_txn(self, txn: LoggingTransaction, token: str, result: Callable[[T, S, Any], R]) -> R | None:
        """``result(token, session, owner)`` of one token, or ``None`` if it is unknown."""
        txn.execute(self._select_one, (token,))
        row = txn.fetchone()
        return None if row is None else self._split(row, result)

    @functools.cached_property
    def _select_one(self) -> str:
        return self.select()

    def _split(self, row: Sequence[Any], result: Callable[[T, S, Any], R]) -> R:
        n_token = len(self.token_model.COLUMNS)
        end = n_token + len(self.session_model.COLUMNS)
        return result(
            self.token_model.from_row(row[:n_token]),
            self.session_model.from_row(row[n_token:end]),
            owner_from_columns(*row[end:]),
        )


@attrs.frozen
class IntrospectionQuery:
    """A statement that reads tokens with their session and user, for several tokens at once:
    ``select`` has ``{}`` where the token condition goes (``= ANY($1)`` on PostgreSQL, ``IN
    (…)`` on SQLite), ``token_index`` is the token's column in a row, ``decode`` turns a row
    into the result. The reader prepares it once per PostgreSQL connection as ``name``."""

    name: str
    select: str
    token_index: int
    decode: Callable[[Sequence[Any]], Any]

    @classmethod
    def of(
        cls, name: str, join: TokenSessionUser[T, S], result: Callable[[T, S, Any], Any]
    ) -> IntrospectionQuery:
        """The query of ``join``, rows decoded into ``result(token, session, owner)``."""
        return cls(
            name=name,
            select=join.select("{}"),
            token_index=join.token_index,
            decode=join.decoder(result),
        )


# The pooled PostgreSQL connections on which each query is prepared, by query name.
_prepared_queries_on: dict[str, weakref.WeakSet[Any]] = {}


def introspection_many_txn(
    txn: LoggingTransaction, query: IntrospectionQuery, tokens: list[str]
) -> dict[str, Any]:
    """``{token: query.decode(row)}`` for the tokens found (a statement per
    :data:`INTROSPECTION_BATCH_MAX` tokens)."""
    found: dict[str, Any] = {}
    postgres = txn.engine.name == "postgres"
    for start in range(0, len(tokens), INTROSPECTION_BATCH_MAX):
        chunk = tokens[start : start + INTROSPECTION_BATCH_MAX]
        if postgres:
            raw = txn.txn.connection
            prepared = _prepared_queries_on.setdefault(query.name, weakref.WeakSet())
            if raw not in prepared:
                # A prepared statement lives as long as the connection (a rollback does not
                # undo PREPARE); a replaced connection is a new object, prepared again.
                txn.execute(f"PREPARE {query.name} (text[]) AS " + query.select.format("= ANY($1)"))
                prepared.add(raw)
            txn.execute(f"EXECUTE {query.name} (?)", (chunk,))
        else:
            txn.execute(query.select.format(f"IN ({', '.join('?' for _ in chunk)})"), chunk)
        for row in txn.fetchall():
            found[row[query.token_index]] = query.decode(row)
    return found


class IntrospectionReader:
    """Runs :class:`IntrospectionQuery` statements on the reactor thread where the database
    allows it, else on the pool.

    - SQLite, in a file: a connection of its own, read synchronously. A read of a few
      indexed rows takes microseconds, much less than a trip through the pool thread, and in
      WAL mode it neither waits for the pool's writes nor delays them. Its busy timeout is
      short, so that the reactor is never held by a lock.
    - PostgreSQL, once the reactor runs: :data:`PG_CONNECTIONS` asynchronous connections
      (txpostgres, autocommit) with every query of the reader prepared on each; a batch goes
      to the one with the fewest queries waiting.
    - Otherwise (an in-memory SQLite database, which another connection would not see; a
      reactor that is not running), and for one batch whenever the own connection fails: the
      pool, as every other query (:meth:`DatabasePool.run_read`). After a failure the own
      connections are tried again :data:`RETRY_AFTER_S` seconds later.
    """

    #: Asynchronous PostgreSQL connections for introspection.
    PG_CONNECTIONS = 2
    #: Seconds to use the pool only, after the own connection failed.
    RETRY_AFTER_S = 10.0
    #: Busy timeout of the SQLite reader, in milliseconds.
    SQLITE_BUSY_TIMEOUT_MS = 50

    def __init__(self, db_pool: DatabasePool, reactor: Any, queries: Sequence[IntrospectionQuery]):
        """``queries``: every query :meth:`lookup` will be given (prepared on the reader's own
        PostgreSQL connections when they open)."""
        self._db_pool = db_pool
        self._reactor = reactor
        self._queries = tuple(queries)
        self._sqlite_conn: Any = None
        self._pg_conns: list[Any] | None = None
        self._pg_busy: dict[int, int] = {}
        self._connect_waiters: list[defer.Deferred[None]] = []
        self._failed_at: float | None = None

    @property
    def _engine(self) -> Any:
        return self._db_pool.engine

    async def lookup(self, access_tokens: list[str], query: IntrospectionQuery) -> dict[str, Any]:
        """``{token: query.decode(row)}`` for the tokens found (``query`` must be one of the
        reader's)."""
        engine = self._engine
        if self._failed_at is not None and self._reactor.seconds() - self._failed_at < self.RETRY_AFTER_S:
            return await self._on_pool(access_tokens, query)
        if engine.name == "sqlite" and not getattr(engine, "is_in_memory", True):
            return await self._on_sqlite(access_tokens, query)
        if engine.name == "postgres" and getattr(self._reactor, "running", False):
            return await self._on_postgres(access_tokens, query)
        return await self._on_pool(access_tokens, query)

    async def _on_pool(self, access_tokens: list[str], query: IntrospectionQuery) -> dict[str, Any]:
        return await self._db_pool.run_read(
            f"introspect_{query.name}", introspection_many_txn, query, access_tokens
        )

    def _give_up(self, what: str, error: BaseException) -> None:
        logger.warning(
            "Introspection reads go through the pool for %ss: %s failed: %s", self.RETRY_AFTER_S, what, error
        )
        self._failed_at = self._reactor.seconds()

    # -- SQLite ---------------------------------------------------------------------------------
    async def _on_sqlite(self, access_tokens: list[str], query: IntrospectionQuery) -> dict[str, Any]:
        engine = self._engine
        try:
            if self._sqlite_conn is None:
                conn = engine.connect()
                engine.on_new_connection(conn)
                conn.execute(f"PRAGMA busy_timeout = {self.SQLITE_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA query_only = ON")
                self._sqlite_conn = conn
            cursor = self._sqlite_conn.cursor()
            try:
                return introspection_many_txn(
                    LoggingTransaction(cursor, f"introspect_{query.name}", engine), query, access_tokens
                )
            finally:
                cursor.close()
        except engine.module.Error as e:
            self._close_sqlite()
            self._give_up("the SQLite reader", e)
        return await self._on_pool(access_tokens, query)

    def _close_sqlite(self) -> None:
        conn, self._sqlite_conn = self._sqlite_conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    # -- PostgreSQL -----------------------------------------------------------------------------
    async def _on_postgres(self, access_tokens: list[str], query: IntrospectionQuery) -> dict[str, Any]:
        try:
            if self._pg_conns is None:
                await self._wait_connected()
            conns = self._pg_conns
            if conns is None:
                return await self._on_pool(access_tokens, query)
            conn = min(conns, key=lambda c: self._pg_busy[id(c)])
            self._pg_busy[id(conn)] += 1
            try:
                found: dict[str, Any] = {}
                for start in range(0, len(access_tokens), INTROSPECTION_BATCH_MAX):
                    chunk = access_tokens[start : start + INTROSPECTION_BATCH_MAX]
                    for row in await conn.runQuery(f"EXECUTE {query.name} (%s)", (chunk,)):
                        found[row[query.token_index]] = query.decode(row)
                return found
            finally:
                self._pg_busy[id(conn)] -= 1
        except Exception as e:  # a lost connection, a server restart, a failed connect...
            self._close_postgres()
            self._give_up("an asynchronous PostgreSQL connection", e)
        return await self._on_pool(access_tokens, query)

    async def _wait_connected(self) -> None:
        """Open the connections (once, whoever asks first); raise what opening them raised."""
        waiter: defer.Deferred[None] = defer.Deferred()
        self._connect_waiters.append(waiter)
        if len(self._connect_waiters) == 1:
            d = defer.ensureDeferred(self._connect_postgres())
            d.addBoth(self._connect_done)
        await waiter

    def _connect_done(self, result: Any) -> None:
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

    async def _connect_postgres(self) -> None:
        args, kwargs = self._engine.connect_args()
        conns = []
        try:
            for _ in range(self.PG_CONNECTIONS):
                conn = _reader_connection_class()(reactor=self._reactor)
                conns.append(conn)
                await conn.connect(*args, **kwargs)
                for query in self._queries:
                    await conn.runOperation(
                        f"PREPARE {query.name} (text[]) AS " + query.select.format("= ANY($1)")
                    )
        except BaseException:
            for conn in conns:
                _close_quietly(conn)
            raise
        self._pg_busy = {id(conn): 0 for conn in conns}
        self._pg_conns = conns

    def _close_postgres(self) -> None:
        conns, self._pg_conns = self._pg_conns, None
        for conn in conns or ():
            _close_quietly(conn)

    def close(self) -> None:
        """Close the reader's own connections (the pool's are not its own)."""
        self._close_sqlite()
        self._close_postgres()


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


_READER_CONNECTION: Any = None


def _reader_connection_class() -> Any:
    """txpostgres's connection, reporting a server that went away as a lost connection.

    txpostgres reads an idle connection's socket (for ``NOTIFY``); when the server closes
    it, the error has nobody to go to and the reactor would log it as unhandled. Here it is
    one warning, and the next query on the connection fails, which sends the reader back to
    the pool while it reconnects.
    """
    global _READER_CONNECTION
    if _READER_CONNECTION is None:
        from txpostgres import txpostgres

        class ReaderConnection(txpostgres.Connection):
            def doRead(self) -> Any:
                try:
                    super().doRead()
                except Exception as e:
                    logger.warning("Lost an introspection connection to PostgreSQL: %s", e)
                    return e  # the reactor drops the descriptor and calls connectionLost
                return None

        _READER_CONNECTION = ReaderConnection
    return _READER_CONNECTION
