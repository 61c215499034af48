# SPDX-License-Identifier: AGPL-3.0-only
"""``cleanup-user-registrations`` (MAS's, hourly at :45), on both engines, run by the worker as
its schedule enqueues it: registrations started over 30 days ago go, completed or not, with
their email authentications and codes; younger ones stay."""

from __future__ import annotations

from mas_twisted.queue import registry
from mas_twisted.queue.base import enqueue
from mas_twisted.queue.registry import JOBS
from mas_twisted.queue.worker import QueueWorker
from mas_twisted.types.registrations import (
    UserEmailAuthentication,
    UserEmailAuthenticationCode,
    UserRegistration,
)
from tests.unittest import MasTestCase

DAY_MS = 24 * 3600 * 1000


class RegistrationCleanupTests(MasTestCase):
    def registration(self, age_days: float, *, completed: bool = False) -> UserRegistration:
        tokens = self.server.get_token_generator()
        at = self.clock.time_msec() - int(age_days * DAY_MS)
        registration = UserRegistration(
            id=tokens.ulid(at), username=f"user{tokens.alphanumeric(6).lower()}", created_at=at
        )
        authentication = UserEmailAuthentication(
            id=tokens.ulid(at), email="zoe@example.org", created_at=at, user_registration_id=registration.id
        )
        code = UserEmailAuthenticationCode(
            id=tokens.ulid(at),
            user_email_authentication_id=authentication.id,
            code="123456",
            created_at=at,
            expires_at=at + 300_000,
        )
        stores = self.server.get_stores().user_registrations
        self.get_success(stores.add_registration(registration, authentication, code))
        if completed:
            self.get_success(
                self.db_pool.execute(
                    "complete",
                    "UPDATE user_registrations SET completed_at = ? WHERE user_registration_id = ?",
                    at,
                    registration.id,
                )
            )
        return registration

    def count(self, table: str) -> int:
        return int(self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}"))[0][0])

    def run_schedule(self) -> None:
        (job_class,) = [cls for name, _, cls in registry.SCHEDULES if name == "cleanup-user-registrations"]
        (expression,) = [e for name, e, _ in registry.SCHEDULES if name == "cleanup-user-registrations"]
        self.assertEqual(expression, "0 45 * * * *")
        self.get_success(enqueue(self.server, job_class.from_payload({})))
        worker = QueueWorker(self.server, JOBS)
        self.get_success(worker.start())
        for _ in range(10):
            self.reactor.advance(1)
        self.get_success(worker.stop())
        statuses = {j.status for j in self.get_success(self.server.get_stores().queue.list_jobs())}
        self.assertEqual(statuses, {"completed"})

    def test_old_registrations_go_with_their_codes(self) -> None:
        self.reactor.advance(40 * 24 * 3600)
        old = self.registration(31)
        old_done = self.registration(30.5, completed=True)
        young = self.registration(29)
        self.assertEqual(self.count("user_registrations"), 3)
        self.run_schedule()
        stores = self.server.get_stores().user_registrations
        self.assertIsNone(self.get_success(stores.get_registration(old.id)))
        self.assertIsNone(self.get_success(stores.get_registration(old_done.id)))
        self.assertIsNotNone(self.get_success(stores.get_registration(young.id)))
        self.assertEqual(self.count("user_email_authentications"), 1)
        self.assertEqual(self.count("user_email_authentication_codes"), 1)
