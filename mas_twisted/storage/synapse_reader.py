# SPDX-License-Identifier: AGPL-3.0-only
"""Reading a Synapse database for syn2mas (MAS's ``crates/syn2mas/src/synapse_reader/``,
inventory §13, synapse-integration.md §7).

Everything is read inside one transaction, so that every table is seen at the same instant:
on PostgreSQL a ``REPEATABLE READ`` transaction (a snapshot taken at its first statement)
whose large reads go through server-side cursors (psycopg2 named cursors), so that memory does
not grow with the database; on SQLite (beyond MAS) a read transaction on a connection opened
read-only, whose cursors step through the file as rows are fetched.

For a real migration the Synapse tables are also locked against writers (``LOCK TABLE ... IN
EXCLUSIVE MODE NOWAIT``, as MAS does): a Synapse still running and writing makes it fail at
once instead of changing rows behind the snapshot. A check or a dry run only takes ``ACCESS
SHARE`` locks. Nothing here writes to Synapse's database.

Rows of dependent tables come with their owner's ``users`` columns (a ``LEFT JOIN``; a missing
owner is reported by the migration), so the migration keeps no per-user state.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self, TypeVar

from mas_twisted.api.errors import DatabaseError
from mas_twisted.storage.engines._base import first_line
from mas_twisted.types.synapse import (
    SynapseAccessTokenRow,
    SynapseDeviceRow,
    SynapseExternalIdRow,
    SynapseOwner,
    SynapseRefreshPairRow,
    SynapseThreepidRow,
    SynapseUserRow,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The tables a migration reads, locked for its duration (MAS's ``TABLES_TO_LOCK``).
TABLES = ("users", "user_threepids", "user_external_ids", "devices", "access_tokens", "refresh_tokens")

#: What an operator runs on Synapse's database to drop the links a previous delegation left
#: (the ``oauth-delegated`` error of ``check`` quotes it).
DELETE_OAUTH_DELEGATED_SQL = "DELETE FROM user_external_ids WHERE auth_provider = 'oauth-delegated';"

#: Rows fetched per round trip from a server-side cursor.
DEFAULT_BATCH_SIZE = 10_000

# The owner's columns, joined in from `users u`; see _owner().
_OWNER_COLUMNS = "u.name, u.creation_ts, u.admin, u.deactivated, u.is_guest, u.appservice_id"

# A device MAS migrates: not one of the hidden ones (cross-signing keys), not a guest's.
_VISIBLE_DEVICE = "NOT d.hidden AND d.device_id <> 'guest_device'"

_USERS_SQL = (
    "SELECT name, password_hash, admin, deactivated, locked, creation_ts, is_guest, appservice_id FROM users"
)

_THREEPIDS_SQL = (
    f"SELECT t.user_id, t.medium, t.address, t.added_at, {_OWNER_COLUMNS}"
    " FROM user_threepids t LEFT JOIN users u ON u.name = t.user_id"
)

_EXTERNAL_IDS_SQL = (
    f"SELECT e.user_id, e.auth_provider, e.external_id, {_OWNER_COLUMNS}"
    " FROM user_external_ids e LEFT JOIN users u ON u.name = e.user_id"
)

_DEVICES_SQL = (
    f"SELECT d.user_id, d.device_id, d.display_name, d.last_seen, d.ip, d.user_agent, {_OWNER_COLUMNS}"
    f" FROM devices d LEFT JOIN users u ON u.name = d.user_id WHERE {_VISIBLE_DEVICE}"
)

# Tokens without a refresh token and not a puppet's (admin "login as user" tokens are not
# migrated, as in MAS), whose device is one that is migrated, or that have no device at all.
# MAS joins every device here; only visible ones have a session to hang the token on.
_ACCESS_TOKENS_SQL = (
    f"SELECT a.user_id, a.device_id, a.token, a.valid_until_ms, a.last_validated, {_OWNER_COLUMNS}"
    " FROM access_tokens a"
    " JOIN devices d ON d.user_id = a.user_id AND d.device_id = a.device_id"
    " LEFT JOIN users u ON u.name = a.user_id"
    f" WHERE a.puppets_user_id IS NULL AND a.refresh_token_id IS NULL AND {_VISIBLE_DEVICE}"
    " UNION ALL"
    f" SELECT a.user_id, a.device_id, a.token, a.valid_until_ms, a.last_validated, {_OWNER_COLUMNS}"
    " FROM access_tokens a LEFT JOIN users u ON u.name = a.user_id"
    " WHERE a.puppets_user_id IS NULL AND a.refresh_token_id IS NULL AND a.device_id IS NULL"
)

# Refresh tokens with their access token, skipping a pair whose successor access token was
# already used (the client has moved on to the next pair).
_REFRESH_PAIRS_SQL = (
    "SELECT r.user_id, r.device_id, a.token, r.token, a.valid_until_ms, a.last_validated,"
    f" {_OWNER_COLUMNS}"
    " FROM refresh_tokens r"
    " JOIN devices d ON d.user_id = r.user_id AND d.device_id = r.device_id"
    " JOIN access_tokens a ON a.refresh_token_id = r.id AND a.user_id = r.user_id"
    " AND a.device_id = r.device_id"
    " LEFT JOIN access_tokens next_a ON next_a.refresh_token_id = r.next_token_id"
    " LEFT JOIN users u ON u.name = r.user_id"
    f" WHERE (next_a.used IS NULL OR NOT next_a.used) AND {_VISIBLE_DEVICE}"
)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _owner(row: Sequence[Any], start: int) -> SynapseOwner | None:
    name = row[start]
    if name is None:
        return None
    return SynapseOwner(
        name=name,
        creation_ts=row[start + 1],
        admin=bool(row[start + 2]),
        deactivated=bool(row[start + 3]),
        is_guest=bool(row[start + 4]),
        appservice_id=row[start + 5],
    )


def _user(row: Sequence[Any]) -> SynapseUserRow:
    return SynapseUserRow(
        name=row[0],
        password_hash=row[1] or None,
        admin=bool(row[2]),
        deactivated=bool(row[3]),
        locked=bool(row[4]),
        creation_ts=row[5],
        is_guest=bool(row[6]),
        appservice_id=row[7],
    )


def _threepid(row: Sequence[Any]) -> SynapseThreepidRow:
    return SynapseThreepidRow(
        user_id=row[0], medium=row[1], address=row[2], added_at=row[3], owner=_owner(row, 4)
    )


def _external_id(row: Sequence[Any]) -> SynapseExternalIdRow:
    return SynapseExternalIdRow(
        user_id=row[0], auth_provider=row[1], external_id=row[2], owner=_owner(row, 3)
    )


def _device(row: Sequence[Any]) -> SynapseDeviceRow:
    return SynapseDeviceRow(
        user_id=row[0],
        device_id=row[1],
        display_name=row[2],
        last_seen=row[3],
        ip=row[4],
        user_agent=row[5],
        owner=_owner(row, 6),
    )


def _access_token(row: Sequence[Any]) -> SynapseAccessTokenRow:
    return SynapseAccessTokenRow(
        user_id=row[0],
        device_id=row[1],
        token=row[2],
        valid_until_ms=row[3],
        last_validated=row[4],
        owner=_owner(row, 5),
    )


def _refresh_pair(row: Sequence[Any]) -> SynapseRefreshPairRow:
    return SynapseRefreshPairRow(
        user_id=row[0],
        device_id=row[1],
        access_token=row[2],
        refresh_token=row[3],
        valid_until_ms=row[4],
        last_validated=row[5],
        owner=_owner(row, 6),
    )


class SynapseReader:
    """One snapshot of a Synapse database; use as a context manager (or call :meth:`close`).

    Args:
        conn: a DB-API connection, not in autocommit mode.
        kind: ``postgres`` or ``sqlite``.
    """

    def __init__(self, conn: Any, kind: str, *, batch_size: int = DEFAULT_BATCH_SIZE):
        self._conn = conn
        self.kind = kind
        self.batch_size = batch_size
        self._cursors = 0

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open_postgres(
        cls, dsn: str, *, lock: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> SynapseReader:
        """Connect and start the snapshot; ``lock`` takes MAS's exclusive locks.

        Raises:
            DatabaseError: the database cannot be reached, is not Synapse's, or (with ``lock``)
                another session holds a conflicting lock: Synapse is probably running.
        """
        import psycopg2
        import psycopg2.extensions

        try:
            conn = psycopg2.connect(dsn, application_name="syn2mas")
        except psycopg2.Error as e:
            raise DatabaseError(f"cannot connect to Synapse's PostgreSQL database: {first_line(e)}") from None
        conn.set_session(
            isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, autocommit=False
        )
        reader = cls(conn, "postgres", batch_size=batch_size)
        mode = "EXCLUSIVE" if lock else "ACCESS SHARE"
        cur = conn.cursor()
        try:
            # Every row of a cursor is read: plan for the whole result (hash joins), not for
            # the first tenth of it (PostgreSQL's default for cursors, which picks nested loops).
            cur.execute("SET LOCAL cursor_tuple_fraction = 1.0")
            for table in TABLES:
                cur.execute(f"LOCK TABLE {table} IN {mode} MODE NOWAIT")
        except psycopg2.errors.LockNotAvailable:
            conn.close()
            raise DatabaseError(
                "cannot lock Synapse's tables: another session is using them. Stop Synapse"
                " (and its workers) before migrating."
            ) from None
        except psycopg2.errors.UndefinedTable as e:
            conn.close()
            raise DatabaseError(f"this is not a Synapse database: {first_line(e)}") from None
        except psycopg2.Error as e:
            conn.close()
            raise DatabaseError(f"cannot read Synapse's PostgreSQL database: {first_line(e)}") from None
        finally:
            if not cur.closed:
                cur.close()
        return reader

    @classmethod
    def open_sqlite(cls, path: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> SynapseReader:
        """Open ``path`` read-only and start the snapshot.

        Raises:
            DatabaseError: no such file, or not a Synapse database.
        """
        import os
        from urllib.parse import quote

        if not os.path.isfile(path):
            raise DatabaseError(f"Synapse's SQLite database {path} does not exist")
        try:
            conn = sqlite3.connect(
                f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, isolation_level=None
            )
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("BEGIN")
            missing = [
                t
                for t in TABLES
                if conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (t,)
                ).fetchone()
                is None
            ]
        except sqlite3.Error as e:
            raise DatabaseError(f"cannot read Synapse's SQLite database {path}: {first_line(e)}") from None
        if missing:
            conn.close()
            raise DatabaseError(f"{path} is not a Synapse database: no table {missing[0]}")
        return cls(conn, "sqlite", batch_size=batch_size)

    def close(self) -> None:
        try:
            self._conn.rollback()
        except Exception:
            pass
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgres" else sql

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> int:
        rows = self._query(sql, params)
        return int(rows[0][0] or 0) if rows else 0

    def _stream(self, sql: str, convert: Callable[[Sequence[Any]], T]) -> Iterator[list[T]]:
        """Batches of converted rows, read through a server-side cursor on PostgreSQL."""
        if self.kind == "postgres":
            self._cursors += 1
            cur = self._conn.cursor(name=f"syn2mas_{self._cursors}")
            cur.itersize = self.batch_size
        else:
            cur = self._conn.cursor()
        try:
            cur.execute(sql)
            while True:
                rows = cur.fetchmany(self.batch_size)
                if not rows:
                    return
                yield [convert(r) for r in rows]
        finally:
            cur.close()

    # -- the rows a migration copies --------------------------------------------------------
    def users(self) -> Iterator[list[SynapseUserRow]]:
        return self._stream(_USERS_SQL, _user)

    def threepids(self) -> Iterator[list[SynapseThreepidRow]]:
        return self._stream(_THREEPIDS_SQL, _threepid)

    def external_ids(self) -> Iterator[list[SynapseExternalIdRow]]:
        return self._stream(_EXTERNAL_IDS_SQL, _external_id)

    def devices(self) -> Iterator[list[SynapseDeviceRow]]:
        return self._stream(_DEVICES_SQL, _device)

    def access_tokens(self) -> Iterator[list[SynapseAccessTokenRow]]:
        return self._stream(_ACCESS_TOKENS_SQL, _access_token)

    def refresh_pairs(self) -> Iterator[list[SynapseRefreshPairRow]]:
        return self._stream(_REFRESH_PAIRS_SQL, _refresh_pair)

    # -- counts ------------------------------------------------------------------------------
    def estimated_rows(self, table: str) -> int:
        """About how many rows ``table`` has, for progress: PostgreSQL's planner estimate
        (``pg_class.reltuples``, as MAS), an exact count on SQLite."""
        if table not in TABLES:
            raise ValueError(table)
        if self.kind == "postgres":
            estimate = self._scalar(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = ?::regclass", (table,)
            )
            if estimate >= 0:
                return estimate
        return self._scalar(f"SELECT COUNT(*) FROM {table}")

    def count_guests(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM users WHERE is_guest <> 0")

    def count_non_email_threepids(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM user_threepids WHERE medium <> 'email'")

    def external_id_providers(self) -> list[tuple[str, int]]:
        """``(auth_provider, rows)`` of ``user_external_ids``, by provider."""
        rows = self._query(
            "SELECT auth_provider, COUNT(*) FROM user_external_ids GROUP BY auth_provider ORDER BY auth_provider"
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def users_of_other_servers(self, server_name: str, limit: int = 3) -> tuple[int, list[str]]:
        """Users whose id does not end in ``:server_name``: how many, and a few of them."""
        suffix = ":" + server_name
        where = " FROM users WHERE SUBSTR(name, LENGTH(name) - ? + 1) <> ? OR LENGTH(name) <= ?"
        params = (len(suffix), suffix, len(suffix) + 1)
        count = self._scalar("SELECT COUNT(*)" + where, params)
        examples = [
            r[0] for r in self._query("SELECT name" + where + " ORDER BY name LIMIT ?", (*params, limit))
        ]
        return count, examples

    def appservice_users_with_colon(self, server_name: str, limit: int = 3) -> tuple[int, list[str]]:
        """Appservice users whose localpart holds a ``:`` (MAS skips them)."""
        where = " FROM users WHERE appservice_id IS NOT NULL AND name LIKE ? ESCAPE '\\'"
        params = ("@%:%" + _like_escape(":" + server_name),)
        count = self._scalar("SELECT COUNT(*)" + where, params)
        examples = [
            r[0] for r in self._query("SELECT name" + where + " ORDER BY name LIMIT ?", (*params, limit))
        ]
        return count, examples

    def count_appservice_users(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM users WHERE appservice_id IS NOT NULL")

    def upper_case_users(self, limit: int = 3) -> tuple[int, list[str]]:
        """Users whose id has upper-case letters (Synapse refuses them today; old ones remain)."""
        where = " FROM users WHERE name <> LOWER(name) AND appservice_id IS NULL"
        count = self._scalar("SELECT COUNT(*)" + where)
        examples = [r[0] for r in self._query("SELECT name" + where + " ORDER BY name LIMIT ?", (limit,))]
        return count, examples

    def users_differing_only_by_case(self, limit: int = 3) -> tuple[int, list[str]]:
        """Groups of users whose ids are equal but for case: how many groups, a few lower-cased ids."""
        rows = self._query(
            "SELECT LOWER(name) FROM users WHERE appservice_id IS NULL GROUP BY LOWER(name) HAVING COUNT(*) > 1"
            " ORDER BY LOWER(name)"
        )
        return len(rows), [r[0] for r in rows[:limit]]

    def emails_shared_by_accounts(self, limit: int = 3) -> tuple[int, list[str]]:
        """Email addresses (compared without case) held by more than one account."""
        rows = self._query(
            "SELECT LOWER(address) FROM user_threepids WHERE medium = 'email'"
            " GROUP BY LOWER(address) HAVING COUNT(DISTINCT user_id) > 1 ORDER BY LOWER(address)"
        )
        return len(rows), [r[0] for r in rows[:limit]]

    def count_puppet_tokens(self) -> int:
        """Access tokens an admin made to act as a user (admin API ``login``): not migrated."""
        return self._scalar("SELECT COUNT(*) FROM access_tokens WHERE puppets_user_id IS NOT NULL")

    def count_deviceless_tokens(self) -> int:
        """Migrated tokens with no device (each becomes a session of its own)."""
        return self._scalar(
            "SELECT COUNT(*) FROM access_tokens"
            " WHERE device_id IS NULL AND puppets_user_id IS NULL AND refresh_token_id IS NULL"
        )

    def other_sessions(self) -> int:
        """Other connections to Synapse's PostgreSQL database (a running Synapse holds some);
        0 on SQLite, where nothing tells."""
        if self.kind != "postgres":
            return 0
        return self._scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    def count_users_without_password(self) -> int:
        return self._scalar(
            "SELECT COUNT(*) FROM users WHERE (password_hash IS NULL OR password_hash = '')"
            " AND appservice_id IS NULL AND deactivated = 0"
        )
