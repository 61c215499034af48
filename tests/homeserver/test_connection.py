# SPDX-License-Identifier: AGPL-3.0-only
"""The homeserver connections without a homeserver: the requests they send (method, path,
headers and JSON bodies, compared with MAS's ``crates/matrix-synapse/src/{modern,legacy}.rs``),
how answers and failures become results or :class:`HomeserverError`, and the factory.

Requests go through treq's ``StubTreq`` into a recording ``twisted.web`` resource, so the
bytes our client writes are parsed by a real HTTP server; what Synapse *does* with them is
tested against a real Synapse in ``tests/integration/test_homeserver_synapse.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from mas_twisted.homeserver import (
    HomeserverConnection,
    HomeserverError,
    ProvisionRequest,
    _http,
    is_retryable_status,
    make_homeserver_connection,
)
from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.legacy import LegacySynapseConnection
from mas_twisted.homeserver.legacy import provision_user_body as legacy_provision_body
from mas_twisted.homeserver.modern import SynapseConnection, provision_user_body
from mas_twisted.homeserver.read_only import ReadOnlyConnection
from tests.homeserver._helpers import Recorder
from tests.unittest import MasTestCase, override_config

SECRET = "s3cret-shared-with-synapse"
SERVER_NAME = "example.com"


class _WireTestCase(unittest.TestCase):
    endpoint = "http://synapse.test:8008/"
    connection_class: type = SynapseConnection

    def setUp(self) -> None:
        self.recorder = Recorder()
        self.stub = StubTreq(self.recorder)
        self.reactor = MemoryReactorClock()
        self.conn = self.make_connection(self.endpoint)

    def make_connection(self, endpoint: str) -> HomeserverConnection:
        transport = HttpTransport(self.reactor, client=self.stub)
        return self.connection_class(SERVER_NAME, endpoint, SECRET, transport, user_agent="mas-twisted/test")

    def call(self, coro: Any) -> Any:
        d = defer.ensureDeferred(coro)
        self.stub.flush()
        return self.successResultOf(d)

    def fail_call(self, coro: Any) -> HomeserverError:
        d = defer.ensureDeferred(coro)
        self.stub.flush()
        return self.failureResultOf(d, HomeserverError).value

    def only_request(self) -> dict[str, Any]:
        self.assertEqual(len(self.recorder.requests), 1, self.recorder.requests)
        return self.recorder.requests[0]


class ModernWireTestCase(_WireTestCase):
    """``/_synapse/mas/*``: one request per call, bodies as MAS serialises them."""

    def assert_post(self, route: str, body: dict[str, Any]) -> None:
        req = self.only_request()
        self.assertEqual(req["method"], "POST")
        self.assertEqual(req["path"], f"/_synapse/mas/{route}")
        self.assertEqual(req["headers"]["authorization"], [f"Bearer {SECRET}"])
        self.assertEqual(req["headers"]["content-type"], ["application/json"])
        self.assertEqual(req["json"], body)

    def test_query_user(self) -> None:
        self.recorder.answer(
            200,
            {
                "user_id": "@alice:example.com",
                "display_name": "Alice",
                "avatar_url": None,
                "is_suspended": False,
                "is_deactivated": True,
            },
        )
        user = self.call(self.conn.query_user("alice"))
        req = self.only_request()
        self.assertEqual((req["method"], req["path"]), ("GET", "/_synapse/mas/query_user"))
        self.assertEqual(req["query"], {"localpart": ["alice"]})
        self.assertEqual(req["headers"]["authorization"], [f"Bearer {SECRET}"])
        self.assertEqual(req["headers"]["user-agent"], ["mas-twisted/test"])
        self.assertIsNone(req["json"])
        self.assertEqual(user.mxid, "@alice:example.com")
        self.assertEqual(user.displayname, "Alice")
        self.assertIsNone(user.avatar_url)
        self.assertTrue(user.deactivated)
        self.assertFalse(user.suspended)

    def test_localpart_is_percent_encoded(self) -> None:
        self.recorder.answer(200, {"user_id": "@a/b=c+d:example.com", "is_deactivated": False})
        self.call(self.conn.query_user("a/b=c+d"))
        self.assertIn("localpart=a%2Fb%3Dc%2Bd", self.only_request()["uri"])
        self.assertEqual(self.only_request()["query"], {"localpart": ["a/b=c+d"]})

    def test_query_user_bad_answer(self) -> None:
        self.recorder.answer(200, b"<html>")
        e = self.fail_call(self.conn.query_user("alice"))
        self.assertFalse(e.retryable)
        self.recorder.answer(200, {"user_id": "@alice:example.com"})
        e = self.fail_call(self.conn.query_user("alice"))
        self.assertFalse(e.retryable)

    def test_provision_user_created_and_updated(self) -> None:
        request = (
            ProvisionRequest("alice", "01SUB", locked=False).set_displayname("Alice").set_emails(["a@x.test"])
        )
        self.recorder.answer(201)
        self.assertIs(self.call(self.conn.provision_user(request)), True)
        self.assert_post(
            "provision_user",
            {"localpart": "alice", "set_displayname": "Alice", "set_emails": ["a@x.test"], "locked": False},
        )
        self.recorder.requests.clear()
        self.recorder.answer(200)
        self.assertIs(self.call(self.conn.provision_user(request)), False)
        self.recorder.answer(204, b"")
        e = self.fail_call(self.conn.provision_user(request))
        self.assertEqual(e.status, 204)
        self.assertFalse(e.retryable)

    def test_provision_user_bodies(self) -> None:
        base = ProvisionRequest("bob", "01SUB", locked=True)
        self.assertEqual(provision_user_body(base), {"localpart": "bob", "locked": True})
        self.assertEqual(
            provision_user_body(base.unset_displayname().unset_avatar_url().unset_emails()),
            {
                "localpart": "bob",
                "unset_displayname": True,
                "unset_avatar_url": True,
                "unset_emails": True,
                "locked": True,
            },
        )
        self.assertEqual(
            provision_user_body(base.set_avatar_url("mxc://x/y").set_emails([])),
            {"localpart": "bob", "set_avatar_url": "mxc://x/y", "set_emails": [], "locked": True},
        )
        # The last word wins, as with MAS's builder.
        self.assertEqual(
            provision_user_body(base.set_displayname("B").unset_displayname()),
            {"localpart": "bob", "unset_displayname": True, "locked": True},
        )

    def test_device_calls(self) -> None:
        cases = [
            (
                self.conn.upsert_device("alice", "DEV1"),
                "upsert_device",
                {"localpart": "alice", "device_id": "DEV1"},
            ),
            (
                self.conn.upsert_device("alice", "DEV1", "Phone"),
                "upsert_device",
                {"localpart": "alice", "device_id": "DEV1", "display_name": "Phone"},
            ),
            (
                self.conn.update_device_display_name("alice", "DEV1", "New"),
                "update_device_display_name",
                {"localpart": "alice", "device_id": "DEV1", "display_name": "New"},
            ),
            (
                self.conn.delete_device("alice", "DEV2"),
                "delete_device",
                {"localpart": "alice", "device_id": "DEV2"},
            ),
            (
                self.conn.sync_devices("alice", {"DEV3", "DEV1", "DEV2"}),
                "sync_devices",
                {"localpart": "alice", "devices": ["DEV1", "DEV2", "DEV3"]},
            ),
        ]
        for coro, route, body in cases:
            self.recorder.requests.clear()
            self.assertIsNone(self.call(coro))
            self.assert_post(route, body)

    def test_delete_device_204(self) -> None:
        # Synapse answers delete_device with 204 and an empty body.
        self.recorder.answer(204, b"")
        self.assertIsNone(self.call(self.conn.delete_device("alice", "DEV2")))

    def test_user_calls(self) -> None:
        cases = [
            (self.conn.delete_user("alice", True), "delete_user", {"localpart": "alice", "erase": True}),
            (self.conn.delete_user("alice", False), "delete_user", {"localpart": "alice", "erase": False}),
            (self.conn.reactivate_user("alice"), "reactivate_user", {"localpart": "alice"}),
            (
                self.conn.set_displayname("alice", "Alice ✓"),
                "set_displayname",
                {"localpart": "alice", "displayname": "Alice ✓"},
            ),
            (self.conn.unset_displayname("alice"), "unset_displayname", {"localpart": "alice"}),
            (
                self.conn.allow_cross_signing_reset("alice"),
                "allow_cross_signing_reset",
                {"localpart": "alice"},
            ),
        ]
        for coro, route, body in cases:
            self.recorder.requests.clear()
            self.assertIsNone(self.call(coro))
            self.assert_post(route, body)

    def test_is_localpart_available(self) -> None:
        self.recorder.answer(200)
        self.assertIs(self.call(self.conn.is_localpart_available("alice")), True)
        req = self.only_request()
        self.assertEqual(
            (req["method"], req["path"], req["query"]),
            ("GET", "/_synapse/mas/is_localpart_available", {"localpart": ["alice"]}),
        )
        for errcode in ("M_USER_IN_USE", "M_INVALID_USERNAME", "M_EXCLUSIVE"):
            self.recorder.answer(400, {"errcode": errcode, "error": "no"})
            self.assertIs(self.call(self.conn.is_localpart_available("alice")), False, errcode)
        self.recorder.answer(
            403, {"errcode": "M_UNKNOWN", "error": "This endpoint must only be called by MAS"}
        )
        e = self.fail_call(self.conn.is_localpart_available("alice"))
        self.assertEqual((e.status, e.errcode, e.retryable), (403, "M_UNKNOWN", False))

    def test_non_ascii_localpart_is_refused_without_a_request(self) -> None:
        self.assertIs(self.call(self.conn.is_localpart_available("alïce")), False)
        self.assertEqual(self.recorder.requests, [])

    def test_endpoint_with_a_path_prefix(self) -> None:
        conn = self.make_connection("http://synapse.test/prefix/")
        self.call(conn.unset_displayname("alice"))
        self.assertEqual(self.only_request()["path"], "/prefix/_synapse/mas/unset_displayname")


class LegacyWireTestCase(_WireTestCase):
    """The admin API: MXIDs in paths, MAS's exact success statuses."""

    connection_class = LegacySynapseConnection
    USER = "/_synapse/admin/v2/users/%40alice%3Aexample.com"

    def requests(self) -> list[tuple[str, str, Any]]:
        return [(r["method"], r["uri"], r["json"]) for r in self.recorder.requests]

    def test_query_user(self) -> None:
        self.recorder.answer(
            200,
            {
                "name": "@alice:example.com",
                "displayname": "A",
                "avatar_url": "mxc://a/b",
                "deactivated": False,
            },
        )
        user = self.call(self.conn.query_user("alice"))
        self.assertEqual(self.requests(), [("GET", self.USER, None)])
        self.assertEqual(
            (user.mxid, user.displayname, user.avatar_url, user.deactivated),
            ("@alice:example.com", "A", "mxc://a/b", False),
        )
        self.assertEqual(self.only_request()["headers"]["authorization"], [f"Bearer {SECRET}"])

    def test_provision_user(self) -> None:
        request = (
            ProvisionRequest("alice", "01SUB", locked=True)
            .set_displayname("Alice")
            .unset_avatar_url()
            .set_emails(["a@x.test"])
        )
        self.recorder.answer(201)
        self.assertIs(self.call(self.conn.provision_user(request)), True)
        self.assertEqual(
            self.requests(),
            [
                (
                    "PUT",
                    self.USER,
                    {
                        "displayname": "Alice",
                        "avatar_url": "",
                        "threepids": [{"medium": "email", "address": "a@x.test"}],
                        "external_ids": [{"auth_provider": "oauth-delegated", "external_id": "01SUB"}],
                    },
                )
            ],
        )
        self.assertEqual(
            legacy_provision_body(ProvisionRequest("bob", "01B").unset_displayname().unset_emails()),
            {
                "displayname": "",
                "threepids": [],
                "external_ids": [{"auth_provider": "oauth-delegated", "external_id": "01B"}],
            },
        )
        self.recorder.answer(200)
        self.assertIs(self.call(self.conn.provision_user(request)), False)

    def test_is_localpart_available(self) -> None:
        self.recorder.answer(200, {"available": True})
        self.assertIs(self.call(self.conn.is_localpart_available("alice")), True)
        self.assertEqual(
            self.requests(), [("GET", "/_synapse/admin/v1/username_available?username=alice", None)]
        )
        self.recorder.answer(400, {"errcode": "M_USER_IN_USE", "error": "taken"})
        self.assertIs(self.call(self.conn.is_localpart_available("alice")), False)
        self.recorder.requests.clear()
        self.assertIs(self.call(self.conn.is_localpart_available("ælice")), False)
        self.assertEqual(self.recorder.requests, [])

    def test_upsert_device_with_a_name_makes_two_calls(self) -> None:
        self.recorder.answer(201)
        self.recorder.answer(200)
        self.call(self.conn.upsert_device("alice", "DEV1", "Phone"))
        self.assertEqual(
            self.requests(),
            [
                ("POST", self.USER + "/devices", {"device_id": "DEV1"}),
                ("PUT", self.USER + "/devices/DEV1", {"display_name": "Phone"}),
            ],
        )

    def test_upsert_device_expects_201(self) -> None:
        self.recorder.answer(200)
        e = self.fail_call(self.conn.upsert_device("alice", "DEV1"))
        self.assertEqual((e.call, e.status, e.retryable), ("upsert_device", 200, False))

    def test_sync_devices(self) -> None:
        self.recorder.answer(
            200,
            {
                "devices": [
                    {"device_id": "KEEP"},
                    {"device_id": "OLD"},
                    {"device_id": "DEHYD", "dehydrated": True},
                ],
                "total": 3,
            },
        )
        self.recorder.answer(200)  # delete_devices
        self.recorder.answer(201)  # upsert NEW
        self.call(self.conn.sync_devices("alice", {"KEEP", "NEW"}))
        self.assertEqual(
            self.requests(),
            [
                ("GET", self.USER + "/devices", None),
                ("POST", self.USER + "/delete_devices", {"devices": ["OLD"]}),
                ("POST", self.USER + "/devices", {"device_id": "NEW"}),
            ],
        )

    def test_other_calls(self) -> None:
        cases = [
            (self.conn.delete_device("alice", "D/1"), ("DELETE", self.USER + "/devices/D%2F1", None)),
            (
                self.conn.delete_user("alice", True),
                ("POST", "/_synapse/admin/v1/deactivate/%40alice%3Aexample.com", {"erase": True}),
            ),
            (self.conn.reactivate_user("alice"), ("PUT", self.USER, {"deactivated": False})),
            (
                self.conn.set_displayname("alice", "Al"),
                (
                    "PUT",
                    "/_matrix/client/v3/profile/%40alice%3Aexample.com/displayname",
                    {"displayname": "Al"},
                ),
            ),
            (
                self.conn.unset_displayname("alice"),
                ("PUT", "/_matrix/client/v3/profile/%40alice%3Aexample.com/displayname", {"displayname": ""}),
            ),
            (
                self.conn.allow_cross_signing_reset("alice"),
                (
                    "POST",
                    "/_synapse/admin/v1/users/%40alice%3Aexample.com/_allow_cross_signing_replacement_without_uia",
                    {},
                ),
            ),
        ]
        for coro, expected in cases:
            self.recorder.requests.clear()
            self.call(coro)
            self.assertEqual(self.requests(), [expected])


class ErrorTestCase(_WireTestCase):
    """Failures become :class:`HomeserverError` with the status, errcode and retry advice."""

    def test_classification(self) -> None:
        self.assertTrue(all(is_retryable_status(s) for s in (500, 502, 503, 504, 429, 408)))
        self.assertFalse(any(is_retryable_status(s) for s in (400, 401, 403, 404, 405, 409, 413)))

    def test_http_errors(self) -> None:
        for status, body, errcode, retryable in [
            (400, {"errcode": "M_INVALID_PARAM", "error": "bad"}, "M_INVALID_PARAM", False),
            (404, {"errcode": "M_NOT_FOUND", "error": "User not found"}, "M_NOT_FOUND", False),
            (429, {"errcode": "M_LIMIT_EXCEEDED", "error": "slow down"}, "M_LIMIT_EXCEEDED", True),
            (500, {"errcode": "M_UNKNOWN", "error": "Internal server error"}, "M_UNKNOWN", True),
            (502, b"<html>Bad gateway</html>", None, True),
        ]:
            self.recorder.answer(status, body)
            e = self.fail_call(self.conn.set_displayname("alice", "A"))
            self.assertEqual(
                (e.call, e.status, e.errcode, e.retryable), ("set_displayname", status, errcode, retryable)
            )
            self.assertIn(f"HTTP {status}", str(e))
            self.assertNotIn("\n", str(e))

    def test_secret_never_in_messages_or_logs(self) -> None:
        # Even an error text that quotes the secret back does not carry it further.
        self.recorder.answer(
            401, {"errcode": "M_UNKNOWN_TOKEN", "error": f"bad token Bearer {SECRET}\nsecond line"}
        )
        with self.assertLogs("mas_twisted.homeserver", logging.DEBUG) as logs:
            e = self.fail_call(self.conn.delete_user("alice", False))
        self.assertNotIn(SECRET, str(e))
        self.assertNotIn(SECRET, repr(e))
        self.assertIn("M_UNKNOWN_TOKEN", str(e))
        self.assertNotIn(SECRET, "\n".join(logs.output))
        self.assertTrue(any("delete_user" in line and "401" in line for line in logs.output), logs.output)

    def test_one_debug_line_per_call(self) -> None:
        with self.assertLogs("mas_twisted.homeserver", logging.DEBUG) as logs:
            self.call(self.conn.reactivate_user("alice"))
        self.assertEqual(len(logs.output), 1, logs.output)
        self.assertIn("reactivate_user", logs.output[0])
        self.assertIn("200", logs.output[0])
        self.assertNotIn(SECRET, logs.output[0])

    def test_timeout(self) -> None:
        self.recorder.hang = True
        d = defer.ensureDeferred(self.conn.query_user("alice"))
        self.stub.flush()
        self.assertNoResult(d)
        self.reactor.advance(59)
        self.assertNoResult(d)
        self.reactor.advance(1)
        e = self.failureResultOf(d, HomeserverError).value
        self.assertTrue(e.retryable)
        self.assertIsNone(e.status)
        self.assertIn("no answer within 60s", str(e))

    def test_delete_user_waits_longer(self) -> None:
        self.recorder.hang = True
        d = defer.ensureDeferred(self.conn.delete_user("alice", True))
        self.stub.flush()
        self.reactor.advance(299)
        self.assertNoResult(d)
        self.reactor.advance(1)
        self.assertTrue(self.failureResultOf(d, HomeserverError).value.retryable)

    def test_answer_too_large(self) -> None:
        self.patch(_http, "MAX_RESPONSE_BYTES", 100)
        self.recorder.answer(
            200, {"user_id": "@alice:example.com", "display_name": "x" * 200, "is_deactivated": False}
        )
        e = self.fail_call(self.conn.query_user("alice"))
        self.assertFalse(e.retryable)
        self.assertIn("more than 100 bytes", str(e))

    def test_unsupported_scheme_is_not_retryable(self) -> None:
        conn = SynapseConnection(
            SERVER_NAME,
            "ftp://synapse.test/",
            SECRET,
            HttpTransport(self.reactor),
            user_agent="mas-twisted/test",
        )
        d = defer.ensureDeferred(conn.reactivate_user("alice"))
        self.reactor.advance(0)
        e = self.failureResultOf(d, HomeserverError).value
        self.assertFalse(e.retryable)
        self.assertNotIn(SECRET, str(e))


class ReadOnlyTestCase(_WireTestCase):
    """``synapse_read_only``: reads reach the homeserver, writes never do."""

    def setUp(self) -> None:
        super().setUp()
        self.conn = ReadOnlyConnection(self.conn)

    def test_reads_go_through(self) -> None:
        self.recorder.answer(
            200, {"user_id": "@alice:example.com", "display_name": None, "is_deactivated": False}
        )
        self.assertFalse(self.call(self.conn.query_user("alice")).deactivated)
        self.recorder.answer(400, {"errcode": "M_USER_IN_USE"})
        self.assertIs(self.call(self.conn.is_localpart_available("alice")), False)
        self.assertEqual(len(self.recorder.requests), 2)

    def test_writes_do_nothing(self) -> None:
        with self.assertLogs("mas_twisted.homeserver", logging.DEBUG) as logs:
            self.assertIs(self.call(self.conn.provision_user(ProvisionRequest("alice", "01SUB"))), False)
            for coro in [
                self.conn.upsert_device("alice", "D"),
                self.conn.update_device_display_name("alice", "D", "n"),
                self.conn.delete_device("alice", "D"),
                self.conn.sync_devices("alice", {"D"}),
                self.conn.delete_user("alice", True),
                self.conn.reactivate_user("alice"),
                self.conn.set_displayname("alice", "A"),
                self.conn.unset_displayname("alice"),
                self.conn.allow_cross_signing_reset("alice"),
            ]:
                self.assertIsNone(self.call(coro))
        self.assertEqual(self.recorder.requests, [])
        self.assertEqual(len(logs.output), 10)
        self.assertTrue(all("read-only" in line for line in logs.output))

    def test_identity(self) -> None:
        self.assertEqual(self.conn.homeserver, SERVER_NAME)
        self.assertEqual(self.conn.mxid("bob"), "@bob:example.com")
        self.assertTrue(self.call(self.conn.verify_token(SECRET)))
        self.assertFalse(self.call(self.conn.verify_token("")))


class IdentityTestCase(_WireTestCase):
    def test_mxid_and_localpart(self) -> None:
        self.assertEqual(self.conn.homeserver, SERVER_NAME)
        self.assertEqual(self.conn.mxid("alice"), "@alice:example.com")
        self.assertEqual(self.conn.localpart("@alice:example.com"), "alice")
        self.assertIsNone(self.conn.localpart("@alice:other.example"))
        self.assertIsNone(self.conn.localpart("alice:example.com"))
        self.assertIsNone(self.conn.localpart("@:example.com"))

    def test_verify_token(self) -> None:
        self.assertIs(self.call(self.conn.verify_token(SECRET)), True)
        for wrong in ("", SECRET[:-1], SECRET + "x", SECRET.upper(), "é"):
            self.assertIs(self.call(self.conn.verify_token(wrong)), False, wrong)


class FactoryTestCase(MasTestCase):
    """``MasServer.get_homeserver_connection()`` follows ``matrix.kind``."""

    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["matrix"].pop("kind", None)  # the test base sets synapse_read_only
        return config

    def test_default_is_modern(self) -> None:
        conn = self.server.get_homeserver_connection()
        self.assertIsInstance(conn, SynapseConnection)
        self.assertIs(self.server.get_homeserver_connection(), conn)
        self.assertEqual(conn.homeserver, "example.com")
        self.assertTrue(self.get_success(conn.verify_token("test-matrix-shared-secret")))

    @override_config({"matrix": {"kind": "synapse_modern"}})
    def test_modern(self) -> None:
        self.assertIsInstance(self.server.get_homeserver_connection(), SynapseConnection)

    @override_config({"matrix": {"kind": "synapse_legacy"}})
    def test_legacy(self) -> None:
        self.assertIsInstance(self.server.get_homeserver_connection(), LegacySynapseConnection)

    @override_config({"matrix": {"kind": "synapse_read_only"}})
    def test_read_only(self) -> None:
        conn = self.server.get_homeserver_connection()
        self.assertIsInstance(conn, ReadOnlyConnection)
        self.assertIsInstance(conn.inner, SynapseConnection)

    def test_runs_on_the_container_reactor(self) -> None:
        """The connection's HTTP client connects through the container's (fake) reactor."""
        conn = self.server.get_homeserver_connection()
        d = defer.ensureDeferred(conn.query_user("alice"))
        self.reactor.advance(0)
        # (the test reactor resolves every name to 127.0.0.1)
        self.assertEqual([port for _host, port, *_ in self.reactor.tcpClients], [80])
        self.reactor.advance(60)
        self.assertTrue(self.failureResultOf(d, HomeserverError).value.retryable)

    def test_explicit_client(self) -> None:
        recorder = Recorder()
        stub = StubTreq(recorder)
        conn = make_homeserver_connection(self.config.matrix, self.reactor, http_client=stub)
        d = defer.ensureDeferred(conn.reactivate_user("alice"))
        stub.flush()
        self.successResultOf(d)
        self.assertEqual(
            recorder.requests[0]["headers"]["authorization"], ["Bearer test-matrix-shared-secret"]
        )


class RefusedConnectionTestCase(unittest.TestCase):
    """On the real reactor: nothing listens at the endpoint."""

    async def test_refused_is_retryable(self) -> None:
        import socket

        from twisted.internet import reactor

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conn = SynapseConnection(
            SERVER_NAME,
            f"http://127.0.0.1:{port}/",
            SECRET,
            HttpTransport(reactor),
            user_agent="mas-twisted/test",
        )
        self.addCleanup(lambda: defer.ensureDeferred(conn.close()))
        with self.assertRaises(HomeserverError) as caught:
            await conn.provision_user(ProvisionRequest("alice", "01SUB"))
        e = caught.exception
        self.assertTrue(e.retryable)
        self.assertIsNone(e.status)
        self.assertIn("provision_user", str(e))
        self.assertIn("refused", str(e).lower())
        self.assertNotIn(SECRET, str(e))
