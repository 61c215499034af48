# SPDX-License-Identifier: AGPL-3.0-only
"""Client authentication over HTTP, at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2).

Each of the five methods with the request a client library sends (assertions signed with
authlib's RFC 7523 signers), and the answers to malformed or wrong credentials.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.handlers.client_auth import JwksFetcher
from mas_twisted.oauth2.credentials import JWT_BEARER_CLIENT_ASSERTION
from tests.handlers._helpers import FakeHttpClient
from tests.rest.oauth2._oauth_fixtures import (
    OAuthTestCase,
    basic_auth,
    generate_key,
    public_jwks,
    sign_assertion,
)

CC = {"grant_type": "client_credentials"}
SECRET = "YR7osjOrU1xxDO0CzUZR"


class TokenEndpointClientAuthTestCase(OAuthTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.http = FakeHttpClient({})
        server.get_client_authenticator()._jwks_fetcher = JwksFetcher(clock, self.http)

    def client(self, method: str, **fields: Any) -> Any:
        return self.add_client(auth_method=method, grant_types=("client_credentials",), **fields)

    def assert_ok(self, channel: Any) -> None:
        self.assertEqual(channel.code, 200, channel.body)
        self.assertTrue(channel.json_body["access_token"].startswith("mat_"))

    def assertion_form(self, assertion: str, **extra: str) -> dict[str, str]:
        return {
            **CC,
            "client_assertion_type": JWT_BEARER_CLIENT_ASSERTION,
            "client_assertion": assertion,
            **extra,
        }

    def test_client_secret_basic(self) -> None:
        client = self.client("client_secret_basic", secret=SECRET)
        self.assert_ok(self.token_request(CC, headers=[basic_auth(client.id, SECRET)]))
        self.assert_ok(
            self.token_request({**CC, "client_id": client.id}, headers=[basic_auth(client.id, SECRET)])
        )
        # The user and password parts are form-encoded before base64 (RFC 6749 §2.3.1).
        special = self.client("client_secret_basic", secret="a b:c+d%é")
        self.assert_ok(self.token_request(CC, headers=[basic_auth(special.id, "a b:c+d%é")]))

    def test_client_secret_post(self) -> None:
        client = self.client("client_secret_post", secret=SECRET)
        self.assert_ok(self.token_request({**CC, "client_id": client.id, "client_secret": SECRET}))

    def test_none(self) -> None:
        client = self.client("none")
        self.assert_ok(self.token_request({**CC, "client_id": client.id}))

    def test_client_secret_jwt(self) -> None:
        client = self.client("client_secret_jwt", secret=SECRET, token_endpoint_auth_signing_alg="HS256")
        for alg in ("HS256", "HS384", "HS512"):
            self.assert_ok(
                self.token_request(self.assertion_form(sign_assertion(SECRET, client.id, alg=alg)))
            )
        self.assert_ok(
            self.token_request(
                self.assertion_form(sign_assertion(SECRET, client.id, alg="HS256"), client_id=client.id)
            )
        )

    def test_private_key_jwt_with_jwks(self) -> None:
        key = generate_key("ES256")
        client = self.client(
            "private_key_jwt", jwks=public_jwks(key), token_endpoint_auth_signing_alg="ES256"
        )
        assertion = sign_assertion(key.export(private_key=True, as_dict=True), client.id, alg="ES256")
        self.assert_ok(self.token_request(self.assertion_form(assertion)))

    def test_private_key_jwt_with_jwks_uri(self) -> None:
        key = generate_key("PS256")
        uri = "https://app.example.com/.well-known/jwks.json"
        self.http.documents[uri] = (200, public_jwks(key, kids=["2024"]))
        client = self.client("private_key_jwt", jwks_uri=uri, token_endpoint_auth_signing_alg="PS256")
        private = key.export(private_key=True, as_dict=True)
        self.assert_ok(
            self.token_request(
                self.assertion_form(sign_assertion(private, client.id, alg="PS256", header={"kid": "2024"}))
            )
        )
        self.assertEqual(self.http.calls, [uri])
        # The document cannot be fetched: a server error, nothing issued.
        down = self.client(
            "private_key_jwt",
            jwks_uri="https://down.example.com/jwks",
            token_endpoint_auth_signing_alg="PS256",
        )
        before = self.snapshot()
        channel = self.token_request(self.assertion_form(sign_assertion(private, down.id, alg="PS256")))
        self.assert_oauth_error(channel, 500, "server_error")
        self.assertEqual(self.snapshot(), before)

    def test_wrong_credentials(self) -> None:
        basic = self.client("client_secret_basic", secret=SECRET)
        post = self.client("client_secret_post", secret=SECRET)
        jwt = self.client("client_secret_jwt", secret=SECRET, token_endpoint_auth_signing_alg="HS256")
        key = generate_key("RS256")
        pkjwt = self.client("private_key_jwt", jwks=public_jwks(key), token_endpoint_auth_signing_alg="RS256")
        other_key = generate_key("RS256").export(private_key=True, as_dict=True)
        before = self.snapshot()
        cases = [
            (CC, [basic_auth(basic.id, "wrong")], True),
            ({**CC, "client_id": basic.id, "client_secret": SECRET}, [], False),  # post for a basic client
            ({**CC, "client_id": post.id, "client_secret": "wrong"}, [], False),
            ({**CC, "client_id": post.id}, [], False),  # none for a post client
            (CC, [basic_auth(post.id, SECRET)], True),  # basic for a post client
            (self.assertion_form(sign_assertion("wrong", jwt.id, alg="HS256")), [], False),
            (self.assertion_form(sign_assertion(other_key, pkjwt.id, alg="RS256")), [], False),
            (self.assertion_form(sign_assertion(SECRET, pkjwt.id, alg="HS256")), [], False),
            (
                self.assertion_form(
                    sign_assertion(SECRET, jwt.id, alg="HS256", audience="https://elsewhere/token")
                ),
                [],
                False,
            ),
        ]
        for form, headers, challenged in cases:
            channel = self.token_request(form, headers=headers)
            self.assert_oauth_error(channel, 401, "invalid_client")
            self.assertEqual(
                channel.header("WWW-Authenticate"), 'Basic realm="mas"' if challenged else None, form
            )
        self.assertEqual(self.snapshot(), before)

    def test_malformed_credentials(self) -> None:
        jwt = self.client("client_secret_jwt", secret=SECRET, token_endpoint_auth_signing_alg="HS256")
        assertion = sign_assertion(SECRET, jwt.id, alg="HS256")
        before = self.snapshot()
        # The assertion's subject and the form's client_id differ: invalid_grant (MAS).
        body = self.assert_oauth_error(
            self.token_request(self.assertion_form(assertion, client_id="someone-else")), 400, "invalid_grant"
        )
        self.assertIn("does not match", body["error_description"])
        # Another assertion type, a non-JWT assertion, an assertion without sub.
        self.assert_oauth_error(
            self.token_request(
                {**CC, "client_assertion_type": "urn:example:saml", "client_assertion": assertion}
            ),
            400,
            "invalid_request",
        )
        self.assert_oauth_error(self.token_request(self.assertion_form("not.a.jwt")), 400, "invalid_request")
        no_sub = sign_assertion(SECRET, jwt.id, alg="HS256", claims={"sub": None})
        self.assert_oauth_error(self.token_request(self.assertion_form(no_sub)), 400, "invalid_request")
        # A Bearer token is not a client credential at the token endpoint.
        self.assert_oauth_error(
            self.token_request(CC, headers=[("Authorization", "Bearer abc")]), 401, "invalid_client"
        )
        self.assertEqual(self.snapshot(), before)
