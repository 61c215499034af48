# SPDX-License-Identifier: AGPL-3.0-only
"""Workers reserving jobs at the same moment on real connections: every job goes to exactly one.

Several workers (the server's own and any ``mas-cli worker``) tick against one database. Each
contender here runs the tick's reservation (``reserve_jobs_txn``) on its own connection from
its own thread, all released at once and looping until nothing is left, the way concurrent
workers do. On PostgreSQL (``MAS_TEST_POSTGRES_DSN``) the reservation locks with ``FOR UPDATE
SKIP LOCKED`` and marks the rows ``running`` in the same statement; on SQLite (a file shared
by the connections) the write lock serialises them. Either way no job is handed out twice.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from mas_twisted.storage.prepare_database import prepare_database
from mas_twisted.storage.stores.queue import reserve_jobs_txn
from mas_twisted.types.queue import RUNNING
from tests.unittest import MasTestCase
from tests.utils import make_db_config, temp_dir

CONTENDERS = 6
JOBS = 40
QUEUE = "test-race"


class QueueReserveRaceTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.db_pool = server.get_db_pool()
        if self.test_db.engine_name == "sqlite":
            # In-memory databases are private to a connection: race on a shared file instead.
            path = os.path.abspath(os.path.join(temp_dir(self), "race.db"))
            db_config = make_db_config({"uri": "sqlite:///" + path, "connect_timeout": 10})
            prepare_database(db_config)
            self.db_pool = self.test_db.make_pool(db_config, self.reactor)
            server._db_pool = self.db_pool
        self.store = server.get_stores().queue

    def connect(self) -> Any:
        conn = self.db_pool.engine.connect()
        self.addCleanup(conn.close)
        return conn

    def test_concurrent_reservations_hand_out_each_job_once(self) -> None:
        ids = []
        for n in range(JOBS):
            job_id = f"01JOB{n:021d}"
            self.get_success(self.store.schedule_job(job_id, QUEUE, {"n": n}))
            ids.append(job_id)
        for i in range(CONTENDERS):
            self.get_success(self.store.register_worker(f"W{i}"))
        conns = [self.connect() for _ in range(CONTENDERS)]
        barrier = threading.Barrier(CONTENDERS)
        taken: list[list[str]] = [[] for _ in range(CONTENDERS)]
        errors: list[BaseException] = []

        def _contend(i: int) -> None:
            worker_id = f"W{i}"
            barrier.wait()
            try:
                while True:
                    jobs = self.db_pool.new_transaction(
                        conns[i],
                        "race_reserve",
                        [],
                        None,
                        reserve_jobs_txn,
                        (worker_id, 1000, [QUEUE], 3),
                        {},
                    )
                    if not jobs:
                        return
                    assert {j.started_by for j in jobs} == {worker_id}
                    taken[i].extend(j.id for j in jobs)
            except BaseException as e:  # reported to the test thread
                errors.append(e)

        threads = [threading.Thread(target=_contend, args=(i,)) for i in range(CONTENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
            self.assertFalse(thread.is_alive(), "a contender hung")
        self.assertEqual(errors, [])
        handed_out = [job_id for mine in taken for job_id in mine]
        # Every job handed out, none twice.
        self.assertEqual(sorted(handed_out), sorted(ids))
        jobs = self.get_success(self.store.list_jobs(QUEUE))
        self.assertEqual({j.status for j in jobs}, {RUNNING})
        owner = {job_id: f"W{i}" for i, mine in enumerate(taken) for job_id in mine}
        self.assertEqual({j.id: j.started_by for j in jobs}, owner)
