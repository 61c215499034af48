# SPDX-License-Identifier: AGPL-3.0-only
"""pytest hooks shared by the whole suite: which database engine this run uses."""

from __future__ import annotations

from tests.utils import POSTGRES_DSN_ENV, engine_name


def pytest_report_header(config: object) -> str:
    if engine_name() == "postgres":
        return f"mas_twisted test database: PostgreSQL (from {POSTGRES_DSN_ENV})"
    return f"mas_twisted test database: SQLite in memory (set {POSTGRES_DSN_ENV} for PostgreSQL)"
