# SPDX-License-Identifier: AGPL-3.0-only
"""``AccountTestCase``: the human pages with a signed-in user, and a homeserver whose Synapse
``/_synapse/mas/`` API is a recording ``twisted.web`` resource that keeps the profile it is
told (the real Synapse client code talks to it)."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import LoopingCall

from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.modern import SynapseConnection
from mas_twisted.server import MasServer
from mas_twisted.types.users import User
from mas_twisted.util.clock import Clock
from tests.homeserver._helpers import Recorder
from tests.rest.human._base import HumanTestCase
from tests.server import FakeChannel, ThreadedMemoryReactorClock
from tests.unittest import TEST_MATRIX_SECRET, TEST_SERVER_NAME

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new and long passphrase"


class FakeSynapse(Recorder):
    """Records every call; ``query_user`` answers with the display name last set."""

    def __init__(self) -> None:
        super().__init__()
        self.display_name: str | None = "Alice Liddell"
        self.avatar_url: str | None = "mxc://example.com/alice"
        self.down = False

    def render(self, request: Any) -> Any:
        path = request.path.decode()
        if self.down:
            self.answer(503, {"errcode": "M_UNKNOWN"})
        elif path.endswith("/query_user"):
            self.answer(
                200,
                {
                    "user_id": f"@alice:{TEST_SERVER_NAME}",
                    "display_name": self.display_name,
                    "avatar_url": self.avatar_url,
                    "is_suspended": False,
                    "is_deactivated": False,
                },
            )
        elif path.endswith("/set_displayname"):
            body = json.loads(request.content.getvalue())
            self.display_name = body["displayname"]
        elif path.endswith("/unset_displayname"):
            self.display_name = None
        return super().render(request)

    def calls(self, name: str) -> list[dict[str, Any]]:
        """The JSON bodies of every call to ``/_synapse/mas/<name>``."""
        return [r["json"] for r in self.requests if r["path"].endswith(f"/{name}")]


class AccountTestCase(HumanTestCase):
    def prepare(self, reactor: ThreadedMemoryReactorClock, clock: Clock, server: MasServer) -> None:
        super().prepare(reactor, clock, server)
        self.homeserver = FakeSynapse()
        stub = StubTreq(self.homeserver)
        transport = HttpTransport(reactor, client=stub)
        server._homeserver_connection = SynapseConnection(  # type: ignore[attr-defined]
            TEST_SERVER_NAME, "http://matrix.example.com/", TEST_MATRIX_SECRET, transport, user_agent="test"
        )
        flusher = LoopingCall(stub.flush)
        flusher.clock = reactor
        flusher.start(0.01)
        self.addCleanup(flusher.stop)

    def sign_in(self, username: str = "alice") -> User:
        user = self.factory.user(username)
        channel = self.login(username, PASSWORD)
        self.assertEqual(channel.code, 303, channel)
        return user

    def post_form(self, page_path: str, form: dict[str, str], post_path: str | None = None) -> FakeChannel:
        """Open ``page_path`` and post ``form`` with its CSRF token (to ``post_path``, else the page)."""
        from tests.rest.human._base import csrf_from

        page = self.browse("GET", page_path)
        self.assertEqual(page.code, 200, page)
        return self.browse(
            "POST", post_path or page_path.split("?")[0], form={"csrf": csrf_from(page), **form}
        )

    def jobs(self, queue_name: str) -> list[dict[str, Any]]:
        rows = self.get_success(
            self.db_pool.execute(
                "jobs",
                "SELECT payload FROM queue_jobs WHERE queue_name = ? ORDER BY queue_job_id",
                queue_name,
            )
        )
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def introspect(self, token: str) -> dict[str, Any]:
        channel = self.make_request(
            "POST",
            "/oauth2/introspect",
            form={"token": token},
            headers=[("Authorization", f"Bearer {TEST_MATRIX_SECRET}")],
        )
        self.assertEqual(channel.code, 200, channel)
        body: dict[str, Any] = channel.json_body
        return body
