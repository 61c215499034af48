# SPDX-License-Identifier: AGPL-3.0-only
"""``HumanTestCase``: a server whose ``web`` listener serves the human pages, and a browser-like
cookie jar for driving them; ``AuthorizeTestCase``: the same with clients and /authorize."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from mas_twisted.server import MasServer
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.oauth2 import DeviceCodeGrant
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


REDIRECT_URI = "https://app.example.com/callback"
PASSWORD = "correct horse battery staple"
API_SCOPE = "urn:matrix:client:api:*"


class AuthorizeTestCase(HumanTestCase):
    """Helpers shared by the authorization and consent tests."""

    def add_client(
        self,
        *,
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
        **fields: Any,
    ) -> OAuth2Client:
        return self.factory.client(
            redirect_uris=redirect_uris, grant_types=grant_types, created_at=self.clock.time_msec(), **fields
        )

    def authorize(self, **params: str) -> Any:
        return self.browse("GET", "/authorize?" + urlencode(params))

    def code_params(self, client: OAuth2Client, **extra: str) -> dict[str, str]:
        params = {
            "client_id": client.id,
            "response_type": "code",
            "scope": f"openid {API_SCOPE}",
            "redirect_uri": REDIRECT_URI,
            "state": "st4te",
        }
        params.update(extra)
        return params

    def grants(self) -> list[tuple[Any, ...]]:
        return self.get_success(
            self.db_pool.execute(
                "grants",
                "SELECT oauth2_authorization_grant_id, authorization_code, fulfilled_at, raw_parameters,"
                " response_mode, code_challenge_method, code_challenge, login_hint, locale, nonce, state"
                " FROM oauth2_authorization_grants",
            )
        )

    def assert_error_page(self, channel: Any, code: int = 400) -> None:
        self.assertEqual(channel.code, code, channel)
        self.assertEqual(channel.content_type, "text/html; charset=utf-8")
        self.assertEqual(channel.header("X-Frame-Options"), "DENY")
        self.assertEqual(self.count_rows("oauth2_authorization_grants"), 0)

    def assert_redirected_error(
        self, channel: Any, error: str, *, mode: str = "query", state: str = "st4te"
    ) -> None:
        self.assertEqual(channel.code, 303, channel)
        parts = urlsplit(channel.location)
        self.assertEqual(f"{parts.scheme}://{parts.netloc}{parts.path}", REDIRECT_URI)
        values = parse_qs(parts.query if mode == "query" else parts.fragment)
        self.assertEqual(values["error"], [error])
        self.assertIn("error_description", values)
        self.assertEqual(values["state"], [state])
        self.assertEqual(self.count_rows("oauth2_authorization_grants"), 0)


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DeviceTestCase(AuthorizeTestCase):
    def add_device_grant(
        self, *, scope: str = f"openid {API_SCOPE}", user_code: str = "ABC123", expires_in_s: int = 1200
    ) -> DeviceCodeGrant:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        tokens = self.server.get_token_generator()
        now = self.server.get_clock().time_msec()
        grant = DeviceCodeGrant(
            id=tokens.ulid(),
            client_id=client.id,
            scope=scope,
            user_code=user_code,
            device_code=tokens.device_code(),
            created_at=now,
            expires_at=now + expires_in_s * 1000,
        )
        self.get_success(self.server.get_stores().device_code_grants.add_device_code_grant(grant))
        return grant

    def reload(self, grant: DeviceCodeGrant) -> DeviceCodeGrant:
        out = self.get_success(self.server.get_stores().device_code_grants.get_device_code_grant(grant.id))
        assert out is not None
        return out

    def sign_in(self) -> None:
        self.user = self.factory.user()
        self.login("alice", PASSWORD)
