# SPDX-License-Identifier: AGPL-3.0-only
"""SQLite through the standard library: the embedded engine (``database.uri: sqlite:///mas.db``).

Every connection gets ``PRAGMA foreign_keys = ON`` (off by default in SQLite),
``journal_mode = WAL`` (readers do not block the writer) and a busy timeout of
``database.connect_timeout`` seconds. The driver's implicit transactions are switched off
(``isolation_level=None``) and :meth:`begin` issues ``BEGIN`` itself, so that schema changes
in a delta are transactional too. The pool keeps one connection (``cp_max=1``): SQLite has one
writer, and a second connection would only wait for the lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from mas_twisted.api.errors import DatabaseError
from mas_twisted.storage.engines._base import BaseEngine

if TYPE_CHECKING:
    from mas_twisted.config.database import DatabaseConfig

logger = logging.getLogger(__name__)

_RETRYABLE_MESSAGES = ("database is locked", "database table is locked")


class Sqlite3Engine(BaseEngine):
    name = "sqlite"
    module_name = "sqlite3"
    supports_returning = sqlite3.sqlite_version_info >= (3, 35, 0)
    supports_skip_locked = False

    def __init__(self, db_config: DatabaseConfig):
        super().__init__(db_config, sqlite3)
        assert db_config.sqlite_path is not None
        self.path: str = db_config.sqlite_path

    @property
    def is_in_memory(self) -> bool:
        return self.path == ":memory:"

    def connect_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        path = self.path if self.is_in_memory else os.path.expanduser(self.path)
        return (path,), {"check_same_thread": False, "isolation_level": None}

    def pool_args(self) -> dict[str, Any]:
        return {"cp_min": 1, "cp_max": 1}

    def connect(self) -> Any:
        if not self.is_in_memory:
            directory = os.path.dirname(os.path.abspath(os.path.expanduser(self.path)))
            if not os.path.isdir(directory):
                raise DatabaseError(
                    f"cannot open the SQLite database {self.path}: directory {directory} does not exist"
                )
        return super().connect()

    def on_new_connection(self, conn: Any) -> None:
        cur = conn.cursor()
        try:
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute(f"PRAGMA busy_timeout = {int(self.config.connect_timeout) * 1000}")
            if not self.is_in_memory:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    def begin(self, cursor: Any) -> None:
        cursor.execute("BEGIN")

    def begin_write(self, cursor: Any) -> None:
        # Take the write lock now rather than on the first write: two processes that both
        # read first and then write would otherwise deadlock ("database is locked").
        cursor.execute("BEGIN IMMEDIATE")

    def convert_param_style(self, sql: str) -> str:
        return sql

    def in_list_clause(self, column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
        values = list(values)
        if not values:
            # "IN ()" is a syntax error in SQLite; match nothing instead.
            return "0 = 1", []
        return f"{column} IN ({', '.join('?' for _ in values)})", values

    def is_deadlock(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc) for m in _RETRYABLE_MESSAGES)

    def server_version(self, conn: Any) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def table_exists_sql(self) -> str:
        return "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
