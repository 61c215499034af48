# SPDX-License-Identifier: AGPL-3.0-only
"""The two database engines the service runs on: PostgreSQL (production) and SQLite (embedded).

An engine hides what differs between the two DB-API drivers (Synapse's
``synapse/storage/engines/``): the parameter style (all our SQL uses ``?``; psycopg2 wants
``%s``), which errors are worth retrying (serialization failures, deadlocks, a locked SQLite
file), what every new connection needs, and the few SQL features that differ
(``= ANY(?)`` against ``IN (?, ?, …)``, ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mas_twisted.storage.engines._base import BaseEngine

if TYPE_CHECKING:
    from mas_twisted.config.database import DatabaseConfig

__all__ = ["BaseEngine", "create_engine"]


def create_engine(db_config: DatabaseConfig) -> BaseEngine:
    """The engine for a ``database`` config section (``db_config.engine_name``)."""
    if db_config.engine_name == "sqlite":
        from mas_twisted.storage.engines.sqlite import Sqlite3Engine

        return Sqlite3Engine(db_config)
    from mas_twisted.storage.engines.postgres import PostgresEngine

    return PostgresEngine(db_config)
