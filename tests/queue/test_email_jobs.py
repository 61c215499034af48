# SPDX-License-Identifier: AGPL-3.0-only
"""The ``send-email`` job end to end, on both engines: scheduled with
:func:`~mas_twisted.handlers.email.schedule_email_txn` in the caller's transaction, run by the
queue worker, delivered to a real SMTP server (Twisted's, started by the test, on the real
reactor) through the transport ``email`` configures; retried with the queue's backoff while
the server is down, then delivered once it is up; not retried after a 5xx.

The queue's times stay on the test's fake clock (so a 5 s backoff takes no real time) while
the database work and the SMTP exchange run on trial's real reactor.
"""

from __future__ import annotations

import email
import email.policy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor as real_reactor

from mas_twisted.handlers.email import schedule_email_txn
from mas_twisted.queue.base import retry_delay_ms
from mas_twisted.queue.registry import JOBS
from mas_twisted.queue.worker import QueueWorker, QueueWorkerService
from mas_twisted.types.queue import COMPLETED, FAILED, SCHEDULED
from tests.email._helpers import SmtpTestServer, free_port, settle
from tests.unittest import MasTestCase
from tests.utils import temp_dir


class _RealReactorTestCase(MasTestCase):
    """A MasTestCase whose database pool and network run on the real reactor."""

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.db_pool = self.test_db.make_pool(self.config.database, real_reactor)
        server._db_pool = self.db_pool
        server._reactor = real_reactor
        self.store = server.get_stores().queue
        self.outcomes: list[tuple[str, str]] = []

    async def start_worker(self) -> QueueWorker:
        worker = QueueWorker(self.server, JOBS)
        worker.on_job_done = lambda job_id, outcome: self.outcomes.append((job_id, outcome))
        await worker.start()

        async def _stop() -> None:
            await worker.stop()
            await settle()

        self.addCleanup(_stop)
        return worker

    async def until(self, condition: Callable[[], bool], timeout: float = 15.0, step: float = 0.25) -> None:
        """Advance the fake clock by ``step`` and let the real reactor run, until ``condition``."""
        deadline = real_reactor.seconds() + timeout  # type: ignore[attr-defined]
        while not condition():
            if real_reactor.seconds() > deadline:  # type: ignore[attr-defined]
                self.fail(f"timed out; outcomes so far: {self.outcomes}")
            self.reactor.advance(step)
            await settle(0.01)

    async def schedule(self, **kwargs: Any) -> str:
        ids: list[str] = []

        def _txn(txn: Any) -> None:
            ids.append(schedule_email_txn(txn, self.server, **kwargs))

        await self.store.schedule_in_transaction("test_schedule_email", _txn)
        return ids[-1]


class SmtpEmailJobTestCase(_RealReactorTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        self.smtp_port = free_port()
        config["email"] = {
            "from": '"Example Auth" <auth@example.com>',
            "transport": "smtp",
            "mode": "plain",
            "hostname": "localhost",
            "port": self.smtp_port,
            "username": "mas",
            "password": "relay-password",
        }
        return config

    async def smtp_server(self) -> SmtpTestServer:
        server = SmtpTestServer("plain", users={"mas": "relay-password"}, port=self.smtp_port).start()
        self.addCleanup(server.stop)
        return server

    async def test_scheduled_in_a_transaction_then_delivered(self) -> None:
        smtp_server = await self.smtp_server()
        worker = await self.start_worker()
        job_id = await self.schedule(
            to="zoe@example.org",
            to_name="Zoë",
            template="verification",
            context={"code": "314159", "username": "zoe"},
        )
        await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(job_id, "completed")])
        [received] = smtp_server.messages
        self.assertEqual(
            (received.mail_from, received.rcpt_to, received.user),
            ("auth@example.com", ["zoe@example.org"], "mas"),
        )
        message = received.parsed()
        self.assertEqual(message["To"].addresses[0].display_name, "Zoë")
        self.assertEqual(message["Subject"], "314159 is your example.com code")
        text, _html = message.iter_parts()
        self.assertIn("314159", text.get_content())
        [job] = await self.store.list_jobs("send-email")
        self.assertEqual(job.status, COMPLETED)
        del worker

    async def test_nothing_scheduled_when_the_transaction_rolls_back(self) -> None:
        class Boom(Exception):
            pass

        def _txn(txn: Any) -> None:
            schedule_email_txn(
                txn, self.server, to="zoe@example.org", template="verification", context={"code": "1"}
            )
            raise Boom()

        with self.assertRaises(Boom):
            await self.store.schedule_in_transaction("test_rollback", _txn)
        self.assertEqual(await self.store.list_jobs("send-email"), [])

    async def test_server_down_then_up(self) -> None:
        await self.start_worker()
        first = await self.schedule(to="zoe@example.org", template="verification", context={"code": "271828"})
        await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(first, "retry")])
        failed, retry = await self.store.list_jobs("send-email")
        self.assertEqual((failed.id, failed.status, failed.attempt), (first, FAILED, 0))
        self.assertIn(f"localhost:{self.smtp_port}: connection refused", failed.failed_reason or "")
        self.assertNotIn("relay-password", failed.failed_reason or "")
        self.assertEqual(failed.next_attempt_id, retry.id)
        # Rescheduled with the queue's backoff (5 s after the first attempt).
        self.assertEqual((retry.status, retry.attempt), (SCHEDULED, 1))
        assert failed.failed_at is not None and retry.scheduled_at is not None
        self.assertEqual(retry.scheduled_at - failed.failed_at, retry_delay_ms(0))

        smtp_server = await self.smtp_server()
        await self.until(lambda: len(self.outcomes) == 2)
        self.assertEqual(self.outcomes[1], (retry.id, "completed"))
        [received] = smtp_server.messages
        self.assertEqual(received.parsed()["Subject"], "271828 is your example.com code")
        jobs = await self.store.list_jobs("send-email")
        self.assertEqual([(j.attempt, j.status) for j in jobs], [(0, FAILED), (1, COMPLETED)])

    async def test_a_retry_after_not_after_sends_nothing(self) -> None:
        await self.start_worker()
        not_after = self.clock.time_msec() + 3_000
        first = await self.schedule(
            to="zoe@example.org", template="verification", context={"code": "1"}, not_after=not_after
        )
        await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(first, "retry")])
        smtp_server = await self.smtp_server()
        await self.until(lambda: len(self.outcomes) == 2)
        self.assertEqual(self.outcomes[1][1], "failed")
        jobs = await self.store.list_jobs("send-email")
        self.assertEqual([(j.attempt, j.status) for j in jobs], [(0, FAILED), (1, FAILED)])
        self.assertIn("no longer of use", jobs[1].failed_reason or "")
        self.assertEqual(smtp_server.messages, [])

    async def test_refused_recipient_fails_for_good(self) -> None:
        smtp_server = await self.smtp_server()
        smtp_server.refuse.add("nobody@example.org")
        await self.start_worker()
        job_id = await self.schedule(to="nobody@example.org", template="verification", context={"code": "1"})
        await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(job_id, "failed")])
        [job] = await self.store.list_jobs("send-email")
        self.assertEqual((job.status, job.next_attempt_id), (FAILED, None))
        self.assertIn("550", job.failed_reason or "")
        # Time passes; nothing more is tried.
        self.reactor.advance(retry_delay_ms(0) / 1000 * 4)
        await settle(0.2)
        self.assertEqual(len(await self.store.list_jobs("send-email")), 1)

    async def test_the_worker_service_warns_when_the_relay_is_down(self) -> None:
        service = QueueWorkerService(self.server)
        with self.assertLogs("mas_twisted.queue.jobs.email", "WARNING") as logs:
            service.startService()
            await self.until(lambda: bool(logs.output))
            await service.stopService()
            await settle()
        [line] = logs.output
        self.assertIn("Could not connect to the mail transport", line)
        self.assertIn(f"localhost:{self.smtp_port}: connection refused", line)

    async def test_refused_credentials_fail_for_good(self) -> None:
        smtp_server = SmtpTestServer("plain", users={"mas": "another-password"}, port=self.smtp_port).start()
        self.addCleanup(smtp_server.stop)
        await self.start_worker()
        job_id = await self.schedule(to="zoe@example.org", template="verification", context={"code": "1"})
        await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(job_id, "failed")])
        self.assertEqual(smtp_server.messages, [])


class SendmailEmailJobTestCase(_RealReactorTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        self.tmp = Path(temp_dir(self))
        self.out = self.tmp / "sent"
        command = self.tmp / "sendmail"
        command.write_text(
            f"#!{sys.executable}\nimport sys\n"
            f"open({str(self.out)!r}, 'wb').write(' '.join(sys.argv[1:]).encode() + b'\\n' + sys.stdin.buffer.read())\n"
        )
        command.chmod(0o755)
        config["email"] = {"from": "auth@example.com", "transport": "sendmail", "command": str(command)}
        return config

    async def test_handed_to_sendmail(self) -> None:
        await self.start_worker()
        job_id = await self.schedule(
            to="zoe@example.org", template="verification", context={"code": "161803"}
        )
        await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(job_id, "completed")])
        args, data = self.out.read_bytes().split(b"\n", 1)
        self.assertEqual(args, b"-i -f auth@example.com -- zoe@example.org")
        message = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(message["Subject"], "161803 is your example.com code")


class BlackholeEmailJobTestCase(_RealReactorTestCase):
    """No ``email`` section: the blackhole, as MAS."""

    async def test_dropped_and_completed(self) -> None:
        await self.start_worker()
        with self.assertLogs("mas_twisted.email.transport", "WARNING") as logs:
            job_id = await self.schedule(
                to="zoe@example.org",
                template="recovery",
                context={"username": "zoe", "recovery_url": "https://auth.example.com/r?ticket=SECRET"},
            )
            await self.until(lambda: bool(self.outcomes))
        self.assertEqual(self.outcomes, [(job_id, "completed")])
        self.assertNotIn("SECRET", "\n".join(logs.output))
        self.assertNotIn("zoe", "\n".join(logs.output))
