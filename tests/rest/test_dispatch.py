# SPDX-License-Identifier: AGPL-3.0-only
"""How a listener dispatches to several Klein apps that all use absolute routes (STYLE.md
§5.11), under a prefix, with CORS, the 404 fallback, the request id and the access log.

Two small Klein classes stand in for the service's resources, so that what is pinned here
is the listener's behaviour, not any endpoint's."""

from __future__ import annotations

import logging
from typing import Any

from klein import Klein
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from twisted.web.resource import Resource

from mas_twisted.app.listeners import (
    ListenerResource,
    ListenerSite,
    MountedApp,
    MountedLeaf,
    infer_client_ip,
    mount,
)
from mas_twisted.config.http import ListenBind, ListenerConfig, ResourceConfig
from mas_twisted.logging.context import RequestIdFilter, current_request_id
from mas_twisted.rest._base import API_CORS, install_plain_error_handlers, text_response
from tests.app._helpers import CapturingHandler
from tests.server import FakeChannel, make_request

route_logger = logging.getLogger("tests.rest.test_dispatch.routes")


class FirstResource:
    app = Klein()
    install_plain_error_handlers(app)

    def __init__(self, clock: MemoryReactorClock):
        self._clock = clock

    @app.route("/first", methods=["GET"])
    def first(self, request: Any) -> bytes:
        return text_response(request, 200, f"first at {request.prepath!r}")

    @app.route("/shared/<name>", methods=["GET"])
    def shared(self, request: Any, name: str) -> bytes:
        return text_response(request, 200, f"first:{name}")

    @app.route("/slow", methods=["GET"])
    async def slow(self, request: Any) -> bytes:
        before = current_request_id()
        await _sleep(self._clock, 1)
        route_logger.info("slow route done")
        return text_response(request, 200, f"{before} {current_request_id()}")

    @app.route("/boom", methods=["GET"])
    def boom(self, request: Any) -> bytes:
        raise RuntimeError("secret detail that must not reach the client")

    @app.route("/dir/", methods=["GET"])
    def directory(self, request: Any) -> bytes:
        return text_response(request, 200, "dir")


class SecondResource:
    app = Klein()
    install_plain_error_handlers(app)
    cors = API_CORS

    @app.route("/second", methods=["POST"])
    def second(self, request: Any) -> bytes:
        return text_response(request, 200, "second")

    @app.route("/shared/<name>", methods=["GET"])
    def shared(self, request: Any, name: str) -> bytes:
        return text_response(request, 200, f"second:{name}")


class ExactLeaf(Resource):
    """A plain leaf bound to exact paths, as the introspection endpoint is."""

    isLeaf = True
    allowedMethods = (b"POST",)
    cors = API_CORS

    def __init__(self, *paths: str, tag: str = "leaf"):
        super().__init__()
        self.exact_paths = paths
        self.tag = tag

    def render_POST(self, request: Any) -> bytes:
        return text_response(request, 200, f"{self.tag} at {request.prepath!r} {request.postpath!r}")


def _sleep(clock: MemoryReactorClock, seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    clock.callLater(seconds, d.callback, None)
    return d


def _listener(prefix: str = "", proxy_protocol: bool = False) -> ListenerConfig:
    return ListenerConfig(
        index=0,
        name="test",
        configured_name="test",
        resources=(ResourceConfig("health"),),
        prefix=prefix,
        binds=(ListenBind("127.0.0.1", 0),),
        proxy_protocol=proxy_protocol,
    )


class DispatchTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)

    def site(
        self,
        prefix: str = "",
        trusted: tuple[str, ...] = ("127.0.0.0/8",),
        mounts: list[MountedApp | MountedLeaf] | None = None,
    ) -> ListenerSite:
        import ipaddress

        listener = _listener(prefix)
        if mounts is None:
            mounts = [MountedApp(FirstResource(self.reactor)), MountedApp(SecondResource())]
        return ListenerSite(
            ListenerResource(listener, mounts, server_header="mas-twisted/test"),
            listener,
            trusted_proxies=[ipaddress.ip_network(n) for n in trusted],
            reactor=self.reactor,
        )

    def request(self, site: ListenerSite, method: str, path: str, **kwargs: Any) -> FakeChannel:
        return make_request(self.reactor, site, method, path, **kwargs)

    def test_absolute_routes_of_several_apps(self) -> None:
        site = self.site()
        first = self.request(site, "GET", "/first")
        self.assertEqual((first.code, first.text_body), (200, "first at [b'first']"))
        second = self.request(site, "POST", "/second")
        self.assertEqual((second.code, second.text_body), (200, "second"))
        # The first app whose map knows the path wins.
        shared = self.request(site, "GET", "/shared/x")
        self.assertEqual(shared.text_body, "first:x")
        self.assertEqual(shared.header("Server"), "mas-twisted/test")

    def test_prefix_is_stripped_before_matching(self) -> None:
        site = self.site(prefix="/auth/v1")
        first = self.request(site, "GET", "/auth/v1/first")
        self.assertEqual(first.code, 200)
        # Klein sees the prefix as script name: prepath holds it and the route's segment.
        self.assertEqual(first.text_body, "first at [b'auth', b'v1', b'first']")
        self.assertEqual(self.request(site, "GET", "/first").code, 404)
        self.assertEqual(self.request(site, "GET", "/auth/first").code, 404)
        self.assertEqual(self.request(site, "GET", "/auth/v1/second/").code, 404)

    def test_wrong_method_and_missing_slash_stay_with_the_owning_app(self) -> None:
        site = self.site(prefix="/auth")
        wrong = self.request(site, "GET", "/auth/second")
        self.assertEqual(wrong.code, 405)
        self.assertEqual(wrong.header("Allow"), "POST")
        redirect = self.request(site, "GET", "/auth/dir")
        self.assertEqual(redirect.code, 308)
        # Relative: the absolute URL Werkzeug would build names the bound socket, not public_base.
        self.assertEqual(redirect.location, "/auth/dir/")

    def test_exact_path_leaf(self) -> None:
        leaf = ExactLeaf("/exact", "/shared/leaf")
        mounts = [MountedApp(FirstResource(self.reactor)), mount(leaf), MountedApp(SecondResource())]
        self.assertIsInstance(mounts[1], MountedLeaf)
        site = self.site(prefix="/auth", mounts=mounts)
        ok = self.request(site, "POST", "/auth/exact")
        self.assertEqual((ok.code, ok.text_body), (200, "leaf at [b'auth'] [b'exact']"))
        self.assertEqual(ok.header("Server"), "mas-twisted/test")
        self.assertEqual(ok.header("Access-Control-Allow-Origin"), "*")
        # Its methods only: another is a 405 with Allow, as a Klein app answers.
        wrong = self.request(site, "GET", "/auth/exact")
        self.assertEqual((wrong.code, wrong.text_body), (405, "Method Not Allowed"))
        self.assertEqual(wrong.header("Allow"), "POST")
        self.assertEqual(wrong.content_type, "text/plain; charset=utf-8")
        self.assertEqual(self.request(site, "HEAD", "/auth/exact").code, 405)
        # Exact: no trailing-slash redirect, no match without the prefix.
        self.assertEqual(self.request(site, "POST", "/auth/exact/").code, 404)
        self.assertEqual(self.request(site, "POST", "/exact").code, 404)
        # CORS: the preflight is answered for it; a plain OPTIONS is a 405.
        preflight = self.request(
            site,
            "OPTIONS",
            "/auth/exact",
            headers=[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")],
        )
        self.assertEqual(preflight.code, 200)
        self.assertEqual(preflight.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(self.request(site, "OPTIONS", "/auth/exact").code, 405)
        # The other apps still answer around it.
        self.assertEqual(self.request(site, "POST", "/auth/second").text_body, "second")

    def test_first_mounted_resource_wins_between_leaves_and_apps(self) -> None:
        # An app mounted before the leaf owns /shared/<name>: the leaf's /shared/leaf stays the app's.
        site = self.site(mounts=[MountedApp(FirstResource(self.reactor)), mount(ExactLeaf("/shared/leaf"))])
        self.assertEqual(self.request(site, "GET", "/shared/leaf").text_body, "first:leaf")
        self.assertEqual(self.request(site, "POST", "/shared/leaf").code, 405)
        # A leaf mounted before an app takes its exact path from it, and only that one.
        site = self.site(mounts=[mount(ExactLeaf("/first")), MountedApp(FirstResource(self.reactor))])
        self.assertEqual(self.request(site, "POST", "/first").text_body, "leaf at [] [b'first']")
        self.assertEqual(self.request(site, "GET", "/first").code, 405)
        self.assertEqual(self.request(site, "GET", "/shared/x").text_body, "first:x")
        # Of two leaves with one path, the first.
        site = self.site(mounts=[mount(ExactLeaf("/x", tag="one")), mount(ExactLeaf("/x", "/y", tag="two"))])
        self.assertEqual(self.request(site, "POST", "/x").text_body, "one at [] [b'x']")
        self.assertEqual(self.request(site, "POST", "/y").text_body, "two at [] [b'y']")

    def test_fallback(self) -> None:
        site = self.site()
        plain = self.request(site, "GET", "/nothing-here")
        self.assertEqual(plain.code, 404)
        self.assertEqual(plain.content_type, "text/plain; charset=utf-8")
        page = self.request(site, "GET", "/nothing/<b>", headers=[("Accept", "text/html,*/*")])
        self.assertEqual(page.code, 404)
        self.assertEqual(page.content_type, "text/html; charset=utf-8")
        self.assertIn(b"/nothing/&lt;b&gt;", page.body)
        bad = self.request(site, "GET", "/%ff")
        self.assertEqual((bad.code, bad.text_body), (400, "Non-UTF-8 encoding in URL."))

    def test_unexpected_errors_are_a_generic_500_and_a_logged_traceback(self) -> None:
        with CapturingHandler("mas_twisted.rest._base") as log:
            response = self.request(self.site(), "GET", "/boom")
        self.assertEqual(response.code, 500)
        self.assertEqual(response.text_body, "Internal Server Error")
        self.assertNotIn(b"secret detail", response.body)
        self.assertNotIn(b"Traceback", response.body)
        (record,) = log.records
        self.assertEqual(record.levelno, logging.ERROR)
        self.assertIn("GET /boom", record.getMessage())
        self.assertIsNotNone(record.exc_info)
        self.assertIn("secret detail", str(record.exc_info[1]))

    def test_cors_only_on_apps_that_ask_for_it(self) -> None:
        site = self.site()
        preflight = self.request(
            site,
            "OPTIONS",
            "/second",
            headers=[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")],
        )
        self.assertEqual(preflight.code, 200)
        self.assertEqual(preflight.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(preflight.header("Access-Control-Allow-Methods"), "*")
        self.assertEqual(
            preflight.header("Access-Control-Allow-Headers"),
            "authorization,accept,accept-language,content-language,content-type,x-requested-with",
        )
        self.assertEqual(preflight.header("Access-Control-Max-Age"), "3600")
        self.assertEqual(self.request(site, "POST", "/second").header("Access-Control-Allow-Origin"), "*")
        self.assertIsNone(self.request(site, "GET", "/first").header("Access-Control-Allow-Origin"))
        # Not a preflight (no Access-Control-Request-Method): the app answers 405 itself.
        self.assertEqual(self.request(site, "OPTIONS", "/second").code, 405)

    def test_request_id_follows_the_request_across_awaits(self) -> None:
        handler = CapturingHandler("tests.rest.test_dispatch.routes")
        handler.addFilter(RequestIdFilter())
        with handler:
            response = self.request(self.site(), "GET", "/slow")
        self.assertEqual(response.code, 200)
        before, after = response.text_body.split(" ")
        self.assertRegex(before, r"^GET-\d+$")
        self.assertEqual(before, after)
        self.assertEqual(response.request.request_id, before)
        (record,) = handler.records
        self.assertEqual(record.request_id, before)
        # Outside the request, nothing is set.
        self.assertEqual(current_request_id(), "-")

    def test_access_log_line(self) -> None:
        with CapturingHandler("mas_twisted.access.test") as log:
            response = self.request(
                self.site(),
                "GET",
                "/slow?token=abc",
                headers=[("User-Agent", 'agent "quoted"'), ("X-Forwarded-For", "203.0.113.50")],
            )
        (record,) = log.records
        message = record.getMessage()
        # The route sleeps one second of the fake clock, which make_request moves in 0.1 s steps.
        self.assertRegex(
            message,
            rf'^{response.request.request_id} 203\.0\.113\.50 "GET /slow HTTP/1\.1" 200 {len(response.body)} '
            r'"agent \\"quoted\\"" \[elapsed: 1[01]00\.0ms\]$',
        )
        self.assertEqual(record.request_id, response.request.request_id)
        self.assertEqual(record.levelno, logging.INFO)

    def test_client_address_seen_by_the_application(self) -> None:
        response = self.request(
            self.site(),
            "GET",
            "/first",
            headers=[("X-Forwarded-For", "::ffff:203.0.113.8")],
            client_ip="10.1.1.1",
        )
        # 10.1.1.1 is not trusted by this site, so the header is ignored.
        self.assertEqual(response.request.client_ip, "10.1.1.1")
        response = self.request(
            self.site(trusted=("10.0.0.0/8",)),
            "GET",
            "/first",
            headers=[("X-Forwarded-For", "::ffff:203.0.113.8")],
            client_ip="10.1.1.1",
        )
        self.assertEqual(response.request.client_ip, "203.0.113.8")
        self.assertEqual(response.request.getClientAddress().host, "203.0.113.8")


class InferClientIpTestCase(unittest.SynchronousTestCase):
    trusted = [__import__("ipaddress").ip_network(n) for n in ("10.0.0.0/8", "::1/128")]

    def test_rules(self) -> None:
        infer = infer_client_ip
        self.assertEqual(infer("10.0.0.1", ["1.2.3.4"], self.trusted), "1.2.3.4")
        self.assertEqual(infer("10.0.0.1", ["1.2.3.4, 5.6.7.8, 10.0.0.9"], self.trusted), "5.6.7.8")
        self.assertEqual(infer("10.0.0.1", ["1.2.3.4", "5.6.7.8"], self.trusted), "5.6.7.8")
        self.assertEqual(infer("8.8.8.8", ["1.2.3.4"], self.trusted), "8.8.8.8")
        self.assertEqual(infer("10.0.0.1", ["10.0.0.2"], self.trusted), "10.0.0.2")
        self.assertEqual(infer("10.0.0.1", [], self.trusted), "10.0.0.1")
        self.assertEqual(infer("::1", ["[2001:db8::1]"], self.trusted), "2001:db8::1")
        self.assertEqual(infer("::ffff:10.0.0.1", ["1.2.3.4"], self.trusted), "1.2.3.4")
        self.assertEqual(infer(None, ["1.2.3.4"], self.trusted), "1.2.3.4")
        self.assertIsNone(infer(None, [], self.trusted))
        self.assertEqual(
            infer("198.51.100.1", ["1.2.3.4"], self.trusted, from_proxy_protocol=True), "198.51.100.1"
        )
