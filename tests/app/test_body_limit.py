# SPDX-License-Identifier: AGPL-3.0-only
"""A body longer than any resource takes is not kept by the listener (issue 11): neither in
memory nor in a temporary file, however long the sender keeps sending; the resource answers
413 in its protocol's terms."""

from __future__ import annotations

from twisted.web.test.requesthelper import DummyChannel

from mas_twisted.app.listeners import MAX_BODY_KEPT, ListenerRequest
from tests.unittest import MasTestCase

CHUNK = b"a" * 65536


def _kept(request: ListenerRequest) -> int:
    request.content.seek(0, 2)
    return request.content.tell()


class ListenerBodyLimitTestCase(MasTestCase):
    def test_announced_too_long_is_not_kept(self) -> None:
        request = ListenerRequest(DummyChannel())
        request.gotLength(4 * MAX_BODY_KEPT)
        for _ in range(4 * MAX_BODY_KEPT // len(CHUNK)):
            request.handleContentChunk(CHUNK)
        self.assertTrue(request.body_too_large)
        self.assertEqual(_kept(request), 0)

    def test_chunked_body_stops_being_kept_past_the_limit(self) -> None:
        request = ListenerRequest(DummyChannel())
        request.gotLength(None)
        for _ in range(3 * MAX_BODY_KEPT // len(CHUNK)):
            request.handleContentChunk(CHUNK)
        self.assertTrue(request.body_too_large)
        self.assertLessEqual(_kept(request), MAX_BODY_KEPT)

    def test_a_body_under_the_limit_is_kept_whole(self) -> None:
        request = ListenerRequest(DummyChannel())
        request.gotLength(None)
        for _ in range(4):
            request.handleContentChunk(CHUNK)
        self.assertFalse(request.body_too_large)
        self.assertEqual(_kept(request), 4 * len(CHUNK))

    def test_the_resource_answers_413_in_its_protocol(self) -> None:
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            content=b"grant_type=client_credentials&x=" + b"a" * (2 * MAX_BODY_KEPT),
            headers=[("Content-Type", "application/x-www-form-urlencoded")],
        )
        self.assertEqual(channel.code, 413, channel.body[:200])
        self.assertEqual(channel.json_body["error"], "invalid_request")
