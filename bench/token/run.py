# SPDX-License-Identifier: AGPL-3.0-only
"""bench/token: ``POST /oauth2/token`` under wrk, grant by grant, against oidc-provider in the same run.

Grants, each loaded with wrk (2 threads, 32 keep-alive connections) and ``token.lua``, the
client authenticated with ``client_secret_basic``:

- ``client_credentials``: the same form again and again (a new session and access token each);
- ``refresh``: refresh rotation, each request presenting a fresh refresh token once;
- ``code``: authorization code exchange (``openid``: access, refresh and ID token);
- ``device``: device code exchange of approved grants (``openid``, as ``code``).

Targets: ``oidc-provider`` (npm oidc-provider 9.13, in memory, ``oidc_provider.mjs``),
``mas-sqlite`` and ``mas-postgres`` (``twistd mas``, ``MAS_LOG_LEVEL=warning``). Refresh
tokens, codes and device codes are minted fresh for every round and never presented twice:
by the project's own models through its database pool for the mas targets (``mint.py``,
before the server starts), by the provider's own models for oidc-provider (at its start).

Before each measured run, one more item of the grant is exchanged and the access token it
returns must introspect active; after each round, every user session of the bench client
on the mas targets must hold exactly one live refresh token (none lost, none doubled by a
rotation). Printed per target and grant: requests/s, wrk's p50 and p99, the server's CPU
time per request (user + system from ``/proc``) and, for mas-postgres, that of the
PostgreSQL backends serving it; then the medians over the rounds and the ratios to
oidc-provider within each round. Usage::

    .venv/bin/python bench/token/run.py [--tokens 30000] [--duration 10] [--rounds 3]
        [--only TARGET ...] [--grants GRANT ...] [--compare REV] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from bench.introspect.run import (  # noqa: E402
    DEFAULT_POSTGRES_DSN,
    RESULT,
    Target,
    basic,
    checkout,
    cpu_seconds,
    ensure_tools,
    remove_checkout,
)
from tests.integration._harness import PostgresDatabase, base_config, free_port  # noqa: E402

GRANTS = ("client_credentials", "refresh", "code", "device")
#: The static client of the mas targets (config ``clients``) and its secret.
CLIENT_ID = "01HBENCHT0KENC1TENT00000AA"
CLIENT_SECRET = "bench-secret-bench-secret"
WARMUP_S = 2
THREADS = 2


class TokenTarget:
    """A server to load and how to mint a round's grants for it."""

    def __init__(
        self,
        target: Target,
        token_path: str,
        introspect: Callable[[str], bool],
        mint: Callable[[Path], None] | None,
        db: Any = None,
    ):
        self.target, self.token_path, self.introspect, self.mint, self.db = (
            target,
            token_path,
            introspect,
            mint,
            db,
        )

    @property
    def name(self) -> str:
        return self.target.name


def post_form(url: str, body: str, auth: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def check_grant(t: TokenTarget, grant: str, body: str) -> None:
    """Exchange ``body`` once: a 200 whose access token introspects active."""
    status, answer = post_form(f"http://127.0.0.1:{t.target.port}{t.token_path}", body, t.target.auth)
    if status != 200 or "access_token" not in answer:
        raise SystemExit(f"{t.name} {grant}: the check request answered {status} {answer}")
    if not t.introspect(answer["access_token"]):
        raise SystemExit(f"{t.name} {grant}: the access token it answered does not introspect active")


def split_bodies(source: Path, work: Path, grant: str) -> tuple[str, Path, Path]:
    """The check body, the warm-up file (a sixth) and the measured file of a minted grant."""
    if grant == "client_credentials":
        body = "grant_type=client_credentials"
        one = work / "client_credentials.txt"
        one.write_text(body + "\n")
        return body, one, one
    lines = source.read_text().split()
    warm = work / f"{grant}-warm.txt"
    main = work / f"{grant}-main.txt"
    cut = 1 + len(lines) // 6
    warm.write_text("\n".join(lines[1:cut]) + "\n")
    main.write_text("\n".join(lines[cut:]) + "\n")
    return lines[0], warm, main


def postgres_backends(t: TokenTarget) -> list[int]:
    """The pids of the PostgreSQL backends connected to a mas-postgres target's database."""
    if t.db is None:
        return []
    import psycopg2

    conn = psycopg2.connect(os.environ["MAS_TEST_POSTGRES_DSN"])
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (t.db.name,),
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def run_wrk(
    t: TokenTarget,
    grant: str,
    bodies: tuple[str, Path, Path],
    duration: int,
    connections: int,
    profile: Path | None = None,
) -> dict[str, float]:
    check, warm, main = bodies
    check_grant(t, grant, check)
    url = f"http://127.0.0.1:{t.target.port}"
    env = {**os.environ, "AUTHORIZATION": t.target.auth, "TOKEN_PATH": t.token_path, "THREADS": str(THREADS)}
    script = str(HERE / "token.lua")
    subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{WARMUP_S}s", "-s", script, url],
        env={**env, "BODIES_FILE": str(warm)},
        capture_output=True,
        check=True,
    )
    assert t.target.proc is not None
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(t.target.proc.pid),
                "--duration",
                str(duration),
                "--format",
                "raw",
                "--output",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
    backends = postgres_backends(t)
    cpu_before, db_before = cpu_seconds(t.target.proc.pid), _cpu(backends)
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
        env={**env, "BODIES_FILE": str(main)},
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = cpu_seconds(t.target.proc.pid) - cpu_before
    db_cpu = _cpu(backends) - db_before
    if spy is not None:
        _, err = spy.communicate(timeout=60)
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed on {t.name}: {err.decode(errors='replace')}")
    match = RESULT.search(out.stdout)
    if not match:
        raise SystemExit(f"no result from wrk for {t.name} {grant}:\n{out.stdout}\n{out.stderr}")
    requests, duration_us, errors, p50, p99 = map(int, match.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    result = {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
        "cpu_us": cpu / max(requests, 1) * 1e6,
        "db_cpu_us": db_cpu / max(requests, 1) * 1e6,
    }
    if grant != "client_credentials" and requests > len(main.read_text().split()):
        print(f"  ({t.name} {grant}: {requests} requests, more than the minted items: raise --tokens)")
    return result


def check_refresh_tokens(t: TokenTarget) -> None:
    """Every live user session of the bench client holds exactly one live refresh token."""
    sql = (
        "SELECT COUNT(*) FROM oauth2_sessions AS s WHERE s.oauth2_client_id = ? AND s.user_id IS NOT NULL"
        " AND s.finished_at IS NULL AND (SELECT COUNT(*) FROM oauth2_refresh_tokens AS r"
        " WHERE r.oauth2_session_id = s.oauth2_session_id"
        " AND r.consumed_at IS NULL AND r.revoked_at IS NULL) <> 1"
    )
    if t.db is not None:
        import psycopg2

        conn = psycopg2.connect(t.db.uri)
        sql = sql.replace("?", "%s")
    else:
        import sqlite3

        conn = sqlite3.connect(t.target.cwd / "mas.db")
    try:
        cur = conn.cursor()
        cur.execute(sql, (CLIENT_ID,))
        (bad,) = cur.fetchone()
        cur.execute(
            "SELECT COUNT(*) FROM oauth2_sessions WHERE oauth2_client_id = "
            + ("%s" if t.db is not None else "?")
            + " AND user_id IS NOT NULL",
            (CLIENT_ID,),
        )
        (total,) = cur.fetchone()
    finally:
        conn.close()
    if bad:
        raise SystemExit(f"{t.name}: {bad} of {total} sessions do not hold exactly one live refresh token")
    print(f"  {t.name}: all {total} user sessions hold exactly one live refresh token")


def oidc_provider_target(work: Path, tokens: int) -> TokenTarget:
    port = free_port()
    folder = work / "oidc-provider"
    folder.mkdir()
    auth = basic("bench", CLIENT_SECRET)
    target = Target(
        "oidc-provider",
        ["node", str(HERE / "oidc_provider.mjs"), str(port), str(tokens), str(folder)],
        port,
        "/token",
        auth,
        folder / "refresh.txt",
        folder,
    )

    def introspect(token: str) -> bool:
        _, answer = post_form(f"http://127.0.0.1:{port}/token/introspection", f"token={token}", auth)
        return answer.get("active") is True

    return TokenTarget(target, "/token", introspect, None)


def mas_target(
    work: Path, engine: str, tokens: int, grants: list[str], code: tuple[str, Path] | None = None
) -> TokenTarget:
    """``twistd mas`` on ``engine``, with the static client ``CLIENT_ID``; ``code`` runs
    another checkout's code, as in bench/introspect."""
    import yaml

    from bench.token.mint import mint

    port = free_port()
    suffix = f"@{code[0]}" if code else ""
    env = {"MAS_LOG_LEVEL": "warning"}
    if code:
        env |= {"PYTHONPATH": str(code[1]), "MAS_TWISTED_DATA_DIR": str(code[1])}
    folder = work / f"mas-{engine}{suffix}"
    folder.mkdir()
    db = None
    if engine == "postgres":
        db = PostgresDatabase()
        uri = db.uri
    else:
        uri = f"sqlite:///{folder / 'mas.db'}"
    config = base_config(folder, database_uri=uri)
    config["http"] = {
        "public_base": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": "oauth"}, {"name": "health"}],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ],
    }
    config["clients"] = [
        {
            "client_id": CLIENT_ID,
            "client_auth_method": "client_secret_basic",
            "client_secret": CLIENT_SECRET,
            "redirect_uris": ["https://bench.example/cb"],
        }
    ]
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    twistd = str(Path(sys.executable).parent / "twistd")
    matrix_secret = config["matrix"]["secret"]
    target = Target(
        f"mas-{engine}{suffix}",
        [twistd, "--nodaemon", "--pidfile=", "-l", "/dev/null", "mas", "-c", str(config_path)],
        port,
        "/oauth2/token",
        basic(CLIENT_ID, CLIENT_SECRET),
        folder / "refresh.txt",
        folder,
        env=env,
        cleanup=db.drop if db is not None else None,
    )

    def introspect(token: str) -> bool:
        _, answer = post_form(
            f"http://127.0.0.1:{port}/oauth2/introspect", f"token={token}", f"Bearer {matrix_secret}"
        )
        return answer.get("active") is True

    def mint_round(outdir: Path) -> None:
        minted = tuple(g for g in grants if g != "client_credentials")
        # This checkout's mint.py, with the target's code first on PYTHONPATH.
        mint(config_path, CLIENT_ID, outdir, tokens, minted, env=env)

    return TokenTarget(target, "/oauth2/token", introspect, mint_round, db)


def one_round(
    targets: list[TokenTarget], grants: list[str], args: argparse.Namespace, profile: Path | None = None
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for t in targets:
        folder = t.target.cwd
        needs_mint = any(g != "client_credentials" for g in grants)
        if t.mint is not None and needs_mint:
            # Before the server starts: its static client must exist, so sync it first.
            if not (folder / "synced").exists():
                t.target.start()
                t.target.stop(final=False)
                (folder / "synced").touch()
            t.mint(folder)
        try:
            t.target.start()
            for grant in grants:
                bodies = split_bodies(folder / f"{grant}.txt", folder, grant)
                spy_file = profile / f"{t.name}-{grant}.txt" if profile is not None else None
                r = run_wrk(t, grant, bodies, args.duration, args.connections, profile=spy_file)
                db = f" + {r['db_cpu_us']:5.0f} in PostgreSQL" if t.db is not None else ""
                print(
                    f"{t.name:20s} {grant:18s} {r['rps']:7.0f} req/s  p50 {r['p50_ms']:7.2f} ms"
                    f"  p99 {r['p99_ms']:7.2f} ms  cpu {r['cpu_us']:6.0f} us/req{db}  errors {int(r['errors'])}",
                    flush=True,
                )
                results[f"{t.name} {grant}"] = r
        finally:
            t.target.stop(final=False)
        if t.mint is not None and needs_mint:
            check_refresh_tokens(t)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tokens", type=int, default=30_000, help="items minted per grant and round for the mas targets"
    )
    parser.add_argument(
        "--peer-tokens", type=int, default=80_000, help="items minted per grant and round by oidc-provider"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per grant")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="run only these targets")
    parser.add_argument("--grants", nargs="*", choices=GRANTS, default=list(GRANTS))
    parser.add_argument("--compare", metavar="REV", help="also run the mas targets on commit REV's code")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="one more round of the mas targets under py-spy"
    )
    args = parser.parse_args()
    os.environ.setdefault("MAS_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    ensure_tools()
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-token-") as tmp:
        work = Path(tmp)
        builders: dict[str, Callable[[], TokenTarget]] = {
            "oidc-provider": lambda: oidc_provider_target(work, args.peer_tokens),
            "mas-sqlite": lambda: mas_target(work, "sqlite", args.tokens, args.grants),
            "mas-postgres": lambda: mas_target(work, "postgres", args.tokens, args.grants),
        }
        if args.compare:
            code = checkout(work, args.compare)
            for engine in ("sqlite", "postgres"):
                builders[f"mas-{engine}@{code[0]}"] = lambda engine=engine: mas_target(
                    work, engine, args.tokens, args.grants, code=code
                )
        targets = [
            build()
            for name, build in builders.items()
            if not args.only or name in args.only or name.partition("@")[0] in args.only
        ]
        try:
            for _ in range(args.rounds):
                rounds.append(one_round(targets, args.grants, args))
            if args.profile is not None:
                from bench.profile_summary import summarise

                args.profile.mkdir(parents=True, exist_ok=True)
                mas = [t for t in targets if t.mint is not None]
                one_round(mas, args.grants, args, profile=args.profile)
                for t in mas:
                    for grant in args.grants:
                        output = args.profile / f"{t.name}-{grant}.txt"
                        summary = summarise(output, top=20)
                        (args.profile / f"{t.name}-{grant}-summary.txt").write_text(summary)
                        print(f"\nprofiled {t.name} {grant}\n{summary}", end="")
        finally:
            for t in targets:
                t.target.stop(final=True)
            if args.compare:
                remove_checkout(code[1])
    print_table(rounds, args.grants)


def print_table(rounds: list[dict[str, dict[str, float]]], grants: list[str]) -> None:
    """Medians over the rounds; the × columns are the median of each round's ratio to
    oidc-provider's same grant (server CPU alone, and server + PostgreSQL)."""
    names = list(dict.fromkeys(key.split(" ")[0] for key in rounds[0]))
    print(f"\nmedians over {len(rounds)} round(s)")
    print(
        f"{'grant':18s} {'target':20s} {'req/s':>7s} {'p50 ms':>7s} {'p99 ms':>7s} {'CPU us':>7s} {'+ PG us':>7s}"
        f" {'× rps':>6s} {'× CPU':>6s} {'× CPU+PG':>8s}"
    )
    for grant in grants:
        base = f"oidc-provider {grant}"
        for name in names:
            key = f"{name} {grant}"
            if key not in rounds[0]:
                continue

            def med(field: str, key: str = key) -> float:
                return statistics.median(r[key][field] for r in rounds)

            line = (
                f"{grant:18s} {name:20s} {med('rps'):7.0f} {med('p50_ms'):7.2f} {med('p99_ms'):7.2f}"
                f" {med('cpu_us'):7.0f} {med('db_cpu_us'):7.0f}"
            )
            if base in rounds[0]:
                rps = statistics.median(r[key]["rps"] / r[base]["rps"] for r in rounds)
                cpu = statistics.median(r[key]["cpu_us"] / r[base]["cpu_us"] for r in rounds)
                both = statistics.median(
                    (r[key]["cpu_us"] + r[key]["db_cpu_us"]) / r[base]["cpu_us"] for r in rounds
                )
                line += f" {rps:6.2f} {cpu:6.2f} {both:8.2f}"
            print(line)


if __name__ == "__main__":
    main()
