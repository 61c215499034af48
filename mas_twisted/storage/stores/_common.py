# SPDX-License-Identifier: AGPL-3.0-only
"""Transaction pieces shared by the stores (grants, sessions, tokens).

- Rows as model objects: every model in :mod:`mas_twisted.types.oauth2` has ``COLUMNS`` and
  ``from_row``, so "the one row with this key, or ``None``" is :func:`select_model_txn`.
- State changes: each is a conditional ``UPDATE`` of one row, checked by its row count
  (:func:`update_one_if_txn`). Two requests racing for the same change both run it; the
  database serialises them (PostgreSQL's row lock, SQLite's write lock) and the loser's
  condition no longer matches, so it writes nothing. :func:`transition` raises
  :class:`~mas_twisted.types.oauth2.InvalidTransitionError` for the loser.
- Cleanup, following MAS's jobs: rows deleted in batches of ``limit`` from a ``since``
  cursor, either by a timestamp column (:func:`cleanup_by_timestamp_txn`) or by id, ULIDs
  sorting by creation time (:func:`cleanup_by_id_txn`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from mas_twisted.storage.database import DatabasePool, LoggingTransaction, make_in_list_sql_clause
from mas_twisted.types.oauth2 import InvalidTransitionError

M = TypeVar("M", covariant=True)


class Model(Protocol[M]):
    """A model class that maps to a table's columns."""

    COLUMNS: tuple[str, ...]

    def from_row(self, row: Sequence[Any]) -> M: ...


# -- reads ---------------------------------------------------------------------------------
def select_model_txn(
    txn: LoggingTransaction, table: str, keyvalues: Mapping[str, Any], model: Model[M]
) -> M | None:
    """The one row of ``table`` matching ``keyvalues`` as a ``model``, or ``None``."""
    row = DatabasePool.simple_select_one_txn(txn, table, keyvalues, model.COLUMNS, allow_none=True)
    return model.from_row(row) if row else None


async def select_model(
    db_pool: DatabasePool, desc: str, table: str, keyvalues: Mapping[str, Any], model: Model[M]
) -> M | None:
    """:func:`select_model_txn` in a transaction of its own."""
    return await db_pool.runInteraction(desc, select_model_txn, table, keyvalues, model)


# -- state changes -------------------------------------------------------------------------
def update_one_if_txn(
    txn: LoggingTransaction,
    table: str,
    key: tuple[str, Any],
    values: Mapping[str, Any],
    condition: str,
    condition_args: Sequence[Any] = (),
) -> bool:
    """``UPDATE table SET values WHERE key AND condition``; whether exactly one row changed.

    ``condition`` is SQL written by the caller (column names and ``?`` placeholders, whose
    values are ``condition_args``), never text from a request.
    """
    column, row_id = key
    assignments = ", ".join(f"{name} = ?" for name in values)
    txn.execute(
        f"UPDATE {table} SET {assignments} WHERE {column} = ? AND {condition}",
        [*values.values(), row_id, *condition_args],
    )
    return txn.rowcount == 1


async def transition(
    db_pool: DatabasePool,
    desc: str,
    table: str,
    key: tuple[str, Any],
    values: Mapping[str, Any],
    condition: str,
    error: str,
    condition_args: Sequence[Any] = (),
) -> None:
    """:func:`update_one_if_txn` in a transaction of its own.

    Raises:
        InvalidTransitionError: with ``error``, when the row is not (or no longer) in the
            state ``condition`` describes; nothing is written then.
    """

    def _transition_txn(txn: LoggingTransaction) -> None:
        if not update_one_if_txn(txn, table, key, values, condition, condition_args):
            raise InvalidTransitionError(error)

    await db_pool.runInteraction(desc, _transition_txn)


# -- cleanup -------------------------------------------------------------------------------
def delete_by_ids_txn(txn: LoggingTransaction, table: str, id_column: str, ids: Sequence[str]) -> int:
    """Delete the rows of ``table`` whose ``id_column`` is in ``ids``; how many."""
    if not ids:
        return 0
    clause, args = make_in_list_sql_clause(txn.engine, id_column, ids)
    txn.execute(f"DELETE FROM {table} WHERE {clause}", args)
    return txn.rowcount


def delete_selected_txn(txn: LoggingTransaction, table: str, id_column: str) -> tuple[int, int | None]:
    """Delete the rows the last ``SELECT id, at`` on ``txn`` returned.

    Returns:
        How many rows were deleted and the latest ``at`` among them (the next ``since``).
    """
    rows = txn.fetchall()
    if not rows:
        return 0, None
    deleted = delete_by_ids_txn(txn, table, id_column, [r[0] for r in rows])
    return deleted, max(int(r[1]) for r in rows)


def cleanup_by_timestamp_txn(
    txn: LoggingTransaction,
    table: str,
    id_column: str,
    at_column: str,
    since: int | None,
    until: int,
    limit: int,
) -> tuple[int, int | None]:
    """Delete up to ``limit`` rows whose ``at_column`` is in ``[since, until)``, oldest first.

    Returns:
        How many rows were deleted and the latest ``at_column`` among them (the next ``since``).
    """
    where = f"{at_column} IS NOT NULL AND {at_column} < ?"
    args: list[Any] = [until]
    if since is not None:
        where += f" AND {at_column} >= ?"
        args.append(since)
    txn.execute(
        f"SELECT {id_column}, {at_column} FROM {table} WHERE {where} ORDER BY {at_column} LIMIT ?",
        args + [limit],
    )
    return delete_selected_txn(txn, table, id_column)


def cleanup_by_id_txn(
    txn: LoggingTransaction, table: str, id_column: str, since: str | None, until: str, limit: int
) -> tuple[int, str | None]:
    """Delete up to ``limit`` rows with ``since < id <= until``, in id order; ``(count, last id)``."""
    where = f"{id_column} <= ?"
    args: list[Any] = [until]
    if since is not None:
        where += f" AND {id_column} > ?"
        args.append(since)
    txn.execute(f"SELECT {id_column} FROM {table} WHERE {where} ORDER BY {id_column} LIMIT ?", args + [limit])
    ids = [row[0] for row in txn.fetchall()]
    if not ids:
        return 0, None
    return delete_by_ids_txn(txn, table, id_column, ids), max(ids)


def clear_inactive_ips_txn(
    txn: LoggingTransaction, table: str, id_column: str, since: int | None, threshold: int, limit: int
) -> tuple[int, int | None]:
    """Clear the address of up to ``limit`` sessions of ``table`` last active in
    ``[since, threshold)``, oldest first (MAS's ``cleanup-inactive-*-session-ips`` jobs).

    Returns:
        How many sessions were changed and the latest ``last_active_at`` among them.
    """
    where = "last_active_ip IS NOT NULL AND last_active_at IS NOT NULL AND last_active_at < ?"
    args: list[Any] = [threshold]
    if since is not None:
        where += " AND last_active_at >= ?"
        args.append(since)
    txn.execute(
        f"SELECT {id_column}, last_active_at FROM {table} WHERE {where} ORDER BY last_active_at LIMIT ?",
        args + [limit],
    )
    rows = txn.fetchall()
    if not rows:
        return 0, None
    clause, in_args = make_in_list_sql_clause(txn.database_engine, id_column, [r[0] for r in rows])
    txn.execute(f"UPDATE {table} SET last_active_ip = NULL WHERE {clause}", in_args)
    return txn.rowcount, max(int(r[1]) for r in rows)


#: Rows per ``UPDATE … FROM (VALUES …)`` when recording activity.
ACTIVITY_CHUNK = 500


def inactive_sessions_page_txn(
    txn: LoggingTransaction,
    table: str,
    id_column: str,
    threshold: int,
    after: str | None,
    limit: int,
    *,
    join: str = "",
    condition: str = "",
) -> list[tuple[str, str | None]]:
    """``(session id, user id)`` of up to ``limit`` valid sessions of ``table`` (alias ``s``)
    last active before ``threshold``, by id after ``after`` (the inactive-session expiry's
    pages). ``join`` and ``condition`` (``AND …``) are SQL written by the caller."""
    where = f"s.finished_at IS NULL AND s.last_active_at IS NOT NULL AND s.last_active_at < ?{condition}"
    args: list[Any] = [threshold]
    if after is not None:
        where += f" AND s.{id_column} > ?"
        args.append(after)
    txn.execute(
        f"SELECT s.{id_column}, s.user_id FROM {table} AS s{join} WHERE {where} ORDER BY s.{id_column} LIMIT ?",
        [*args, limit],
    )
    return [(row[0], row[1]) for row in txn.fetchall()]


#: ``(session id, user id)`` of an inactive-session expiry page.
Page = list[tuple[str, str | None]]


def expire_sessions_page_txn(
    txn: LoggingTransaction,
    page_txn: Callable[[LoggingTransaction, int, str | None, int], Page],
    finish_txn: Callable[[LoggingTransaction, str, int], object],
    threshold: int,
    after: str | None,
    limit: int,
    now: int,
    also: Callable[[LoggingTransaction, Page], object],
) -> Page:
    """One page of the inactive-session expiry: the page (``page_txn``), ``also(txn, page)``
    (the jobs that follow it) and each of its sessions finished at ``now`` (``finish_txn``),
    all in ``txn``."""
    page = page_txn(txn, threshold, after, limit)
    also(txn, page)
    for session_id, _user_id in page:
        finish_txn(txn, session_id, now)
    return page


def record_sessions_activity_txn(
    txn: LoggingTransaction, table: str, id_column: str, batch: Mapping[str, tuple[int, str | None]]
) -> int:
    """Write ``{session_id: (at_ms, ip)}`` to the sessions of ``table`` with one statement per
    :data:`ACTIVITY_CHUNK` sessions: ``last_active_at`` only moves forward, and the address is
    kept when none was seen. How many sessions were updated."""
    updated = 0
    # Sorted, so that two flushes lock rows in the same order.
    items = sorted(batch.items())
    for start in range(0, len(items), ACTIVITY_CHUNK):
        chunk = items[start : start + ACTIVITY_CHUNK]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        args: list[Any] = []
        for session_id, (at, ip) in chunk:
            args.extend((session_id, at, ip))
        txn.execute(
            f"UPDATE {table} SET"
            f" last_active_at = CASE WHEN {table}.last_active_at IS NULL"
            f" OR {table}.last_active_at < t.column2 THEN t.column2"
            f" ELSE {table}.last_active_at END,"
            f" last_active_ip = COALESCE(t.column3, {table}.last_active_ip)"
            f" FROM (VALUES {values}) AS t"
            f" WHERE {table}.{id_column} = t.column1",
            args,
        )
        updated += txn.rowcount
    return updated


class ExpiresInactiveSessions:
    """For the stores whose sessions expire when inactive (``experimental.inactive_session_expiration``,
    ``queue/jobs/sessions.py``): ``EXPIRY`` names the transaction, the page and how one session
    is finished."""

    db_pool: DatabasePool
    EXPIRY: ClassVar[
        tuple[
            str,
            Callable[[LoggingTransaction, int, str | None, int], Page],
            Callable[[LoggingTransaction, str, int], object],
        ]
    ]

    async def expire_inactive_sessions_page(
        self,
        threshold: int,
        after: str | None,
        limit: int,
        now: int,
        also: Callable[[LoggingTransaction, Page], object],
    ) -> Page:
        """Finish one page of the sessions last active before ``threshold`` at ``now``, in one
        transaction with ``also(txn, page)`` (the jobs that follow); the page."""
        desc, page_txn, finish_txn = self.EXPIRY
        return await self.db_pool.runInteraction(
            desc, expire_sessions_page_txn, page_txn, finish_txn, threshold, after, limit, now, also
        )
