# SPDX-License-Identifier: AGPL-3.0-only
""":class:`OAuth2StoreTestCase`, the fixture the OAuth 2.0, compatibility and queue store tests
share: a client, a user with a browser session, and ids from :class:`tests.factories.SequentialIds`
(ULIDs of the fake clock's time that sort in creation order)."""

from __future__ import annotations

from typing import Any

from mas_twisted.types.oauth2 import AccessToken, OAuth2Session, RefreshToken
from mas_twisted.types.users import BrowserSession, User
from tests.factories import Factory, SequentialIds
from tests.unittest import MasTestCase

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
API_SCOPE = "urn:matrix:client:api:*"


class OAuth2StoreTestCase(MasTestCase):
    """A client, a user (``alice``) with a browser session, and helpers to make OAuth objects."""

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.stores = server.get_stores()
        self.ids = SequentialIds(self.clock)
        self.make = Factory(server, self.get_success, ids=self.ids)
        self.client = self.make.client()
        self.user = self.add_user("alice")
        self.browser = self.add_browser_session(self.user)

    # -- ids and time -----------------------------------------------------------------------
    def now(self) -> int:
        return self.clock.time_msec()

    def new_id(self) -> str:
        """A ULID for the current fake time; successive ids sort in creation order."""
        return self.ids.ulid()

    @property
    def _seq(self) -> int:
        """How many ids :meth:`new_id` made (to number codes and tokens)."""
        return self.ids.seq

    def advance_ms(self, ms: int) -> None:
        self.reactor.advance(ms / 1000)

    # -- arranging ---------------------------------------------------------------------------
    def add_user(self, username: str) -> User:
        return self.make.user(username, password=None)

    def add_browser_session(self, user: User) -> BrowserSession:
        return self.make.browser_session(user)

    def make_session(
        self, *, user: User | None | bool = True, scope: str = f"openid {API_SCOPE}"
    ) -> OAuth2Session:
        owner = self.user if user is True else (user or None)
        return self.make.build_oauth2_session(
            self.client, user=owner, browser_session=self.browser if owner is self.user else None, scope=scope
        )

    def make_pair(
        self, session: OAuth2Session, ttl_ms: int | None = 300_000
    ) -> tuple[AccessToken, RefreshToken]:
        access, refresh = self.make.build_tokens(session, ttl_ms=ttl_ms)
        assert refresh is not None
        return access, refresh

    def start_session(self, **kwargs: Any) -> tuple[OAuth2Session, AccessToken, RefreshToken]:
        session = self.make_session(**kwargs)
        access, refresh = self.make_pair(session)
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session_with_tokens(session, access, refresh))
        return session, access, refresh

    # -- reading -----------------------------------------------------------------------------
    def session(self, session_id: str) -> OAuth2Session:
        found = self.get_success(self.stores.oauth2_sessions.get_oauth2_session(session_id))
        assert found is not None, f"no session {session_id}"
        return found

    def access(self, token_id: str) -> AccessToken | None:
        return self.get_success(self.stores.access_tokens.get_access_token(token_id))

    def refresh(self, token_id: str) -> RefreshToken | None:
        return self.get_success(self.stores.refresh_tokens.get_refresh_token(token_id))

    def count(self, table: str) -> int:
        return int(self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}"))[0][0])
