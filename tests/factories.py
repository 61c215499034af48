# SPDX-License-Identifier: AGPL-3.0-only
"""The one place tests make users, clients, browser sessions and sessions with tokens.

A :class:`Factory` writes through the server's stores and returns the model objects it made.
Ids, tokens and timestamps come from the server's (seeded) token generator and fake clock, so
they are the same on every run; the ``build_*`` methods make the objects without storing them,
for the store tests that test the storing. ``MasTestCase.factory`` is one for the test's server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from mas_twisted.server import MasServer
from mas_twisted.storage.stores import Stores
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.compat import CompatAccessToken, CompatRefreshToken, CompatSession
from mas_twisted.types.oauth2 import AccessToken, OAuth2Session, RefreshToken
from mas_twisted.types.tokens import TokenType
from mas_twisted.types.users import (
    BrowserSession,
    BrowserSessionAuthentication,
    User,
    UserEmail,
    UserPassword,
)
from mas_twisted.util.ulid import max_ulid_at

T = TypeVar("T")

#: The password :meth:`Factory.user` gives a user unless told otherwise.
PASSWORD = "correct horse battery staple"
#: The redirect URI of :meth:`Factory.client`'s clients unless told otherwise.
CLIENT_REDIRECT_URI = "https://app.example.com/cb"
API_SCOPE = "urn:matrix:client:api:*"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class IdSource(Protocol):
    """What a :class:`Factory` draws ids and tokens from (a ``TokenGenerator`` is one)."""

    def ulid(self) -> str: ...

    def token(self, token_type: TokenType) -> str: ...


class _MsecClock(Protocol):
    def time_msec(self) -> int: ...


class SequentialIds:
    """ULIDs for the current fake time whose random part is a counter, so that successive ids
    sort in creation order; tokens are numbered by the same counter (and have no valid checksum)."""

    #: The last six characters of each kind of token.
    _SUFFIXES = {TokenType.REFRESH_TOKEN: "rrrrrr", TokenType.COMPAT_ACCESS_TOKEN: "cccccc"}

    def __init__(self, clock: _MsecClock) -> None:
        self._clock = clock
        self.seq = 0

    def ulid(self) -> str:
        self.seq += 1
        return max_ulid_at(self._clock.time_msec())[:10] + f"{self.seq:016d}"

    def token(self, token_type: TokenType) -> str:
        return f"{token_type.prefix}_{self.seq:030d}_{self._SUFFIXES.get(token_type, 'aaaaaa')}"


class Factory:
    """Makes model objects through ``server``'s stores; ``run`` drives an awaitable to its
    result (a test case's ``get_success``)."""

    def __init__(
        self, server: MasServer, run: Callable[[Awaitable[Any]], Any], ids: IdSource | None = None
    ) -> None:
        self.server = server
        self._run = run
        self.ids: IdSource = ids if ids is not None else server.get_token_generator()

    @property
    def stores(self) -> Stores:
        return self.server.get_stores()

    def now(self) -> int:
        return self.server.get_clock().time_msec()

    def run(self, awaitable: Awaitable[T]) -> T:
        result: T = self._run(awaitable)
        return result

    # -- users ---------------------------------------------------------------------------------
    def build_user(self, username: str = "alice", **changes: Any) -> User:
        return User(id=self.ids.ulid(), username=username, created_at=self.now(), **changes)

    def user(
        self,
        username: str = "alice",
        password: str | None = PASSWORD,
        *,
        emails: Iterable[str] = (),
        **changes: Any,
    ) -> User:
        """A user with a password hashed by the current scheme (none if ``password`` is None)
        and verified ``emails``, registered in one transaction."""
        user = self.build_user(username, **changes)
        now = self.now()
        hashed = None
        if password is not None:
            version, digest = self.run(self.server.get_password_manager().hash(password))
            hashed = UserPassword(
                id=self.ids.ulid(), user_id=user.id, hashed_password=digest, version=version, created_at=now
            )
        addresses = [UserEmail(id=self.ids.ulid(), user_id=user.id, email=e, created_at=now) for e in emails]
        self.run(self.stores.users.register_user(user, hashed, addresses))
        return user

    def build_browser_session(self, user: User, **changes: Any) -> BrowserSession:
        return BrowserSession(id=self.ids.ulid(), user=user, created_at=self.now(), **changes)

    def browser_session(self, user: User, *, authenticated_at: int | None = None) -> BrowserSession:
        """A browser session of ``user``, with a password authentication at ``authenticated_at``
        if given."""
        session = self.build_browser_session(user)
        self.run(self.stores.browser_sessions.add_browser_session(session))
        if authenticated_at is not None:
            authentication = BrowserSessionAuthentication(
                id=self.ids.ulid(), user_session_id=session.id, created_at=authenticated_at
            )
            self.run(self.stores.browser_sessions.add_browser_session_authentication(authentication))
        return session

    # -- clients -------------------------------------------------------------------------------
    def client(
        self,
        *,
        redirect_uris: Iterable[str] = (CLIENT_REDIRECT_URI,),
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        auth_method: str | None = "none",
        secret: str | None = None,
        **fields: Any,
    ) -> OAuth2Client:
        """A client in the database, allowed ``grant_types``; ``secret`` is stored encrypted, as
        registration does. ``fields`` are the client's other attributes (``created_at`` too)."""
        grant_types = tuple(grant_types)
        values: dict[str, Any] = {
            "redirect_uris": tuple(redirect_uris),
            "grant_type_authorization_code": "authorization_code" in grant_types,
            "grant_type_refresh_token": "refresh_token" in grant_types,
            "grant_type_client_credentials": "client_credentials" in grant_types,
            "grant_type_device_code": DEVICE_GRANT in grant_types,
            "token_endpoint_auth_method": auth_method,
        }
        if secret is not None:
            values["encrypted_client_secret"] = self.server.get_encrypter().encrypt_to_string(secret)
        values.update(fields)
        client = OAuth2Client(id=values.pop("id", None) or self.ids.ulid(), **values)
        self.run(self.stores.oauth2_clients.add_oauth2_client(client))
        return client

    # -- OAuth 2.0 sessions --------------------------------------------------------------------
    def build_oauth2_session(
        self,
        client: OAuth2Client,
        *,
        user: User | None,
        browser_session: BrowserSession | None = None,
        scope: Any = f"openid {API_SCOPE}",
    ) -> OAuth2Session:
        """A session of ``client`` for ``user`` (None: a ``client_credentials`` session)."""
        return OAuth2Session(
            id=self.ids.ulid(),
            client_id=client.id,
            scope=scope,
            created_at=self.now(),
            user_id=user.id if user is not None else None,
            user_session_id=browser_session.id if browser_session is not None else None,
        )

    def build_tokens(
        self, session: OAuth2Session, *, ttl_ms: int | None = 300_000, refresh: bool = True
    ) -> tuple[AccessToken, RefreshToken | None]:
        """An access token of ``session`` living ``ttl_ms`` (None: forever), and a refresh token
        paired with it if ``refresh``."""
        now = self.now()
        access_id = self.ids.ulid()
        access = AccessToken(
            id=access_id,
            session_id=session.id,
            access_token=self.ids.token(TokenType.ACCESS_TOKEN),
            created_at=now,
            expires_at=now + ttl_ms if ttl_ms is not None else None,
        )
        refresh_token = None
        if refresh:
            refresh_id = self.ids.ulid()
            refresh_token = RefreshToken(
                id=refresh_id,
                session_id=session.id,
                refresh_token=self.ids.token(TokenType.REFRESH_TOKEN),
                created_at=now,
                access_token_id=access.id,
            )
        return access, refresh_token

    def oauth2_session(
        self,
        client: OAuth2Client,
        *,
        user: User | None,
        browser_session: BrowserSession | None = None,
        scope: Any = f"openid {API_SCOPE}",
        ttl_ms: int | None = 300_000,
        refresh: bool = True,
    ) -> tuple[OAuth2Session, AccessToken, RefreshToken | None]:
        """A stored session (:meth:`build_oauth2_session`) with its first tokens (:meth:`build_tokens`)."""
        session = self.build_oauth2_session(client, user=user, browser_session=browser_session, scope=scope)
        access, refresh_token = self.build_tokens(session, ttl_ms=ttl_ms, refresh=refresh)
        self.run(self.stores.oauth2_sessions.add_oauth2_session_with_tokens(session, access, refresh_token))
        return session, access, refresh_token

    # -- compatibility sessions ----------------------------------------------------------------
    def compat_session(
        self,
        user: User,
        *,
        device_id: str = "DEVICEAAAA",
        refresh: bool = False,
        ttl_ms: int | None = None,
        admin: bool = False,
    ) -> tuple[CompatSession, CompatAccessToken, CompatRefreshToken | None]:
        """A stored compatibility session of ``user`` on ``device_id`` with an access token
        (living ``ttl_ms``, None: forever) and, if ``refresh``, a refresh token."""
        now = self.now()
        session = CompatSession(
            id=self.ids.ulid(), user_id=user.id, device_id=device_id, created_at=now, is_synapse_admin=admin
        )
        access = CompatAccessToken(
            id=self.ids.ulid(),
            session_id=session.id,
            access_token=self.ids.token(TokenType.COMPAT_ACCESS_TOKEN),
            created_at=now,
            expires_at=now + ttl_ms if ttl_ms is not None else None,
        )
        refresh_token = None
        if refresh:
            refresh_token = CompatRefreshToken(
                id=self.ids.ulid(),
                session_id=session.id,
                access_token_id=access.id,
                refresh_token=self.ids.token(TokenType.COMPAT_REFRESH_TOKEN),
                created_at=now,
            )
        self.run(self.stores.compat_sessions.start_compat_session(session, access, refresh_token))
        return session, access, refresh_token
