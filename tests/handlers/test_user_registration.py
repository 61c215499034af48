# SPDX-License-Identifier: AGPL-3.0-only
""":class:`~mas_twisted.handlers.user_registration.UserRegistrationHandler` end to end, on both
engines: the registration's code goes out through the queue worker and the SMTP transport to a
real SMTP server (Twisted's, started by the test) and is read from the message received there;
the homeserver's ``is_localpart_available`` is answered by a recording resource (the real
Synapse client code). The database and the network run on trial's real reactor; the service's
clock stays the test's fake one, so expiry and rate limits are deterministic."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from treq.testing import StubTreq
from twisted.internet import reactor as real_reactor
from twisted.internet.task import LoopingCall

from mas_twisted.handlers.passwords import PasswordManager
from mas_twisted.handlers.user_registration import (
    CODE,
    EXPIRED,
    INVALID,
    PasswordRegistrationForm,
    Problem,
    StepKind,
)
from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.modern import SynapseConnection
from mas_twisted.queue.registry import JOBS
from mas_twisted.queue.worker import QueueWorker
from mas_twisted.types.registrations import UserRegistration
from tests.email._helpers import SmtpTestServer, free_port, settle
from tests.homeserver._helpers import Recorder
from tests.unittest import TEST_MATRIX_SECRET, TEST_SERVER_NAME, MasTestCase

PASSWORD = "correct horse battery staple"
CODE_RE = re.compile(r"^\s+([0-9]{6})\s*$", re.M)


class RegistrationWithSmtpTests(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        self.smtp_port = free_port()
        config["account"] = {"password_registration_enabled": True, "registration_token_required": True}
        config["email"] = {
            "from": '"Example Auth" <auth@example.com>',
            "transport": "smtp",
            "mode": "plain",
            "hostname": "localhost",
            "port": self.smtp_port,
        }
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.db_pool = self.test_db.make_pool(self.config.database, real_reactor)
        server._db_pool = self.db_pool
        server._reactor = real_reactor
        server._password_manager = PasswordManager(server)
        self.homeserver = Recorder()
        stub = StubTreq(self.homeserver)
        server._homeserver_connection = SynapseConnection(
            TEST_SERVER_NAME,
            "http://matrix.example.com/",
            TEST_MATRIX_SECRET,
            HttpTransport(real_reactor, client=stub),
            user_agent="test",
        )
        flusher = LoopingCall(stub.flush)
        flusher.start(0.005)
        self.addCleanup(flusher.stop)
        self.handler = server.get_user_registration_handler()
        self.stores = server.get_stores()
        self.outcomes: list[tuple[str, str]] = []

    async def start_smtp(self) -> SmtpTestServer:
        smtp = SmtpTestServer("plain", port=self.smtp_port).start()
        self.addCleanup(smtp.stop)
        worker = QueueWorker(self.server, JOBS)
        worker.on_job_done = lambda job_id, outcome: self.outcomes.append((job_id, outcome))
        await worker.start()

        async def _stop() -> None:
            await worker.stop()
            await settle()

        self.addCleanup(_stop)
        return smtp

    async def until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = real_reactor.seconds() + timeout  # type: ignore[attr-defined]
        while not condition():
            if real_reactor.seconds() > deadline:  # type: ignore[attr-defined]
                self.fail(f"timed out; job outcomes so far: {self.outcomes}")
            self.reactor.advance(0.25)
            await settle(0.01)

    async def code_from(self, smtp: SmtpTestServer, count: int) -> str:
        await self.until(lambda: len(smtp.messages) >= count)
        message = smtp.messages[count - 1].parsed()
        self.assertEqual(message["To"].addresses[0].addr_spec, "zoe@example.org")
        self.assertEqual(message["To"].addresses[0].display_name, "zoe")
        text = next(message.iter_parts()).get_content()
        match = CODE_RE.search(text)
        assert match is not None, text
        self.assertIn(match.group(1), message["Subject"])
        return match.group(1)

    async def start(self, **fields: Any) -> UserRegistration:
        form = PasswordRegistrationForm(
            username="zoe", email="zoe@example.org", password=PASSWORD, password_confirm=PASSWORD, **fields
        )
        result = await self.handler.start_password_registration(
            form, client_ip="192.0.2.1", user_agent="test-browser", action=None
        )
        self.assertEqual(result.problems, ())
        assert result.registration is not None
        return result.registration

    async def reload(self, registration: UserRegistration) -> UserRegistration:
        return await self.handler.load_registration(registration.id)

    async def test_code_from_the_smtp_server_completes_the_registration(self) -> None:
        smtp = await self.start_smtp()
        token = await self.handler.issue_registration_token(token="invite-only")
        registration = await self.start()
        code = await self.code_from(smtp, 1)

        step = await self.handler.next_step(registration, user_agent="ua", client_ip="192.0.2.1")
        self.assertIs(step.kind, StepKind.TOKEN)
        self.assertEqual(await self.handler.submit_registration_token(registration, "invite-only"), ())
        registration = await self.reload(registration)
        step = await self.handler.next_step(registration, user_agent="ua", client_ip="192.0.2.1")
        self.assertIs(step.kind, StepKind.VERIFY_EMAIL)

        authentication = await self.handler.load_email_authentication(registration)
        wrong = "000000" if code != "000000" else "111111"
        self.assertEqual(
            await self.handler.submit_email_code(registration, authentication, wrong),
            (Problem(CODE, INVALID),),
        )
        self.assertEqual(await self.handler.submit_email_code(registration, authentication, code), ())
        step = await self.handler.next_step(registration, user_agent="ua", client_ip="192.0.2.1")
        self.assertIs(step.kind, StepKind.DISPLAY_NAME)
        self.assertEqual(await self.handler.submit_display_name(registration, "  Zoë  "), ())

        registration = await self.reload(registration)
        step = await self.handler.next_step(registration, user_agent="ua", client_ip="192.0.2.1")
        self.assertIs(step.kind, StepKind.DONE)
        assert step.session is not None
        user = await self.stores.users.find_user_by_username("zoe")
        assert user is not None
        self.assertEqual(step.session.user.id, user.id)
        emails = await self.stores.user_emails.list_user_emails(user.id)
        self.assertEqual([e.email for e in emails], ["zoe@example.org"])
        password = await self.stores.user_passwords.get_active_user_password(user.id)
        assert password is not None
        verified = await self.server.get_password_manager().verify_and_upgrade(
            password.version, PASSWORD, password.hashed_password
        )
        self.assertTrue(verified.success)
        used = await self.stores.user_registrations.get_registration_token(token.id)
        assert used is not None
        self.assertEqual(used.times_used, 1)
        [provision] = await self.stores.queue.list_jobs("provision-user")
        self.assertEqual(provision.payload["set_display_name"], "Zoë")
        # Completing again creates nothing.
        again = await self.handler.next_step(await self.reload(registration), user_agent="ua", client_ip=None)
        self.assertIs(again.kind, StepKind.DONE)
        self.assertIsNone(again.session)

    async def test_an_expired_code_and_a_resent_one(self) -> None:
        smtp = await self.start_smtp()
        registration = await self.start()
        first = await self.code_from(smtp, 1)
        authentication = await self.handler.load_email_authentication(registration)
        self.reactor.advance(5 * 60)
        self.assertEqual(
            await self.handler.submit_email_code(registration, authentication, first),
            (Problem(CODE, EXPIRED),),
        )
        self.assertEqual(await self.handler.resend_email_code(registration, authentication, "192.0.2.1"), ())
        second = await self.code_from(smtp, 2)
        self.assertEqual(await self.handler.submit_email_code(registration, authentication, second), ())
        authentication = await self.handler.load_email_authentication(registration)
        self.assertIsNotNone(authentication.completed_at)
