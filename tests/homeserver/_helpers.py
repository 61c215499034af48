# SPDX-License-Identifier: AGPL-3.0-only
"""A ``twisted.web`` stand-in for Synapse that records what the homeserver clients send."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET


class Recorder(Resource):
    """Records every request and answers from a queue (default ``200 {}``)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, bytes]] = []
        self.hang = False

    def answer(self, status: int, body: Any = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps({} if body is None else body).encode()
        self.answers.append((status, raw))

    def render(self, request: Any) -> Any:
        content = request.content.read()
        self.requests.append(
            {
                "method": request.method.decode(),
                "uri": request.uri.decode(),
                "path": urlsplit(request.uri.decode()).path,
                "query": parse_qs(urlsplit(request.uri.decode()).query),
                "headers": {
                    k.decode().lower(): [v.decode() for v in vs]
                    for k, vs in request.requestHeaders.getAllRawHeaders()
                },
                "json": json.loads(content) if content else None,
            }
        )
        if self.hang:
            return NOT_DONE_YET
        status, body = self.answers.pop(0) if self.answers else (200, b"{}")
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        return body
