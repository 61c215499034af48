# SPDX-License-Identifier: AGPL-3.0-only
"""``HumanTestCase``: a server whose ``web`` listener serves the human pages, and a browser-like
cookie jar for driving them."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from mas_twisted.server import MasServer
from mas_twisted.util.clock import Clock
from tests.handlers._helpers import use_threadless_password_manager
from tests.server import FakeChannel, ThreadedMemoryReactorClock
from tests.unittest import MasTestCase

_CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_from(channel: FakeChannel) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF_RE.search(channel.text_body)
    if match is None:
        raise AssertionError(f"no CSRF field in the page: {channel.text_body[:500]!r}")
    return html.unescape(match.group(1))


class HumanTestCase(MasTestCase):
    """Human pages on the ``web`` listener; ``self.jar`` keeps cookies between requests."""

    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"] = [
            {"name": "discovery"},
            {"name": "human"},
            {"name": "oauth"},
            {"name": "assets"},
        ]
        return config

    def prepare(self, reactor: ThreadedMemoryReactorClock, clock: Clock, server: MasServer) -> None:
        use_threadless_password_manager(server, reactor)
        self.jar: dict[str, str] = {}

    def browse(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, Any] | None = None,
        client_ip: str = "127.0.0.1",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> FakeChannel:
        """A request with the jar's cookies; the response's cookies go back into the jar."""
        channel = self.make_request(
            method, path, form=form, cookies=dict(self.jar) or None, client_ip=client_ip, headers=headers
        )
        self.jar.update(channel.cookies)
        return channel

    def login(
        self, username: str, password: str, *, query: str = "", client_ip: str = "127.0.0.1"
    ) -> FakeChannel:
        """Open the login page, then submit the form as a browser would."""
        page = self.browse("GET", f"/login{query}", client_ip=client_ip)
        self.assertEqual(page.code, 200, page)
        return self.browse(
            "POST",
            f"/login{query}",
            form={"csrf": csrf_from(page), "username": username, "password": password},
            client_ip=client_ip,
        )

    def count_rows(self, table: str) -> int:
        rows = self.get_success(self.db_pool.execute("count_rows", f"SELECT COUNT(*) FROM {table}"))
        return int(rows[0][0])
