# SPDX-License-Identifier: AGPL-3.0-only
"""The test harness itself (``tests/unittest.py``, ``tests/server.py``): requests without sockets,
per-test config and database, the fake clock."""

from __future__ import annotations

import json
from typing import Any

from klein import Klein
from twisted.internet import defer, threads
from twisted.web.iweb import IRequest

from mas_twisted.storage.database import DatabasePool
from tests.unittest import MasTestCase, override_config


class EchoResource:
    """A small Klein app that reports what it received and touches the database."""

    app = Klein()

    def __init__(self, db_pool: DatabasePool):
        self._db_pool = db_pool
        self.never: defer.Deferred[None] = defer.Deferred()

    @app.route("/echo", methods=["GET", "POST"])
    async def echo(self, request: IRequest) -> bytes:
        rows = await self._db_pool.execute("count_clients", "SELECT COUNT(*) FROM oauth2_clients")
        body = request.content.read()
        request.setHeader(b"Content-Type", b"application/json")
        request.addCookie(b"session", b"abc", path=b"/", httpOnly=True)
        return json.dumps(
            {
                "method": request.method.decode(),
                "args": {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()},
                "body": body.decode(),
                "content_type": (request.getHeader(b"content-type") or b"").decode(),
                "cookie": (request.getCookie(b"c") or b"").decode(),
                "client_ip": request.getClientAddress().host,
                "host": (request.getHeader(b"host") or b"").decode(),
                "x_custom": (request.getHeader(b"x-custom") or b"").decode(),
                "clients": rows[0][0],
            }
        ).encode()

    @app.route("/hang")
    async def hang(self, request: IRequest) -> bytes:
        await self.never
        return b"never"


class HarnessTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.echo = EchoResource(self.db_pool)
        self.resource = self.echo.app.resource()

    def test_form_post_with_cookies_and_headers(self) -> None:
        channel = self.make_request(
            "POST",
            "/echo?a=1",
            form={"b": "2"},
            cookies={"c": "d"},
            headers=[("X-Custom", "yes")],
            resource=self.resource,
            client_ip="10.1.2.3",
        )
        self.assertEqual(channel.code, 200, channel.text_body)
        body = channel.json_body
        self.assertEqual(body["args"], {"a": ["1"], "b": ["2"]})
        self.assertEqual(body["content_type"], "application/x-www-form-urlencoded")
        self.assertEqual(body["cookie"], "d")
        self.assertEqual(body["client_ip"], "10.1.2.3")
        self.assertEqual(body["host"], "auth.example.com")
        self.assertEqual(body["x_custom"], "yes")
        self.assertEqual(channel.cookies, {"session": "abc"})
        self.assertEqual(channel.set_cookies["session"]["path"], "/")
        self.assertEqual(channel.content_type, "application/json")

    def test_json_body(self) -> None:
        channel = self.make_request("POST", "/echo", json={"k": [1, 2]}, resource=self.resource)
        self.assertEqual(channel.code, 200, channel.text_body)
        self.assertEqual(json.loads(channel.json_body["body"]), {"k": [1, 2]})
        self.assertEqual(channel.json_body["content_type"], "application/json")

    def test_not_found_and_wrong_method(self) -> None:
        self.assertEqual(self.make_request("GET", "/nope", resource=self.resource).code, 404)
        self.assertEqual(self.make_request("DELETE", "/echo", resource=self.resource).code, 405)

    def test_unfinished_response_fails_the_test(self) -> None:
        with self.assertRaises(AssertionError) as cm:
            self.make_request("GET", "/hang", resource=self.resource)
        self.assertIn("did not finish", str(cm.exception))
        self.echo.never.callback(None)

    def test_json_body_of_non_json_names_the_body(self) -> None:
        channel = self.make_request("GET", "/nope", resource=self.resource)
        with self.assertRaises(AssertionError) as cm:
            channel.json_body
        self.assertIn("404", str(cm.exception))

    @override_config({"http": {"public_base": "https://id.example.org/"}})
    def test_override_config(self) -> None:
        self.assertEqual(self.config.http.public_base, "https://id.example.org/")
        channel = self.make_request("GET", "/echo", resource=self.resource)
        self.assertEqual(channel.json_body["host"], "id.example.org")

    def test_unknown_listener(self) -> None:
        with self.assertRaises(AssertionError) as cm:
            self.listener_site("nope")
        self.assertIn("no listener named 'nope'", str(cm.exception))

    def test_clock_starts_at_a_fixed_time(self) -> None:
        self.assertEqual(self.clock.time_msec(), int(self.START_TIME * 1000))
        self.assertIs(self.server.get_clock(), self.clock)
        fired: list[float] = []
        self.clock.call_later(30, lambda: fired.append(self.clock.time()))
        self.get_success(defer.succeed(None), by=30)
        self.assertEqual(fired, [self.START_TIME + 30])

    def test_thread_pool_work_runs_on_the_test_thread(self) -> None:
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), lambda: 6 * 7)
        self.assertEqual(self.get_success(d), 42)

    def test_each_test_gets_an_empty_database_a(self) -> None:
        self._insert_into_a_fresh_database()

    def test_each_test_gets_an_empty_database_b(self) -> None:
        self._insert_into_a_fresh_database()

    def _insert_into_a_fresh_database(self) -> None:
        self.assertEqual(self.make_request("GET", "/echo", resource=self.resource).json_body["clients"], 0)
        self.get_success(
            self.db_pool.simple_insert(
                "oauth2_clients",
                {
                    "oauth2_client_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
                    "grant_type_authorization_code": True,
                    "grant_type_refresh_token": True,
                },
            )
        )
        self.assertEqual(self.make_request("GET", "/echo", resource=self.resource).json_body["clients"], 1)
        self.assertIs(self.server.get_db_pool(), self.db_pool)

    def test_default_listener(self) -> None:
        # Without ``resource``, requests go to the listener "web" of the config, as in production.
        channel = self.make_request("GET", "/health")
        self.assertEqual(channel.code, 200, channel.text_body)
        self.assertTrue(channel.request.request_id.startswith("GET-"))
