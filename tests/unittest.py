# SPDX-License-Identifier: AGPL-3.0-only
"""``MasTestCase``: a whole server on a fake reactor, a fresh database and no sockets.

Synapse's ``HomeserverTestCase`` (STYLE.md §1.8, §5.8). ``setUp`` builds, in order:

1. ``self.reactor`` (:class:`tests.server.ThreadedMemoryReactorClock`, its clock at
   :attr:`MasTestCase.START_TIME`) and ``self.clock``;
2. the config: :meth:`MasTestCase.default_config` with the test database's ``database``
   section and the test's ``@override_config({...})`` merged in, parsed as ``self.config``;
3. the test database (:class:`tests.utils.TestDatabase`: a copy of the migrated schema on
   SQLite, or a ``CREATE DATABASE … TEMPLATE`` copy on PostgreSQL with
   ``MAS_TEST_POSTGRES_DSN``), dropped in cleanup;
4. ``self.server`` (:meth:`MasTestCase.make_server`) with the fake clock and a threadless
   database pool preset, so every query runs on the test thread when the reactor advances;
5. the :meth:`MasTestCase.prepare` hook.

Tests then arrange through stores and handlers with :meth:`get_success`, act with
:meth:`make_request`, and move time with ``self.reactor.advance(seconds)``::

    class DiscoveryTestCase(MasTestCase):
        def test_issuer(self) -> None:
            channel = self.make_request("GET", "/.well-known/openid-configuration")
            self.assertEqual(channel.code, 200, channel.json_body)
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web.resource import IResource
from twisted.web.server import Site

from mas_twisted.config.root import RootConfig
from mas_twisted.server import MasServer
from mas_twisted.storage.database import DatabasePool
from mas_twisted.util.clock import Clock
from mas_twisted.util.rand import TokenGenerator
from tests.factories import Factory
from tests.server import FakeChannel, ThreadedMemoryReactorClock, make_request, make_site
from tests.utils import TestDatabase

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: ``secrets.encryption`` of the test config: 32 bytes as 64 hex characters.
TEST_ENCRYPTION_KEY = "0123456789abcdef" * 4
TEST_MATRIX_SECRET = "test-matrix-shared-secret"
TEST_PUBLIC_BASE = "https://auth.example.com/"
TEST_SERVER_NAME = "example.com"

_keys: dict[str, str] = {}


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def test_signing_keys() -> dict[str, str]:
    """``{"rsa": PEM, "ec": PEM}``: one RSA 2048 and one P-256 key, generated once per process."""
    if not _keys:
        _keys["rsa"] = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        _keys["ec"] = _pem(ec.generate_private_key(ec.SECP256R1()))
    return dict(_keys)


test_signing_keys.__test__ = False  # type: ignore[attr-defined]


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``: mappings merge key by key; anything else (lists too) replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def override_config(extra: Mapping[str, Any]) -> Callable[[F], F]:
    """Merge ``extra`` into the config of one test (mappings merge, lists are replaced)::

    @override_config({"account": {"password_registration_enabled": True}})
    def test_register(self) -> None: ...
    """

    def decorator(func: F) -> F:
        previous = getattr(func, "_extra_config", {})
        func._extra_config = deep_merge(previous, extra)  # type: ignore[attr-defined]
        return func

    return decorator


class MasTestCase(unittest.TestCase):
    """A test with a full :class:`MasServer` on a fake reactor (see the module docstring)."""

    #: Where the fake clock starts: 2023-11-14T22:13:20Z, in seconds since the epoch.
    START_TIME: float = 1_700_000_000.0

    reactor: ThreadedMemoryReactorClock
    clock: Clock
    config: RootConfig
    server: MasServer
    db_pool: DatabasePool
    test_db: TestDatabase

    def setUp(self) -> None:
        self.reactor = ThreadedMemoryReactorClock()
        self.reactor.advance(self.START_TIME)
        self.clock = Clock(self.reactor)

        self.test_db = TestDatabase()
        self.addCleanup(self.test_db.cleanup)

        raw = self.default_config()
        raw["database"] = dict(self.test_db.config_section)
        method = getattr(self, self._testMethodName, None)
        extra = getattr(method, "_extra_config", None)
        if extra:
            raw = deep_merge(raw, extra)
        self.config = self.make_config(raw)

        self.server = self.make_server(self.reactor, self.clock)
        self.server._clock = self.clock  # type: ignore[attr-defined]
        self.db_pool = self.test_db.make_pool(self.server.config.database, self.reactor)
        self.server._db_pool = self.db_pool  # type: ignore[attr-defined]
        self._sites: dict[str, Site] = {}

        self.prepare(self.reactor, self.clock, self.server)

    @functools.cached_property
    def factory(self) -> Factory:
        """Makes users, clients and sessions with tokens through this test's server."""
        return Factory(self.server, self.get_success)

    # -- hooks ----------------------------------------------------------------------------
    def default_config(self) -> dict[str, Any]:
        """A complete, valid configuration; override and extend it per test class."""
        keys = test_signing_keys()
        return {
            "http": {
                "public_base": TEST_PUBLIC_BASE,
                "listeners": [
                    {
                        "name": "web",
                        "resources": [{"name": "discovery"}, {"name": "oauth"}, {"name": "health"}],
                        "binds": [{"address": "[::]:8080"}],
                    }
                ],
            },
            "database": {"uri": "sqlite:///:memory:"},
            "secrets": {
                "encryption": TEST_ENCRYPTION_KEY,
                "keys": [
                    {"kid": "test-rsa", "key": keys["rsa"]},
                    {"kid": "test-ec", "key": keys["ec"]},
                ],
            },
            "matrix": {
                # Writes to the homeserver are no-ops (nothing listens at the endpoint on the
                # fake reactor); the real calls are tested against a real Synapse.
                "kind": "synapse_read_only",
                "homeserver": TEST_SERVER_NAME,
                "secret": TEST_MATRIX_SECRET,
                "endpoint": "http://matrix.example.com/",
            },
        }

    def make_config(self, raw: dict[str, Any]) -> RootConfig:
        return RootConfig(raw)

    def make_server(self, reactor: ThreadedMemoryReactorClock, clock: Clock) -> MasServer:
        """The server under test; ``setUp`` then presets its clock and database pool.

        Its token generator is seeded (``random.Random(42)``) and reads the fake clock, so ids,
        tokens and codes are the same on every run.
        """
        server = MasServer(self.config, reactor)
        server._token_generator = TokenGenerator(random.Random(42), clock)  # type: ignore[attr-defined]
        return server

    def prepare(self, reactor: ThreadedMemoryReactorClock, clock: Clock, server: MasServer) -> None:
        """Per-class setup, run at the end of ``setUp`` (fetch handlers and stores here)."""

    # -- driving the reactor --------------------------------------------------------------
    def get_success(self, d: Awaitable[T] | defer.Deferred[T], by: float = 0.0) -> T:
        """Run ``d`` (a coroutine or Deferred) to completion and return its result.

        Advances the fake clock by ``by`` seconds; fails the test if ``d`` did not succeed.
        """
        deferred = defer.ensureDeferred(d)  # type: ignore[arg-type]
        self.reactor.advance(by)
        self.reactor.advance(0)
        return self.successResultOf(deferred)

    def get_failure(
        self, d: Awaitable[Any] | defer.Deferred[Any], exc_type: type[BaseException], by: float = 0.0
    ) -> Failure:
        """Run ``d`` to completion and return its :class:`Failure`, which must wrap ``exc_type``."""
        deferred = defer.ensureDeferred(d)  # type: ignore[arg-type]
        self.reactor.advance(by)
        self.reactor.advance(0)
        return self.failureResultOf(deferred, exc_type)

    # -- HTTP -----------------------------------------------------------------------------
    def listener_site(self, name: str = "web") -> Site:
        """The ``Site`` serving the listener ``name`` of ``http.listeners`` (built once per test)."""
        site = self._sites.get(name)
        if site is None:
            from mas_twisted.app.listeners import build_listener_resource

            listeners = list(self.server.config.http.listeners)
            for listener in listeners:
                if getattr(listener, "name", None) == name:
                    break
            else:
                known = ", ".join(str(getattr(item, "name", None)) for item in listeners)
                raise AssertionError(f"no listener named {name!r} in http.listeners (have: {known})")
            site = self.make_listener_site(build_listener_resource(self.server, listener), listener)
            self._sites[name] = site
        return site

    def make_listener_site(self, resource: IResource, listener: Any) -> Site:
        """The production ``ListenerSite`` (request ids, client IP from trusted proxies, access
        log) on the fake reactor, without its idle timeout."""
        from mas_twisted.app.listeners import ListenerSite

        site = ListenerSite(
            resource, listener, trusted_proxies=self.server.config.http.trusted_proxies, reactor=self.reactor
        )
        site.timeOut = None
        return site

    def make_request(
        self,
        method: str | bytes,
        path: str | bytes,
        *,
        content: bytes | str | None = None,
        json: Any = None,
        form: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        cookies: Mapping[str, str] | None = None,
        resource: IResource | None = None,
        listener: str = "web",
        client_ip: str = "127.0.0.1",
    ) -> FakeChannel:
        """Send one request through a real ``Site`` and return the finished response.

        Args:
            path: the request target, already URL-encoded (``"/oauth2/token?x=1"``).
            content / json / form: the body; ``json`` and ``form`` also set ``Content-Type``.
            headers: extra ``(name, value)`` pairs.
            cookies: sent as one ``Cookie`` header.
            resource: serve from this resource instead of the listener ``listener`` of the config.
            client_ip: the peer address the server sees.
        """
        site = make_site(resource, self.reactor) if resource is not None else self.listener_site(listener)
        host = self._public_host()
        return make_request(
            self.reactor,
            site,
            method,
            path,
            content=content,
            json=json,
            form=form,
            headers=headers,
            cookies=cookies,
            host=host,
            client_ip=client_ip,
        )

    def _public_host(self) -> str:
        from urllib.parse import urlsplit

        http = getattr(self.server.config, "http", None)
        public_base = getattr(http, "public_base", None) or TEST_PUBLIC_BASE
        return urlsplit(str(public_base)).netloc or "localhost"
