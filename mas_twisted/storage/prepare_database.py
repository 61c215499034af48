# SPDX-License-Identifier: AGPL-3.0-only
"""Create or upgrade the database schema from the delta files in ``sql/delta/``.

The layout follows Synapse's (``docs/development/database_schema.md``, STYLE.md §1.4, §5.7):

- ``sql/delta/<NN>/<MM>_<what>.sql`` runs on both engines; ``.sql.postgres`` and
  ``.sql.sqlite`` on one engine only; ``<MM>_<what>.py`` defines
  ``run_upgrade(txn, engine)`` for what SQL alone cannot do. Folders are applied in
  numeric order up to :data:`~mas_twisted.storage.schema.SCHEMA_VERSION`, files in name
  order within a folder.
- Each file runs in its own transaction and is recorded in
  ``applied_schema_deltas(version, file)``, so it is never run twice and a released file
  must never be edited (fix it with a new delta). ``schema_version`` holds the version and
  the compat version (see :mod:`mas_twisted.storage.schema`); a database whose compat
  version is newer than this code is refused with a :class:`DatabaseError`.
- :func:`check_schema` applies nothing: it refuses a database whose compat version is newer
  than this code, or which lacks any delta file of this code. The server calls it instead
  of :func:`prepare_database` under ``--no-migrate``, as MAS refuses to start with pending
  migrations then.
- A driver error (the database cannot be reached, a file cannot be written) becomes a
  :class:`DatabaseError` whose message is one line naming the database.
- ``.sql`` files are split into statements naively: ``--`` comment lines are dropped and
  a statement ends at a line ending with ``;``. Use a ``.py`` delta for a statement with a
  ``;`` inside (a trigger body).

Everything here blocks: the server calls :func:`prepare_database` before it listens, and
``mas-cli database migrate`` calls it on its own. On PostgreSQL an advisory lock keeps two
processes from migrating at once; on SQLite each file takes the write lock
(``BEGIN IMMEDIATE``) and checks again that nobody applied it meanwhile.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mas_twisted.api.errors import DatabaseError
from mas_twisted.storage.database import LoggingTransaction, run_txn
from mas_twisted.storage.engines import BaseEngine, create_engine
from mas_twisted.storage.engines._base import first_line
from mas_twisted.storage.schema import SCHEMA_COMPAT_VERSION, SCHEMA_VERSION
from mas_twisted.util.paths import data_dir

if TYPE_CHECKING:
    from mas_twisted.config.database import DatabaseConfig

logger = logging.getLogger(__name__)

#: pg_advisory_lock key held while migrating: the bytes of "mas-sch" as a 64-bit integer.
_MIGRATION_LOCK_KEY = int.from_bytes(b"mas-sch", "big")

_ENGINE_SUFFIXES = {".sql.postgres": "postgres", ".sql.sqlite": "sqlite"}

_BOOKKEEPING_SQL = (
    """
    CREATE TABLE IF NOT EXISTS schema_version (
        singleton TEXT NOT NULL DEFAULT 'X' UNIQUE CHECK (singleton = 'X'),
        version INTEGER NOT NULL,
        compat_version INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS applied_schema_deltas (
        version INTEGER NOT NULL,
        file TEXT NOT NULL,
        applied_at BIGINT NOT NULL,
        UNIQUE (version, file)
    )
    """,
)


class Delta(NamedTuple):
    version: int
    #: ``<NN>/<file name>``, as recorded in ``applied_schema_deltas.file``.
    file: str
    path: Path


def delta_files(
    engine_name: str, delta_dir: Path | None = None, schema_version: int = SCHEMA_VERSION
) -> list[Delta]:
    """Every delta for ``engine_name`` up to ``schema_version``, in the order they apply."""
    root = delta_dir if delta_dir is not None else data_dir("sql") / "delta"
    if not root.is_dir():
        raise DatabaseError(f"the schema files are missing: {root} is not a directory")
    folders = sorted((int(p.name), p) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    out: list[Delta] = []
    for version, folder in folders:
        if version > schema_version:
            continue
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if not path.is_file() or path.name.startswith("."):
                continue
            if not _applies_to(path.name, engine_name):
                continue
            out.append(Delta(version, f"{folder.name}/{path.name}", path))
    return out


def _applies_to(name: str, engine_name: str) -> bool:
    for suffix, engine in _ENGINE_SUFFIXES.items():
        if name.endswith(suffix):
            return engine == engine_name
    return name.endswith((".sql", ".py"))


def prepare_database(db_config: DatabaseConfig) -> list[str]:
    """Bring the configured database up to this code's schema; the delta files applied.

    Raises:
        DatabaseError: the database cannot be reached, a delta failed, or the schema is
            newer than this code.
    """
    engine = create_engine(db_config)
    conn = engine.connect()
    try:
        logger.info(
            "Checking the schema of the %s (%s)", db_config.describe_target(), engine.server_version(conn)
        )
        return prepare_database_on_connection(conn, engine)
    finally:
        conn.close()


def prepare_database_on_connection(
    conn: Any,
    engine: BaseEngine,
    *,
    delta_dir: Path | None = None,
    schema_version: int = SCHEMA_VERSION,
    compat_version: int = SCHEMA_COMPAT_VERSION,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """:func:`prepare_database` on an open connection (tests pass their own folder and versions)."""
    deltas = delta_files(engine.name, delta_dir, schema_version)
    try:
        with _migration_lock(conn, engine):
            run_txn(conn, engine, "create_schema_bookkeeping", _create_bookkeeping_txn, write=True)
            current = run_txn(conn, engine, "get_schema_version", _get_schema_version_txn)
            if current is not None:
                _check_compat(*current, schema_version)
            applied: list[str] = []
            for delta in deltas:
                try:
                    if run_txn(
                        conn,
                        engine,
                        "apply_schema_delta",
                        functools.partial(_apply_delta_txn, delta=delta, clock=clock),
                        write=True,
                    ):
                        applied.append(delta.file)
                except engine.module.Error as e:
                    raise DatabaseError(
                        f"schema delta {delta.file} failed and was rolled back: {first_line(e)}"
                    )
            run_txn(
                conn,
                engine,
                "set_schema_version",
                lambda txn: _set_schema_version_txn(txn, schema_version, compat_version),
                write=True,
            )
    except engine.module.Error as e:
        raise DatabaseError(
            f"could not prepare the schema of the {engine.config.describe_target()}: {first_line(e)}"
        )
    if applied:
        logger.info("Applied %d schema delta(s): %s", len(applied), ", ".join(applied))
    else:
        logger.info("The database schema is up to date")
    return applied


def check_schema(db_config: DatabaseConfig) -> None:
    """Refuse a database this code cannot run on without migrating it; changes nothing.

    Raises:
        DatabaseError: the database cannot be reached, has no schema, lacks a delta file
            of this code, or its compat version is newer than this code.
    """
    engine = create_engine(db_config)
    conn = engine.connect()
    try:
        check_schema_on_connection(conn, engine)
    finally:
        conn.close()


def check_schema_on_connection(
    conn: Any, engine: BaseEngine, *, delta_dir: Path | None = None, schema_version: int = SCHEMA_VERSION
) -> None:
    """:func:`check_schema` on an open connection (tests pass their own folder and version)."""
    deltas = delta_files(engine.name, delta_dir, schema_version)
    target = engine.config.describe_target()
    try:
        state = run_txn(conn, engine, "check_schema", _schema_state_txn, rollback=True)
    except engine.module.Error as e:
        raise DatabaseError(f"could not read the schema of the {target}: {first_line(e)}")
    if state is None:
        raise DatabaseError(
            f"the {target} has no schema yet: run `mas-cli database migrate`, or start without --no-migrate"
        )
    current, applied = state
    if current is not None:
        _check_compat(*current, schema_version)
    pending = [delta.file for delta in deltas if (delta.version, delta.file) not in applied]
    if pending:
        shown = ", ".join(pending[:3]) + (f" and {len(pending) - 3} more" if len(pending) > 3 else "")
        raise DatabaseError(
            f"the schema of the {target} is not up to date ({len(pending)} pending migration(s): {shown}): "
            "run `mas-cli database migrate` first, or start without --no-migrate to apply them"
        )


def _check_compat(db_version: int, db_compat: int, schema_version: int) -> None:
    if db_compat > schema_version:
        raise DatabaseError(
            f"the database schema (version {db_version}) needs code that understands schema version "
            f"{db_compat} or later, but this is schema version {schema_version}: upgrade mas-twisted, "
            "or restore the database backup taken before the upgrade"
        )


def _schema_state_txn(txn: LoggingTransaction) -> tuple[tuple[int, int] | None, set[tuple[int, str]]] | None:
    """The recorded (version, compat version) and applied deltas; None without bookkeeping tables."""
    for table in ("schema_version", "applied_schema_deltas"):
        txn.execute(txn.engine.table_exists_sql(), (table,))
        if txn.fetchone() is None:
            return None
    current = _get_schema_version_txn(txn)
    txn.execute("SELECT version, file FROM applied_schema_deltas")
    applied = {(int(version), str(file)) for version, file in txn.fetchall()}
    return current, applied


class _LockContext:
    def __init__(self, conn: Any, engine: BaseEngine):
        self.conn = conn
        self.engine = engine

    def __enter__(self) -> None:
        if self.engine.name == "postgres":
            cur = self.conn.cursor()
            cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
            cur.close()
            self.conn.commit()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self.engine.name != "postgres":
            return
        try:
            self.conn.rollback()
            cur = self.conn.cursor()
            cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
            cur.close()
            self.conn.commit()
        except self.engine.module.Error:
            if exc_type is None:
                raise
            # Already failing: that error matters, and closing the connection frees the lock.
            logger.debug("Could not release the migration lock", exc_info=True)


def _migration_lock(conn: Any, engine: BaseEngine) -> _LockContext:
    return _LockContext(conn, engine)


def _create_bookkeeping_txn(txn: LoggingTransaction) -> None:
    for sql in _BOOKKEEPING_SQL:
        txn.execute(sql)


def _get_schema_version_txn(txn: LoggingTransaction) -> tuple[int, int] | None:
    txn.execute("SELECT version, compat_version FROM schema_version")
    row = txn.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _set_schema_version_txn(txn: LoggingTransaction, version: int, compat_version: int) -> None:
    txn.execute("SELECT version, compat_version FROM schema_version")
    row = txn.fetchone()
    if row is None:
        txn.execute(
            "INSERT INTO schema_version (version, compat_version) VALUES (?, ?)", (version, compat_version)
        )
    else:
        # Never lower either: a newer release may have raised them, and an older one
        # running against the same database (allowed by the compat check) must not undo that.
        txn.execute(
            "UPDATE schema_version SET version = ?, compat_version = ?",
            (max(version, int(row[0])), max(compat_version, int(row[1]))),
        )


def _apply_delta_txn(txn: LoggingTransaction, delta: Delta, clock: Callable[[], float]) -> bool:
    txn.execute(
        "SELECT 1 FROM applied_schema_deltas WHERE version = ? AND file = ?", (delta.version, delta.file)
    )
    if txn.fetchone() is not None:
        return False
    logger.info("Applying schema delta %s", delta.file)
    if delta.path.name.endswith(".py"):
        _run_python_delta(txn, delta)
    else:
        for statement in _statements(delta.path):
            txn.execute(statement)
    txn.execute(
        "INSERT INTO applied_schema_deltas (version, file, applied_at) VALUES (?, ?, ?)",
        (delta.version, delta.file, int(clock() * 1000)),
    )
    return True


def _statements(path: Path) -> Iterator[str]:
    yield from BaseEngine.split_statements(path.read_text(encoding="utf-8"))


def _run_python_delta(txn: LoggingTransaction, delta: Delta) -> None:
    module_name = "mas_twisted_delta_" + delta.file.replace("/", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(module_name, delta.path)
    if spec is None or spec.loader is None:
        raise DatabaseError(f"cannot load schema delta {delta.file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_upgrade = getattr(module, "run_upgrade", None)
    if run_upgrade is None:
        raise DatabaseError(f"schema delta {delta.file} defines no run_upgrade(txn, engine)")
    run_upgrade(txn, txn.engine)
