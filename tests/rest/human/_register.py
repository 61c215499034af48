# SPDX-License-Identifier: AGPL-3.0-only
"""``RegisterTestCase``: the human pages with password registration on, a homeserver whose
``is_localpart_available`` answers from a recording ``twisted.web`` resource (the real Synapse
client code), and helpers that walk the registration steps as a browser would."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from treq.testing import StubTreq
from twisted.internet.task import LoopingCall

from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.modern import SynapseConnection
from mas_twisted.server import MasServer
from mas_twisted.util.clock import Clock
from tests.homeserver._helpers import Recorder
from tests.rest.human._base import HumanTestCase, csrf_from
from tests.server import FakeChannel, ThreadedMemoryReactorClock
from tests.unittest import TEST_MATRIX_SECRET, TEST_SERVER_NAME

STRONG_PASSWORD = "correct horse battery staple"
WEAK_PASSWORD = "password"
EMAIL = "zoe@example.org"

#: The tables a registration writes before and when it completes.
REGISTRATION_TABLES = ("user_registrations", "user_email_authentications", "user_email_authentication_codes")
USER_TABLES = (
    "users",
    "user_passwords",
    "user_emails",
    "user_sessions",
    "user_session_authentications",
    "user_terms",
)


def use_recording_homeserver(test: Any, reactor: ThreadedMemoryReactorClock, server: MasServer) -> Recorder:
    """Point ``server``'s homeserver connection (the real Synapse client code) at a recording
    ``twisted.web`` resource on the fake reactor; answers ``200 {}`` unless told otherwise."""
    recorder = Recorder()
    stub = StubTreq(recorder)
    transport = HttpTransport(reactor, client=stub)
    server._homeserver_connection = SynapseConnection(  # type: ignore[attr-defined]
        TEST_SERVER_NAME, "http://matrix.example.com/", TEST_MATRIX_SECRET, transport, user_agent="test"
    )
    flusher = LoopingCall(stub.flush)
    flusher.clock = reactor
    flusher.start(0.01)
    test.addCleanup(flusher.stop)
    return recorder


class RegisterTestCase(HumanTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["account"] = {"password_registration_enabled": True}
        # Generous limits: the tests of the limits set their own.
        config["rate_limiting"] = {"registration": {"burst": 100, "per_second": 1}}
        return config

    def prepare(self, reactor: ThreadedMemoryReactorClock, clock: Clock, server: MasServer) -> None:
        super().prepare(reactor, clock, server)
        self.homeserver = use_recording_homeserver(self, reactor, server)

    # -- walking the steps ----------------------------------------------------------------
    def submit_form(self, query: str = "", *, client_ip: str = "127.0.0.1", **fields: str) -> FakeChannel:
        """Open ``/register/password`` and submit it with ``fields`` over sensible defaults."""
        page = self.browse("GET", f"/register/password{query}", client_ip=client_ip)
        self.assertEqual(page.code, 200, page)
        form = {
            "csrf": csrf_from(page),
            "username": "zoe",
            "email": EMAIL,
            "password": STRONG_PASSWORD,
            "password_confirm": STRONG_PASSWORD,
        }
        form.update(fields)
        return self.browse("POST", f"/register/password{query}", form=form, client_ip=client_ip)

    def start(self, query: str = "", **fields: str) -> str:
        """Submit a valid form; the registration's id."""
        channel = self.submit_form(query, **fields)
        self.assertEqual(channel.code, 303, channel.text_body[:2000])
        path = urlsplit(channel.location).path
        self.assertRegex(path, r"^/register/steps/[0-9A-Z]{26}/finish$")
        return path.split("/")[3]

    def finish(self, registration_id: str) -> FakeChannel:
        return self.browse("GET", f"/register/steps/{registration_id}/finish")

    def post_step(self, registration_id: str, step: str, **fields: str) -> FakeChannel:
        page = self.browse("GET", f"/register/steps/{registration_id}/{step}")
        self.assertEqual(page.code, 200, page)
        return self.browse(
            "POST", f"/register/steps/{registration_id}/{step}", form={"csrf": csrf_from(page), **fields}
        )

    def latest_code(self) -> str:
        rows = self.get_success(
            self.db_pool.execute(
                "latest_code",
                "SELECT code FROM user_email_authentication_codes"
                " ORDER BY created_at DESC, user_email_authentication_code_id DESC",
            )
        )
        return str(rows[0][0])

    def email_jobs(self) -> list[dict[str, Any]]:
        rows = self.get_success(
            self.db_pool.execute(
                "email_jobs",
                "SELECT payload FROM queue_jobs WHERE queue_name = ? ORDER BY queue_job_id",
                "send-email",
            )
        )
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def provision_jobs(self) -> list[dict[str, Any]]:
        rows = self.get_success(
            self.db_pool.execute(
                "provision_jobs", "SELECT payload FROM queue_jobs WHERE queue_name = ?", "provision-user"
            )
        )
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def register_fully(self, query: str = "", display_name: str = "Zoë", **fields: str) -> FakeChannel:
        """Every step with the right answers; the last response (the redirect onwards)."""
        registration_id = self.start(query, **fields)
        step = self.finish(registration_id)
        if step.location is not None and step.location.endswith("/verify-email"):
            verified = self.post_step(registration_id, "verify-email", code=self.latest_code())
            self.assertEqual(verified.code, 303, verified.text_body[:2000])
            step = self.finish(registration_id)
        self.assertTrue(step.location and step.location.endswith("/display-name"), step)
        named = self.post_step(registration_id, "display-name", action="set", display_name=display_name)
        self.assertEqual(named.code, 303, named)
        return self.finish(registration_id)

    def assert_nothing_created(self) -> None:
        for table in USER_TABLES:
            self.assertEqual(self.count_rows(table), 0, table)
