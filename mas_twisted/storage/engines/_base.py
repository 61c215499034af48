# SPDX-License-Identifier: AGPL-3.0-only
"""What every database engine provides (Synapse's ``BaseDatabaseEngine``)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mas_twisted.api.errors import DatabaseError

if TYPE_CHECKING:
    from mas_twisted.config.database import DatabaseConfig


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (drivers add context on further lines),
    or its class name when it has no message: for one-line operator-facing errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class BaseEngine(abc.ABC):
    """One DB-API driver and the SQL dialect that goes with it."""

    #: ``"postgres"`` or ``"sqlite"``, as in ``DatabaseConfig.engine_name``.
    name: str
    #: The import name adbapi loads (``"psycopg2"`` / ``"sqlite3"``).
    module_name: str
    #: ``INSERT … RETURNING`` / ``UPDATE … RETURNING`` work.
    supports_returning: bool = True
    #: ``SELECT … FOR UPDATE SKIP LOCKED`` works (PostgreSQL only; SQLite has one writer anyway).
    supports_skip_locked: bool = False
    #: Pooled connections are replaced after ``max_lifetime`` / ``idle_timeout`` (network servers only).
    recycles_connections: bool = False

    def __init__(self, db_config: DatabaseConfig, module: ModuleType):
        self.config = db_config
        self.module = module

    # -- connecting -----------------------------------------------------------------------
    @abc.abstractmethod
    def connect_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments for ``module.connect`` (and adbapi's pool)."""

    def pool_args(self) -> dict[str, Any]:
        """``cp_*`` arguments for :class:`twisted.enterprise.adbapi.ConnectionPool`."""
        return {
            "cp_min": min(self.config.min_connections, self.config.max_connections),
            "cp_max": self.config.max_connections,
        }

    def connect(self) -> Any:
        """A new blocking connection, prepared by :meth:`on_new_connection` (migrations, CLI).

        Raises:
            DatabaseError: the driver could not connect, or could not set the connection up;
                the message is one line naming the database.
        """
        args, kwargs = self.connect_args()
        try:
            conn = self.module.connect(*args, **kwargs)
        except self.module.Error as e:
            raise DatabaseError(f"could not connect to the {self.config.describe_target()}: {first_line(e)}")
        try:
            self.on_new_connection(conn)
        except self.module.Error as e:
            conn.close()
            raise DatabaseError(
                f"could not set up a connection to the {self.config.describe_target()}: {first_line(e)}"
            )
        return conn

    @abc.abstractmethod
    def on_new_connection(self, conn: Any) -> None:
        """Per-connection setup, run once on every new DB-API connection."""

    def begin(self, cursor: Any) -> None:
        """Start a transaction on a connection that has none (a no-op where the driver does it)."""

    def begin_write(self, cursor: Any) -> None:
        """Start a transaction that will write, taking the write lock up front where that matters."""
        self.begin(cursor)

    # -- SQL dialect ----------------------------------------------------------------------
    @abc.abstractmethod
    def convert_param_style(self, sql: str) -> str:
        """Rewrite our ``?`` placeholders into the driver's style."""

    @abc.abstractmethod
    def in_list_clause(self, column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
        """``column`` matches any of ``values``: a SQL fragment and its arguments."""

    # -- errors ---------------------------------------------------------------------------
    @abc.abstractmethod
    def is_deadlock(self, exc: BaseException) -> bool:
        """Whether ``exc`` means "another transaction got in the way; run this one again"."""

    def is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, self.module.IntegrityError)

    # -- isolation ------------------------------------------------------------------------
    def set_isolation_level(self, conn: Any, level: str | None) -> None:
        """Run the next transactions at ``level`` (``"serializable"``, ``"repeatable read"``), or the default.

        A no-op on SQLite, whose transactions are always serializable.
        """

    def server_version(self, conn: Any) -> str:
        """A human-readable server version, for the startup log."""
        return "unknown"

    @abc.abstractmethod
    def table_exists_sql(self) -> str:
        """A query with one ``?`` (a table name) returning a row if that table exists."""

    @staticmethod
    def split_statements(script: str) -> Sequence[str]:
        """Split a delta file into statements.

        The splitter is naive on purpose (like Synapse's): it drops ``--`` comment lines and
        cuts at every ``;`` that ends a line. A statement therefore must not contain a ``;``
        at the end of a line (a trigger body, say); write a ``.py`` delta for those.
        """
        statements: list[str] = []
        current: list[str] = []
        for line in script.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("--"):
                continue
            current.append(line)
            if stripped.endswith(";"):
                statement = "\n".join(current).strip().rstrip(";").strip()
                if statement:
                    statements.append(statement)
                current = []
        tail = "\n".join(current).strip()
        if tail:
            statements.append(tail)
        return statements
