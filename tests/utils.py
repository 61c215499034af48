# SPDX-License-Identifier: AGPL-3.0-only
"""Test databases, on SQLite by default and on PostgreSQL when ``MAS_TEST_POSTGRES_DSN`` is set.

Like Synapse's ``tests/utils.py::setupdb``, the schema is built once per process and every
test gets a copy of it:

- SQLite: one migrated in-memory *template* connection per process; each test's pool opens
  its own ``:memory:`` database and fills it with ``template.backup(conn)``.
- PostgreSQL (``MAS_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres``): a base
  database ``mas_test_base_<pid>_<hex>`` is created and migrated once per process (and
  dropped at exit); each test runs ``CREATE DATABASE t_<hex> TEMPLATE <base>`` and drops it in
  cleanup. The DSN names the database used for these administrative statements.

Both run the same deltas, so one suite covers both engines.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

from twisted.enterprise import adbapi

from mas_twisted.config.database import DatabaseConfig
from mas_twisted.storage.database import DatabasePool
from mas_twisted.storage.engines import BaseEngine, create_engine
from mas_twisted.storage.prepare_database import prepare_database_on_connection

POSTGRES_DSN_ENV = "MAS_TEST_POSTGRES_DSN"


def postgres_dsn() -> str | None:
    return os.environ.get(POSTGRES_DSN_ENV) or None


def use_postgres() -> bool:
    return postgres_dsn() is not None


def engine_name() -> str:
    """``"postgres"`` or ``"sqlite"``: the engine this test run uses."""
    return "postgres" if use_postgres() else "sqlite"


def make_db_config(section: dict[str, Any]) -> DatabaseConfig:
    """A :class:`DatabaseConfig` from a ``database:`` mapping, without the rest of the config."""
    from mas_twisted.config._base import Reader

    config = DatabaseConfig()
    config.read_config(Reader(section, ("database",)), {"database": section})
    return config


# -- SQLite ----------------------------------------------------------------------------------
_sqlite_template: sqlite3.Connection | None = None


def sqlite_template() -> sqlite3.Connection:
    """The migrated in-memory database every SQLite test copies (built on first use)."""
    global _sqlite_template
    if _sqlite_template is None:
        engine = create_engine(make_db_config({"uri": "sqlite:///:memory:"}))
        conn = engine.connect()
        prepare_database_on_connection(conn, engine)
        _sqlite_template = conn
    return _sqlite_template


# -- PostgreSQL ------------------------------------------------------------------------------
_pg_base: str | None = None


def _pg_params() -> dict[str, Any]:
    import psycopg2.extensions

    dsn = postgres_dsn()
    assert dsn is not None
    return psycopg2.extensions.parse_dsn(dsn)


def _pg_admin_connect() -> Any:
    import psycopg2

    conn = psycopg2.connect(**_pg_params())
    conn.autocommit = True
    return conn


def pg_section(dbname: str) -> dict[str, Any]:
    """A ``database:`` mapping (the separate keys) for ``dbname`` on the test server."""
    params = _pg_params()
    section: dict[str, Any] = {"database": dbname}
    if params.get("host"):
        section["host"] = params["host"]
    if params.get("port"):
        section["port"] = int(params["port"])
    if params.get("user"):
        section["username"] = params["user"]
    if params.get("password"):
        section["password"] = params["password"]
    return section


def pg_base_database() -> str:
    """The migrated base database of this process (built on first use, dropped at exit)."""
    global _pg_base
    if _pg_base is None:
        name = f"mas_test_base_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = _pg_admin_connect()
        try:
            admin.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        atexit.register(drop_pg_database, name)
        engine = create_engine(make_db_config(pg_section(name)))
        conn = engine.connect()
        try:
            prepare_database_on_connection(conn, engine)
        finally:
            conn.close()
        _pg_base = name
    return _pg_base


def create_pg_database(name: str, template: str) -> None:
    admin = _pg_admin_connect()
    try:
        admin.cursor().execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        admin.close()


def drop_pg_database(name: str) -> None:
    admin = _pg_admin_connect()
    try:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


# -- One test's database ---------------------------------------------------------------------
class TestDatabase:
    """The database of one test: a fresh copy of the migrated schema.

    ``config_section`` is the ``database:`` mapping that points at it; :meth:`make_pool`
    builds a pool over it whose work runs on ``reactor`` (see :func:`tests.server.make_threadless_pool`).
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.engine_name = engine_name()
        self._pg_name: str | None = None
        self._pools: list[DatabasePool] = []
        if self.engine_name == "postgres":
            base = pg_base_database()
            self._pg_name = f"t_{uuid.uuid4().hex}"
            create_pg_database(self._pg_name, base)
            self.config_section: dict[str, Any] = pg_section(self._pg_name)
        else:
            sqlite_template()
            self.config_section = {"uri": "sqlite:///:memory:"}

    def connection_setup(self, engine: BaseEngine) -> Callable[[Any], None]:
        """The ``cp_openfun`` for a pool on this database."""
        if self.engine_name == "sqlite" and getattr(engine, "is_in_memory", False):
            template = sqlite_template()

            def _open(conn: Any) -> None:
                template.backup(conn)
                engine.on_new_connection(conn)

            return _open
        return engine.on_new_connection

    def make_pool(self, db_config: DatabaseConfig, reactor: Any) -> DatabasePool:
        from tests.server import make_threadless_pool

        engine = create_engine(db_config)
        args, kwargs = engine.connect_args()
        conn_pool = adbapi.ConnectionPool(
            engine.module_name,
            *args,
            cp_openfun=self.connection_setup(engine),
            cp_reactor=reactor,
            cp_noisy=False,
            **engine.pool_args(),
            **kwargs,
        )
        make_threadless_pool(conn_pool, reactor)
        pool = DatabasePool(engine, conn_pool)
        self._pools.append(pool)
        return pool

    def cleanup(self) -> None:
        for pool in self._pools:
            pool.close()
        self._pools.clear()
        if self._pg_name is not None:
            drop_pg_database(self._pg_name)
            self._pg_name = None


class EmptyDatabase:
    """A database without any schema, for migration tests: a new SQLite file in ``directory``,
    or a new PostgreSQL database (dropped by :meth:`cleanup`)."""

    __test__ = False

    def __init__(self, directory: str):
        self.engine_name = engine_name()
        self._pg_name: str | None = None
        if self.engine_name == "postgres":
            self._pg_name = f"t_{uuid.uuid4().hex}"
            create_pg_database(self._pg_name, "template0")
            self.config_section: dict[str, Any] = pg_section(self._pg_name)
        else:
            os.makedirs(directory, exist_ok=True)
            self.config_section = {"uri": "sqlite:///" + os.path.abspath(os.path.join(directory, "mas.db"))}
        self.db_config = make_db_config(self.config_section)

    def connect(self) -> Any:
        """A new blocking connection to it (the caller closes it)."""
        return create_engine(self.db_config).connect()

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on a connection of its own and commit; the rows, if any."""
        engine = create_engine(self.db_config)
        conn = engine.connect()
        try:
            cur = conn.cursor()
            cur.execute(engine.convert_param_style(sql), args)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description is not None else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def cleanup(self) -> None:
        if self._pg_name is not None:
            drop_pg_database(self._pg_name)
            self._pg_name = None


def temp_dir(test: Any) -> str:
    """A new temporary directory, removed when ``test`` (a trial ``TestCase``) finishes.

    Unlike trial's ``mktemp()``, which is relative to the working directory, this leaves
    nothing in the checkout when the suite runs under pytest.
    """
    path = tempfile.mkdtemp(prefix="mas-test-")
    test.addCleanup(shutil.rmtree, path, True)
    return path
