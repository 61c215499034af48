# SPDX-License-Identifier: AGPL-3.0-only
"""Fixtures for the token, userinfo, registration and client authentication tests.

:class:`OAuthTestCase` has a user (``alice``) with a browser session and a password
authentication, and helpers to register clients (through the store, with an encrypted
secret when asked), to start grants in every stage, to build client assertions with
authlib's RFC 7523 signers, and to call the token endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from jwcrypto import jwk, jws

from mas_twisted.oauth2.scope import Scope
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.oauth2 import (
    AccessToken,
    AuthorizationGrant,
    DeviceCodeGrant,
    OAuth2Session,
    Pkce,
    RefreshToken,
)
from mas_twisted.types.users import BrowserSession, User
from mas_twisted.util.clock import Clock
from tests.server import FakeChannel, ThreadedMemoryReactorClock
from tests.unittest import TEST_MATRIX_SECRET, TEST_PUBLIC_BASE, MasTestCase

TOKEN_ENDPOINT = TEST_PUBLIC_BASE + "oauth2/token"
REDIRECT_URI = "https://app.example.com/callback"
API_SCOPE = "urn:matrix:client:api:*"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

#: Tables a failed request must leave untouched.
OAUTH_TABLES = (
    "oauth2_clients",
    "oauth2_sessions",
    "oauth2_access_tokens",
    "oauth2_refresh_tokens",
    "oauth2_authorization_grants",
    "oauth2_device_code_grant",
)


def basic_auth(client_id: str, secret: str) -> tuple[str, str]:
    """An ``Authorization: Basic`` header, form-encoding the parts first (RFC 6749 §2.3.1)."""
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return ("Authorization", "Basic " + base64.b64encode(raw).decode("ascii"))


def sign_assertion(
    key: str | Mapping[str, Any],
    client_id: str,
    *,
    alg: str,
    audience: str = TOKEN_ENDPOINT,
    claims: Mapping[str, Any] | None = None,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A client assertion as authlib's RFC 7523 client signs it (``iss``/``sub`` = client,
    ``aud``, ``exp`` in an hour, a random ``jti``): ``key`` is the client secret (HS*) or a
    private JWK (dict)."""
    from authlib.oauth2.rfc7523 import client_secret_jwt_sign, private_key_jwt_sign

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(key, str):
            return client_secret_jwt_sign(key, client_id, audience, alg=alg, claims=claims, header=header)
        return private_key_jwt_sign(dict(key), client_id, audience, alg=alg, claims=claims, header=header)


def hand_signed_jwt(
    key: jwk.JWK | str, alg: str, claims: Mapping[str, Any], *, kid: str | None = None
) -> str:
    """A compact JWS of ``claims`` signed by ``key`` (for claims authlib would fill in itself);
    a ``str`` key is an HMAC secret, of any length."""
    protected = {"alg": alg, **({"kid": kid} if kid else {})}
    if isinstance(key, str):
        import hmac

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

        signing_input = b64(json.dumps(protected).encode()) + "." + b64(json.dumps(dict(claims)).encode())
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        return signing_input + "." + b64(hmac.new(key.encode(), signing_input.encode(), digest).digest())
    token = jws.JWS(json.dumps(dict(claims)).encode("utf-8"))
    token.add_signature(key, alg=alg, protected=json.dumps(protected))
    return token.serialize(compact=True)


def generate_key(alg: str) -> jwk.JWK:
    """A private key able to sign with ``alg``."""
    if alg.startswith(("RS", "PS")):
        return jwk.JWK.generate(kty="RSA", size=2048)
    curve = {"ES256": "P-256", "ES384": "P-384", "ES256K": "secp256k1"}[alg]
    return jwk.JWK.generate(kty="EC", crv=curve)


def public_jwks(*keys: jwk.JWK, kids: Iterable[str | None] = ()) -> dict[str, Any]:
    kid_list = list(kids) or [None] * len(keys)
    out = []
    for key, kid in zip(keys, kid_list):
        public = key.export_public(as_dict=True)
        if kid is not None:
            public["kid"] = kid
        out.append(public)
    return {"keys": out}


def pkce_s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
        .rstrip(b"=")
        .decode("ascii")
    )


class OAuthTestCase(MasTestCase):
    """A user ``alice`` with a browser session, and helpers for clients, grants and tokens."""

    def prepare(self, reactor: ThreadedMemoryReactorClock, clock: Clock, server: Any) -> None:
        self.stores = server.get_stores()
        self.tokens = server.get_token_generator()
        self.user = self.add_user("alice")
        #: When alice last authenticated (before the test's clock moves).
        self.auth_time_ms = self.now() - 60_000
        self.browser_session = self.factory.browser_session(self.user, authenticated_at=self.auth_time_ms)

    # -- time -------------------------------------------------------------------------------------
    def now(self) -> int:
        return self.clock.time_msec()

    def advance_s(self, seconds: float) -> None:
        self.reactor.advance(seconds)

    # -- users and clients ----------------------------------------------------------------------
    def add_user(self, username: str, **changes: Any) -> User:
        return self.factory.user(username, password=None, **changes)

    def add_browser_session(self, user: User) -> BrowserSession:
        return self.factory.browser_session(user)

    def add_client(
        self,
        *,
        auth_method: str | None = "none",
        secret: str | None = None,
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        **fields: Any,
    ) -> OAuth2Client:
        """A client in the database; ``secret`` is stored encrypted, as registration does."""
        return self.factory.client(
            redirect_uris=(REDIRECT_URI,),
            grant_types=grant_types,
            auth_method=auth_method,
            secret=secret,
            created_at=self.now(),
            **fields,
        )

    # -- grants -----------------------------------------------------------------------------------
    def add_grant(
        self,
        client: OAuth2Client,
        *,
        scope: str = f"openid {API_SCOPE}",
        code: str | None = None,
        nonce: str | None = "n-0S6_WzA2Mj",
        pkce: Pkce | None = None,
        fulfill: bool = True,
        browser_session: BrowserSession | None = None,
    ) -> AuthorizationGrant:
        """An authorization grant, fulfilled by alice's browser session unless ``fulfill`` is false."""
        grant = AuthorizationGrant(
            id=self.tokens.ulid(),
            client_id=client.id,
            redirect_uri=REDIRECT_URI,
            scope=scope,
            created_at=self.now(),
            response_mode="query",
            code=code or self.tokens.authorization_code(),
            pkce=pkce,
            state="af0ifjsldkj",
            nonce=nonce,
        )
        self.get_success(self.stores.authorization_grants.add_authorization_grant(grant))
        if fulfill:
            grant = self.get_success(
                self.stores.authorization_grants.fulfill_authorization_grant(
                    grant, (browser_session or self.browser_session).id
                )
            )
        return grant

    def add_device_grant(
        self, client: OAuth2Client, *, scope: str = f"openid {API_SCOPE}"
    ) -> DeviceCodeGrant:
        grant = DeviceCodeGrant(
            id=self.tokens.ulid(),
            client_id=client.id,
            scope=scope,
            user_code=self.tokens.user_code(),
            device_code=self.tokens.device_code(),
            created_at=self.now(),
            expires_at=self.now() + 1200 * 1000,
        )
        self.get_success(self.stores.device_code_grants.add_device_code_grant(grant))
        return grant

    def start_session(
        self, client: OAuth2Client, *, scope: str = f"openid {API_SCOPE}", user: bool = True, ttl_s: int = 300
    ) -> tuple[OAuth2Session, AccessToken, RefreshToken | None]:
        """An OAuth 2.0 session with a token pair (an access token alone when ``user`` is false)."""
        return self.factory.oauth2_session(
            client,
            user=self.user if user else None,
            browser_session=self.browser_session if user else None,
            scope=Scope.parse(scope) if scope else Scope(),
            ttl_ms=ttl_s * 1000,
            refresh=user,
        )

    # -- reading ----------------------------------------------------------------------------------
    def count(self, table: str) -> int:
        return int(self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}"))[0][0])

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the OAuth tables, to check that a failed request wrote nothing."""
        out = {}
        for table in OAUTH_TABLES:
            rows = self.get_success(self.db_pool.execute("snapshot", f"SELECT * FROM {table}"))
            out[table] = sorted(tuple(row) for row in rows)
        return out

    def session_of(self, access_token: str) -> OAuth2Session:
        token = self.get_success(self.stores.access_tokens.find_access_token_by_token(access_token))
        assert token is not None, f"no access token {access_token}"
        session = self.get_success(self.stores.oauth2_sessions.get_oauth2_session(token.session_id))
        assert session is not None
        return session

    def access_token_is_valid(self, access_token: str) -> bool:
        """MAS's test helper: the token exists, is unexpired and unrevoked, in a valid session."""
        token = self.get_success(self.stores.access_tokens.find_access_token_by_token(access_token))
        if token is None or not token.is_valid(self.now()):
            return False
        session = self.get_success(self.stores.oauth2_sessions.get_oauth2_session(token.session_id))
        return session is not None and session.is_valid

    def use_access_token(self, access_token: str) -> None:
        """Record the token's first use (what userinfo or introspection does)."""
        token = self.get_success(self.stores.access_tokens.find_access_token_by_token(access_token))
        assert token is not None
        self.get_success(self.stores.access_tokens.mark_access_token_first_used(token))

    # -- requests ---------------------------------------------------------------------------------
    def token_request(
        self,
        form: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> FakeChannel:
        return self.make_request("POST", "/oauth2/token", form=form, headers=headers)

    def assert_oauth_error(self, channel: FakeChannel, code: int, error: str) -> dict[str, Any]:
        self.assertEqual(channel.code, code, channel.body)
        body = channel.json_body
        self.assertEqual(body["error"], error, body)
        return body


def verify(server: Any, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of ``token`` once checked against the public JWKS (``keys.json``)."""
    keyset = jwk.JWKSet.from_json(json.dumps(server.get_keystore().public_jwks()))
    signed = jws.JWS()
    signed.deserialize(token)
    header = signed.jose_header
    signed.verify(keyset.get_key(header["kid"]), alg=header["alg"])
    return header, json.loads(signed.payload)


#: What Synapse authenticates with when it introspects.
HOMESERVER = ("Authorization", f"Bearer {TEST_MATRIX_SECRET}")


def basic(client_id: str, secret: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
