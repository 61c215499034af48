# SPDX-License-Identifier: AGPL-3.0-only
"""ID tokens: claims, algorithms, ``at_hash``/``c_hash`` (OIDC Core §3.3.2.11 and Appendix A)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from mas_twisted.api.errors import ServerError
from mas_twisted.handlers.id_token import ID_TOKEN_LIFETIME_S, token_hash
from mas_twisted.types.users import BrowserSessionAuthentication
from tests.rest.oauth2._oauth_fixtures import OAuthTestCase, verify
from tests.unittest import TEST_PUBLIC_BASE


class TokenHashTestCase(OAuthTestCase):
    def test_oidc_core_examples(self) -> None:
        # OpenID Connect Core 1.0 Appendix A.3 / A.4 (RS256).
        self.assertEqual(
            token_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ"
        )
        self.assertEqual(
            token_hash("RS256", "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"),
            "LDktKdoQak3Pk0cnXxCltA",
        )

    def test_hash_follows_the_algorithm(self) -> None:
        token = "mat_abc"
        for alg, fn in (
            ("ES256K", hashlib.sha256),
            ("PS384", hashlib.sha384),
            ("ES384", hashlib.sha384),
            ("RS512", hashlib.sha512),
        ):
            digest = fn(token.encode()).digest()
            expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
            self.assertEqual(token_hash(alg, token), expected, alg)
        with self.assertRaises(ValueError):
            token_hash("EdDSA", token)


class IdTokenSignerTestCase(OAuthTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.signer = server.get_id_token_signer()

    def test_default_rs256_with_every_claim(self) -> None:
        client = self.add_client()
        token = self.get_success(
            self.signer.sign_for_browser_session(
                client, self.browser_session, nonce="abc", access_token="mat_x", code="the-code"
            )
        )
        header, claims = verify(self.server, token)
        self.assertEqual(header, {"alg": "RS256", "kid": "test-rsa"})
        now = int(self.clock.time())
        self.assertEqual(
            claims,
            {
                "iss": TEST_PUBLIC_BASE,
                "sub": self.user.id,
                "aud": client.id,
                "iat": now,
                "exp": now + ID_TOKEN_LIFETIME_S,
                "nonce": "abc",
                "auth_time": self.auth_time_ms // 1000,
                "at_hash": token_hash("RS256", "mat_x"),
                "c_hash": token_hash("RS256", "the-code"),
            },
        )

    def test_client_algorithm_and_optional_claims(self) -> None:
        client = self.add_client(id_token_signed_response_alg="ES256")
        token = self.signer.sign(client, sub=self.user.id)
        header, claims = verify(self.server, token)
        self.assertEqual(header, {"alg": "ES256", "kid": "test-ec"})
        self.assertEqual(set(claims), {"iss", "sub", "aud", "iat", "exp"})
        ps = self.add_client(id_token_signed_response_alg="PS256")
        header, claims = verify(self.server, self.signer.sign(ps, sub=self.user.id, access_token="mat_y"))
        self.assertEqual(header["kid"], "test-rsa")
        self.assertEqual(claims["at_hash"], token_hash("PS256", "mat_y"))

    def test_no_key_for_the_algorithm(self) -> None:
        client = self.add_client(id_token_signed_response_alg="ES384")
        with self.assertRaises(ServerError) as caught:
            self.signer.sign(client, sub=self.user.id)
        self.assertEqual(caught.exception.code, 500)

    def test_auth_time_is_the_last_authentication(self) -> None:
        client = self.add_client()
        self.advance_s(100)
        later = self.now()
        self.get_success(
            self.stores.browser_sessions.add_browser_session_authentication(
                BrowserSessionAuthentication(
                    id=self.tokens.ulid(), user_session_id=self.browser_session.id, created_at=later
                )
            )
        )
        token = self.get_success(self.signer.sign_for_browser_session(client, self.browser_session))
        self.assertEqual(verify(self.server, token)[1]["auth_time"], later // 1000)
        token = self.get_success(
            self.signer.sign_for_browser_session(client, self.browser_session, with_auth_time=False)
        )
        self.assertNotIn("auth_time", verify(self.server, token)[1])
        # A session that never authenticated has no auth_time.
        other = self.add_browser_session(self.user)
        token = self.get_success(self.signer.sign_for_browser_session(client, other))
        self.assertNotIn("auth_time", verify(self.server, token)[1])
