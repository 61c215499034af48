# SPDX-License-Identifier: AGPL-3.0-only
"""``PolicyEngine`` built by the server from its configuration (inventory §11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import attrs

from mas_twisted.api.errors import ConfigError
from mas_twisted.oauth2.registration import prepare_registration
from mas_twisted.oauth2.scope import Scope
from mas_twisted.policy import LOGIN_PASSWORD, LOGIN_SSO, PolicyEngine, Requester, SessionCounts, Violation
from mas_twisted.types.tokens import TokenType
from tests.unittest import TEST_SERVER_NAME, MasTestCase, override_config


@attrs.frozen
class _User:
    id: str
    username: str
    can_request_admin: bool = False


@attrs.frozen
class _Client:
    id: str


USER = _User("01HUSER0000000000000000000", "alice")
CLIENT = _Client("01HCLIENT000000000000000000")


class PolicyEngineTestCase(MasTestCase):
    def test_base_data(self) -> None:
        policy = self.server.get_policy()
        self.assertIs(policy, self.server.get_policy())
        self.assertEqual(policy.data, {"server_name": TEST_SERVER_NAME, "session_limit": None})

    @override_config(
        {
            "experimental": {"session_limit": {"soft_limit": 2, "hard_limit": 3}},
            "policy": {
                "data": {
                    "admin_users": ["alice"],
                    "emails": {"banned_addresses": {"suffixes": ["@spam.example"]}},
                    "requester": {"banned_ips": ["203.0.113.0/24"]},
                    "client_registration": {"allow_insecure_uris": True},
                }
            },
        }
    )
    def test_config_data_is_merged_and_used(self) -> None:
        policy = self.server.get_policy()
        data = policy.data
        self.assertEqual(data["server_name"], TEST_SERVER_NAME)
        self.assertEqual(
            data["session_limit"],
            {
                "soft_limit": 2,
                "hard_limit": 3,
                "max_session_threshold": None,
                "dangerous_hard_limit_eviction": False,
            },
        )

        # admin_users lets alice have the Synapse admin scope.
        result = policy.evaluate_authorization_grant(
            user=USER,
            client=CLIENT,
            scope=Scope.parse("openid urn:synapse:admin:* urn:matrix:client:api:*"),
            grant_type="authorization_code",
            session_counts=SessionCounts(total=0),
            requester=Requester("198.51.100.1", "Element/1.0"),
        )
        self.assertTrue(result.valid, str(result))

        # The soft limit of 2 sessions.
        result = policy.evaluate_authorization_grant(
            user=USER,
            client=CLIENT,
            scope="openid",
            grant_type="authorization_code",
            session_counts=SessionCounts(total=2),
        )
        self.assertEqual([(v.code, v.need_to_remove) for v in result.violations], [("too-many-sessions", 1)])

        # The hard limit of 3 for password logins through the compat API.
        result = policy.evaluate_compat_login(
            user=USER,
            session_counts=SessionCounts(total=3),
            session_replaced=False,
            login_type=LOGIN_PASSWORD,
        )
        self.assertEqual(str(result), "user has too many active sessions (hard limit)")
        result = policy.evaluate_compat_login(
            user=USER,
            session_counts={"total": 1, "oauth2": 1, "compat": 0, "personal": 0},
            session_replaced=False,
            login_type=LOGIN_SSO,
            redirect_uri="https://app.example.com/",
        )
        self.assertTrue(result.valid)

        # Banned addresses and requesters.
        self.assertEqual(
            [v.code for v in policy.evaluate_email(email="bob@spam.example").violations], ["email-banned"]
        )
        result = policy.evaluate_register(
            registration_method="password", username="bob", requester=Requester("203.0.113.9", None)
        )
        self.assertEqual(str(result), "Requester [203.0.113.9 / null] isn't allowed to do this action")
        result = policy.evaluate_register(
            registration_method="password", username="bob", email="bob@spam.example"
        )
        self.assertEqual([(v.field, v.code) for v in result.violations], [("email", "email-banned")])

        # allow_insecure_uris relaxes client registration.
        registration = prepare_registration(
            {"client_uri": "http://app.example.com/", "redirect_uris": ["http://app.example.com/cb"]},
            device_code_grant_enabled=True,
        )
        self.assertTrue(policy.evaluate_client_registration(registration.metadata).valid)

    def test_client_registration_policy_on_validated_metadata(self) -> None:
        policy = self.server.get_policy()
        registration = prepare_registration(
            {
                "client_uri": "https://app.example.com/",
                "redirect_uris": ["https://evil.example.org/cb"],
                "token_endpoint_auth_method": "none",
            },
            device_code_grant_enabled=True,
        )
        result = policy.evaluate_client_registration(
            registration.metadata, requester=Requester("127.0.0.1", "test")
        )
        self.assertEqual(
            [v.to_json() for v in result.violations],
            [{"msg": "invalid redirect_uri", "redirect_uri": "https://evil.example.org/cb"}],
        )

    def test_mas_admin_scope_for_admin_clients_via_dynamic_data(self) -> None:
        policy = self.server.get_policy()
        check = lambda: policy.evaluate_authorization_grant(
            client=CLIENT, scope="urn:mas:admin", grant_type="client_credentials"
        )
        self.assertEqual(str(check()), "scope 'urn:mas:admin' not allowed")
        self.assertTrue(policy.set_dynamic_data("01HVERSION1", {"admin_clients": [CLIENT.id]}))
        self.assertFalse(policy.set_dynamic_data("01HVERSION1", {"admin_clients": []}))
        self.assertTrue(check().valid)
        # A failed merge keeps the data in force.
        with self.assertRaises(ValueError):
            policy.set_dynamic_data("01HVERSION2", {"server_name": ["not", "a", "string"]})
        self.assertTrue(check().valid)

    def test_inputs(self) -> None:
        # The inputs built for each entrypoint: users and clients field by field plus their
        # sub / client_id, session counts as objects, requesters with both keys.
        policy = self.server.get_policy()
        seen: dict[str, dict[str, Any]] = {}

        def capture(name: str) -> Callable[[dict[str, Any], Any], list[Violation]]:
            def evaluate(input: dict[str, Any], data: Any) -> list[Violation]:
                seen[name] = input
                return []

            return evaluate

        for name in ("client_registration", "authorization_grant", "compat_login", "register", "email"):
            patcher = mock.patch(f"mas_twisted.policy.engine.evaluate_{name}", capture(name))
            patcher.start()
            self.addCleanup(patcher.stop)

        user = {"id": USER.id, "username": "alice", "can_request_admin": False, "sub": USER.id}
        policy.evaluate_authorization_grant(
            user=USER,
            client=CLIENT,
            scope=Scope.parse("openid"),
            grant_type="authorization_code",
            session_counts=SessionCounts(total=2, oauth2=2),
            requester=Requester("198.51.100.1", None),
        )
        self.assertEqual(
            seen["authorization_grant"],
            {
                "user": user,
                "session_counts": {"total": 2, "oauth2": 2, "compat": 0, "personal": 0},
                "client": {"id": CLIENT.id, "client_id": CLIENT.id},
                "scope": "openid",
                "grant_type": "authorization_code",
                "requester": {"ip_address": "198.51.100.1", "user_agent": None},
            },
        )
        policy.evaluate_authorization_grant(
            client={"id": "c1", "client_id": "mine"}, scope="", grant_type="client_credentials"
        )
        self.assertEqual(
            seen["authorization_grant"],
            {
                "user": None,
                "session_counts": None,
                "client": {"id": "c1", "client_id": "mine"},
                "scope": "",
                "grant_type": "client_credentials",
                "requester": {"ip_address": None, "user_agent": None},
            },
        )
        policy.evaluate_compat_login(
            user={"username": "bob"},
            session_counts={"total": 1},
            session_replaced=True,
            login_type=LOGIN_SSO,
            redirect_uri="https://app.example.com/",
        )
        self.assertEqual(
            seen["compat_login"],
            {
                "user": {"username": "bob"},
                "session_counts": {"total": 1},
                "session_replaced": True,
                "login": {"type": "m.login.sso", "redirect_uri": "https://app.example.com/"},
                "requester": {"ip_address": None, "user_agent": None},
            },
        )
        policy.evaluate_register(registration_method="password", username="bob")
        self.assertEqual(
            seen["register"],
            {
                "registration_method": "password",
                "username": "bob",
                "requester": {"ip_address": None, "user_agent": None},
            },
        )
        policy.evaluate_email(email="bob@example.com", requester=Requester(None, "Element/1.0"))
        self.assertEqual(
            seen["email"],
            {"email": "bob@example.com", "requester": {"ip_address": None, "user_agent": "Element/1.0"}},
        )
        policy.evaluate_client_registration({"client_uri": "https://app.example.com/", "contacts": ("a",)})
        self.assertEqual(
            seen["client_registration"],
            {
                "client_metadata": {"client_uri": "https://app.example.com/", "contacts": ["a"]},
                "requester": {"ip_address": None, "user_agent": None},
            },
        )
        with self.assertRaises(TypeError):
            policy.evaluate_authorization_grant(
                client="not an object", scope="", grant_type="client_credentials"
            )

    @override_config({"policy": {"data": {"server_name": ["a", "list"]}}})
    def test_unmergeable_config_data_is_a_config_error(self) -> None:
        with self.assertRaises(ConfigError) as info:
            PolicyEngine(self.server)
        self.assertIn("policy.data", str(info.exception))
        self.assertIn("Cannot merge a array into a string", str(info.exception))

    def test_seeded_token_generator(self) -> None:
        tokens = self.server.get_token_generator()
        first = tokens.token(TokenType.ACCESS_TOKEN)
        self.assertEqual(TokenType.check(first), TokenType.ACCESS_TOKEN)
        self.assertEqual(first, "mat_oHBvRPOIvGrv5iFlbCBFNOgmBjMtps_3GzLV1")
        ulid = tokens.ulid()
        from ulid import ULID

        self.assertEqual(ULID.from_str(ulid).milliseconds, int(self.START_TIME * 1000))
