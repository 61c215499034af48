# SPDX-License-Identifier: AGPL-3.0-only
"""bench/introspect: ``POST /oauth2/introspect`` under wrk, against baselines measured in the same run.

Targets, each loaded with wrk (2 threads, 32 connections, keep-alive) and a Lua script that
rotates through its own set of live tokens, authenticated as Synapse is (shared-secret Bearer)
or as a client (Basic) for the baseline that needs it:

- ``trivial``: the cheapest twisted.web resource returning fixed JSON (the ceiling of the stack);
- ``oidc-provider``: npm oidc-provider's introspection endpoint, tokens in memory (a certified OP);
- ``mas-sqlite`` / ``mas-postgres``: ``twistd mas`` with COUNT minted access tokens (``mint.py``),
  half OAuth 2.0 (``mat_``) and half compatibility (``mct_``), the load rotating through both.

Prints requests/s, p50 and p99 per target, the server's CPU time per request (user + system,
from ``/proc``: less sensitive than throughput to other load on the machine), and the ratios
against oidc-provider. Needs wrk (Debian package), node/npm and npm oidc-provider: bench/setup.sh
installs them (and py-spy) and is run first when something is missing. PostgreSQL is
reached through ``MAS_TEST_POSTGRES_DSN`` (default: the local server as ``postgres``). Usage::

    .venv/bin/python bench/introspect/run.py [--count 100000] [--duration 10] [--connections 32] [--rounds 3]
        [--only TARGET ...] [--profile DIR]

Each round loads every target in turn (3 s of warm-up, then the measured run); the table
gives the medians over the rounds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration._harness import PostgresDatabase, base_config, free_port  # noqa: E402

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def ensure_tools() -> None:
    """Run bench/setup.sh (wrk, npm oidc-provider, py-spy) when any of them is missing."""
    if (
        shutil.which("wrk") is None
        or not (HERE / "node_modules" / "oidc-provider").exists()
        or not (Path(sys.executable).parent / "py-spy").exists()
    ):
        subprocess.run(["bash", str(ROOT / "bench" / "setup.sh")], check=True)


class Target:
    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        path: str,
        auth: str,
        tokens: Path,
        cwd: Path,
        env: dict[str, str] | None = None,
        cleanup: Callable[[], None] | None = None,
    ):
        self.name, self.argv, self.port, self.path, self.auth, self.tokens = (
            name,
            argv,
            port,
            path,
            auth,
            tokens,
        )
        self.cwd, self.env, self.cleanup = cwd, env, cleanup
        self.proc: subprocess.Popen | None = None

    def start(self, ready_timeout: float = 600) -> None:
        log = open(self.cwd / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{(self.cwd / f'{self.name}.log').read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1):
                    pass
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name} not ready after {ready_timeout}s")

    def stop(self, final: bool = True) -> None:
        """Stop the server; ``final`` also drops what the target set up (its database)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if final and self.cleanup:
            cleanup, self.cleanup = self.cleanup, None
            cleanup()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


RESULT = re.compile(r"RESULT requests=(\d+) duration_us=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+)")


def check_active(target: Target, samples: int = 3) -> None:
    """Introspect the first, middle and last tokens once: each must be answered active, or the
    bench would measure the cheap ``{"active": false}`` path."""
    lines = target.tokens.read_text().split()
    for token in [lines[0], lines[len(lines) // 2], lines[-1]][:samples]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{target.port}{target.path}",
            data=f"token={token}".encode(),
            method="POST",
            headers={"Authorization": target.auth, "Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        if body.get("active") is not True:
            raise SystemExit(f"{target.name}: token {token[:8]}… answered {body}, not active")


def run_wrk(target: Target, duration: int, connections: int, profile: Path | None = None) -> dict[str, float]:
    """Warm up for 3 s, then load ``target`` for ``duration`` seconds; with ``profile``, py-spy
    records the server meanwhile into that file (raw collapsed stacks)."""
    env = {
        **os.environ,
        "TOKENS_FILE": str(target.tokens),
        "AUTHORIZATION": target.auth,
        "INTROSPECT_PATH": target.path,
    }
    url = f"http://127.0.0.1:{target.port}"
    check_active(target)
    subprocess.run(
        ["wrk", "-t2", f"-c{connections}", "-d3s", "-s", str(HERE / "introspect.lua"), url],
        env=env,
        capture_output=True,
        check=True,
    )
    assert target.proc is not None
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(target.proc.pid),
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
        time.sleep(0.5)  # let it attach
    cpu_before = cpu_seconds(target.proc.pid)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(HERE / "introspect.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = cpu_seconds(target.proc.pid) - cpu_before
    if spy is not None:
        _, err = spy.communicate(timeout=60)
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed on {target.name}: {err.decode(errors='replace')}")
    match = RESULT.search(out.stdout)
    if not match:
        raise SystemExit(f"no result from wrk for {target.name}:\n{out.stdout}\n{out.stderr}")
    requests, duration_us, errors, p50, p99 = map(int, match.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
        "cpu_us": cpu / max(requests, 1) * 1e6,
    }


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def trivial_target(work: Path) -> Target:
    port = free_port()
    tokens = work / "trivial-tokens.txt"
    tokens.write_text("".join(f"token{i}\n" for i in range(1000)))
    return Target(
        "trivial", [sys.executable, str(HERE / "trivial.py"), str(port)], port, "/", "Bearer x", tokens, work
    )


def oidc_provider_target(work: Path, count: int) -> Target:
    port = free_port()
    tokens = work / "oidc-provider-tokens.txt"
    return Target(
        "oidc-provider",
        ["node", str(HERE / "oidc_provider.mjs"), str(port), str(count), str(tokens)],
        port,
        "/token/introspection",
        basic("bench", "bench-secret-bench-secret"),
        tokens,
        work,
    )


def checkout(work: Path, rev: str) -> tuple[str, Path]:
    """A detached git worktree of ``rev`` in ``work`` (removed with the work folder's cleanup):
    the code a ``--compare`` target runs. Returns the short commit id and the folder."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    folder = work / f"checkout-{commit}"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(folder), commit], cwd=ROOT, check=True)
    return commit, folder


def remove_checkout(folder: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False)


def mas_target(
    work: Path, engine: str, count: int, kind: str = "mixed", code: tuple[str, Path] | None = None
) -> Target:
    """``twistd mas`` on ``engine`` with ``count`` tokens of ``kind`` (a key of mint.py's
    ``MINTERS``: ``mixed`` by default, half OAuth 2.0 and half compatibility).

    ``code``, a ``(commit, folder)`` from :func:`checkout`, runs (and mints with) that
    checkout's ``mas_twisted`` instead of this one's: its folder goes first on PYTHONPATH and
    is the data folder (templates, sql); the target is named ``mas-ENGINE@COMMIT``."""
    import yaml

    from bench.introspect.mint import mint_tokens

    port = free_port()
    suffix = f"@{code[0]}" if code else ""
    env = {"MAS_LOG_LEVEL": "warning"}
    if code:
        env |= {"PYTHONPATH": str(code[1]), "MAS_TWISTED_DATA_DIR": str(code[1])}
    folder = work / f"mas-{engine}-{kind}{suffix}"
    folder.mkdir()
    cleanup = None
    if engine == "postgres":
        db = PostgresDatabase()
        uri, cleanup = db.uri, db.drop
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
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    tokens = folder / "tokens.txt"
    mint_tokens(config_path, count, tokens, kind, env=env, root=code[1] if code else ROOT)
    twistd = str(Path(sys.executable).parent / "twistd")
    return Target(
        f"mas-{engine}{suffix}",
        [twistd, "--nodaemon", "--pidfile=", "-l", "/dev/null", "mas", "-c", str(config_path)],
        port,
        "/oauth2/introspect",
        f"Bearer {config['matrix']['secret']}",
        tokens,
        folder,
        env=env,
        cleanup=cleanup,
    )


def profile_targets(targets: list[Target], args: argparse.Namespace) -> None:
    """One more run of each mas target (database kept from the measured rounds) under py-spy;
    its figures are not the bench's (the sampler pauses the server 100 times a second)."""
    from bench.profile_summary import summarise

    args.profile.mkdir(parents=True, exist_ok=True)
    for target in targets:
        if not target.name.startswith("mas-"):
            continue
        output = args.profile / f"{target.name}.txt"
        try:
            target.start()
            r = run_wrk(target, args.duration, args.connections, profile=output)
        finally:
            target.stop(final=False)
        print(f"\nprofiled {target.name} ({r['rps']:.0f} req/s under py-spy)")
        summary = summarise(output, top=20)
        (args.profile / f"{target.name}-summary.txt").write_text(summary)
        print(summary, end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="live tokens minted per target")
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of measured load per target and round"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure each target this many times, interleaved; the table gives medians",
    )
    parser.add_argument("--only", nargs="*", help="run only these targets")
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="also run the mas targets on the code of commit REV (a git worktree of it), in the same "
        "rounds, as mas-ENGINE@REV: a change's effect measured old against new in one run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the measured rounds, load each mas target once more under py-spy and write "
        "DIR/NAME.txt (raw collapsed stacks) and its summary (bench/profile_summary.py)",
    )
    args = parser.parse_args()
    os.environ.setdefault("MAS_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    ensure_tools()
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-introspect-") as tmp:
        work = Path(tmp)
        builders = {
            "trivial": lambda: trivial_target(work),
            "oidc-provider": lambda: oidc_provider_target(work, args.count),
            "mas-sqlite": lambda: mas_target(work, "sqlite", args.count),
            "mas-postgres": lambda: mas_target(work, "postgres", args.count),
        }
        if args.compare:
            code = checkout(work, args.compare)
            for engine in ("sqlite", "postgres"):
                builders[f"mas-{engine}@{code[0]}"] = lambda engine=engine: mas_target(
                    work, engine, args.count, code=code
                )
        targets = [
            build()
            for name, build in builders.items()
            if not args.only or name in args.only or name.partition("@")[0] in args.only
        ]
        try:
            for _ in range(args.rounds):
                results: dict[str, dict[str, float]] = {}
                rounds.append(results)
                for target in targets:
                    try:
                        target.start()
                        r = run_wrk(target, args.duration, args.connections)
                    finally:
                        target.stop(final=False)
                    print(
                        f"{target.name:20s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
                        f"  cpu {r['cpu_us']:6.0f} us/req  errors {int(r['errors'])}",
                        flush=True,
                    )
                    results[target.name] = r
            if args.profile is not None:
                profile_targets(targets, args)
        finally:
            for target in targets:
                target.stop(final=True)
            if args.compare:
                remove_checkout(code[1])

    print_table(rounds)


def print_table(rounds: list[dict[str, dict[str, float]]]) -> None:
    """The summary: each figure's median over the rounds, and the median over the rounds of
    each ratio to oidc-provider in the same round (other load on the machine changes from
    one minute to the next: a ratio within a round is steadier than across rounds)."""
    names = list(rounds[0])
    width = max(14, *(len(name) for name in names))
    base = "oidc-provider" if "oidc-provider" in names else None
    print(f"\nmedians over {len(rounds)} round(s)")
    print(
        f"{'target':{width}s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU us/req':>10s}"
        f" {'× rps':>7s} {'× p99':>7s} {'× CPU':>7s}"
    )
    for name in names:

        def med(key: str) -> float:
            return statistics.median(r[name][key] for r in rounds)

        def ratio(key: str) -> float:
            assert base is not None
            return statistics.median(r[name][key] / r[base][key] for r in rounds)

        line = f"{name:{width}s} {med('rps'):8.0f} {med('p50_ms'):8.2f} {med('p99_ms'):8.2f} {med('cpu_us'):10.0f}"
        if base:
            line += f" {ratio('rps'):7.2f} {ratio('p99_ms'):7.2f} {ratio('cpu_us'):7.2f}"
        print(line)
    if base:
        print("(× columns: against oidc-provider in the same round; target: × rps ≥ 1.0 and × p99 ≤ 2.0)")


if __name__ == "__main__":
    main()
