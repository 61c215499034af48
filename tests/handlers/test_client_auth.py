# SPDX-License-Identifier: AGPL-3.0-only
"""``ClientAuthenticator``: the five methods, the twelve JWS algorithms, ``jwks_uri`` fetching.

Handler-level tests (credentials as :func:`extract_credentials` makes them); the HTTP side is
in ``tests/rest/oauth2/test_client_auth.py``. :class:`JwksFetcherNetworkTestCase` runs the
real treq fetcher against a local HTTP server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from mas_twisted import urls
from mas_twisted.api.errors import (
    AccessDeniedError,
    InvalidClientError,
    ServerError,
    UnauthorizedClientError,
)
from mas_twisted.handlers import client_auth
from mas_twisted.handlers.client_auth import (
    JWKS_CACHE_TTL_S,
    JWKS_REFRESH_MIN_AGE_S,
    STATIC_CLIENT_CACHE_TTL_S,
    ClientAuthenticator,
    JwksFetcher,
    JwksFetchError,
    make_http_client,
)
from mas_twisted.oauth2.credentials import JWT_BEARER_CLIENT_ASSERTION, extract_credentials
from mas_twisted.storage.stores.oauth2_clients import upsert_static_oauth2_client_txn
from mas_twisted.util.clock import Clock
from tests.handlers._helpers import FakeHttpClient
from tests.rest.oauth2._oauth_fixtures import (
    TOKEN_ENDPOINT,
    OAuthTestCase,
    basic_auth,
    generate_key,
    hand_signed_jwt,
    public_jwks,
    sign_assertion,
)
from tests.unittest import TEST_PUBLIC_BASE

SECRET = "s3cr3t-With:Special+Chars/"
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES256K")
HMAC = ("HS256", "HS384", "HS512")


class ClientAuthenticatorTestCase(OAuthTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.http = FakeHttpClient({})
        self.authenticator: ClientAuthenticator = server.get_client_authenticator()
        self.authenticator._jwks_fetcher = JwksFetcher(clock, self.http)

    def authenticate(
        self, authorization: str | None = None, form: Mapping[str, str] | None = None, **kwargs: Any
    ):  # type: ignore[no-untyped-def]
        credentials = extract_credentials(authorization, dict(form or {})).credentials
        return self.authenticator.authenticate(credentials, **kwargs)

    def assertion_form(self, client_id: str, assertion: str) -> dict[str, str]:
        return {
            "client_id": client_id,
            "client_assertion_type": JWT_BEARER_CLIENT_ASSERTION,
            "client_assertion": assertion,
        }

    def test_token_endpoint_path(self) -> None:
        # An assertion sent to any endpoint may name the token endpoint's URL: the route's.
        token_url = TEST_PUBLIC_BASE + urls.OAUTH2_TOKEN.lstrip("/")
        self.assertEqual(self.server.get_url_builder().oauth2_token_endpoint(), token_url)
        self.assertIn(token_url, self.authenticator.audiences(urls.OAUTH2_REVOCATION))

    # -- none, basic, post ----------------------------------------------------------------------
    def test_none(self) -> None:
        client = self.add_client(auth_method="none")
        self.assertEqual(self.get_success(self.authenticate(form={"client_id": client.id})), client)

    def test_unknown_client(self) -> None:
        failure = self.get_failure(
            self.authenticate(form={"client_id": "01HNOSUCHCLIENT0000000000"}), InvalidClientError
        )
        self.assertEqual(failure.value.code, 401)
        self.assertEqual(failure.value.headers(), [])
        # With Basic, the 401 carries a Basic challenge (RFC 6749 §5.2).
        failure = self.get_failure(self.authenticate(basic_auth("nope", "x")[1]), InvalidClientError)
        self.assertEqual(failure.value.headers(), [("WWW-Authenticate", 'Basic realm="mas"')])

    def test_bearer_names_no_client(self) -> None:
        self.get_failure(self.authenticate("Bearer some-token"), InvalidClientError)

    def test_client_without_auth_method_is_unauthorized(self) -> None:
        client = self.add_client(auth_method=None)
        failure = self.get_failure(self.authenticate(form={"client_id": client.id}), UnauthorizedClientError)
        self.assertEqual(failure.value.code, 401)

    def test_confidential_only(self) -> None:
        public = self.add_client(auth_method="none")
        failure = self.get_failure(
            self.authenticate(form={"client_id": public.id}, require_confidential=True), AccessDeniedError
        )
        self.assertEqual(failure.value.code, 401)
        unset = self.add_client(auth_method=None)
        self.get_failure(
            self.authenticate(form={"client_id": unset.id}, require_confidential=True), AccessDeniedError
        )
        confidential = self.add_client(auth_method="client_secret_post", secret=SECRET)
        self.assertEqual(
            self.get_success(
                self.authenticate(
                    form={"client_id": confidential.id, "client_secret": SECRET}, require_confidential=True
                )
            ),
            confidential,
        )

    def test_client_secret_basic(self) -> None:
        client = self.add_client(auth_method="client_secret_basic", secret=SECRET)
        header = basic_auth(client.id, SECRET)[1]
        self.assertEqual(self.get_success(self.authenticate(header)), client)
        # The form may repeat the client id.
        self.assertEqual(self.get_success(self.authenticate(header, {"client_id": client.id})), client)
        failure = self.get_failure(
            self.authenticate(basic_auth(client.id, SECRET + "x")[1]), InvalidClientError
        )
        self.assertTrue(failure.value.basic_offered)
        self.assertEqual(failure.value.headers(), [("WWW-Authenticate", 'Basic realm="mas"')])
        # The method must be the registered one.
        failure = self.get_failure(
            self.authenticate(form={"client_id": client.id, "client_secret": SECRET}), InvalidClientError
        )
        self.assertEqual(failure.value.headers(), [])

    def _sync_static_client(self, client_id: str, secret: str) -> None:
        """What ``config sync`` writes for a ``clients`` entry (the secret encrypted)."""
        encrypted = self.server.get_encrypter().encrypt_to_string(secret)
        self.get_success(
            self.db_pool.runInteraction(
                "sync",
                lambda txn: upsert_static_oauth2_client_txn(
                    txn,
                    client_id,
                    client_name=None,
                    client_uri=None,
                    client_auth_method="client_secret_basic",
                    encrypted_client_secret=encrypted,
                    jwks=None,
                    jwks_uri=None,
                    redirect_uris=(),
                ),
            )
        )

    def test_static_client_changed_by_config_sync_is_seen_within_the_cache_ttl(self) -> None:
        client_id = "01J0STAT1CC11ENT0000000000"
        self._sync_static_client(client_id, SECRET)
        self.assertEqual(self.get_success(self.authenticate(basic_auth(client_id, SECRET)[1])).id, client_id)
        self.get_failure(self.authenticate(basic_auth(client_id, "rotated")[1]), InvalidClientError)
        # A config sync run beside the server (mas-cli config sync) rotates the secret.
        self._sync_static_client(client_id, "rotated")
        self.reactor.advance(STATIC_CLIENT_CACHE_TTL_S + 1)
        self.assertEqual(
            self.get_success(self.authenticate(basic_auth(client_id, "rotated")[1])).id, client_id
        )
        self.get_failure(self.authenticate(basic_auth(client_id, SECRET)[1]), InvalidClientError)

    def test_dynamic_client_deleted_is_refused_at_once(self) -> None:
        client = self.add_client(auth_method="client_secret_basic", secret=SECRET)
        header = basic_auth(client.id, SECRET)[1]
        self.assertEqual(self.get_success(self.authenticate(header)), client)
        self.get_success(self.db_pool.simple_delete_one("oauth2_clients", {"oauth2_client_id": client.id}))
        self.get_failure(self.authenticate(header), InvalidClientError)

    def test_client_secret_post(self) -> None:
        client = self.add_client(auth_method="client_secret_post", secret=SECRET)
        self.assertEqual(
            self.get_success(self.authenticate(form={"client_id": client.id, "client_secret": SECRET})),
            client,
        )
        self.get_failure(
            self.authenticate(form={"client_id": client.id, "client_secret": "wrong"}), InvalidClientError
        )
        self.get_failure(
            self.authenticate(form={"client_id": client.id, "client_secret": ""}), InvalidClientError
        )
        self.get_failure(self.authenticate(basic_auth(client.id, SECRET)[1]), InvalidClientError)
        self.get_failure(self.authenticate(form={"client_id": client.id}), InvalidClientError)

    def test_secret_problems_are_server_errors(self) -> None:
        missing = self.add_client(auth_method="client_secret_post", secret=None)
        failure = self.get_failure(
            self.authenticate(form={"client_id": missing.id, "client_secret": SECRET}), ServerError
        )
        self.assertEqual(failure.value.code, 500)
        garbled = self.add_client(auth_method="client_secret_post", secret=None)
        self.get_success(
            self.db_pool.simple_update_one(
                "oauth2_clients",
                {"oauth2_client_id": garbled.id},
                {"encrypted_client_secret": "bm90IHNlYWxlZA=="},
            )
        )
        self.get_failure(
            self.authenticate(form={"client_id": garbled.id, "client_secret": SECRET}), ServerError
        )
        # A mismatching method is the client's error, whatever the registration holds.
        self.get_failure(self.authenticate(form={"client_id": missing.id}), InvalidClientError)

    # -- client_secret_jwt --------------------------------------------------------------------------
    def test_client_secret_jwt_algorithms(self) -> None:
        client = self.add_client(auth_method="client_secret_jwt", secret=SECRET)
        for alg in HMAC:
            assertion = sign_assertion(SECRET, client.id, alg=alg)
            self.assertEqual(
                self.get_success(self.authenticate(form=self.assertion_form(client.id, assertion))),
                client,
                alg,
            )
            # Without the optional client_id field too.
            form = self.assertion_form(client.id, assertion)
            del form["client_id"]
            self.assertEqual(self.get_success(self.authenticate(form=form)), client, alg)
            wrong = sign_assertion(SECRET + "x", client.id, alg=alg)
            self.get_failure(
                self.authenticate(form=self.assertion_form(client.id, wrong)), InvalidClientError
            )

    def test_client_secret_jwt_refuses_asymmetric_signatures(self) -> None:
        client = self.add_client(auth_method="client_secret_jwt", secret=SECRET)
        key = generate_key("RS256")
        assertion = sign_assertion(key.export(private_key=True, as_dict=True), client.id, alg="RS256")
        self.get_failure(
            self.authenticate(form=self.assertion_form(client.id, assertion)), InvalidClientError
        )

    def test_assertion_claims(self) -> None:
        client = self.add_client(auth_method="client_secret_jwt", secret=SECRET)
        key = SECRET
        now = int(self.clock.time())

        def check(claims: dict[str, Any]) -> Any:
            token = hand_signed_jwt(key, "HS256", claims)
            return self.authenticate(form=self.assertion_form(client.id, token))

        good = {"iss": client.id, "sub": client.id, "aud": TOKEN_ENDPOINT, "exp": now + 60, "jti": "a"}
        self.get_success(check(good))
        # The same jti twice: MAS keeps no record of them, so neither does this service.
        self.get_success(check(good))
        # aud may be the issuer or the endpoint being called, alone or in a list.
        self.get_success(check({**good, "aud": TEST_PUBLIC_BASE}))
        self.get_success(
            check({**good, "aud": ["https://other.example.com/", TEST_PUBLIC_BASE + "oauth2/token"]})
        )
        self.get_success(
            self.authenticator.authenticate(
                extract_credentials(
                    None,
                    self.assertion_form(
                        client.id,
                        hand_signed_jwt(key, "HS256", {**good, "aud": TEST_PUBLIC_BASE + "oauth2/revoke"}),
                    ),
                ).credentials,
                endpoint=urls.OAUTH2_REVOCATION,
            )
        )
        for bad in (
            {**good, "aud": "https://evil.example.com/token"},
            {**good, "iss": "someone-else"},
            {**good, "exp": now - 3600},
            {k: v for k, v in good.items() if k != "exp"},
            {**good, "nbf": now + 3600},
            {**good, "aud": TEST_PUBLIC_BASE + "oauth2/revoke"},  # not the endpoint being called
        ):
            self.get_failure(check(bad), InvalidClientError)

    # -- private_key_jwt ------------------------------------------------------------------------------
    def test_private_key_jwt_every_algorithm(self) -> None:
        for alg in ASYMMETRIC:
            key = generate_key(alg)
            client = self.add_client(
                auth_method="private_key_jwt",
                jwks=public_jwks(key, kids=["k1"]),
                token_endpoint_auth_signing_alg=alg,
            )
            private = key.export(private_key=True, as_dict=True)
            assertion = sign_assertion(private, client.id, alg=alg, header={"kid": "k1"})
            self.assertEqual(
                self.get_success(self.authenticate(form=self.assertion_form(client.id, assertion))),
                client,
                alg,
            )
            # Without a kid in the header, every able key is tried.
            assertion = sign_assertion(private, client.id, alg=alg)
            self.assertEqual(
                self.get_success(self.authenticate(form=self.assertion_form(client.id, assertion))),
                client,
                alg,
            )
            other = generate_key(alg).export(private_key=True, as_dict=True)
            forged = sign_assertion(other, client.id, alg=alg, header={"kid": "k1"})
            self.get_failure(
                self.authenticate(form=self.assertion_form(client.id, forged)), InvalidClientError
            )

    def test_private_key_jwt_refuses_hmac_with_the_public_key(self) -> None:
        key = generate_key("RS256")
        client = self.add_client(auth_method="private_key_jwt", jwks=public_jwks(key))
        assertion = sign_assertion("anything", client.id, alg="HS256")
        self.get_failure(
            self.authenticate(form=self.assertion_form(client.id, assertion)), InvalidClientError
        )

    def test_private_key_jwt_without_keys_is_a_server_error(self) -> None:
        key = generate_key("ES256")
        client = self.add_client(auth_method="private_key_jwt")
        assertion = sign_assertion(key.export(private_key=True, as_dict=True), client.id, alg="ES256")
        self.get_failure(self.authenticate(form=self.assertion_form(client.id, assertion)), ServerError)

    def test_private_key_jwt_with_jwks_uri_is_cached(self) -> None:
        key = generate_key("ES256")
        uri = "https://app.example.com/jwks.json"
        self.http.documents[uri] = (200, public_jwks(key))
        client = self.add_client(auth_method="private_key_jwt", jwks_uri=uri)
        private = key.export(private_key=True, as_dict=True)

        def auth() -> Any:
            return self.authenticate(
                form=self.assertion_form(client.id, sign_assertion(private, client.id, alg="ES256"))
            )

        self.assertEqual(self.get_success(auth()), client)
        self.assertEqual(self.get_success(auth()), client)
        self.assertEqual(self.http.calls, [uri])
        # The cache expires.
        self.reactor.advance(JWKS_CACHE_TTL_S + 1)
        self.get_success(auth())
        self.assertEqual(self.http.calls, [uri, uri])

    def test_jwks_uri_key_rotation(self) -> None:
        old, new = generate_key("RS256"), generate_key("RS256")
        uri = "https://app.example.com/jwks.json"
        self.http.documents[uri] = (200, public_jwks(old, kids=["old"]))
        client = self.add_client(auth_method="private_key_jwt", jwks_uri=uri)
        new_private = new.export(private_key=True, as_dict=True)
        self.get_success(
            self.authenticate(
                form=self.assertion_form(
                    client.id,
                    sign_assertion(old.export(private_key=True, as_dict=True), client.id, alg="RS256"),
                )
            )
        )
        self.http.documents[uri] = (200, public_jwks(new, kids=["new"]))
        assertion = sign_assertion(new_private, client.id, alg="RS256", header={"kid": "new"})
        # A fresh cache is not fetched again for an unknown key ...
        self.get_failure(
            self.authenticate(form=self.assertion_form(client.id, assertion)), InvalidClientError
        )
        self.assertEqual(len(self.http.calls), 1)
        # ... an older one is, once.
        self.reactor.advance(JWKS_REFRESH_MIN_AGE_S + 1)
        self.assertEqual(
            self.get_success(self.authenticate(form=self.assertion_form(client.id, assertion))), client
        )
        self.assertEqual(len(self.http.calls), 2)

    def test_jwks_uri_failures_are_server_errors(self) -> None:
        key = generate_key("ES256")
        private = key.export(private_key=True, as_dict=True)
        for status, body in (
            (404, {"error": "nope"}),
            (200, b"not json"),
            (200, {"no": "keys"}),
            (200, [1, 2]),
        ):
            uri = f"https://app.example.com/jwks-{len(self.http.documents)}.json"
            self.http.documents[uri] = (status, body)
            client = self.add_client(auth_method="private_key_jwt", jwks_uri=uri)
            assertion = sign_assertion(private, client.id, alg="ES256")
            failure = self.get_failure(
                self.authenticate(form=self.assertion_form(client.id, assertion)), ServerError
            )
            self.assertEqual(failure.value.code, 500)
        unreachable = self.add_client(auth_method="private_key_jwt", jwks_uri="https://down.example.com/jwks")
        self.get_failure(
            self.authenticate(
                form=self.assertion_form(unreachable.id, sign_assertion(private, unreachable.id, alg="ES256"))
            ),
            ServerError,
        )

    def test_assertion_for_a_client_with_another_method(self) -> None:
        client = self.add_client(auth_method="client_secret_post", secret=SECRET)
        assertion = sign_assertion(SECRET, client.id, alg="HS256")
        self.get_failure(
            self.authenticate(form=self.assertion_form(client.id, assertion)), InvalidClientError
        )
        public = self.add_client(auth_method="none")
        self.get_failure(
            self.authenticate(
                form=self.assertion_form(public.id, sign_assertion(SECRET, public.id, alg="HS256"))
            ),
            InvalidClientError,
        )


class _Jwks(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.body = b"{}"
        self.hang = False
        self.requests = 0

    def render_GET(self, request: Any) -> Any:
        self.requests += 1
        if self.hang:
            return NOT_DONE_YET
        request.setResponseCode(self.status)
        request.setHeader(b"Content-Type", b"application/json")
        return self.body


class JwksFetcherNetworkTestCase(unittest.TestCase):
    """The real treq fetcher against a local ``twisted.web`` server."""

    def setUp(self) -> None:
        self.resource = _Jwks()
        site = Site(self.resource)
        site.noisy = False
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(self.port.stopListening)
        self.uri = f"http://127.0.0.1:{self.port.getHost().port}/jwks.json"
        self.fetcher = JwksFetcher(Clock(reactor), make_http_client(reactor))  # type: ignore[arg-type]

    @defer.inlineCallbacks
    def test_fetch(self) -> Any:
        document = {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}
        self.resource.body = json.dumps(document).encode()
        fetched = yield defer.ensureDeferred(self.fetcher.get(self.uri))
        self.assertEqual(fetched, document)
        yield defer.ensureDeferred(self.fetcher.get(self.uri))
        self.assertEqual(self.resource.requests, 1)
        yield defer.ensureDeferred(self.fetcher.get(self.uri, refresh=True))
        self.assertEqual(self.resource.requests, 2)

    @defer.inlineCallbacks
    def test_errors(self) -> Any:
        self.resource.status = 500
        self.resource.body = b'{"keys": []}'
        failure = yield self.assertFailure(defer.ensureDeferred(self.fetcher.get(self.uri)), JwksFetchError)
        self.assertIn("HTTP 500", str(failure))
        self.resource.status = 200
        self.resource.body = b"<html>"
        yield self.assertFailure(defer.ensureDeferred(self.fetcher.get(self.uri)), JwksFetchError)
        self.resource.body = b'{"keys": [' + b'{"kty": "oct"},' * (client_auth.JWKS_MAX_BYTES // 14) + b"{}]}"
        failure = yield self.assertFailure(defer.ensureDeferred(self.fetcher.get(self.uri)), JwksFetchError)
        self.assertIn("larger than", str(failure))
        yield self.assertFailure(
            defer.ensureDeferred(self.fetcher.get("http://127.0.0.1:1/nothing-listens-here")), JwksFetchError
        )

    @defer.inlineCallbacks
    def test_timeout(self) -> Any:
        self.patch(client_auth, "JWKS_FETCH_TIMEOUT_S", 0.2)
        self.resource.hang = True
        failure = yield self.assertFailure(defer.ensureDeferred(self.fetcher.get(self.uri)), JwksFetchError)
        self.assertIn("timed out", str(failure))
