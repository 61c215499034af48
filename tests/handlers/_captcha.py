# SPDX-License-Identifier: AGPL-3.0-only
"""A small local CAPTCHA verifier speaking the providers' siteverify protocol (reCAPTCHA v2,
hCaptcha, Cloudflare Turnstile: a form POST of ``secret``, ``response`` and ``remoteip``
answered with JSON ``success``, ``hostname``, ``challenge_ts`` or ``error-codes``), as a
``twisted.web`` resource: served over real HTTP by the handler tests, through ``StubTreq`` by
the page tests. It records what it was asked."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from twisted.internet import defer
from twisted.web import resource, server

SECRET = "0x0000000000000000000000000000000000000000"
#: The response token the verifier accepts; any other is refused as a wrong answer.
GOOD_RESPONSE = "10000000-aaaa-bbbb-cccc-000000000001"


class LocalVerifier(resource.Resource):
    isLeaf = True

    def __init__(self, hostname: str):
        super().__init__()
        #: What the widget would report: where it was solved.
        self.hostname = hostname
        self.requests: list[dict[str, list[str]]] = []
        #: Set to a status code to answer an HTTP error, or ``"hang"`` to never answer.
        self.failure: int | str | None = None
        self.body: bytes | None = None
        self._hanging: list[Any] = []

    def render_POST(self, request: Any) -> Any:
        content_type = request.getHeader(b"content-type") or b""
        fields = parse_qs(request.content.read().decode("utf-8")) if b"urlencoded" in content_type else {}
        self.requests.append(fields)
        if self.failure == "hang":
            self._hanging.append(request)
            request.notifyFinish().addErrback(lambda _: None)
            return server.NOT_DONE_YET
        if isinstance(self.failure, int):
            request.setResponseCode(self.failure)
            return b"error"
        request.setHeader(b"Content-Type", b"application/json")
        if self.body is not None:
            return self.body
        secret = fields.get("secret", [None])[0]
        response = fields.get("response", [None])[0]
        if secret is None:
            return self._answer(False, ["missing-input-secret"])
        if secret != SECRET:
            return self._answer(False, ["invalid-input-secret"])
        if response is None:
            return self._answer(False, ["missing-input-response"])
        if response != GOOD_RESPONSE:
            return self._answer(False, ["invalid-input-response"])
        return self._answer(True, [])

    def _answer(self, success: bool, codes: list[str]) -> bytes:
        if success:
            body: dict[str, Any] = {
                "success": True,
                "challenge_ts": "2026-12-07T14:00:00Z",
                "hostname": self.hostname,
            }
        else:
            body = {"success": False, "error-codes": codes}
        return json.dumps(body).encode()

    def release(self) -> None:
        for request in self._hanging:
            if not request.finished and not request._disconnected:
                request.finish()
        self._hanging.clear()


def serve(verifier: LocalVerifier) -> Any:
    """Listen on a free 127.0.0.1 port (real reactor); the port object."""
    from twisted.internet import reactor

    return reactor.listenTCP(0, server.Site(verifier), interface="127.0.0.1")  # type: ignore[attr-defined]


async def stop(port: Any, verifier: LocalVerifier) -> None:
    verifier.release()
    await defer.maybeDeferred(port.stopListening)
