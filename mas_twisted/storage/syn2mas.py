# SPDX-License-Identifier: AGPL-3.0-only
"""Writing a Synapse migration into our database (MAS's ``crates/syn2mas/src/mas_writer/``,
inventory §13).

How a run is kept safe, on both engines:

- **One run at a time.** :class:`MigrationLock`: a session advisory lock on PostgreSQL (as
  MAS), an exclusive ``flock`` on ``<database>.syn2mas.lock`` beside a SQLite file.
- **Only into an empty database.** :func:`first_non_empty_table_txn` looks at every table a
  migration writes (MAS's ``mas_pre_migration_checks``).
- **All or nothing.** A run first commits its row in ``syn2mas_runs``; then everything it
  migrates is written in one transaction, which also sets that row's ``finished_at``. A run
  killed at any point leaves no migrated row behind (the database rolls the transaction back)
  and a ``syn2mas_runs`` row without ``finished_at``, which the next run reports
  (:func:`interrupted_runs_txn`) before starting over. A dry run rolls its transaction back and
  deletes its row. (MAS instead renames its tables and drops their constraints while it
  writes; a kill then leaves them so, to be resumed or reverted by hand.)
- **Batches.** Rows arrive in batches and are inserted per batch (``execute_values`` on
  PostgreSQL, ``executemany`` on SQLite), so memory stays flat however large the database.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from typing import Any

from mas_twisted.api.errors import DatabaseError
from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.engines._base import BaseEngine, first_line

logger = logging.getLogger(__name__)

#: Columns written per table, in the order the migration produces each row's values.
COLUMNS: dict[str, tuple[str, ...]] = {
    "users": (
        "user_id",
        "username",
        "created_at",
        "locked_at",
        "deactivated_at",
        "can_request_admin",
        "is_guest",
    ),
    "user_passwords": ("user_password_id", "user_id", "hashed_password", "version", "created_at"),
    "user_emails": ("user_email_id", "user_id", "email", "created_at"),
    "user_unsupported_third_party_ids": ("user_id", "medium", "address", "created_at"),
    "upstream_oauth_links": (
        "upstream_oauth_link_id",
        "upstream_oauth_provider_id",
        "user_id",
        "subject",
        "created_at",
    ),
    "compat_sessions": (
        "compat_session_id",
        "user_id",
        "device_id",
        "is_synapse_admin",
        "created_at",
        "last_active_at",
        "last_active_ip",
        "user_agent",
        "human_name",
    ),
    "compat_access_tokens": (
        "compat_access_token_id",
        "compat_session_id",
        "access_token",
        "created_at",
        "expires_at",
    ),
    "compat_refresh_tokens": (
        "compat_refresh_token_id",
        "compat_session_id",
        "compat_access_token_id",
        "refresh_token",
        "created_at",
    ),
}

#: The tables that must be empty before a migration (MAS's ``MAS_TABLES_AFFECTED_BY_MIGRATION``).
TARGET_TABLES: tuple[str, ...] = tuple(COLUMNS) + ("user_sessions", "oauth2_sessions")

#: The PostgreSQL advisory lock key of a run (any constant of our own; MAS hashes a name).
_ADVISORY_LOCK_KEY = 0x5359_4E32_4D41_5300 >> 1


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One field of PostgreSQL's COPY text format."""
    kind = type(value)
    if kind is str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_COPY_ESCAPES)
        return value
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if kind is int:
        return str(value)
    return str(value).translate(_COPY_ESCAPES)


def insert_rows_txn(txn: LoggingTransaction, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Insert a batch of ``rows`` (values in :data:`COLUMNS` order) into ``table``: ``COPY ...
    FROM STDIN`` on PostgreSQL (its bulk path, several times faster than ``INSERT``),
    ``executemany`` on SQLite."""
    if not rows:
        return
    columns = COLUMNS[table]
    names = ", ".join(columns)
    if txn.engine.name == "postgres":
        import io

        data = "".join("\t".join(map(_copy_field, row)) + "\n" for row in rows)
        txn.txn.copy_expert(f"COPY {table} ({names}) FROM STDIN", io.StringIO(data))
    else:
        placeholders = ", ".join("?" for _ in columns)
        txn.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)


def pause_constraints_txn(txn: LoggingTransaction) -> list[str]:
    """PostgreSQL: drop the foreign keys and the secondary indexes of the tables a migration
    writes, so that rows load without a check or an index update each (MAS's constraint
    pausing); the statements that put them back, for :func:`restore_constraints_txn`.

    Primary keys and unique constraints stay (other tables' foreign keys may need them). Done
    inside the migration's transaction, the drops are undone with it if the run dies; MAS,
    which drops them in a committed transaction, has to record them in tables of its own.
    Nothing is paused on SQLite.
    """
    if txn.engine.name != "postgres":
        return []
    tables = list(COLUMNS)
    restore: list[str] = []
    txn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(?) ORDER BY 1, 2",
        (tables,),
    )
    foreign_keys = [(str(r[0]), str(r[1]), str(r[2])) for r in txn.fetchall()]
    txn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid::regclass::text = ANY(?) AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        (tables,),
    )
    indexes = [(str(r[0]), str(r[1])) for r in txn.fetchall()]
    for table, name, definition in foreign_keys:
        txn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        txn.execute(f"DROP INDEX {name}")
        restore.insert(0, definition)  # indexes first: the foreign keys' checks use them
    logger.info("Paused %d foreign keys and %d indexes for the load", len(foreign_keys), len(indexes))
    return restore


def restore_constraints_txn(txn: LoggingTransaction, statements: Sequence[str]) -> None:
    """Rebuild what :func:`pause_constraints_txn` dropped (a unique index or a foreign key that
    the loaded rows break fails the transaction)."""
    for statement in statements:
        logger.info("Restoring: %s", statement)
        txn.execute(statement)


def first_non_empty_table_txn(txn: LoggingTransaction) -> str | None:
    """The first table a migration writes that already has a row, or None."""
    for table in TARGET_TABLES:
        txn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        if txn.fetchone() is not None:
            return table
    return None


def interrupted_runs_txn(txn: LoggingTransaction) -> list[tuple[str, int, bool]]:
    """``(run id, started_at, dry_run)`` of the runs that never finished."""
    txn.execute(
        "SELECT syn2mas_run_id, started_at, dry_run FROM syn2mas_runs WHERE finished_at IS NULL ORDER BY started_at"
    )
    return [(str(r[0]), int(r[1]), bool(r[2])) for r in txn.fetchall()]


def finished_run_txn(txn: LoggingTransaction) -> tuple[str, int] | None:
    """The run that completed a migration into this database, if one did."""
    txn.execute(
        "SELECT syn2mas_run_id, finished_at FROM syn2mas_runs WHERE finished_at IS NOT NULL AND NOT dry_run"
        " ORDER BY finished_at LIMIT 1"
    )
    row = txn.fetchone()
    return (str(row[0]), int(row[1])) if row else None


def forget_interrupted_runs_txn(txn: LoggingTransaction) -> None:
    txn.execute("DELETE FROM syn2mas_runs WHERE finished_at IS NULL")


def start_run_txn(txn: LoggingTransaction, run_id: str, now_ms: int, dry_run: bool) -> None:
    txn.execute(
        "INSERT INTO syn2mas_runs (syn2mas_run_id, started_at, dry_run) VALUES (?, ?, ?)",
        (run_id, now_ms, dry_run),
    )


def finish_run_txn(txn: LoggingTransaction, run_id: str, now_ms: int) -> None:
    txn.execute("UPDATE syn2mas_runs SET finished_at = ? WHERE syn2mas_run_id = ?", (now_ms, run_id))
    if txn.rowcount != 1:
        raise DatabaseError(f"the syn2mas run {run_id} disappeared from syn2mas_runs")


def delete_run_txn(txn: LoggingTransaction, run_id: str) -> None:
    txn.execute("DELETE FROM syn2mas_runs WHERE syn2mas_run_id = ?", (run_id,))


class MigrationLock:
    """Held by one run against one target database; :meth:`acquire` or fail at once.

    PostgreSQL: ``pg_try_advisory_lock`` on a connection of the lock's own, held until
    :meth:`release` (or until the process dies, when the server drops the session). SQLite: an
    exclusive, non-blocking ``flock`` on ``<path>.syn2mas.lock`` (released by the kernel when
    the process dies).
    """

    def __init__(self, engine: BaseEngine):
        self._engine = engine
        self._conn: Any = None
        self._file: Any = None

    def acquire(self) -> bool:
        if self._engine.name == "postgres":
            try:
                self._conn = self._engine.connect()
                self._conn.autocommit = True
                cur = self._conn.cursor()
                cur.execute("SELECT pg_try_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
                locked = bool(cur.fetchone()[0])
                cur.close()
            except self._engine.module.Error as e:
                raise DatabaseError(f"cannot lock the database for syn2mas: {first_line(e)}") from None
            if not locked:
                self._conn.close()
                self._conn = None
            return locked
        path = getattr(self._engine, "path", ":memory:")
        if path == ":memory:":
            return True
        self._file = open(os.path.expanduser(path) + ".syn2mas.lock", "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                cur = self._conn.cursor()
                cur.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
                cur.close()
            finally:
                self._conn.close()
                self._conn = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
