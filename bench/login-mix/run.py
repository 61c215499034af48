# SPDX-License-Identifier: AGPL-3.0-only
"""bench/login-mix: introspection latency with and without concurrent password logins.

Password hashing is slow on purpose (argon2id, m=19456 t=2 p=1: about 17 ms of CPU), and it
runs on a bounded thread pool of its own so that a burst of logins queues instead of starving
the reactor. This measures that: one ``twistd mas`` (SQLite or PostgreSQL) with COUNT minted
access tokens and one user with a password, then

1. ``POST /oauth2/introspect`` under wrk alone (as bench/introspect: 32 connections, the
   homeserver's Bearer secret, rotating tokens): the idle p50/p99;
2. the same while LOGINS threads log in through the real ``/login`` form in a loop
   (``logins.py``: GET the form, POST it with the CSRF token, expect 303 + session cookie);
3. alone again, so that the idle figure is the mean of a run before and one after (the first
   uses of the tokens, written by the activity tracker, fall mostly in the first run).

It prints each, the ratio of the p99 with logins to the idle p99 (target: ≤ 2×) and the
logins completed. The login rate
limits are raised in the bench's configuration, or every login after the third would be
refused. Usage::

    .venv/bin/python bench/login-mix/run.py [--engine sqlite|postgres] [--count 20000]
        [--duration 15] [--logins 20] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from bench.introspect.mint import mint_tokens  # noqa: E402
from bench.introspect.run import DEFAULT_POSTGRES_DSN, Target, ensure_tools, run_wrk  # noqa: E402
from tests.integration._harness import PostgresDatabase, base_config, free_port  # noqa: E402

USERNAME = "bench-login"
PASSWORD = "correct horse battery staple bench"
UNLIMITED = {"burst": 1_000_000, "per_second": 1_000_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--count", type=int, default=20_000, help="live access tokens to introspect")
    parser.add_argument("--duration", type=int, default=15, help="seconds of measured load per phase")
    parser.add_argument(
        "--logins", type=int, default=20, help="concurrent password logins in the second phase"
    )
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("MAS_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    ensure_tools()

    with tempfile.TemporaryDirectory(prefix="bench-login-mix-") as tmp:
        folder = Path(tmp)
        cleanup = None
        if args.engine == "postgres":
            db = PostgresDatabase()
            uri, cleanup = db.uri, db.drop
        else:
            uri = f"sqlite:///{folder / 'mas.db'}"
        try:
            run(folder, uri, args)
        finally:
            if cleanup is not None:
                cleanup()


def run(folder: Path, database_uri: str, args: argparse.Namespace) -> None:
    import yaml

    port = free_port()
    config = base_config(folder, database_uri=database_uri)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": "human"}, {"name": "oauth"}, {"name": "health"}],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ],
    }
    config["rate_limiting"] = {"login": {"per_ip": UNLIMITED, "per_account": UNLIMITED}}
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    tokens = folder / "tokens.txt"
    mint_tokens(config_path, args.count, tokens)
    mas_cli = str(Path(sys.executable).parent / "mas-cli")
    # No homeserver runs in this bench: the username check is skipped.
    registered = subprocess.run(
        [
            mas_cli,
            "manage",
            "register-user",
            "-c",
            str(config_path),
            "--yes",
            USERNAME,
            "-p",
            PASSWORD,
            "--ignore-password-complexity",
            "--skip-homeserver-check",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if registered.returncode != 0:
        raise SystemExit(f"register-user failed:\n{registered.stdout}{registered.stderr}")

    twistd = str(Path(sys.executable).parent / "twistd")
    target = Target(
        "mas",
        [twistd, "--nodaemon", "--pidfile=", "-l", "/dev/null", "mas", "-c", str(config_path)],
        port,
        "/oauth2/introspect",
        f"Bearer {config['matrix']['secret']}",
        tokens,
        folder,
        env={"MAS_LOG_LEVEL": "warning"},
    )
    try:
        target.start()
        idle = run_wrk(target, args.duration, args.connections)
        # wrk warms up for 3 s before measuring: keep logging in until it is done.
        logins = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "logins.py"),
                str(port),
                USERNAME,
                PASSWORD,
                str(args.logins),
                str(args.duration + 5),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        mixed = run_wrk(target, args.duration, args.connections)
        login_report, _ = logins.communicate(timeout=args.duration + 120)
        idle_after = run_wrk(target, args.duration, args.connections)
    finally:
        target.stop()

    def line(name: str, r: dict[str, float]) -> str:
        return (
            f"{name:22s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
            f"  errors {int(r['errors'])}"
        )

    print(f"engine {args.engine}, {args.count} tokens, {args.connections} wrk connections")
    print(line("introspection, idle", idle))
    print(line(f"with {args.logins} logins", mixed))
    print(line("idle again", idle_after))
    print(login_report.strip())
    idle_p99 = (idle["p99_ms"] + idle_after["p99_ms"]) / 2
    print(f"p99 ratio (with logins / mean idle; target ≤ 2×): {mixed['p99_ms'] / idle_p99:.2f}×")


if __name__ == "__main__":
    main()
