# SPDX-License-Identifier: AGPL-3.0-only
""":class:`TokenFixture`, which the introspection, activity, revocation and resource tests share:
a client, a user ``alice`` with a browser session, and sessions with real ``mat_``/``mar_``
tokens made through :mod:`tests.factories`."""

from __future__ import annotations

from typing import Any

from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.oauth2 import AccessToken, OAuth2Session, RefreshToken
from mas_twisted.types.tokens import base62_crc
from mas_twisted.types.users import User
from tests.unittest import MasTestCase

API = "urn:matrix:client:api:*"
API_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:api:*"
DEVICE = "urn:matrix:client:device:"
DEVICE_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:device:"
TTL_MS = 300_000


class TokenFixture(MasTestCase):
    """A client, ``alice`` with a browser session, and helpers that make sessions with tokens."""

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.stores = server.get_stores()
        self.tokens = server.get_token_generator()
        self.client = self.add_client()
        self.user = self.add_user("alice")
        self.browser = self.factory.browser_session(self.user)

    def now(self) -> int:
        return self.clock.time_msec()

    def add_client(self, **fields: Any) -> OAuth2Client:
        return self.factory.client(**fields)

    def add_user(self, username: str) -> User:
        return self.factory.user(username, password=None)

    def start_session(
        self,
        scope: str = f"openid {API}",
        *,
        user: User | None | bool = True,
        client: OAuth2Client | None = None,
        ttl_ms: int | None = TTL_MS,
        refresh: bool = True,
    ) -> tuple[OAuth2Session, AccessToken, RefreshToken | None]:
        """A new session of ``client`` (default: the fixture's) for ``user`` (default alice;
        ``None``: a client_credentials session) with an access token and a refresh token."""
        owner = self.user if user is True else (user or None)
        return self.factory.oauth2_session(
            client or self.client,
            user=owner,
            browser_session=self.browser if owner is self.user else None,
            scope=scope,
            ttl_ms=ttl_ms,
            refresh=refresh,
        )

    def session(self, session_id: str) -> OAuth2Session:
        found = self.get_success(self.stores.oauth2_sessions.get_oauth2_session(session_id))
        assert found is not None
        return found

    def access(self, token_id: str) -> AccessToken:
        found = self.get_success(self.stores.access_tokens.get_access_token(token_id))
        assert found is not None
        return found

    def refresh(self, token_id: str) -> RefreshToken:
        found = self.get_success(self.stores.refresh_tokens.get_refresh_token(token_id))
        assert found is not None
        return found

    def advance_ms(self, ms: int) -> None:
        self.reactor.advance(ms / 1000)

    def table_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the OAuth tables: to check that a request wrote nothing."""
        out = {}
        for table in ("oauth2_sessions", "oauth2_access_tokens", "oauth2_refresh_tokens", "users"):
            rows = self.get_success(self.db_pool.execute("snapshot", f"SELECT * FROM {table}"))
            out[table] = sorted(tuple(row) for row in rows)
        return out


def compat_token(prefix: str) -> str:
    """A well-formed token of another type (``mct``, ``mcr``, ``mpt``)."""
    base = f"{prefix}_" + "A" * 30
    return f"{base}_{base62_crc(base)}"
