# SPDX-License-Identifier: AGPL-3.0-only
"""Helpers for tests of passwords, logins and client authentication (users, clients and
sessions come from :mod:`tests.factories`)."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from mas_twisted.handlers.passwords import PasswordManager
from mas_twisted.server import MasServer
from tests.server import FakeThreadPool


def use_threadless_password_manager(server: MasServer, reactor: Any) -> PasswordManager:
    """Make ``server``'s password manager hash on the test thread, when the fake reactor runs.

    The real one hashes on threads of its own, which a fake clock cannot wait for.
    """
    manager = PasswordManager(server, threadpool=FakeThreadPool(reactor))
    server._password_manager = manager  # type: ignore[attr-defined]
    return manager


class _FakeResponse:
    def __init__(self, code: int, body: bytes):
        self.code = code
        self.length = len(body)
        self._body = body

    def deliverBody(self, protocol: Any) -> None:
        protocol.makeConnection(None)
        protocol.dataReceived(self._body)
        protocol.connectionLost(Failure(ResponseDone()))


class FakeHttpClient:
    """Answers ``get(uri)`` from ``documents`` (``uri -> (status, body)``) and counts calls."""

    def __init__(self, documents: dict[str, tuple[int, Any]]):
        self.documents = documents
        self.calls: list[str] = []

    def get(self, uri: str, **kwargs: Any) -> defer.Deferred[Any]:
        self.calls.append(uri)
        if uri not in self.documents:
            return defer.fail(ConnectionRefusedError(f"nothing at {uri}"))
        status, body = self.documents[uri]
        raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        return defer.succeed(_FakeResponse(status, raw))
