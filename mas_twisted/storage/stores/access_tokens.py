# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for OAuth 2.0 access tokens (RFC 6749 §1.4; MAS's ``oauth2_access_tokens``).

Besides plain CRUD this holds the introspection hot path (RFC 7662, inventory §2.10):
:meth:`AccessTokenStore.lookup_access_token_for_introspection` reads the token, its session
and the session's user in **one** ``SELECT`` through the unique ``access_token`` index. On
PostgreSQL that statement is prepared once per connection (``PREPARE``/``EXECUTE``), which
saves the server from planning it on every request, and it runs outside a transaction
(:func:`run_read`): a lone ``SELECT`` needs no ``BEGIN``/``COMMIT``, which would be two more
round trips per request. :meth:`AccessTokenStore.lookup_access_tokens_for_introspection`
reads several tokens with one statement, for the requests that arrive together, and without
the database thread pool where it can (:class:`IntrospectionReader`): handing work to a pool
thread and back costs more than the query, and the two threads then fight over the GIL
(measured with bench/introspect: 1.6× the throughput on SQLite, 1.2× on PostgreSQL).

State changes are conditional ``UPDATE``s: revoking a token that is already revoked (or
changed under us) raises :class:`~mas_twisted.types.oauth2.InvalidTransitionError` and
writes nothing. Cleanup follows MAS's jobs: revoked tokens are deleted an hour after
revocation, expired ones 30 days after expiry, each in batches of ``limit`` rows from a
``since`` cursor.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores._common import (
    cleanup_by_timestamp_txn,
    select_model,
    select_model_txn,
    transition,
    update_one_if_txn,
)
from mas_twisted.types.oauth2 import (
    AccessToken,
    AccessTokenIntrospection,
    OAuth2Session,
    TokenOwner,
)

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

R = TypeVar("R")

TABLE = "oauth2_access_tokens"
_ID = "oauth2_access_token_id"

#: The token, its session and the session's user (``None`` columns for client_credentials).
_INTROSPECTION_SELECT = (
    "SELECT "
    + ", ".join(f"t.{c}" for c in AccessToken.COLUMNS)
    + ", "
    + ", ".join(f"s.{c}" for c in OAuth2Session.COLUMNS)
    + ", u.user_id, u.username, u.locked_at, u.deactivated_at"
    " FROM oauth2_access_tokens AS t"
    " JOIN oauth2_sessions AS s ON s.oauth2_session_id = t.oauth2_session_id"
    " LEFT JOIN users AS u ON u.user_id = s.user_id"
    " WHERE t.access_token = ?"
)

#: The same for several tokens (``= ANY(array)`` on PostgreSQL, ``IN (…)`` on SQLite).
_INTROSPECTION_MANY_SELECT = _INTROSPECTION_SELECT.replace("t.access_token = ?", "t.access_token {}")
#: At most this many tokens per statement.
INTROSPECTION_BATCH_MAX = 500

_PREPARED_NAME = "mas_introspect_access_token"
_PREPARED_MANY_NAME = "mas_introspect_access_tokens"
# The raw PostgreSQL connections on which the introspection statement is prepared.
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()


async def run_read(db_pool: DatabasePool, desc: str, func: Callable[..., R], *args: Any) -> R:
    """Run the read-only ``func(txn, *args)`` on a pooled connection, outside a transaction.

    For the hot path of one ``SELECT``: PostgreSQL runs it in autocommit mode, saving the
    ``BEGIN`` and ``COMMIT`` round trips of :meth:`DatabasePool.runInteraction` (SQLite
    connections are in autocommit mode already). ``func`` must not write. A connection
    found dead is replaced by the pool, and the read is tried once more on a new one.
    """
    engine = db_pool.engine
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

    try:
        return await db_pool.runWithConnection(_read)
    except (engine.module.OperationalError, engine.module.InterfaceError) as e:
        logger.warning("Read %s failed on a pooled connection (%s); retrying once", desc, e)
        return await db_pool.runWithConnection(_read)


def owner_from_columns(user_id: Any, username: Any, locked_at: Any, deactivated_at: Any) -> TokenOwner | None:
    """The :class:`TokenOwner` of a ``LEFT JOIN users`` (``None`` when the session has no user)."""
    if user_id is None:
        return None
    return TokenOwner(user_id=user_id, username=username, locked_at=locked_at, deactivated_at=deactivated_at)


def add_access_token_txn(txn: LoggingTransaction, token: AccessToken) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, token.to_row())


def get_access_token_txn(txn: LoggingTransaction, token_id: str) -> AccessToken | None:
    return select_model_txn(txn, TABLE, {_ID: token_id}, AccessToken)


def revoke_access_token_txn(txn: LoggingTransaction, token_id: str, at: int) -> bool:
    """Revoke one token if it is not revoked yet; whether it was."""
    return update_one_if_txn(txn, TABLE, (_ID, token_id), {"revoked_at": at}, "revoked_at IS NULL")


def revoke_session_access_tokens_txn(txn: LoggingTransaction, session_id: str, at: int) -> int:
    """Revoke every unrevoked access token of a session; how many."""
    txn.execute(
        "UPDATE oauth2_access_tokens SET revoked_at = ? WHERE oauth2_session_id = ? AND revoked_at IS NULL",
        (at, session_id),
    )
    return txn.rowcount


def mark_access_tokens_used_txn(txn: LoggingTransaction, first_used: dict[str, int]) -> int:
    """Set ``first_used_at`` of the tokens ``{token_id: at}`` that have none yet; how many were set.

    One ``UPDATE … FROM (VALUES …)`` per 500 tokens (both engines name the ``VALUES``
    columns ``column1``, ``column2``).
    """
    updated = 0
    items = sorted(first_used.items())
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        values = ", ".join("(?, ?)" for _ in chunk)
        args: list[Any] = []
        for token_id, at in chunk:
            args.extend((token_id, at))
        txn.execute(
            "UPDATE oauth2_access_tokens SET first_used_at = t.column2"
            f" FROM (VALUES {values}) AS t"
            " WHERE oauth2_access_tokens.oauth2_access_token_id = t.column1"
            " AND oauth2_access_tokens.first_used_at IS NULL",
            args,
        )
        updated += txn.rowcount
    return updated


class AccessTokenStore(SQLBaseStore):
    def __init__(self, db_pool: DatabasePool, server: MasServer):
        super().__init__(db_pool, server)
        self._introspection_reader = IntrospectionReader(db_pool, server.get_reactor())

    @property
    def introspection_reader(self) -> IntrospectionReader:
        """The reader the introspection statements run on (shared with the compat tokens')."""
        return self._introspection_reader

    async def add_access_token(self, token: AccessToken) -> None:
        """Insert a new token (its session must exist)."""
        await self.db_pool.runInteraction("add_access_token", add_access_token_txn, token)

    async def get_access_token(self, token_id: str) -> AccessToken | None:
        return await self.db_pool.runInteraction("get_access_token", get_access_token_txn, token_id)

    async def find_access_token_by_token(self, access_token: str) -> AccessToken | None:
        """The token whose text is ``access_token``, whatever its state, or ``None``."""
        return await select_model(
            self.db_pool, "find_access_token_by_token", TABLE, {"access_token": access_token}, AccessToken
        )

    async def revoke_access_token(self, token: AccessToken) -> AccessToken:
        """Revoke ``token`` now and return it revoked.

        Raises:
            InvalidTransitionError: it was already revoked (here or in the database).
        """
        revoked = token.revoke(self._clock.time_msec())
        await transition(
            self.db_pool,
            "revoke_access_token",
            TABLE,
            (_ID, token.id),
            {"revoked_at": revoked.revoked_at},
            "revoked_at IS NULL",
            f"access token {token.id} is already revoked or gone",
        )
        return revoked

    async def mark_access_token_first_used(self, token: AccessToken) -> AccessToken:
        """Record the token's first use now; a token already used is returned unchanged.

        A concurrent first use keeps whichever time was written first.
        """
        if token.is_used:
            return token
        used = token.mark_used(self._clock.time_msec())
        await self.db_pool.runInteraction(
            "mark_access_token_first_used", mark_access_tokens_used_txn, {token.id: used.first_used_at}
        )
        return used

    async def lookup_access_token_for_introspection(
        self, access_token: str
    ) -> AccessTokenIntrospection | None:
        """The token with its session and user, in one query; ``None`` if the token is unknown.

        The caller decides whether it is active (:meth:`AccessTokenIntrospection.is_active`).
        """
        return await run_read(
            self.db_pool, "lookup_access_token_for_introspection", _introspection_txn, access_token
        )

    async def lookup_access_tokens_for_introspection(
        self, access_tokens: Sequence[str]
    ) -> dict[str, AccessTokenIntrospection]:
        """:meth:`lookup_access_token_for_introspection` for several tokens in one round trip
        (a statement per :data:`INTROSPECTION_BATCH_MAX` tokens): ``{token: result}``, unknown
        tokens left out. Introspection batches the requests that arrive together; see
        :class:`IntrospectionReader` for where the statement runs."""
        return await self._introspection_reader.lookup(list(access_tokens))

    async def cleanup_revoked_access_tokens(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` tokens revoked in ``[since, until)``; ``(count, last revoked_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_revoked_access_tokens",
            cleanup_by_timestamp_txn,
            TABLE,
            _ID,
            "revoked_at",
            since,
            until,
            limit,
        )

    async def cleanup_expired_access_tokens(
        self, since: int | None, until: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete up to ``limit`` tokens that expired in ``[since, until)``; ``(count, last expires_at)``."""
        return await self.db_pool.runInteraction(
            "cleanup_expired_access_tokens",
            cleanup_by_timestamp_txn,
            TABLE,
            _ID,
            "expires_at",
            since,
            until,
            limit,
        )


def _introspection_txn(txn: LoggingTransaction, access_token: str) -> AccessTokenIntrospection | None:
    if txn.engine.name == "postgres":
        raw = txn.txn.connection
        if raw not in _prepared_on:
            # A prepared statement lives as long as the connection (a rollback does not
            # undo PREPARE); a replaced connection is a new object, prepared again.
            txn.execute(f"PREPARE {_PREPARED_NAME} (text) AS " + _INTROSPECTION_SELECT.replace("?", "$1"))
            _prepared_on.add(raw)
        txn.execute(f"EXECUTE {_PREPARED_NAME} (?)", (access_token,))
    else:
        txn.execute(_INTROSPECTION_SELECT, (access_token,))
    row = txn.fetchone()
    if row is None:
        return None
    n_token = len(AccessToken.COLUMNS)
    n_session = len(OAuth2Session.COLUMNS)
    token = AccessToken.from_row(row[:n_token])
    session = OAuth2Session.from_row(row[n_token : n_token + n_session])
    owner = owner_from_columns(*row[n_token + n_session :])
    return AccessTokenIntrospection(token=token, session=session, user=owner)


def _introspection_from_row(row: Sequence[Any]) -> AccessTokenIntrospection:
    n_token = len(AccessToken.COLUMNS)
    n_session = len(OAuth2Session.COLUMNS)
    return AccessTokenIntrospection(
        token=AccessToken.from_row(row[:n_token]),
        session=OAuth2Session.from_row(row[n_token : n_token + n_session]),
        user=owner_from_columns(*row[n_token + n_session :]),
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


#: OAuth 2.0 access tokens (``mat_``).
ACCESS_TOKEN_QUERY = IntrospectionQuery(
    name=_PREPARED_MANY_NAME,
    select=_INTROSPECTION_MANY_SELECT,
    token_index=AccessToken.COLUMNS.index("access_token"),
    decode=lambda row: _introspection_from_row(row),
)

#: Every query the reader prepares on its PostgreSQL connections (others register theirs).
INTROSPECTION_QUERIES: dict[str, IntrospectionQuery] = {ACCESS_TOKEN_QUERY.name: ACCESS_TOKEN_QUERY}

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
                txn.execute(f"PREPARE {query.name} (text[]) AS " + query.select.format("= ANY($1)"))
                prepared.add(raw)
            txn.execute(f"EXECUTE {query.name} (?)", (chunk,))
        else:
            txn.execute(query.select.format(f"IN ({', '.join('?' for _ in chunk)})"), chunk)
        for row in txn.fetchall():
            found[row[query.token_index]] = query.decode(row)
    return found


def _introspection_many_txn(
    txn: LoggingTransaction, access_tokens: list[str]
) -> dict[str, AccessTokenIntrospection]:
    return introspection_many_txn(txn, ACCESS_TOKEN_QUERY, access_tokens)


# -- reads without the thread pool -------------------------------------------------------------


class IntrospectionReader:
    """Runs the introspection statement of :meth:`AccessTokenStore.lookup_access_tokens_for_introspection`
    on the reactor thread where the database allows it, else on the pool.

    - SQLite, in a file: a connection of its own, read synchronously. A read of a few
      indexed rows takes microseconds, much less than a trip through the pool thread, and in
      WAL mode it neither waits for the pool's writes nor delays them. Its busy timeout is
      short, so that the reactor is never held by a lock.
    - PostgreSQL, once the reactor runs: :data:`PG_CONNECTIONS` asynchronous connections
      (txpostgres, autocommit) with the statement prepared on each; a batch goes to the one
      with the fewest queries waiting.
    - Otherwise (an in-memory SQLite database, which another connection would not see; a
      reactor that is not running), and for one batch whenever the own connection fails: the
      pool, as every other query (:func:`run_read`). After a failure the own connections are
      tried again :data:`RETRY_AFTER_S` seconds later.
    """

    #: Asynchronous PostgreSQL connections for introspection.
    PG_CONNECTIONS = 2
    #: Seconds to use the pool only, after the own connection failed.
    RETRY_AFTER_S = 10.0
    #: Busy timeout of the SQLite reader, in milliseconds.
    SQLITE_BUSY_TIMEOUT_MS = 50

    def __init__(self, db_pool: DatabasePool, reactor: Any):
        self._db_pool = db_pool
        self._reactor = reactor
        self._sqlite_conn: Any = None
        self._pg_conns: list[Any] | None = None
        self._pg_busy: dict[int, int] = {}
        self._connect_waiters: list[defer.Deferred[None]] = []
        self._failed_at: float | None = None

    @property
    def _engine(self) -> Any:
        return self._db_pool.engine

    async def lookup(
        self, access_tokens: list[str], query: IntrospectionQuery = ACCESS_TOKEN_QUERY
    ) -> dict[str, Any]:
        """``{token: query.decode(row)}`` for the tokens found (OAuth 2.0 access tokens unless
        ``query`` says otherwise; it must be in :data:`INTROSPECTION_QUERIES`)."""
        engine = self._engine
        if self._failed_at is not None and self._reactor.seconds() - self._failed_at < self.RETRY_AFTER_S:
            return await self._on_pool(access_tokens, query)
        if engine.name == "sqlite" and not getattr(engine, "is_in_memory", True):
            return await self._on_sqlite(access_tokens, query)
        if engine.name == "postgres" and getattr(self._reactor, "running", False):
            return await self._on_postgres(access_tokens, query)
        return await self._on_pool(access_tokens, query)

    async def _on_pool(self, access_tokens: list[str], query: IntrospectionQuery) -> dict[str, Any]:
        return await run_read(
            self._db_pool, f"introspect_{query.name}", introspection_many_txn, query, access_tokens
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
                for query in INTROSPECTION_QUERIES.values():
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

        class ReaderConnection(txpostgres.Connection):  # type: ignore[misc]
            def doRead(self) -> Any:
                try:
                    super().doRead()
                except Exception as e:
                    logger.warning("Lost an introspection connection to PostgreSQL: %s", e)
                    return e  # the reactor drops the descriptor and calls connectionLost
                return None

        _READER_CONNECTION = ReaderConnection
    return _READER_CONNECTION
