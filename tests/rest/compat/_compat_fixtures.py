# SPDX-License-Identifier: AGPL-3.0-only
"""A listener with the ``compat`` and ``oauth`` resources, users with passwords, and a
homeserver connection whose requests reach a recording ``twisted.web`` resource (the real
Synapse client code; what Synapse does with them is tested in ``tests/integration``)."""

from __future__ import annotations

from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import LoopingCall

from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.modern import SynapseConnection
from mas_twisted.types.compat import CompatAccessToken, CompatRefreshToken, CompatSession
from mas_twisted.types.users import User
from tests.handlers._helpers import use_threadless_password_manager
from tests.homeserver._helpers import Recorder
from tests.server import FakeChannel
from tests.unittest import TEST_MATRIX_SECRET, TEST_SERVER_NAME, MasTestCase

PASSWORD = "correct horse battery staple"
HOMESERVER_AUTH = ("Authorization", f"Bearer {TEST_MATRIX_SECRET}")

#: Tables a compatibility request may write.
TABLES = (
    "compat_sessions",
    "compat_access_tokens",
    "compat_refresh_tokens",
    "compat_sso_logins",
    "oauth2_sessions",
    "user_passwords",
    "users",
    "queue_jobs",
)


class CompatTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"] = [
            {"name": "compat"},
            {"name": "oauth"},
            {"name": "human"},
        ]
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        use_threadless_password_manager(server, reactor)
        self.stores = server.get_stores()
        self.tokens = server.get_token_generator()
        self.homeserver = Recorder()
        stub = StubTreq(self.homeserver)
        transport = HttpTransport(reactor, client=stub)
        server._homeserver_connection = SynapseConnection(
            TEST_SERVER_NAME, "http://matrix.example.com/", TEST_MATRIX_SECRET, transport, user_agent="test"
        )
        self._flusher = LoopingCall(stub.flush)
        self._flusher.clock = reactor
        self._flusher.start(0.01)
        self.addCleanup(self._flusher.stop)
        self.alice = self.factory.user("alice", PASSWORD if server.config.passwords.enabled else None)

    def now(self) -> int:
        return self.clock.time_msec()

    def upserts(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.homeserver.requests if r["path"] == "/_synapse/mas/upsert_device"]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        for table in TABLES:
            rows = self.get_success(self.db_pool.execute("snapshot", f"SELECT * FROM {table}"))
            out[table] = sorted(tuple(row) for row in rows)
        return out

    def jobs(self, queue: str = "sync-devices") -> list[Any]:
        rows = self.get_success(
            self.db_pool.execute("jobs", "SELECT payload FROM queue_jobs WHERE queue_name = ?", queue)
        )
        return [r[0] for r in rows]

    def post(self, path: str, body: Any = None, *, token: str | None = None, **kwargs: Any) -> FakeChannel:
        headers = list(kwargs.pop("headers", ()))
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
        return self.make_request("POST", path, json=body, headers=headers, **kwargs)

    def password_login(
        self,
        username: str = "alice",
        password: str = PASSWORD,
        *,
        headers: Any = (),
        client_ip: str = "127.0.0.1",
        **extra: Any,
    ) -> FakeChannel:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": username},
            "password": password,
        }
        body.update(extra)
        return self.post("/_matrix/client/v3/login", body, headers=headers, client_ip=client_ip)

    def assert_matrix_error(
        self, channel: FakeChannel, code: int, errcode: str, error: str | None = None
    ) -> None:
        self.assertEqual(channel.code, code, channel.body)
        self.assertEqual(channel.json_body["errcode"], errcode, channel.json_body)
        if error is not None:
            self.assertEqual(channel.json_body["error"], error, channel.json_body)

    def start_session(
        self,
        user: User | None = None,
        *,
        device_id: str = "DEVICEAAAA",
        refresh: bool = False,
        ttl_ms: int | None = None,
        admin: bool = False,
    ) -> tuple[CompatSession, CompatAccessToken, CompatRefreshToken | None]:
        return self.factory.compat_session(
            user or self.alice, device_id=device_id, refresh=refresh, ttl_ms=ttl_ms, admin=admin
        )

    def compat_session(self, session_id: str) -> CompatSession:
        found = self.get_success(self.stores.compat_sessions.get_compat_session(session_id))
        assert found is not None
        return found

    def introspect(self, token: str, *, device_header: bool = True) -> dict[str, Any]:
        headers = [HOMESERVER_AUTH] + ([("X-MAS-Supports-Device-Id", "1")] if device_header else [])
        channel = self.make_request("POST", "/oauth2/introspect", form={"token": token}, headers=headers)
        self.assertEqual(channel.code, 200, channel.body)
        return channel.json_body
