# SPDX-License-Identifier: AGPL-3.0-only
"""Scheduling an email (``handlers/email.py``): the job it stores, and the caller's mistakes
refused when scheduling rather than found later by the worker."""

from __future__ import annotations

from typing import Any

from mas_twisted.handlers.email import email_job, schedule_email, schedule_email_txn
from mas_twisted.types.queue import AVAILABLE
from tests.unittest import MasTestCase


class ScheduleEmailTestCase(MasTestCase):
    def test_the_stored_job(self) -> None:
        job_id = self.get_success(
            schedule_email(
                self.server,
                to="zoe@example.org",
                to_name="Zoë",
                template="verification",
                context={"code": "123456", "username": "zoe"},
                language="fr",
            )
        )
        [job] = self.get_success(self.server.get_stores().queue.list_jobs("send-email"))
        self.assertEqual((job.id, job.status, job.attempt), (job_id, AVAILABLE, 0))
        self.assertEqual(
            job.payload,
            {
                "to": "zoe@example.org",
                "to_name": "Zoë",
                "template": "verification",
                "context": {"code": "123456", "username": "zoe"},
                "language": "fr",
                "not_after": None,
            },
        )

    def test_two_in_one_transaction(self) -> None:
        def _txn(txn: Any) -> None:
            schedule_email_txn(
                txn, self.server, to="a@example.org", template="verification", context={"code": "1"}
            )
            schedule_email_txn(
                txn,
                self.server,
                to="b@example.org",
                template="recovery",
                context={"username": "b", "recovery_url": "https://auth.example.com/x"},
            )

        self.get_success(self.server.get_stores().queue.schedule_in_transaction("two", _txn))
        jobs = self.get_success(self.server.get_stores().queue.list_jobs("send-email"))
        self.assertEqual(sorted(j.payload["to"] for j in jobs), ["a@example.org", "b@example.org"])

    def test_mistakes_are_refused_at_once(self) -> None:
        cases: list[dict[str, Any]] = [
            {"to": "zoe@example.org", "template": "no-such-kind", "context": {}},
            {"to": "zoe@example.org", "template": "verification", "context": {}},
            {"to": "zoe@example.org", "template": "recovery", "context": {"username": "zoe"}},
            {"to": "zoe@example.org", "template": "verification", "context": {"code": object()}},
            {"to": "not-an-address", "template": "verification", "context": {"code": "1"}},
            {
                "to": "zoe@example.org\r\nRCPT TO:<eve@example.org>",
                "template": "verification",
                "context": {"code": "1"},
            },
            {
                "to": "zoe@example.org",
                "to_name": "Zoë\nBcc: eve@example.org",
                "template": "verification",
                "context": {"code": "1"},
            },
            {"to": "zoë@example.org", "template": "verification", "context": {"code": "1"}},
        ]
        for case in cases:
            with self.subTest(case=case), self.assertRaises(ValueError):
                email_job(**case)
        self.assertEqual(self.get_success(self.server.get_stores().queue.list_jobs("send-email")), [])
