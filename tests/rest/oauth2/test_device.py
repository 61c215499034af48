# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/device`` (RFC 8628 §3.1–3.2; MAS's ``oauth2/device/authorize.rs`` and its
tests), then the code exchanged at the token endpoint once a user approved it."""

from __future__ import annotations

from mas_twisted import urls
from tests.rest.oauth2._oauth_fixtures import API_SCOPE, DEVICE_GRANT, OAuthTestCase, basic_auth
from tests.unittest import TEST_PUBLIC_BASE, override_config


class DeviceAuthorizationTests(OAuthTestCase):
    def test_link_path_is_the_route(self) -> None:
        builder = self.server.get_url_builder()
        self.assertEqual(builder.device_code_link(), TEST_PUBLIC_BASE + urls.DEVICE_CODE_LINK.lstrip("/"))
        self.assertEqual(
            builder.device_code_link("ABC123"),
            TEST_PUBLIC_BASE + urls.DEVICE_CODE_LINK.lstrip("/") + "?code=ABC123",
        )

    def test_grant_and_exchange(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT, "refresh_token"))
        channel = self.make_request(
            "POST",
            "/oauth2/device",
            form={"client_id": client.id, "scope": f"openid {API_SCOPE}"},
            headers=(("User-Agent", "TestDevice/1.0"),),
            client_ip="198.51.100.4",
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.header("Cache-Control"), "no-store")
        self.assertEqual(channel.header("Pragma"), "no-cache")
        body = channel.json_body
        self.assertRegex(body["device_code"], r"^[A-Za-z0-9]{32}$")
        self.assertRegex(body["user_code"], r"^[A-Z0-9]{6}$")
        self.assertEqual(body["verification_uri"], TEST_PUBLIC_BASE + "link")
        self.assertNotIn("verification_uri_complete", body)
        self.assertEqual(body["expires_in"], 1200)
        self.assertEqual(body["interval"], 5)

        grant = self.get_success(
            self.stores.device_code_grants.find_device_code_grant_by_device_code(body["device_code"])
        )
        self.assertIsNotNone(grant)
        self.assertEqual(grant.user_code, body["user_code"])
        self.assertEqual(grant.user_agent, "TestDevice/1.0")
        self.assertEqual(grant.expires_at, grant.created_at + 1_200_000)
        self.assertEqual(str(grant.scope), f"openid {API_SCOPE}")

        # Not approved yet: the device keeps polling.
        poll = {"grant_type": DEVICE_GRANT, "device_code": body["device_code"], "client_id": client.id}
        self.assert_oauth_error(self.token_request(poll), 403, "authorization_pending")
        self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser_session.id)
        )
        tokens = self.token_request(poll)
        self.assertEqual(tokens.code, 200, tokens.body)
        self.assertTrue(tokens.json_body["access_token"].startswith("mat_"))

    @override_config({"oauth": {"device_code_user_code_auto_fill_enabled": True}})
    def test_verification_uri_complete_with_auto_fill(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        body = self.make_request("POST", "/oauth2/device", form={"client_id": client.id}).json_body
        self.assertEqual(
            body["verification_uri_complete"], f"{TEST_PUBLIC_BASE}link?code={body['user_code']}"
        )

    def test_confidential_client(self) -> None:
        client = self.add_client(
            auth_method="client_secret_basic", secret="s3cret", grant_types=(DEVICE_GRANT,)
        )
        ok = self.make_request(
            "POST", "/oauth2/device", form={"scope": "openid"}, headers=(basic_auth(client.id, "s3cret"),)
        )
        self.assertEqual(ok.code, 200, ok.body)
        before = self.snapshot()
        bad = self.make_request(
            "POST", "/oauth2/device", form={"scope": "openid"}, headers=(basic_auth(client.id, "wrong"),)
        )
        self.assert_oauth_error(bad, 401, "invalid_client")
        self.assertEqual(self.snapshot(), before)

    def test_errors_write_nothing(self) -> None:
        before = self.snapshot()
        # Unknown client.
        self.assert_oauth_error(
            self.make_request("POST", "/oauth2/device", form={"client_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}),
            401,
            "invalid_client",
        )
        # A client without the device code grant.
        client = self.add_client(grant_types=("authorization_code",))
        before = self.snapshot()
        self.assert_oauth_error(
            self.make_request("POST", "/oauth2/device", form={"client_id": client.id}),
            401,
            "unauthorized_client",
        )
        # A malformed scope.
        device_client = self.add_client(grant_types=(DEVICE_GRANT,))
        before = self.snapshot()
        self.assert_oauth_error(
            self.make_request(
                "POST", "/oauth2/device", form={"client_id": device_client.id, "scope": 'a "b"'}
            ),
            400,
            "invalid_request",
        )
        # No credentials at all.
        self.assert_oauth_error(
            self.make_request("POST", "/oauth2/device", form={"scope": "openid"}), 400, "invalid_request"
        )
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.count("oauth2_device_code_grant"), 0)

    @override_config({"oauth": {"device_code_grant_enabled": False}})
    def test_disabled(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        body = self.assert_oauth_error(
            self.make_request("POST", "/oauth2/device", form={"client_id": client.id}), 400, "invalid_request"
        )
        self.assertEqual(
            body["error_description"], "The Device Authorization Grant is disabled on this server"
        )
        self.assertEqual(self.count("oauth2_device_code_grant"), 0)
