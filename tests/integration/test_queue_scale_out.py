# SPDX-License-Identifier: AGPL-3.0-only
"""Scale-out on PostgreSQL (inventory §9), as an operator deploys it: two ``twistd mas
--no-worker`` servers and two ``mas-cli worker`` processes on one database.

- 1,000 users provisioned at once (``mas-cli manage provision-all-users``: 1,000
  ``provision-user`` jobs, each scheduling a ``sync-devices`` job): every job runs exactly once
  (one "Running job" line per job across both workers' logs), all complete, and both workers
  took a share.
- One leader at a time, and a new one when it dies.
- A worker killed (SIGKILL) in the middle of a job: once it is seen as dead (no heartbeat for
  2 minutes; the test moves its last heartbeat back rather than wait), the leader marks the
  job ``lost`` and schedules it again, and the other worker runs it to completion.

The homeserver is ``synapse_read_only`` here (no Synapse runs beside this test): the jobs do
their database work and their homeserver writes are no-ops. The homeserver side is tested
against a real Synapse elsewhere.
"""

from __future__ import annotations

import collections
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    free_port,
    mas_cli,
    query,
    run_sql,
    venv_script,
)
from tests.integration._harness import request as http_request

USERS = 1000
RUNNING_JOB = re.compile(r"Running job (\w+) \(([\w-]+), attempt (\d+)\)")
REGISTERED = re.compile(r"Registered queue worker (\w+)")


class WorkerProcess(TwistdProcess):
    """``mas-cli worker -c config.yaml`` (which runs ``twistd -n mas --worker-only``)."""

    def __init__(self, workdir: Path, config: dict[str, Any]):
        super().__init__(workdir, config)
        self.argv = [venv_script("mas-cli"), "-c", str(self.config_path), "worker"]

    @property
    def worker_id(self) -> str | None:
        found = REGISTERED.findall(self.output())
        return found[-1] if found else None


def wait_for(probe: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or probe}")


@pytest.fixture
def deployment(tmp_path: Path) -> Any:
    db = PostgresDatabase()
    config = base_config(tmp_path, database_uri=db.uri)
    config["matrix"]["homeserver"] = "example.test"
    out = mas_cli(tmp_path, "database", "migrate", "-c", str(_write(tmp_path / "migrate.yaml", config)))
    assert out.returncode == 0, out.stderr
    processes: list[TwistdProcess] = []
    servers = []
    for n in range(2):
        port = free_port()
        server_config = dict(config)
        server_config["http"] = {
            "public_base": f"http://127.0.0.1:{port}/",
            "listeners": [
                {
                    "name": "web",
                    "resources": [{"name": "health"}],
                    "binds": [{"host": "127.0.0.1", "port": port}],
                }
            ],
        }
        workdir = tmp_path / f"server{n}"
        workdir.mkdir()
        server = TwistdProcess(workdir, server_config, args=["--no-worker"]).start()
        processes.append(server)
        servers.append((server, port))
    workers = []
    for n in range(2):
        workdir = tmp_path / f"worker{n}"
        workdir.mkdir()
        worker = WorkerProcess(workdir, config).start()
        processes.append(worker)
        workers.append(worker)
    try:
        for server, port in servers:
            server.wait_until(lambda: http_request("GET", "/health", port=port))
        for worker in workers:
            worker.wait_until(lambda: worker.worker_id or _raise("not registered yet"))
        yield db.uri, [s for s, _ in servers], workers, tmp_path
    finally:
        for process in processes:
            process.stop()
        db.drop()


def _write(path: Path, config: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def _raise(message: str) -> Any:
    raise AssertionError(message)


def test_scale_out(deployment: Any) -> None:
    database_uri, servers, workers, tmp_path = deployment
    config_path = workers[0].config_path

    # The servers run no worker: only the two worker processes registered.
    live = query(database_uri, "SELECT queue_worker_id FROM queue_workers WHERE shutdown_at IS NULL")
    assert sorted(w for (w,) in live) == sorted(w.worker_id for w in workers)
    for server in servers:
        assert "Registered queue worker" not in server.output()

    # One leader, one of the two workers.
    leader_rows = wait_for(
        lambda: query(database_uri, "SELECT queue_worker_id FROM queue_leader"), what="a leader"
    )
    assert len(leader_rows) == 1 and leader_rows[0][0] in {w.worker_id for w in workers}

    # 1,000 users, provisioned at once.
    run_sql(
        database_uri,
        "INSERT INTO users (user_id, username, created_at)"
        f" SELECT '01J' || LPAD(n::text, 23, '0'), 'user' || n, 1 FROM generate_series(1, {USERS}) AS n",
    )
    started = time.monotonic()
    out = mas_cli(tmp_path, "-c", str(config_path), "manage", "provision-all-users")
    assert out.returncode == 0, out.stderr

    def all_done() -> bool:
        counts = dict(
            query(
                database_uri,
                "SELECT status, COUNT(*) FROM queue_jobs WHERE queue_name IN ('provision-user', 'sync-devices') GROUP BY status",
            )
        )
        return counts.get("completed", 0) == 2 * USERS and len(counts) == 1

    wait_for(all_done, timeout=240, what="2,000 jobs to complete")
    elapsed = time.monotonic() - started
    print(f"\n{2 * USERS} jobs completed in {elapsed:.1f} s by 2 workers")

    runs = collections.Counter()
    per_worker = collections.Counter()
    for worker in workers:
        for job_id, queue, _attempt in RUNNING_JOB.findall(worker.output()):
            if queue in ("provision-user", "sync-devices"):
                runs[job_id] += 1
                per_worker[worker.worker_id] += 1
    ids = {
        job_id
        for (job_id,) in query(
            database_uri,
            "SELECT queue_job_id FROM queue_jobs WHERE queue_name IN ('provision-user', 'sync-devices')",
        )
    }
    assert set(runs) == ids
    assert set(runs.values()) == {1}, [j for j, n in runs.items() if n != 1][:5]
    assert len(per_worker) == 2 and min(per_worker.values()) > 0, per_worker
    print(f"jobs per worker: {dict(per_worker)}")

    # A job in progress when its worker is killed. sync-devices waits for the per-user lock;
    # the test holds it, so the job stays running.
    user_id = "01J" + "1".zfill(23)
    run_sql(
        database_uri,
        f"INSERT INTO queue_locks (lock_name, holder, expires_at) VALUES ('sync-devices:{user_id}', 'test', 9999999999999)",
    )
    out = mas_cli(tmp_path, "-c", str(config_path), "manage", "kill-sessions", "user1")
    assert out.returncode == 0, out.stderr
    (job_id,) = wait_for(
        lambda: query(
            database_uri,
            "SELECT queue_job_id FROM queue_jobs WHERE queue_name = 'sync-devices' AND status = 'running'",
        ),
        what="the blocked job to start",
    )[0:1]
    job_id = job_id[0]
    (holder,) = query(database_uri, f"SELECT started_by FROM queue_jobs WHERE queue_job_id = '{job_id}'")[0]
    victim = next(w for w in workers if w.worker_id == holder)
    survivor = next(w for w in workers if w is not victim)
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    # Two minutes without a heartbeat, without waiting them out.
    run_sql(
        database_uri,
        f"UPDATE queue_workers SET last_seen_at = last_seen_at - 180000 WHERE queue_worker_id = '{holder}'",
    )
    # The survivor leads (within a lease of the victim's death, if the victim led), declares
    # the victim dead and its job lost, and schedules the job again.
    wait_for(
        lambda: query(
            database_uri,
            f"SELECT 1 FROM queue_jobs WHERE queue_job_id = '{job_id}' AND status = 'lost' AND next_attempt_id IS NOT NULL",
        ),
        timeout=30,
        what="the job to be marked lost",
    )
    assert query(database_uri, "SELECT queue_worker_id FROM queue_leader") == [(survivor.worker_id,)]
    assert query(
        database_uri, f"SELECT shutdown_at IS NOT NULL FROM queue_workers WHERE queue_worker_id = '{holder}'"
    ) == [(True,)]
    (retry_id, attempt) = query(
        database_uri,
        f"SELECT j.queue_job_id, j.attempt FROM queue_jobs AS j JOIN queue_jobs AS old ON old.next_attempt_id = j.queue_job_id"
        f" WHERE old.queue_job_id = '{job_id}'",
    )[0]
    assert attempt == 1
    # Let the retry through: it completes on the survivor.
    run_sql(database_uri, "DELETE FROM queue_locks WHERE holder = 'test'")
    wait_for(
        lambda: query(
            database_uri,
            f"SELECT 1 FROM queue_jobs WHERE queue_job_id = '{retry_id}' AND status = 'completed'",
        ),
        timeout=60,
        what="the retry to complete",
    )
    assert query(database_uri, f"SELECT started_by FROM queue_jobs WHERE queue_job_id = '{retry_id}'") == [
        (survivor.worker_id,)
    ]
