# SPDX-License-Identifier: AGPL-3.0-only
"""``GET``/``POST /oauth2/userinfo`` (OIDC Core §5.3, RFC 6750): claims, signed answers, refusals."""

from __future__ import annotations

from typing import Any

from tests.rest.oauth2._oauth_fixtures import API_SCOPE, OAuthTestCase, verify
from tests.unittest import TEST_PUBLIC_BASE


class UserinfoTestCase(OAuthTestCase):
    def userinfo(self, token: str | None = None, *, method: str = "GET", **kwargs: Any) -> Any:
        headers = list(kwargs.pop("headers", ()))
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
        return self.make_request(method, kwargs.pop("path", "/oauth2/userinfo"), headers=headers, **kwargs)

    def first_used_at(self, access_token: str) -> int | None:
        token = self.get_success(self.stores.access_tokens.find_access_token_by_token(access_token))
        return token.first_used_at

    def assert_refused(self, channel: Any, code: int, challenge: str) -> None:
        self.assertEqual(channel.code, code, channel.body)
        self.assertEqual(channel.body, b"")
        self.assertEqual(channel.header("WWW-Authenticate"), challenge)

    def test_json(self) -> None:
        client = self.add_client()
        _, access, _ = self.start_session(client)
        self.assertIsNone(self.first_used_at(access.access_token))
        for method in ("GET", "POST"):
            channel = self.userinfo(access.access_token, method=method)
            self.assertEqual(channel.code, 200, channel.body)
            self.assertEqual(channel.content_type, "application/json")
            self.assertEqual(channel.json_body, {"sub": self.user.id, "username": "alice"})
        # The token's first use is recorded, once.
        self.assertEqual(self.first_used_at(access.access_token), self.now())
        first = self.now()
        self.advance_s(10)
        self.userinfo(access.access_token, client_ip="198.51.100.4")
        self.assertEqual(self.first_used_at(access.access_token), first)
        # The session's activity, written in the tracker's next batch.
        self.get_success(self.server.get_activity_tracker().flush())
        session = self.session_of(access.access_token)
        self.assertEqual(session.last_active_at, self.now())
        self.assertIsNotNone(session.last_active_ip)

    def test_token_as_parameter(self) -> None:
        client = self.add_client()
        _, access, _ = self.start_session(client)
        channel = self.make_request("GET", f"/oauth2/userinfo?access_token={access.access_token}")
        self.assertEqual(channel.code, 200, channel.body)
        channel = self.make_request("POST", "/oauth2/userinfo", form={"access_token": access.access_token})
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.json_body["sub"], self.user.id)

    def test_signed(self) -> None:
        for alg, kid in (("RS256", "test-rsa"), ("ES256", "test-ec"), ("PS512", "test-rsa")):
            client = self.add_client(userinfo_signed_response_alg=alg)
            _, access, _ = self.start_session(client)
            channel = self.userinfo(access.access_token)
            self.assertEqual(channel.code, 200, channel.body)
            self.assertEqual(channel.content_type, "application/jwt")
            header, claims = verify(self.server, channel.text_body)
            self.assertEqual(header, {"alg": alg, "kid": kid})
            self.assertEqual(
                claims, {"iss": TEST_PUBLIC_BASE, "aud": client.id, "sub": self.user.id, "username": "alice"}
            )

    def test_signed_with_an_algorithm_no_key_supports(self) -> None:
        client = self.add_client(userinfo_signed_response_alg="ES384")
        _, access, _ = self.start_session(client)
        channel = self.userinfo(access.access_token)
        self.assertEqual(channel.code, 500)
        self.assertEqual(channel.json_body["error"], "server_error")

    def test_missing_and_invalid_tokens(self) -> None:
        client = self.add_client()
        before = self.snapshot()
        self.assert_refused(self.userinfo(), 401, "Bearer")
        self.assert_refused(self.userinfo("mat_nope"), 401, 'Bearer error="invalid_token"')
        self.assertEqual(self.snapshot(), before)

        # Expired.
        _, expired, _ = self.start_session(client, ttl_s=60)
        self.advance_s(61)
        self.assert_refused(self.userinfo(expired.access_token), 401, 'Bearer error="invalid_token"')
        # Revoked.
        _, revoked, _ = self.start_session(client)
        token = self.get_success(self.stores.access_tokens.find_access_token_by_token(revoked.access_token))
        self.get_success(self.stores.access_tokens.revoke_access_token(token))
        self.assert_refused(self.userinfo(revoked.access_token), 401, 'Bearer error="invalid_token"')
        # In a finished session.
        session, finished, _ = self.start_session(client)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        self.assert_refused(self.userinfo(finished.access_token), 401, 'Bearer error="invalid_token"')
        # A refresh token is not an access token.
        _, _, refresh = self.start_session(client)
        self.assert_refused(self.userinfo(refresh.refresh_token), 401, 'Bearer error="invalid_token"')
        for access_token in (expired, revoked, finished):
            self.assertIsNone(self.first_used_at(access_token.access_token))

    def test_scope_and_user_required(self) -> None:
        client = self.add_client()
        _, no_openid, _ = self.start_session(client, scope=API_SCOPE)
        self.assert_refused(
            self.userinfo(no_openid.access_token), 401, 'Bearer error="insufficient_scope", scope="openid"'
        )
        _, no_user, _ = self.start_session(client, scope="openid", user=False)
        self.assert_refused(self.userinfo(no_user.access_token), 401, 'Bearer error="invalid_token"')
        self.assertIsNone(self.first_used_at(no_openid.access_token))
        self.assertIsNone(self.first_used_at(no_user.access_token))

    def test_malformed_requests(self) -> None:
        client = self.add_client()
        _, access, _ = self.start_session(client)
        invalid_request = 'Bearer error="invalid_request"'
        self.assert_refused(
            self.make_request("GET", "/oauth2/userinfo", headers=[("Authorization", "Basic YTpi")]),
            400,
            invalid_request,
        )
        self.assert_refused(
            self.make_request("GET", "/oauth2/userinfo", headers=[("Authorization", "Bearer ")]),
            400,
            invalid_request,
        )
        # The token in two places.
        self.assert_refused(
            self.userinfo(access.access_token, path=f"/oauth2/userinfo?access_token={access.access_token}"),
            400,
            invalid_request,
        )
        self.assert_refused(
            self.userinfo(access.access_token, method="POST", form={"access_token": access.access_token}),
            400,
            invalid_request,
        )
        # A repeated parameter.
        self.assert_refused(
            self.make_request("GET", f"/oauth2/userinfo?access_token={access.access_token}&access_token=x"),
            400,
            invalid_request,
        )
        self.assertIsNone(self.first_used_at(access.access_token))

    def test_other_methods(self) -> None:
        channel = self.make_request("DELETE", "/oauth2/userinfo")
        self.assertEqual(channel.code, 405)
