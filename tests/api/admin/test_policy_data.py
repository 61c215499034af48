# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/policy-data`` (MAS's ``admin/v1/policy_data/``) and how the data reaches the
policies: set through the API it takes effect at once in this process, written by another
process it takes effect at the next minute's reload, and ``prune-stale-policy-data`` keeps the
ten latest rows, the one in force among them."""

from __future__ import annotations

from typing import Any

from mas_twisted.handlers.policy_data import REFRESH_INTERVAL_S
from mas_twisted.queue import registry
from mas_twisted.queue.base import enqueue
from mas_twisted.queue.registry import JOBS
from mas_twisted.queue.worker import QueueWorker
from mas_twisted.types.policy_data import PolicyData
from tests.api.admin._base import AdminApiTestCase
from tests.rest.oauth2._oauth_fixtures import basic_auth
from tests.server import FakeChannel


class PolicyDataTests(AdminApiTestCase):
    def client_credentials(self, scope: str = "urn:mas:admin") -> FakeChannel:
        """The admin client asks the token endpoint for ``scope`` (the grant policy decides)."""
        return self.make_request(
            "POST",
            "/oauth2/token",
            content=f"grant_type=client_credentials&scope={scope}".encode(),
            headers=[
                ("Content-Type", "application/x-www-form-urlencoded"),
                basic_auth(self.admin_client.id, "s3cret"),
            ],
        )

    def rows(self) -> list[str]:
        rows = self.get_success(
            self.db_pool.execute("rows", "SELECT policy_data_id FROM policy_data ORDER BY policy_data_id")
        )
        return [row[0] for row in rows]

    def add_row(self, data: Any, at: int | None = None) -> PolicyData:
        """A row written straight into the database, as another process's admin API would."""
        at = self.clock.time_msec() if at is None else at
        row = PolicyData(id=self.server.get_token_generator().ulid(at), created_at=at, data=data)
        self.get_success(self.stores.policy_data.add(row))
        return row

    def test_set_and_get(self) -> None:
        self.assert_error(self.api("GET", "/policy-data/latest"), 404, "No policy data found")
        body = self.ok(self.api("POST", "/policy-data", {"data": {"hello": "world", "n": [1, 2]}}), 201)
        data = body["data"]
        self.assertEqual(data["type"], "policy-data")
        self.assertEqual(data["attributes"]["data"], {"hello": "world", "n": [1, 2]})
        self.assertTrue(data["attributes"]["created_at"].endswith("Z"))
        self.assertEqual(data["links"]["self"], f"/api/admin/v1/policy-data/{data['id']}")
        self.assertEqual(body["links"]["self"], data["links"]["self"])

        self.assertEqual(self.ok(self.api("GET", "/policy-data/latest"))["data"], data)
        self.assertEqual(self.ok(self.api("GET", f"/policy-data/{data['id']}"))["data"], data)

        self.reactor.advance(1)
        newer = self.ok(self.api("POST", "/policy-data", {"data": {"hello": "again"}}), 201)["data"]
        self.assertEqual(self.ok(self.api("GET", "/policy-data/latest"))["data"], newer)
        # The older version stays readable by its id.
        self.assertEqual(self.ok(self.api("GET", f"/policy-data/{data['id']}"))["data"], data)

        unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        self.assert_error(
            self.api("GET", f"/policy-data/{unknown}"), 404, f"Policy data with ID {unknown} not found"
        )
        self.assert_error(self.api("GET", "/policy-data/nope"), 400, "Invalid ULID in path")

    def test_refused_data_is_not_stored(self) -> None:
        # server_name is a string in the built-in data: an object cannot be merged over it.
        channel = self.api("POST", "/policy-data", {"data": {"server_name": {"not": "a string"}}})
        self.assert_error(channel, 400, "Failed to instanciate policy with the provided data")
        for body in ({"data": 42}, {"data": [1]}, {"data": None}, {}, {"other": {}}):
            self.assert_error(self.api("POST", "/policy-data", body), 400, "Invalid JSON body")
        self.assertEqual(self.rows(), [])
        self.assertIsNone(self.server.get_policy().dynamic_version)

    def test_needs_an_admin_token(self) -> None:
        self.assert_error(
            self.api("POST", "/policy-data", {"data": {}}, token=None), 400, "Missing authorization header"
        )
        other = self.admin_token(scope="openid")
        self.assert_error(
            self.api("POST", "/policy-data", {"data": {}}, token=other), 401, "Missing urn:mas:admin scope"
        )
        self.assert_error(
            self.api("GET", "/policy-data/latest", token=other), 401, "Missing urn:mas:admin scope"
        )
        self.assertEqual(self.rows(), [])

    def test_admin_clients_take_effect_at_once(self) -> None:
        channel = self.client_credentials()
        self.assertEqual(channel.code, 403, channel.body)
        self.assertEqual(channel.json_body["error"], "invalid_scope")

        self.ok(self.api("POST", "/policy-data", {"data": {"admin_clients": [self.admin_client.id]}}), 201)
        channel = self.client_credentials()
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.json_body["scope"], "urn:mas:admin")
        # The token it got works on the admin API.
        new_token = channel.json_body["access_token"]
        self.ok(self.api("GET", "/policy-data/latest", token=new_token))

        # Newer data replaces the older (it is merged over the configuration, not over the older data).
        self.reactor.advance(1)
        self.ok(self.api("POST", "/policy-data", {"data": {"registration": {"banned_usernames": {}}}}), 201)
        self.assertEqual(self.client_credentials().code, 403)

    def test_data_of_another_process_is_loaded_every_minute(self) -> None:
        handler = self.server.get_policy_data_handler()
        handler.start()
        self.addCleanup(handler.stop)
        self.reactor.advance(0)
        self.assertEqual(self.client_credentials().code, 403)

        row = self.add_row({"admin_clients": [self.admin_client.id]})
        self.reactor.advance(REFRESH_INTERVAL_S - 1)
        self.assertEqual(self.client_credentials().code, 403)
        self.reactor.advance(1)
        self.reactor.advance(0)
        self.assertEqual(self.server.get_policy().dynamic_version, row.id)
        self.assertEqual(self.client_credentials().code, 200)

        # Data the policies cannot use is not loaded: what is in force stays.
        self.add_row({"server_name": ["no"]})
        self.reactor.advance(REFRESH_INTERVAL_S)
        self.reactor.advance(0)
        self.assertEqual(self.server.get_policy().dynamic_version, row.id)
        self.assertEqual(self.client_credentials().code, 200)

    def test_banned_username_applies_to_admin_user_creation_policy(self) -> None:
        policy = self.server.get_policy()
        self.assertTrue(policy.evaluate_register(registration_method="password", username="mallory").valid)
        self.ok(
            self.api(
                "POST",
                "/policy-data",
                {"data": {"registration": {"banned_usernames": {"literals": ["mallory"]}}}},
            ),
            201,
        )
        result = policy.evaluate_register(registration_method="password", username="mallory")
        self.assertEqual([v.code for v in result.violations], ["username-banned"])

    def test_prune_keeps_the_ten_latest(self) -> None:
        start = self.clock.time_msec() - 60_000
        rows = [self.add_row({"version": i}, at=start + i * 1000) for i in range(13)]
        self.assertEqual(self.get_success(self.server.get_policy_data_handler().load()), True)
        self.assertEqual(self.server.get_policy().dynamic_version, rows[-1].id)

        (schedule,) = [(e, cls) for name, e, cls in registry.SCHEDULES if name == "prune-stale-policy-data"]
        self.assertEqual(schedule[0], "0 0 2 * * *")
        self.get_success(enqueue(self.server, schedule[1].from_payload({})))
        worker = QueueWorker(self.server, JOBS)
        self.get_success(worker.start())
        for _ in range(10):
            self.reactor.advance(1)
        self.get_success(worker.stop())
        statuses = {j.status for j in self.get_success(self.stores.queue.list_jobs())}
        self.assertEqual(statuses, {"completed"})

        self.assertEqual(self.rows(), [row.id for row in rows[3:]])
        latest = self.ok(self.api("GET", "/policy-data/latest"))["data"]
        self.assertEqual(latest["id"], rows[-1].id)
        self.assertEqual(latest["attributes"]["data"], {"version": 12})
        self.assert_error(
            self.api("GET", f"/policy-data/{rows[0].id}"), 404, f"Policy data with ID {rows[0].id} not found"
        )
