# SPDX-License-Identifier: AGPL-3.0-only
"""pytest hooks shared by the whole suite: which database engine this run uses."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.utils import POSTGRES_DSN_ENV, engine_name

# Property-based tests: bounded and reproducible in CI (a fixed derivation of the examples from
# each test's name), many more and freshly random with ``--hypothesis-profile=deep``.
settings.register_profile(
    "ci",
    max_examples=2000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile("deep", max_examples=20000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile("ci")


def pytest_report_header(config: object) -> str:
    if engine_name() == "postgres":
        return f"mas_twisted test database: PostgreSQL (from {POSTGRES_DSN_ENV})"
    return f"mas_twisted test database: SQLite in memory (set {POSTGRES_DSN_ENV} for PostgreSQL)"


def pytest_unconfigure(config: object) -> None:
    """Stop every Twisted thread pool still running when the session ends.

    Under trial the reactor's shutdown stops them; under pytest the reactor never shuts down,
    so the global reactor's pool and the pools of adbapi connection pools built by tests that
    use the real reactor keep non-daemon worker threads, and the interpreter would wait for
    them forever after the last test.
    """
    import gc

    from twisted.python.threadpool import ThreadPool

    for obj in gc.get_objects():
        if isinstance(obj, ThreadPool) and obj.started:
            obj.stop()
