# SPDX-License-Identifier: AGPL-3.0-only
"""The base of every store: a database pool and a clock (STYLE.md §5.9)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mas_twisted.storage.database import DatabasePool
    from mas_twisted.util.clock import Clock


class SQLBaseStore:
    """A store: ``async`` methods over one :class:`DatabasePool`.

    Reusable transaction pieces are module-level ``<verb>_<x>_txn(txn, ...)`` functions, so
    that a larger transaction in another store (or ``config sync``) can compose them.
    """

    def __init__(self, db_pool: DatabasePool, clock: Clock):
        self.db_pool = db_pool
        self._clock = clock


def db_bool(value: Any) -> bool:
    """A boolean column as Python ``bool`` (SQLite returns 0/1)."""
    return bool(value)


def db_json(value: Any) -> Any:
    """A JSON ``TEXT`` column, parsed (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def to_db_json(value: Any) -> str | None:
    """A value for a JSON ``TEXT`` column: compact, with sorted keys so equal values store equal text."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
