# SPDX-License-Identifier: AGPL-3.0-only
"""bench/syn2mas: ``mas-cli syn2mas migrate`` of a large, synthetic Synapse database (issue 16).

A PostgreSQL database with the subset of Synapse's schema that syn2mas reads
(:data:`tests.syn2mas._synapse.SCHEMA_SUBSET`) is filled by ``generate_series`` with
``--users`` users (each with a bcrypt hash and one device), ``--tokens`` access tokens without a
refresh token spread over those devices, and ``--pairs`` refresh pairs (a refresh token and its
access token, on the first devices); then migrated into a new database of ours (PostgreSQL, or
SQLite with ``--target sqlite``) by ``mas-cli syn2mas migrate`` in a subprocess. Printed: the
rows written per table, the wall time, rows/s, and the migration's peak RSS (``ru_maxrss`` of
the child).

    .venv/bin/python bench/syn2mas/run.py                       # 1M users, 2M tokens, 500k pairs
    .venv/bin/python bench/syn2mas/run.py --users 100000 --tokens 150000 --pairs 50000

Both databases are created on ``MAS_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

os.environ.setdefault("MAS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

from tests.integration._harness import PostgresDatabase  # noqa: E402
from tests.syn2mas._synapse import SCHEMA_SUBSET, SERVER_NAME  # noqa: E402

PEPPER = "bench-pepper"
# One real bcrypt hash for every user (cost 4): hashing a million would be the benchmark.
HASH = "$2b$04$Epmr48Qe7s6WQ.oM22Yi/OY.XiV.ZvkwAwEg2Bj84gXJ.9.ZU4F2."


def fill(dsn: str, users: int, tokens: int, pairs: int) -> float:
    import psycopg2

    started = time.monotonic()
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    for statement in SCHEMA_SUBSET:
        cur.execute(statement)
    cur.execute(
        "INSERT INTO users (name, password_hash, creation_ts, admin, deactivated, locked, is_guest)"
        " SELECT '@user' || i || ':' || %s, %s, 1600000000 + i, (i %% 1000 = 0)::int, 0, false, 0"
        " FROM generate_series(1, %s) AS i",
        (SERVER_NAME, HASH, users),
    )
    cur.execute(
        "INSERT INTO devices (user_id, device_id, display_name, last_seen, ip, user_agent, hidden)"
        " SELECT '@user' || i || ':' || %s, 'DEV' || i, 'Phone of user ' || i, 1700000000000 + i,"
        " '10.' || (i / 65536 %% 256) || '.' || (i / 256 %% 256) || '.' || (i %% 256), 'Element/1.0', false"
        " FROM generate_series(1, %s) AS i",
        (SERVER_NAME, users),
    )
    cur.execute(
        "INSERT INTO access_tokens (id, user_id, device_id, token, valid_until_ms, last_validated)"
        " SELECT i, '@user' || ((i - 1) %% %s + 1) || ':' || %s, 'DEV' || ((i - 1) %% %s + 1),"
        " 'syt_' || md5(i::text) || '_' || i, NULL, 1700000000000 + i FROM generate_series(1, %s) AS i",
        (users, SERVER_NAME, users, tokens),
    )
    cur.execute(
        "INSERT INTO refresh_tokens (id, user_id, device_id, token)"
        " SELECT i, '@user' || i || ':' || %s, 'DEV' || i, 'syr_' || md5(i::text) || '_' || i"
        " FROM generate_series(1, %s) AS i",
        (SERVER_NAME, pairs),
    )
    cur.execute(
        "INSERT INTO access_tokens (id, user_id, device_id, token, valid_until_ms, last_validated,"
        " refresh_token_id, used)"
        " SELECT %s + i, '@user' || i || ':' || %s, 'DEV' || i, 'syt_r' || md5(i::text) || '_' || i,"
        " 1900000000000, 1700000000000 + i, i, false FROM generate_series(1, %s) AS i",
        (tokens, SERVER_NAME, pairs),
    )
    conn.commit()
    cur.execute("ANALYZE")
    conn.commit()
    conn.close()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=1_500_000, help="access tokens without a refresh token")
    parser.add_argument(
        "--pairs", type=int, default=500_000, help="refresh pairs (each with an access token)"
    )
    parser.add_argument("--target", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.pairs > args.users:
        parser.error("--pairs must not exceed --users (one pair per device)")

    synapse_db = PostgresDatabase()
    target_db = PostgresDatabase() if args.target == "postgres" else None
    workdir = Path(tempfile.mkdtemp(prefix="bench-syn2mas-"))
    try:
        print(
            f"Filling Synapse's database: {args.users} users and devices, {args.tokens + args.pairs} access tokens, {args.pairs} refresh tokens"
        )
        print(f"  filled in {fill(synapse_db.dsn, args.users, args.tokens, args.pairs):.1f}s")
        hs = workdir / "homeserver.yaml"
        hs.write_text(
            yaml.safe_dump(
                {
                    "server_name": SERVER_NAME,
                    "password_config": {"pepper": PEPPER},
                    "database": {"name": "psycopg2", "args": {}},
                }
            )
        )
        uri = target_db.uri if target_db is not None else f"sqlite:///{workdir / 'mas.db'}"
        config = workdir / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database": {"uri": uri},
                    "secrets": {"encryption": "0123456789abcdef" * 4},
                    "matrix": {"homeserver": SERVER_NAME, "secret": "s", "endpoint": "http://127.0.0.1:9/"},
                    "passwords": {
                        "schemes": [
                            {
                                "version": 1,
                                "algorithm": "bcrypt",
                                "unicode_normalization": True,
                                "secret": PEPPER,
                            },
                            {"version": 2, "algorithm": "argon2id"},
                        ]
                    },
                }
            )
        )
        # The schema first, so that the timing is the migration's.
        subprocess.run(
            [str(REPO / ".venv/bin/mas-cli"), "-c", str(config), "database", "migrate"],
            check=True,
            capture_output=True,
        )
        argv = [
            str(REPO / ".venv/bin/mas-cli"),
            "-c",
            str(config),
            "syn2mas",
            "--synapse-config",
            str(hs),
            "--synapse-database-uri",
            synapse_db.uri,
            "migrate",
        ]
        started = time.monotonic()
        out = subprocess.run(
            argv, capture_output=True, text=True, env={**os.environ, "MAS_LOG_LEVEL": "info"}
        )
        wall = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sys.stdout.write(out.stdout)
        if out.returncode != 0:
            sys.stderr.write(out.stderr[-5000:])
            print(f"migrate exited with {out.returncode}")
            return 1
        for line in out.stderr.splitlines():
            if "syn2mas.migrate" in line:
                print("  " + line.split(": ", 1)[-1])
        rows = args.users * 3 + args.tokens + args.pairs * 2
        print(
            f"wall time {wall:.1f}s for {rows} rows written ({rows / wall:.0f} rows/s), peak RSS {peak_mb:.0f} MB"
        )
        return 0
    finally:
        if not args.keep:
            synapse_db.drop()
            if target_db is not None:
                target_db.drop()


if __name__ == "__main__":
    sys.exit(main())
