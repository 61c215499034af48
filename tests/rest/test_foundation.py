# SPDX-License-Identifier: AGPL-3.0-only
"""The foundation resources through a whole server: discovery, WebFinger, the JWKS, health,
metrics, static assets and connection-info (inventory §1.1-§1.5, §1.9)."""

from __future__ import annotations

import gzip
import os
import sqlite3
from typing import Any

from prometheus_client import REGISTRY

from mas_twisted.app.listeners import build_listener_resource, build_listener_site
from mas_twisted.config.http import ListenBind, ListenerConfig, ResourceConfig
from tests.app._helpers import CapturingHandler
from tests.server import FakeChannel, make_request
from tests.unittest import TEST_PUBLIC_BASE, MasTestCase, override_config
from tests.utils import temp_dir

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _listener(*resources: dict[str, Any], name: str = "web", **extra: Any) -> dict[str, Any]:
    entry = {"name": name, "resources": list(resources), "binds": [{"address": "[::]:8080"}]}
    entry.update(extra)
    return entry


class DiscoveryTestCase(MasTestCase):
    def test_openid_configuration(self) -> None:
        channel = self.make_request("GET", "/.well-known/openid-configuration")
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.content_type, "application/json")
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        doc = channel.json_body
        self.assertEqual(doc["issuer"], TEST_PUBLIC_BASE)
        self.assertEqual(doc["jwks_uri"], TEST_PUBLIC_BASE + "oauth2/keys.json")
        self.assertEqual(doc["subject_types_supported"], ["public"])
        # One RSA and one P-256 key in the test config.
        self.assertIn("RS256", doc["id_token_signing_alg_values_supported"])
        self.assertIn("ES256", doc["id_token_signing_alg_values_supported"])
        self.assertNotIn("ES384", doc["id_token_signing_alg_values_supported"])
        # No RP-initiated logout in MAS: no end_session_endpoint.
        self.assertNotIn("end_session_endpoint", doc)

    @override_config({"http": {"public_base": "https://example.com/mas/", "issuer": "https://example.com"}})
    def test_issuer_and_public_base_with_a_path(self) -> None:
        doc = self.make_request("GET", "/.well-known/openid-configuration").json_body
        self.assertEqual(doc["issuer"], "https://example.com/")
        self.assertEqual(doc["jwks_uri"], "https://example.com/mas/oauth2/keys.json")

    def test_preflight(self) -> None:
        channel = self.make_request(
            "OPTIONS",
            "/.well-known/openid-configuration",
            headers=[("Origin", "https://client.example"), ("Access-Control-Request-Method", "GET")],
        )
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(channel.header("Access-Control-Max-Age"), "3600")

    def test_webfinger(self) -> None:
        rel = "http%3A%2F%2Fopenid.net%2Fspecs%2Fconnect%2F1.0%2Fissuer"
        channel = self.make_request(
            "GET", f"/.well-known/webfinger?resource=acct%3Aalice%40example.com&rel={rel}"
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.content_type, "application/jrd+json")
        self.assertEqual(
            channel.json_body,
            {
                "subject": "acct:alice@example.com",
                "links": [{"rel": "http://openid.net/specs/connect/1.0/issuer", "href": TEST_PUBLIC_BASE}],
            },
        )
        other = self.make_request(
            "GET", "/.well-known/webfinger?resource=acct%3Abob%40example.com&rel=profile"
        )
        self.assertEqual(other.json_body, {"subject": "acct:bob@example.com", "links": []})
        missing = self.make_request("GET", "/.well-known/webfinger?rel=profile")
        self.assertEqual(missing.code, 400)
        self.assertIn(b"resource", missing.body)


class KeysTestCase(MasTestCase):
    def test_public_jwks(self) -> None:
        channel = self.make_request("GET", "/oauth2/keys.json")
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.content_type, "application/json")
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        keys = channel.json_body["keys"]
        self.assertEqual(sorted(k["kid"] for k in keys), ["test-ec", "test-rsa"])
        for key in keys:
            self.assertFalse(PRIVATE_JWK_MEMBERS & set(key), key)

    def test_post_is_not_allowed(self) -> None:
        channel = self.make_request("POST", "/oauth2/keys.json")
        self.assertEqual(channel.code, 405)
        self.assertEqual(channel.header("Allow"), "GET, HEAD")


class _BrokenPool:
    async def ping(self) -> None:
        raise sqlite3.OperationalError("unable to open database file /secret/path")


class HealthTestCase(MasTestCase):
    def test_ok(self) -> None:
        channel = self.make_request("GET", "/health")
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.body, b"ok")
        self.assertEqual(channel.content_type, "text/plain; charset=utf-8")

    def test_database_down(self) -> None:
        self.server._db_pool = _BrokenPool()  # type: ignore[attr-defined]
        with CapturingHandler("mas_twisted.rest._base") as log:
            channel = self.make_request("GET", "/health")
        self.assertEqual(channel.code, 500)
        self.assertEqual(channel.body, b"Internal Server Error")
        self.assertNotIn(b"/secret/path", channel.body)
        self.assertEqual(len(log.records), 1)
        self.assertIn("unable to open database", str(log.records[0].exc_info[1]))


class MetricsTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"].append(
            _listener(
                {"name": "prometheus"}, {"name": "connection-info"}, {"name": "graphql"}, name="internal"
            )
        )
        return config

    @override_config({"telemetry": {"metrics": {"exporter": "prometheus"}}})
    def test_requests_are_timed_by_listener_method_route_and_status(self) -> None:
        site = build_listener_site(self.server, self.server.config.http.listener("web"))
        name = "http_server_request_duration_seconds_count"
        labels = {
            "mas_listener_name": "web",
            "http_request_method": "GET",
            "http_route": "FALLBACK",
            "http_response_status_code": "404",
        }
        before = REGISTRY.get_sample_value(name, labels) or 0.0
        make_request(self.reactor, site, "GET", "/missing")
        make_request(self.reactor, site, "BREW", "/coffee")
        self.assertEqual(REGISTRY.get_sample_value(name, labels), before + 1)
        self.assertIsNotNone(REGISTRY.get_sample_value(name, dict(labels, http_request_method="_OTHER")))

        channel = self.make_request("GET", "/metrics", listener="internal")
        self.assertEqual(channel.code, 200)
        self.assertTrue(channel.content_type.startswith("text/plain"), channel.content_type)
        self.assertIn('http_route="FALLBACK"', channel.text_body)
        # /metrics is only on the listener that mounts prometheus.
        self.assertEqual(self.make_request("GET", "/metrics").code, 404)

    def test_metrics_without_the_prometheus_exporter_answer_500_as_mas(self) -> None:
        channel = self.make_request("GET", "/metrics", listener="internal")
        self.assertEqual(channel.code, 500)
        self.assertIn("Prometheus exporter was not enabled in config", channel.text_body)

    def test_graphql_is_accepted_mounts_nothing_and_is_logged_once(self) -> None:
        import mas_twisted.app.listeners as listeners

        listeners._ignored_logged.discard("graphql")
        internal = self.server.config.http.listener("internal")
        with CapturingHandler("mas_twisted.app.listeners") as log:
            build_listener_resource(self.server, internal)
            build_listener_resource(self.server, internal)
        self.assertEqual(len(log.records), 1)
        self.assertIn("'graphql'", log.records[0].getMessage())
        self.assertEqual(self.make_request("POST", "/graphql", listener="internal").code, 404)

    def test_connection_info(self) -> None:
        channel = self.make_request("GET", "/connection-info", listener="internal", client_ip="192.0.2.7")
        self.assertEqual(channel.code, 200)
        lines = channel.text_body.splitlines()
        self.assertIn("peer: 192.0.2.7:49152", lines)
        self.assertIn("local: 127.0.0.1:8080", lines)
        self.assertIn("tls: none", lines)
        self.assertIn("proxy protocol: none", lines)


class AssetsTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.assets = temp_dir(self)
        os.makedirs(os.path.join(self.assets, "js"))
        with open(os.path.join(self.assets, "js", "app.js"), "w") as f:
            f.write("console.log('plain');")
        with open(os.path.join(self.assets, "js", "app.js.gz"), "wb") as f:
            f.write(gzip.compress(b"console.log('gzip');"))
        with open(os.path.join(self.assets, "js", "app.js.br"), "wb") as f:
            f.write(b"brotli-bytes")
        with open(os.path.join(self.assets, "only.txt"), "w") as f:
            f.write("only here")
        with open(os.path.join(os.path.dirname(self.assets), "outside.txt"), "w") as f:
            f.write("outside")
        self.addCleanup(os.unlink, os.path.join(os.path.dirname(self.assets), "outside.txt"))
        # The folder only exists now, so the listener serving it is added to the parsed config.
        self.server.config.http.listeners.append(
            ListenerConfig(
                index=1,
                name="assets",
                configured_name="assets",
                resources=(ResourceConfig("assets", path=self.assets),),
                prefix="",
                binds=(ListenBind("127.0.0.1", 0),),
            )
        )

    def get(self, path: str, *headers: tuple[str, str], method: str = "GET") -> FakeChannel:
        return self.make_request(method, path, headers=list(headers), listener="assets")

    def test_precompressed_variants_follow_accept_encoding(self) -> None:
        plain = self.get("/assets/js/app.js")
        self.assertEqual(plain.code, 200)
        self.assertEqual(plain.body, b"console.log('plain');")
        self.assertIsNone(plain.header("Content-Encoding"))
        self.assertIn("javascript", plain.content_type)
        self.assertEqual(plain.header("Vary"), "Accept-Encoding")
        self.assertEqual(plain.header("Cache-Control"), "public, max-age=31536000, immutable")

        br = self.get("/assets/js/app.js", ("Accept-Encoding", "gzip, deflate, br"))
        self.assertEqual((br.header("Content-Encoding"), br.body), ("br", b"brotli-bytes"))
        self.assertIn("javascript", br.content_type)

        gz = self.get("/assets/js/app.js", ("Accept-Encoding", "br;q=0, gzip"))
        self.assertEqual(gz.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(gz.body), b"console.log('gzip');")

        preferred = self.get("/assets/js/app.js", ("Accept-Encoding", "br;q=0.5, gzip;q=0.8"))
        self.assertEqual(preferred.header("Content-Encoding"), "gzip")

        identity = self.get("/assets/js/app.js", ("Accept-Encoding", "identity"))
        self.assertIsNone(identity.header("Content-Encoding"))

    def test_not_found_is_cached_for_five_minutes(self) -> None:
        missing = self.get("/assets/nope.css")
        self.assertEqual(missing.code, 404)
        self.assertEqual(missing.header("Cache-Control"), "public, max-age=300")
        directory = self.get("/assets/js")
        self.assertEqual(directory.code, 404)
        self.assertEqual(self.get("/assets/").code, 404)

    def test_traversal_is_refused(self) -> None:
        for path in (
            "/assets/../outside.txt",
            "/assets/%2e%2e/outside.txt",
            "/assets/js/..%2f..%2foutside.txt",
            "/assets/js%2f..%2f..%2foutside.txt",
            "/assets/.%2fonly.txt",
            "/assets/js%5c..%5c..%5coutside.txt",
            "/assets/js/app.js%00.txt",
        ):
            channel = self.get(path)
            self.assertEqual(channel.code, 404, path)
            self.assertNotIn(b"outside", channel.body)
        # Doubled slashes are merged by the router, into a path that stays under /assets/.
        merged = self.get("/assets//etc/passwd")
        self.assertEqual((merged.code, merged.location), (308, "/assets/etc/passwd"))

    def test_bundled_stylesheet_and_configured_folder(self) -> None:
        css = self.get("/assets/mas.css")
        self.assertEqual(css.code, 200)
        self.assertTrue(css.content_type.startswith("text/css"))
        self.assertIn(b":root", css.body)
        self.assertEqual(self.get("/assets/only.txt").body, b"only here")

    def test_head_and_if_modified_since(self) -> None:
        head = self.get("/assets/only.txt", method="HEAD")
        self.assertEqual(head.code, 200)
        self.assertEqual(head.header("Content-Length"), "9")
        self.assertEqual(head.body, b"")
        last_modified = self.get("/assets/only.txt").header("Last-Modified")
        self.assertIsNotNone(last_modified)
        cached = self.get("/assets/only.txt", ("If-Modified-Since", last_modified))
        self.assertEqual(cached.code, 304)
        self.assertEqual(cached.body, b"")


class AssetCacheTestCase(MasTestCase):
    """Asset bytes are read off the reactor thread once, then served from memory."""

    prepare = AssetsTestCase.prepare
    get = AssetsTestCase.get

    def _pool_jobs(self) -> list[Any]:
        pool = self.reactor.getThreadPool()
        jobs: list[Any] = []
        original = pool.callInThreadWithCallback

        def _recording(on_result: Any, func: Any, *args: Any, **kwargs: Any) -> None:
            jobs.append((func, args))
            original(on_result, func, *args, **kwargs)

        pool.callInThreadWithCallback = _recording  # type: ignore[method-assign]
        return jobs

    def test_read_in_the_thread_pool_once_then_from_memory(self) -> None:
        jobs = self._pool_jobs()
        path = os.path.join(self.assets, "only.txt")
        first = self.get("/assets/only.txt")
        self.assertEqual(first.body, b"only here")
        self.assertEqual([args for _, args in jobs], [(path,)])
        # Same bytes on disk under the same mtime and size: served from memory, no read.
        st = os.stat(path)
        with open(path, "w") as f:
            f.write("ONLY HERE")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        second = self.get("/assets/only.txt")
        self.assertEqual(second.body, b"only here")
        self.assertEqual(len(jobs), 1)
        # A newer file is read again.
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        third = self.get("/assets/only.txt")
        self.assertEqual(third.body, b"ONLY HERE")
        self.assertEqual(len(jobs), 2)

    def test_not_modified_needs_no_read(self) -> None:
        jobs = self._pool_jobs()
        last_modified = os.stat(os.path.join(self.assets, "only.txt")).st_mtime
        from twisted.web.http import datetimeToString

        cached = self.get(
            "/assets/only.txt", ("If-Modified-Since", datetimeToString(last_modified + 1).decode())
        )
        self.assertEqual(cached.code, 304)
        self.assertEqual(jobs, [])

    def test_cache_is_bounded(self) -> None:
        from mas_twisted.rest.assets import AssetCache

        cache = AssetCache(max_bytes=10, max_file_bytes=6)
        files = {}
        for name in ("a", "b", "c", "big"):
            path = os.path.join(self.assets, name)
            with open(path, "wb") as f:
                f.write(b"x" * (8 if name == "big" else 4))
            files[name] = (path, os.stat(path))
        for name in ("a", "b"):
            cache.put(files[name][0], files[name][1], b"1234")
        self.assertEqual(cache.get(*files["a"]), b"1234")  # "a" is now the most recently used
        cache.put(files["c"][0], files["c"][1], b"5678")
        self.assertEqual(cache.size, 8)
        self.assertIsNone(cache.get(*files["b"]))  # the least recently used went
        self.assertEqual(cache.get(*files["a"]), b"1234")
        cache.put(files["big"][0], files["big"][1], b"x" * 8)  # over max_file_bytes: not kept
        self.assertIsNone(cache.get(*files["big"]))
        self.assertEqual(cache.size, 8)
