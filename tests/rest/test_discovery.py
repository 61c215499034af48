# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /.well-known/openid-configuration``: every field of inventory §2.9, and what the
configuration changes in it."""

from __future__ import annotations

from typing import Any

from mas_twisted import urls
from mas_twisted.templating import site_features
from mas_twisted.urls import MountedRoutes
from tests.unittest import TEST_PUBLIC_BASE, MasTestCase, override_config

PATH = "/.well-known/openid-configuration"
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"]
AUTH_ALGS = [
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES256K",
]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DiscoveryDocumentTestCase(MasTestCase):
    def document(self) -> dict[str, Any]:
        channel = self.make_request("GET", PATH)
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.content_type, "application/json")
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        return channel.json_body

    def test_every_field_in_order(self) -> None:
        doc = self.document()
        base = TEST_PUBLIC_BASE
        # The test config has one RSA and one P-256 key.
        signing = doc["id_token_signing_alg_values_supported"]
        self.assertEqual(set(signing), {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256"})
        self.assertEqual(
            list(doc.items()),
            [
                ("issuer", base),
                ("authorization_endpoint", base + "authorize"),
                ("token_endpoint", base + "oauth2/token"),
                ("jwks_uri", base + "oauth2/keys.json"),
                ("registration_endpoint", base + "oauth2/registration"),
                ("scopes_supported", ["openid", "email"]),
                ("response_types_supported", ["code", "id_token", "code id_token"]),
                ("response_modes_supported", ["form_post", "query", "fragment"]),
                (
                    "grant_types_supported",
                    ["authorization_code", "refresh_token", "client_credentials", DEVICE_GRANT],
                ),
                ("token_endpoint_auth_methods_supported", AUTH_METHODS),
                ("token_endpoint_auth_signing_alg_values_supported", AUTH_ALGS),
                ("revocation_endpoint", base + "oauth2/revoke"),
                ("revocation_endpoint_auth_methods_supported", AUTH_METHODS),
                ("revocation_endpoint_auth_signing_alg_values_supported", AUTH_ALGS),
                ("introspection_endpoint", base + "oauth2/introspect"),
                ("introspection_endpoint_auth_methods_supported", AUTH_METHODS),
                ("introspection_endpoint_auth_signing_alg_values_supported", AUTH_ALGS),
                ("code_challenge_methods_supported", ["plain", "S256"]),
                ("userinfo_endpoint", base + "oauth2/userinfo"),
                ("subject_types_supported", ["public"]),
                ("id_token_signing_alg_values_supported", signing),
                ("userinfo_signing_alg_values_supported", signing),
                ("display_values_supported", ["page"]),
                ("claim_types_supported", ["normal"]),
                (
                    "claims_supported",
                    ["iss", "sub", "aud", "iat", "exp", "nonce", "auth_time", "at_hash", "c_hash"],
                ),
                ("claims_parameter_supported", False),
                ("request_parameter_supported", False),
                ("request_uri_parameter_supported", False),
                ("prompt_values_supported", ["login"]),
                ("device_authorization_endpoint", base + "oauth2/device"),
                # No account page is mounted yet: the index page, and no actions.
                ("account_management_uri", base),
            ],
        )
        # No GraphQL API and no RP-initiated logout in this service.
        self.assertNotIn("org.matrix.matrix-authentication-service.graphql_endpoint", doc)
        self.assertNotIn("end_session_endpoint", doc)

    @override_config({"oauth": {"device_code_grant_enabled": False}})
    def test_device_code_grant_disabled(self) -> None:
        doc = self.document()
        self.assertNotIn("device_authorization_endpoint", doc)
        self.assertNotIn(DEVICE_GRANT, doc["grant_types_supported"])
        self.assertEqual(
            doc["grant_types_supported"], ["authorization_code", "refresh_token", "client_credentials"]
        )

    @override_config({"account": {"password_registration_enabled": True}})
    def test_no_prompt_create_without_the_registration_page(self) -> None:
        # Registration is on in the configuration, but no route serves /register yet.
        self.assertEqual(self.document()["prompt_values_supported"], ["login"])

    @override_config({"account": {"password_registration_enabled": True}})
    def test_prompt_create_and_account_actions_once_their_pages_are_mounted(self) -> None:
        # What the document says once a resource mounts /register and /account/ (issues 12
        # and 13): the routes the listeners mount, plus those two.
        routes = self.server.get_mounted_routes()
        with_pages = MountedRoutes([*routes.rules.items(), (urls.REGISTER, {"GET"}), (urls.ACCOUNT, {"GET"})])
        self.server._site_features = site_features(self.server.config, with_pages)  # type: ignore[attr-defined]
        doc = self.document()
        self.assertEqual(doc["prompt_values_supported"], ["login", "create"])
        self.assertEqual(doc["account_management_uri"], TEST_PUBLIC_BASE + "account/")
        self.assertEqual(
            doc["account_management_actions_supported"],
            [
                "org.matrix.profile",
                "org.matrix.devices_list",
                "org.matrix.device_view",
                "org.matrix.device_delete",
                "org.matrix.cross_signing_reset",
                "org.matrix.sessions_list",
                "org.matrix.session_view",
                "org.matrix.session_end",
            ],
        )

    @override_config({"account": {"password_registration_enabled": True}, "passwords": {"enabled": False}})
    def test_no_prompt_create_without_password_login(self) -> None:
        self.assertEqual(self.document()["prompt_values_supported"], ["login"])

    @override_config({"http": {"public_base": "https://example.com/mas/", "issuer": "https://example.com"}})
    def test_endpoints_under_public_base_and_a_separate_issuer(self) -> None:
        doc = self.document()
        self.assertEqual(doc["issuer"], "https://example.com/")
        self.assertEqual(doc["authorization_endpoint"], "https://example.com/mas/authorize")
        self.assertEqual(doc["introspection_endpoint"], "https://example.com/mas/oauth2/introspect")
        self.assertEqual(doc["account_management_uri"], "https://example.com/mas/")

    def test_synapse_reads_issuer_and_account_management_uri(self) -> None:
        # Synapse's ServerMetadata requires both as strings, or every request it serves fails.
        doc = self.document()
        self.assertIsInstance(doc["issuer"], str)
        self.assertIsInstance(doc["account_management_uri"], str)
