# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/registration`` (RFC 7591): MAS's ``registration.rs`` tests and every error path."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.rest.oauth2._oauth_fixtures import OAuthTestCase
from tests.unittest import override_config

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class RegistrationTestCase(OAuthTestCase):
    def register(self, body: Any) -> Any:
        return self.make_request("POST", "/oauth2/registration", json=body)

    def client_count(self) -> int:
        return self.count("oauth2_clients")

    def assert_refused(self, channel: Any, error: str) -> dict[str, Any]:
        return self.assert_oauth_error(channel, 400, error)

    # -- MAS's test_registration_error -----------------------------------------------------------
    def test_registration_errors(self) -> None:
        cases: list[tuple[Any, str]] = [
            ({"client_uri": "this is not a uri"}, "invalid_client_metadata"),
            (
                {
                    "application_type": "web",
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["http://this-is-insecure.com/"],
                },
                "invalid_redirect_uri",
            ),
            (
                {
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["https://example.com/"],
                    "response_types": ["id_token"],
                    "grant_types": ["authorization_code"],
                },
                "invalid_client_metadata",
            ),
        ]
        for body, error in cases:
            self.assert_refused(self.register(body), error)

        # Not JSON at all, or not sent as JSON.
        channel = self.make_request("POST", "/oauth2/registration", content=b"this is not a json")
        self.assert_refused(channel, "invalid_request")
        channel = self.make_request(
            "POST",
            "/oauth2/registration",
            content=b"{not json",
            headers=[("Content-Type", "application/json")],
        )
        self.assert_refused(channel, "invalid_request")
        channel = self.make_request(
            "POST",
            "/oauth2/registration",
            content=json.dumps({"client_uri": "https://example.com/"}).encode(),
            headers=[("Content-Type", "text/plain")],
        )
        self.assert_refused(channel, "invalid_request")
        # JSON of the wrong shape.
        for body in ([], "client", {"redirect_uris": "https://example.com/"}, {"client_name": 3}):
            self.assert_refused(self.register(body), "invalid_client_metadata")
        channel = self.make_request(
            "POST",
            "/oauth2/registration",
            content=b'{"client_uri": "https://example.com/", "client_uri": "https://example.org/"}',
            headers=[("Content-Type", "application/json")],
        )
        self.assert_refused(channel, "invalid_client_metadata")

        # Public suffixes, also in a localised variant.
        body = self.assert_refused(
            self.register(
                {
                    "client_uri": "https://github.io/",
                    "redirect_uris": ["https://github.io/"],
                    "response_types": ["code"],
                    "grant_types": ["authorization_code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ),
            "invalid_client_metadata",
        )
        self.assertEqual(body["error_description"], "client_uri is not using a valid domain")
        body = self.assert_refused(
            self.register(
                {
                    "client_uri": "https://example.com/",
                    "client_uri#fr-FR": "https://github.io/",
                    "redirect_uris": ["https://example.com/"],
                    "response_types": ["code"],
                    "grant_types": ["authorization_code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ),
            "invalid_client_metadata",
        )
        self.assertEqual(body["error_description"], "client_uri is not using a valid domain")
        body = self.assert_refused(
            self.register({"client_uri": "https://example.com/", "redirect_uris": ["https://co.uk/cb"]}),
            "invalid_redirect_uri",
        )
        self.assertEqual(body["error_description"], "redirect_uri is not using a valid domain")
        self.assertEqual(self.client_count(), 0)

    def test_validation_errors(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"client_uri": "https://example.com/"}, "invalid_redirect_uri"),  # authorization_code needs them
            (
                {"client_uri": "https://example.com/", "redirect_uris": ["https://example.com/#frag"]},
                "invalid_redirect_uri",
            ),
            (
                {
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["https://example.com/"],
                    "jwks_uri": "https://example.com/jwks",
                    "jwks": {"keys": []},
                },
                "invalid_client_metadata",
            ),
            (
                {
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["https://example.com/"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "token_endpoint_auth_signing_alg": "RS256",
                },
                "invalid_client_metadata",
            ),
            (
                {
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["https://example.com/"],
                    "token_endpoint_auth_method": "client_secret_jwt",
                },
                "invalid_client_metadata",
            ),
            (
                {
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["https://example.com/"],
                    "client_name#bad tag!": "x",
                    "client_name": "x",
                },
                "invalid_client_metadata",
            ),
            (
                {
                    "client_uri": "https://example.com/",
                    "redirect_uris": ["https://example.com/"],
                    "client_name#fr": "x",
                },
                "invalid_client_metadata",
            ),
        ]
        for body, error in cases:
            self.assert_refused(self.register(body), error)
        self.assertEqual(self.client_count(), 0)

    def test_policy_denials(self) -> None:
        # No client_uri (the policy requires one).
        body = self.assert_refused(
            self.register(
                {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}
            ),
            "invalid_client_metadata",
        )
        self.assertEqual(body["error_description"], "missing client_uri")
        # Any message naming redirect_uri makes it invalid_redirect_uri, as MAS decides.
        body = self.assert_refused(
            self.register({"redirect_uris": ["https://example.com/cb"]}), "invalid_redirect_uri"
        )
        self.assertEqual(body["error_description"], "invalid redirect_uri; missing client_uri")
        # A redirect URI on another host: the message names redirect_uri.
        body = self.assert_refused(
            self.register(
                {"client_uri": "https://example.com/", "redirect_uris": ["https://evil.example.org/cb"]}
            ),
            "invalid_redirect_uri",
        )
        self.assertIn("redirect_uri", body["error_description"])
        # client_credentials for a public client.
        self.assert_refused(
            self.register(
                {
                    "client_uri": "https://example.com/",
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "none",
                }
            ),
            "invalid_client_metadata",
        )
        self.assertEqual(self.client_count(), 0)

    @override_config(
        {
            "policy": {
                "data": {"client_registration": {"allow_host_mismatch": True, "allow_insecure_uris": True}}
            }
        }
    )
    def test_policy_data_relaxes_the_rules(self) -> None:
        channel = self.register(
            {"client_uri": "http://example.com/", "redirect_uris": ["http://elsewhere.example.org/cb"]}
        )
        self.assertEqual(channel.code, 201, channel.body)

    # -- MAS's test_registration ------------------------------------------------------------------
    def test_registration(self) -> None:
        channel = self.register(
            {
                "client_uri": "https://example.com/",
                "redirect_uris": ["https://example.com/"],
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "none",
            }
        )
        self.assertEqual(channel.code, 201, channel.body)
        self.assertEqual(channel.content_type, "application/json")
        body = channel.json_body
        self.assertNotIn("client_secret", body)
        self.assertNotIn("client_secret_expires_at", body)
        self.assertEqual(
            body,
            {
                "client_id": body["client_id"],
                "client_id_issued_at": int(self.clock.time()),
                "redirect_uris": ["https://example.com/"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "none",
                "client_uri": "https://example.com/",
            },
        )
        stored = self.get_success(self.stores.oauth2_clients.get_oauth2_client(body["client_id"]))
        self.assertIsNone(stored.encrypted_client_secret)
        self.assertIsNotNone(stored.metadata_digest)
        self.assertEqual(stored.grant_types, ("authorization_code",))

        channel = self.register(
            {
                "client_uri": "https://example.com/",
                "redirect_uris": ["https://example.com/"],
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        )
        self.assertEqual(channel.code, 201, channel.body)
        body = channel.json_body
        self.assertEqual(list(body)[:3], ["client_id", "client_secret", "client_id_issued_at"])
        self.assertRegex(body["client_secret"], re.compile(r"\A[A-Za-z0-9]{20}\Z"))
        stored = self.get_success(self.stores.oauth2_clients.get_oauth2_client(body["client_id"]))
        self.assertNotIn(body["client_secret"], stored.encrypted_client_secret)
        self.assertEqual(
            self.server.get_encrypter().decrypt_string(stored.encrypted_client_secret), body["client_secret"]
        )
        self.assertIsNone(stored.metadata_digest)

    def test_secret_only_for_explicit_secret_methods(self) -> None:
        for method, has_secret in (
            (None, False),
            ("client_secret_post", True),
            ("client_secret_jwt", True),
            ("private_key_jwt", False),
        ):
            body: dict[str, Any] = {
                "client_uri": "https://example.com/",
                "redirect_uris": [f"https://example.com/{method}"],
            }
            if method is not None:
                body["token_endpoint_auth_method"] = method
            if method in ("client_secret_jwt", "private_key_jwt"):
                body["token_endpoint_auth_signing_alg"] = (
                    "HS256" if method == "client_secret_jwt" else "ES256"
                )
            if method == "private_key_jwt":
                body["jwks_uri"] = "https://example.com/jwks.json"
            channel = self.register(body)
            self.assertEqual(channel.code, 201, channel.body)
            self.assertEqual("client_secret" in channel.json_body, has_secret, method)
            if method is None:
                # Stored as MAS does: no method (such a client cannot use the token endpoint).
                self.assertNotIn("token_endpoint_auth_method", channel.json_body)

    def test_full_metadata_round_trip(self) -> None:
        channel = self.register(
            {
                "application_type": "native",
                "client_name": "Example",
                "client_name#fr": "Exemple",
                "client_uri": "https://example.com/",
                "logo_uri": "https://example.com/logo.png",
                "policy_uri": "https://example.com/policy",
                "tos_uri": "https://example.com/tos",
                "contacts": ["admin@example.com"],
                "redirect_uris": ["com.example:/callback", "http://localhost/cb"],
                "response_types": ["code"],
                "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT],
                "token_endpoint_auth_method": "none",
                "id_token_signed_response_alg": "ES256",
                "userinfo_signed_response_alg": "RS256",
                "software_id": "ignored",
            }
        )
        self.assertEqual(channel.code, 201, channel.body)
        body = channel.json_body
        del body["client_id"], body["client_id_issued_at"]
        self.assertEqual(
            body,
            {
                "redirect_uris": ["com.example:/callback", "http://localhost/cb"],
                "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT],
                "application_type": "native",
                "token_endpoint_auth_method": "none",
                "id_token_signed_response_alg": "ES256",
                "userinfo_signed_response_alg": "RS256",
                "client_name": "Example",
                "logo_uri": "https://example.com/logo.png",
                "client_uri": "https://example.com/",
                "policy_uri": "https://example.com/policy",
                "tos_uri": "https://example.com/tos",
            },
        )

    # -- MAS's test_registration_dedupe -------------------------------------------------------------
    def test_dedupe(self) -> None:
        request = {
            "client_uri": "https://example.com/",
            "client_name": "Example",
            "client_name#en": "Example",
            "client_name#fr": "Exemple",
            "client_name#de": "Beispiel",
            "redirect_uris": ["https://example.com/", "https://example.com/callback"],
            "response_types": ["code"],
            "grant_types": ["authorization_code", DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
        }
        first = self.register(request)
        self.assertEqual(first.code, 201, first.body)
        client_id = first.json_body["client_id"]
        self.advance_s(5)
        again = self.register(request)
        self.assertEqual(again.code, 201, again.body)
        self.assertEqual(again.json_body, first.json_body)

        reordered = {
            "client_uri": "https://example.com/",
            "client_name": "Example",
            "client_name#de": "Beispiel",
            "client_name#fr": "Exemple",
            "client_name#en": "Example",
            "redirect_uris": ["https://example.com/callback", "https://example.com/"],
            "response_types": ["code"],
            "grant_types": [DEVICE_GRANT, "authorization_code"],
            "token_endpoint_auth_method": "none",
        }
        self.assertEqual(self.register(reordered).json_body["client_id"], client_id)
        self.assertEqual(self.client_count(), 1)
        # A different registration is a different client.
        changed = dict(request, client_name="Other")
        self.assertNotEqual(self.register(changed).json_body["client_id"], client_id)

        # Clients with a secret are never de-duplicated.
        with_secret = {
            "client_uri": "https://example.com/",
            "redirect_uris": ["https://example.com/"],
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        one = self.register(with_secret).json_body
        two = self.register(with_secret).json_body
        self.assertNotEqual(one["client_id"], two["client_id"])
        self.assertNotEqual(one["client_secret"], two["client_secret"])

    def test_dedupe_race(self) -> None:
        from twisted.internet import defer

        from mas_twisted.policy import Requester

        handler = self.server.get_registration_handler()
        body = {
            "client_uri": "https://example.com/",
            "redirect_uris": ["https://example.com/cb"],
            "token_endpoint_auth_method": "none",
        }
        first = defer.ensureDeferred(handler.register(body, requester=Requester()))
        second = defer.ensureDeferred(handler.register(body, requester=Requester()))
        self.reactor.advance(0)
        self.assertEqual(self.successResultOf(first).client_id, self.successResultOf(second).client_id)
        self.assertEqual(self.client_count(), 1)

    # -- MAS's test_registration_device_code_grant_disabled ----------------------------------------
    @override_config({"oauth": {"device_code_grant_enabled": False}})
    def test_device_code_grant_disabled(self) -> None:
        channel = self.register(
            {
                "client_uri": "https://example.com/",
                "token_endpoint_auth_method": "none",
                "grant_types": [DEVICE_GRANT],
                "response_types": [],
            }
        )
        self.assertEqual(channel.code, 201, channel.body)
        body = channel.json_body
        self.assertEqual(
            body,
            {
                "client_id": body["client_id"],
                "client_id_issued_at": int(self.clock.time()),
                "redirect_uris": [],
                "grant_types": [],
                "token_endpoint_auth_method": "none",
                "client_uri": "https://example.com/",
            },
        )
        stored = self.get_success(self.stores.oauth2_clients.get_oauth2_client(body["client_id"]))
        self.assertFalse(stored.grant_type_device_code)

    def test_registered_client_can_get_tokens(self) -> None:
        # MAS's token tests register their clients this way, then use the token endpoint.
        channel = self.register(
            {
                "client_uri": "https://example.com/",
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["client_credentials"],
            }
        )
        self.assertEqual(channel.code, 201, channel.body)
        body = channel.json_body
        token = self.token_request(
            {
                "grant_type": "client_credentials",
                "client_id": body["client_id"],
                "client_secret": body["client_secret"],
            }
        )
        self.assertEqual(token.code, 200, token.body)

    def test_only_post(self) -> None:
        self.assertEqual(self.make_request("GET", "/oauth2/registration").code, 405)
