# SPDX-License-Identifier: AGPL-3.0-only
"""The mas_twisted test suite: ``cd /work/main && .venv/bin/python -m pytest tests -q``.

Tests touching the database run on SQLite; set
``MAS_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres`` to run the same suite
on PostgreSQL. Shared helpers: ``tests/unittest.py`` (``MasTestCase``), ``tests/server.py``
(fake reactor, threadless pool, ``make_request``) and ``tests/utils.py`` (test databases).
"""
