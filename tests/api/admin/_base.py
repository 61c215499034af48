# SPDX-License-Identifier: AGPL-3.0-only
"""What the admin API tests share: a listener with the ``adminapi`` resource, an admin token
(a ``client_credentials``-style session of a client, with ``urn:mas:admin``), and helpers to
call the API and read the jobs it scheduled."""

from __future__ import annotations

import json
from typing import Any

from mas_twisted.types.users import User
from tests.handlers._helpers import use_threadless_password_manager
from tests.server import FakeChannel
from tests.unittest import MasTestCase

ADMIN_SCOPE = "urn:mas:admin"
PREFIX = "/api/admin/v1"


class AdminApiTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"].append({"name": "adminapi"})
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        use_threadless_password_manager(server, reactor)
        self.stores = server.get_stores()
        self.admin_client = self.factory.client(
            grant_types=("client_credentials",), auth_method="client_secret_basic", secret="s3cret"
        )
        self.token = self.admin_token()

    def admin_token(
        self, *, user: User | None = None, scope: str = ADMIN_SCOPE, ttl_ms: int | None = 300_000
    ) -> str:
        _, access, _ = self.factory.oauth2_session(
            self.admin_client, user=user, scope=scope, ttl_ms=ttl_ms, refresh=False
        )
        return access.access_token

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "",
        content: bytes | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> FakeChannel:
        """Call ``PREFIX + path`` (``path`` starting with ``/``) with the admin token (``token=None``: none)."""
        all_headers = list(headers)
        if token is not None:
            all_headers.append(("Authorization", f"Bearer {token or self.token}"))
        if body is not None:
            content = json.dumps(body).encode("utf-8")
            all_headers.append(("Content-Type", "application/json"))
        return self.make_request(method, PREFIX + path, content=content, headers=all_headers)

    def ok(self, channel: FakeChannel, code: int = 200) -> Any:
        self.assertEqual(channel.code, code, channel.body)
        return channel.json_body if channel.body else None

    def assert_error(self, channel: FakeChannel, code: int, title: str) -> None:
        self.assertEqual(channel.code, code, channel.body)
        self.assertEqual(channel.json_body["errors"][0]["title"], title, channel.json_body)

    def jobs(self, queue_name: str) -> list[dict[str, Any]]:
        """The payloads of the jobs scheduled on ``queue_name``, oldest first."""
        rows = self.get_success(
            self.db_pool.execute(
                "test_jobs",
                "SELECT payload FROM queue_jobs WHERE queue_name = ? ORDER BY queue_job_id",
                queue_name,
            )
        )
        return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]
