# SPDX-License-Identifier: AGPL-3.0-only
"""PostgreSQL through psycopg2: the production engine (MAS itself runs only on PostgreSQL).

The connection comes from ``database.uri`` (any libpq URI, ``postgresql://`` meaning the
local socket with libpq's defaults) or from the separate keys, as MAS's
``database_connect_options_from_config`` builds it: a ``socket`` directory wins over a
``host`` (sqlx connects through the socket when both are set), and the password was read
from ``password_file`` when the configuration loaded. Connection errors become one-line
:class:`~mas_twisted.api.errors.DatabaseError` s (:meth:`BaseEngine.connect`). libpq reads TLS material from files only,
so inline PEM (``ssl_ca``, ``ssl_certificate``, ``ssl_key``) is written once to private
temporary files.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from mas_twisted.storage.engines._base import BaseEngine

if TYPE_CHECKING:
    from mas_twisted.config.database import DatabaseConfig

logger = logging.getLogger(__name__)

#: serialization_failure and deadlock_detected (PostgreSQL error codes, appendix A).
_RETRYABLE_PGCODES = frozenset({"40001", "40P01"})

_ISOLATION_LEVELS = {
    None: "DEFAULT",
    "read committed": "READ COMMITTED",
    "repeatable read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


class PostgresEngine(BaseEngine):
    name = "postgres"
    module_name = "psycopg2"
    supports_returning = True
    supports_skip_locked = True
    recycles_connections = True

    def __init__(self, db_config: DatabaseConfig):
        import psycopg2

        super().__init__(db_config, psycopg2)
        self._pem_dir: str | None = None

    def connect_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        c = self.config
        kwargs: dict[str, Any] = {}
        args: tuple[Any, ...] = ()
        if c.uri is not None:
            args = (c.uri,)
        else:
            kwargs["application_name"] = "matrix-authentication-service"
            # libpq takes a socket directory as the host. As with sqlx (MAS), a socket
            # wins over a host when both are set.
            host = c.socket if c.socket is not None else c.host
            if host is not None:
                kwargs["host"] = host
            if c.port is not None:
                kwargs["port"] = c.port
            if c.username is not None:
                kwargs["user"] = c.username
            # Read from password_file when the configuration was loaded.
            if c.password is not None:
                kwargs["password"] = c.password
            if c.database is not None:
                kwargs["dbname"] = c.database
        if c.ssl_mode is not None:
            kwargs["sslmode"] = c.ssl_mode
        for pem, path, key in (
            (c.ssl_ca, c.ssl_ca_file, "sslrootcert"),
            (c.ssl_certificate, c.ssl_certificate_file, "sslcert"),
            (c.ssl_key, c.ssl_key_file, "sslkey"),
        ):
            if pem is not None:
                kwargs[key] = self._pem_file(key, pem)
            elif path is not None:
                kwargs[key] = path
        if c.connect_timeout > 0:
            kwargs["connect_timeout"] = c.connect_timeout
        return args, kwargs

    def pool_args(self) -> dict[str, Any]:
        # adbapi keeps one connection per pool thread and cp_reconnect replaces one that
        # died; DatabasePool replaces the ones past max_lifetime or idle_timeout.
        return {**super().pool_args(), "cp_reconnect": True}

    def on_new_connection(self, conn: Any) -> None:
        conn.set_session(autocommit=False)
        # MAS does the same after connecting: a pooler may hand over a connection that
        # still listens on channels of a previous client.
        cur = conn.cursor()
        try:
            cur.execute("UNLISTEN *")
        finally:
            cur.close()
        conn.commit()

    def convert_param_style(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def in_list_clause(self, column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def is_deadlock(self, exc: BaseException) -> bool:
        return getattr(exc, "pgcode", None) in _RETRYABLE_PGCODES

    def set_isolation_level(self, conn: Any, level: str | None) -> None:
        try:
            value = _ISOLATION_LEVELS[level]
        except KeyError:
            raise ValueError(f"unknown isolation level {level!r}")
        conn.set_session(isolation_level=value)

    def server_version(self, conn: Any) -> str:
        version = conn.server_version  # e.g. 150020
        return f"PostgreSQL {version // 10000}.{version % 10000}"

    def table_exists_sql(self) -> str:
        return "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"

    def _pem_file(self, key: str, pem: str) -> str:
        if self._pem_dir is None:
            self._pem_dir = tempfile.mkdtemp(prefix="mas-db-tls-")
            atexit.register(shutil.rmtree, self._pem_dir, True)
        path = os.path.join(self._pem_dir, key + ".pem")
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
        return path
