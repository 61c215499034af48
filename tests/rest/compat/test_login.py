# SPDX-License-Identifier: AGPL-3.0-only
"""``GET``/``POST /_matrix/client/{version}/login`` through the whole listener (MAS's
``compat/login.rs`` tests): flows, password and token logins, and every error path (status,
errcode, text, nothing written)."""

from __future__ import annotations

import random
import string
from typing import Any

from mas_twisted.types.compat import CompatSsoLogin
from mas_twisted.types.users import BrowserSession
from tests.rest.compat._compat_fixtures import PASSWORD, CompatTestCase
from tests.unittest import TEST_SERVER_NAME, override_config

LOGIN = "/_matrix/client/v3/login"
SSO_FLOW = {
    "type": "m.login.sso",
    "oauth_aware_preferred": True,
    "org.matrix.msc3824.delegated_oidc_compatibility": True,
}


class LoginFlowsTestCase(CompatTestCase):
    def test_flows(self) -> None:
        for version in ("v3", "r0"):
            channel = self.make_request("GET", f"/_matrix/client/{version}/login")
            self.assertEqual(channel.code, 200, channel.body)
            self.assertEqual(
                channel.json_body,
                {"flows": [{"type": "m.login.password"}, SSO_FLOW, {"type": "m.login.token"}]},
            )
            self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")

    @override_config({"passwords": {"enabled": False}})
    def test_flows_without_passwords(self) -> None:
        channel = self.make_request("GET", LOGIN)
        self.assertEqual(channel.json_body, {"flows": [SSO_FLOW, {"type": "m.login.token"}]})


_PROVIDERS = {
    "upstream_oauth2": {
        "providers": [
            {
                "id": f"01J000000000000000000000{n}A",
                "issuer": f"https://sso{n}.example.org/",
                "human_name": name,
                "brand_name": brand,
                "client_id": "mas",
                "token_endpoint_auth_method": "none",
                # No discovery: nothing leaves the fake reactor.
                "discovery_mode": "disabled",
                "authorization_endpoint": f"https://sso{n}.example.org/authorize",
                "token_endpoint": f"https://sso{n}.example.org/token",
            }
            for n, name, brand in ((1, "Example SSO", None), (2, "Google", "google"))
        ]
    }
}


class SsoIdentityProvidersTestCase(CompatTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        from mas_twisted.storage.config_sync import config_sync

        self.get_success(config_sync(server, prune=False, dry_run=False))

    @override_config(_PROVIDERS)
    def test_flows_list_the_providers(self) -> None:
        # MSC2858: the SSO flow names each enabled provider, in the login page's order.
        channel = self.make_request("GET", LOGIN)
        sso = channel.json_body["flows"][1]
        self.assertEqual(
            sso["identity_providers"],
            [
                {"id": "01J0000000000000000000001A", "name": "Example SSO"},
                {"id": "01J0000000000000000000002A", "name": "Google", "brand": "google"},
            ],
        )

    @override_config(_PROVIDERS)
    def test_redirect_to_a_chosen_provider(self) -> None:
        app = "https%3A%2F%2Fapp.example%2F"
        channel = self.make_request(
            "GET", f"/_matrix/client/v3/login/sso/redirect/01J0000000000000000000002A?redirectUrl={app}"
        )
        self.assertEqual(channel.code, 303, channel.body)
        location = channel.header("Location") or ""
        self.assertRegex(
            location,
            r"^https://auth\.example\.com/upstream/authorize/01J0000000000000000000002A"
            r"\?kind=continue_compat_sso_login&id=[0-9A-Z]{26}$",
        )
        # The provider's authorization endpoint is next, and the pending login is stored.
        upstream = self.make_request("GET", location.removeprefix("https://auth.example.com"))
        self.assertEqual(upstream.code, 303, upstream.body)
        self.assertTrue((upstream.header("Location") or "").startswith("https://sso2.example.org/authorize?"))
        # An idp that names no provider: the usual confirmation page.
        other = self.make_request("GET", f"/_matrix/client/v3/login/sso/redirect/nope?redirectUrl={app}")
        self.assertEqual(other.code, 303)
        self.assertIn("/complete-compat-sso/", other.header("Location") or "")


class PasswordLoginTestCase(CompatTestCase):
    def test_password_login(self) -> None:
        channel = self.password_login(headers=[("User-Agent", "Element/1.0")], client_ip="203.0.113.7")
        self.assertEqual(channel.code, 200, channel.body)
        body = channel.json_body
        self.assertEqual(set(body), {"access_token", "device_id", "user_id"})
        self.assertTrue(body["access_token"].startswith("mct_"))
        self.assertEqual(body["user_id"], f"@alice:{TEST_SERVER_NAME}")
        self.assertRegex(body["device_id"], r"^[A-Za-z0-9]{10}$")
        sessions = self.get_success(
            self.stores.compat_sessions.list_active_compat_sessions_for_user(self.alice.id)
        )
        self.assertEqual(len(sessions), 1)
        session = sessions[0]
        self.assertEqual((session.device_id, session.user_agent), (body["device_id"], "Element/1.0"))
        # The device exists on the homeserver before the answer.
        self.assertEqual(self.upserts(), [{"localpart": "alice", "device_id": body["device_id"]}])
        # The token works at introspection, and that use is recorded.
        reply = self.introspect(body["access_token"])
        self.assertTrue(reply["active"])
        self.assertEqual(reply["device_id"], body["device_id"])
        self.assertNotIn("expires_in", reply)
        self.get_success(self.server.get_activity_tracker().flush())
        session = self.compat_session(session.id)
        self.assertEqual((session.last_active_at, session.last_active_ip), (self.now(), "203.0.113.7"))

    def test_login_waits_for_the_device_sync_lock(self) -> None:
        """A device sync of the user in progress (its lease held for 5 more seconds): the login
        creates its session and device only once it is over, so that the sync cannot remove
        the device afterwards (MAS's acquire_lock_for_sync). The lock is free again after."""
        start = self.now()
        self.get_success(
            self.db_pool.execute(
                "hold",
                "INSERT INTO queue_locks (lock_name, holder, expires_at) VALUES (?, 'a-sync', ?)",
                f"sync-devices:{self.alice.id}",
                start + 5000,
            )
        )
        channel = self.password_login()
        self.assertEqual(channel.code, 200, channel.body)
        self.assertGreaterEqual(self.now() - start, 5000)
        (session,) = self.get_success(
            self.stores.compat_sessions.list_active_compat_sessions_for_user(self.alice.id)
        )
        self.assertEqual(self.upserts(), [{"localpart": "alice", "device_id": session.device_id}])
        rows = self.get_success(self.db_pool.execute("locks", "SELECT lock_name FROM queue_locks"))
        self.assertEqual(rows, [])

    def test_full_mxid_legacy_user_and_display_name(self) -> None:
        body = {
            "type": "m.login.password",
            "user": f"@alice:{TEST_SERVER_NAME}",
            # The deprecated top-level user wins over the identifier (as Synapse).
            "identifier": {"type": "m.id.thirdparty", "medium": "email"},
            "password": PASSWORD,
            "device_id": "MYDEVICE42",
            "initial_device_display_name": "Alice's phone",
        }
        channel = self.post(LOGIN, body)
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.json_body["device_id"], "MYDEVICE42")
        self.assertEqual(
            self.upserts(),
            [{"localpart": "alice", "device_id": "MYDEVICE42", "display_name": "Alice's phone"}],
        )
        session = self.get_success(
            self.stores.compat_sessions.list_active_compat_sessions_for_user(self.alice.id)
        )[0]
        self.assertEqual(session.human_name, "Alice's phone")

    def test_refresh_token_requested(self) -> None:
        channel = self.password_login(refresh_token=True)
        self.assertEqual(channel.code, 200, channel.body)
        body = channel.json_body
        self.assertTrue(body["refresh_token"].startswith("mcr_"))
        self.assertEqual(body["expires_in_ms"], 300_000)
        reply = self.introspect(body["access_token"])
        self.assertEqual(reply["expires_in"], 300)

    @override_config({"experimental": {"compat_token_ttl": 3600}})
    def test_compat_token_ttl(self) -> None:
        channel = self.password_login(refresh_token=True)
        self.assertEqual(channel.json_body["expires_in_ms"], 3_600_000)

    def test_device_id_longer_than_synapse_accepts_is_refused(self) -> None:
        """Synapse's 512-character limit; a longer random id also passed PostgreSQL's index
        row limit (2 704 bytes) on compat_sessions and answered 500 (issue 11 review)."""
        noise = "".join(random.Random(3).choices(string.ascii_letters + string.digits, k=3000))
        channel = self.password_login(device_id=noise)
        self.assertEqual(channel.code, 400, channel.body)
        self.assertEqual(channel.json_body["errcode"], "M_INVALID_PARAM")
        self.assertEqual(
            self.get_success(self.stores.compat_sessions.list_active_compat_sessions_for_user(self.alice.id)),
            [],
        )
        self.assertEqual(self.password_login(device_id="D" * 512).code, 200)

    def test_device_replaces_the_sessions_that_held_it(self) -> None:
        first = self.password_login(device_id="SAMEDEVICE").json_body
        second = self.password_login(device_id="SAMEDEVICE")
        self.assertEqual(second.code, 200, second.body)
        self.assertFalse(self.introspect(first["access_token"])["active"])
        self.assertTrue(self.introspect(second.json_body["access_token"])["active"])
        self.assertEqual(
            len(
                self.get_success(
                    self.stores.compat_sessions.list_active_compat_sessions_for_user(self.alice.id)
                )
            ),
            1,
        )

    @override_config(
        {
            "passwords": {
                "schemes": [
                    {"version": 1, "algorithm": "bcrypt", "cost": 4},
                    {"version": 2, "algorithm": "argon2id"},
                ]
            }
        }
    )
    def test_password_hash_upgrade(self) -> None:
        from mas_twisted.handlers.passwords import Hasher
        from mas_twisted.types.users import UserPassword

        bob = self.add_bcrypt_user("bob")
        self.reactor.advance(1)
        channel = self.password_login("bob")
        self.assertEqual(channel.code, 200, channel.body)
        current = self.get_success(self.stores.user_passwords.get_active_user_password(bob.id))
        self.assertEqual(current.version, 2)
        self.assertIsNotNone(current.upgraded_from_id)
        del Hasher, UserPassword

    def add_bcrypt_user(self, username: str) -> Any:
        import bcrypt

        from mas_twisted.types.users import User, UserPassword

        user = User(id=self.tokens.ulid(), username=username, created_at=self.now())
        digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        old = UserPassword(
            id=self.tokens.ulid(), user_id=user.id, hashed_password=digest, version=1, created_at=self.now()
        )
        self.get_success(self.stores.users.register_user(user, old, []))
        return user


class PasswordLoginErrorsTestCase(CompatTestCase):
    def assert_refused(self, body: Any, code: int, errcode: str, error: str, **kwargs: Any) -> None:
        before = self.snapshot()
        channel = (
            self.post(LOGIN, body, **kwargs)
            if not isinstance(body, bytes)
            else self.make_request("POST", LOGIN, content=body, **kwargs)
        )
        self.assert_matrix_error(channel, code, errcode, error)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.upserts(), [])

    def test_wrong_password_unknown_user_no_password(self) -> None:
        self.factory.user("nopass", None)
        for user, password in (
            ("alice", "wrong"),
            ("nobody", PASSWORD),
            ("nopass", PASSWORD),
            ("@alice:other.example", PASSWORD),
        ):
            with self.subTest(user=user):
                body = {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password,
                }
                self.assert_refused(body, 403, "M_FORBIDDEN", "Invalid username/password")

    def test_deactivated_is_not_found_and_locked_is_401(self) -> None:
        now = self.now()
        self.factory.user("gone", PASSWORD, deactivated_at=now, locked_at=now)
        self.factory.user("locked", PASSWORD, locked_at=now)
        body = {"type": "m.login.password", "user": "gone", "password": PASSWORD}
        self.assert_refused(body, 403, "M_FORBIDDEN", "Invalid username/password")
        # Locked: said before the password is even checked (MAS's order).
        body = {"type": "m.login.password", "user": "locked", "password": "wrong"}
        self.assert_refused(body, 401, "M_USER_LOCKED", "User account has been locked")

    def test_rate_limited(self) -> None:
        body = {"type": "m.login.password", "user": "alice", "password": "wrong"}
        for _ in range(3):  # MAS's default per-account burst
            self.assertEqual(self.post(LOGIN, body).code, 403)
        before = self.snapshot()
        channel = self.post(LOGIN, {**body, "password": PASSWORD})
        self.assert_matrix_error(channel, 429, "M_LIMIT_EXCEEDED", "Too many login attempts")
        self.assertGreater(channel.json_body["retry_after_ms"], 0)
        self.assertEqual(self.snapshot(), before)

    def test_identifiers(self) -> None:
        self.assert_refused(
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.phone", "phone": "1"},
                "password": PASSWORD,
            },
            400,
            "M_UNKNOWN",
            "Unsupported login identifier",
        )
        self.assert_refused(
            {"type": "m.login.password", "password": PASSWORD},
            400,
            "M_BAD_JSON",
            "Missing property 'identifier",
        )

    def test_unsupported_types(self) -> None:
        for login_type in ("m.login.application_service", "m.login.sso", "org.example.custom"):
            with self.subTest(type=login_type):
                self.assert_refused({"type": login_type}, 400, "M_UNKNOWN", "Invalid login type")

    @override_config({"passwords": {"enabled": False}})
    def test_password_login_when_passwords_are_disabled(self) -> None:
        body = {"type": "m.login.password", "user": "alice", "password": PASSWORD}
        self.assert_refused(body, 400, "M_UNKNOWN", "Invalid login type")

    def test_bad_bodies(self) -> None:
        cases: list[tuple[Any, str, str]] = [
            (b"", "M_NOT_JSON", "Body is not a valid JSON document"),
            (b"{not json", "M_NOT_JSON", "Body is not a valid JSON document"),
            (b'{"type": NaN}', "M_NOT_JSON", "Body is not a valid JSON document"),
            ([], "M_BAD_JSON", "JSON fields are not valid"),
            ({}, "M_BAD_JSON", "JSON fields are not valid"),
            ({"type": 1}, "M_BAD_JSON", "JSON fields are not valid"),
            ({"type": "m.login.password", "user": "alice"}, "M_BAD_JSON", "JSON fields are not valid"),
            (
                {"type": "m.login.password", "user": 1, "password": "x"},
                "M_BAD_JSON",
                "JSON fields are not valid",
            ),
            (
                {"type": "m.login.password", "identifier": {"user": "alice"}, "password": "x"},
                "M_BAD_JSON",
                "JSON fields are not valid",
            ),
            (
                {"type": "m.login.password", "identifier": {"type": "m.id.user"}, "password": "x"},
                "M_BAD_JSON",
                "JSON fields are not valid",
            ),
            ({"type": "m.login.token"}, "M_BAD_JSON", "JSON fields are not valid"),
            (
                {"type": "m.login.token", "token": "x", "refresh_token": "yes"},
                "M_BAD_JSON",
                "JSON fields are not valid",
            ),
            (
                {"type": "m.login.token", "token": "x", "device_id": 12},
                "M_BAD_JSON",
                "JSON fields are not valid",
            ),
        ]
        for body, errcode, error in cases:
            with self.subTest(body=body):
                self.assert_refused(body, 400, errcode, error)

    def test_content_type(self) -> None:
        before = self.snapshot()
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "nonsense"):
            with self.subTest(content_type=content_type):
                channel = self.make_request(
                    "POST",
                    LOGIN,
                    content=b'{"type": "m.login.password", "user": "alice", "password": "x"}',
                    headers=[("Content-Type", content_type)],
                )
                self.assert_matrix_error(
                    channel, 400, "M_NOT_JSON", "Invalid Content-Type header: expected application/json"
                )
        # No Content-Type at all is fine (the Matrix spec makes it optional), and +json too.
        body = b'{"type": "m.login.password", "user": "alice", "password": "%s"}' % PASSWORD.encode()
        self.assertEqual(self.make_request("POST", LOGIN, content=body).code, 200)
        self.assertEqual(
            self.make_request(
                "POST",
                LOGIN,
                content=body,
                headers=[("Content-Type", "application/vnd.x+json; charset=utf-8")],
            ).code,
            200,
        )
        self.assertNotEqual(self.snapshot(), before)

    def test_homeserver_failure_finishes_the_session(self) -> None:
        self.homeserver.answer(500, {"errcode": "M_UNKNOWN"})
        channel = self.password_login(device_id="BROKENDEV1")
        self.assert_matrix_error(channel, 500, "M_UNKNOWN", "Internal server error")
        rows = self.get_success(
            self.db_pool.execute(
                "s", "SELECT finished_at FROM compat_sessions WHERE device_id = ?", "BROKENDEV1"
            )
        )
        self.assertEqual(len(rows), 1)
        self.assertIsNotNone(rows[0][0])
        self.assertEqual(len(self.jobs()), 1)

    @override_config({"experimental": {"session_limit": {"soft_limit": 1, "hard_limit": 2}}})
    def test_hard_limit(self) -> None:
        self.start_session(device_id="DEVICE0001")
        self.start_session(device_id="DEVICE0002")
        self.assert_refused(
            {"type": "m.login.password", "user": "alice", "password": PASSWORD},
            403,
            "M_FORBIDDEN",
            "You have reached your hard device limit. Please visit your account page to sign some out.",
        )
        # Replacing a device is not a new session: allowed.
        channel = self.password_login(device_id="DEVICE0001")
        self.assertEqual(channel.code, 200, channel.body)

    @override_config({"experimental": {"session_limit": {"soft_limit": 1, "hard_limit": 2}}})
    def test_own_personal_sessions_count_towards_the_limit(self) -> None:
        from mas_twisted.oauth2.scope import Scope

        self.start_session(device_id="DEVICE0001")
        personal = self.server.get_personal_session_handler()
        mine, _ = self.get_success(
            personal.issue(
                owner_user_id=self.alice.id,
                owner_client_id=None,
                actor_user_id=self.alice.id,
                human_name="mine",
                scope=Scope(["urn:matrix:client:api:*"]),
                expires_in=None,
            )
        )
        self.assert_refused(
            {"type": "m.login.password", "user": "alice", "password": PASSWORD},
            403,
            "M_FORBIDDEN",
            "You have reached your hard device limit. Please visit your account page to sign some out.",
        )
        # One an administrator's client owns does not count (MAS counts only the user's own).
        self.get_success(personal.revoke(mine.id))
        client = self.factory.client(grant_types=("client_credentials",))
        self.get_success(
            personal.issue(
                owner_user_id=None,
                owner_client_id=client.id,
                actor_user_id=self.alice.id,
                human_name="admin-made",
                scope=Scope(["urn:matrix:client:api:*"]),
                expires_in=None,
            )
        )
        self.assertEqual(self.password_login(device_id="DEVICE0002").code, 200)

    @override_config(
        {
            "experimental": {
                "session_limit": {"soft_limit": 1, "hard_limit": 2, "dangerous_hard_limit_eviction": True}
            }
        }
    )
    def test_hard_limit_eviction(self) -> None:
        oldest, _, _ = self.start_session(device_id="DEVICE0001")
        self.reactor.advance(10)
        newer, _, _ = self.start_session(device_id="DEVICE0002")
        self.get_success(
            self.stores.compat_sessions.record_compat_session_activity(newer.id, self.now(), None)
        )
        self.get_success(
            self.stores.compat_sessions.record_compat_session_activity(oldest.id, self.now() - 5000, None)
        )
        channel = self.password_login()
        self.assertEqual(channel.code, 200, channel.body)
        self.assertIsNotNone(self.compat_session(oldest.id).finished_at)
        self.assertIsNone(self.compat_session(newer.id).finished_at)
        self.assertEqual(len(self.jobs()), 1)

    @override_config({"policy": {"data": {"requester": {"banned_ips": ["127.0.0.1"]}}}})
    def test_policy_violation(self) -> None:
        self.assert_refused(
            {"type": "m.login.password", "user": "alice", "password": PASSWORD},
            403,
            "M_FORBIDDEN",
            "Login denied by the policy enforced by this service",
        )


class TokenLoginTestCase(CompatTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.browser = self.factory.browser_session(self.alice)

    def sso_login(self, *, fulfil: bool = True, browser: BrowserSession | None = None) -> CompatSsoLogin:
        login = CompatSsoLogin(
            id=self.tokens.ulid(),
            redirect_uri="https://app.example.com/cb",
            login_token=self.tokens.sso_login_token(),
            created_at=self.now(),
        )
        self.get_success(self.stores.compat_sessions.add_sso_login(login))
        if fulfil:
            self.assertTrue(
                self.get_success(
                    self.stores.compat_sessions.fulfill_sso_login(login.id, (browser or self.browser).id)
                )
            )
        return login

    def token_login(self, token: str, **extra: Any) -> Any:
        return self.post(LOGIN, {"type": "m.login.token", "token": token, **extra})

    def test_token_login(self) -> None:
        login = self.sso_login()
        self.reactor.advance(29)
        channel = self.token_login(login.login_token, refresh_token=True, device_id="TOKENDEV01")
        self.assertEqual(channel.code, 200, channel.body)
        body = channel.json_body
        self.assertEqual(body["device_id"], "TOKENDEV01")
        self.assertEqual(body["user_id"], f"@alice:{TEST_SERVER_NAME}")
        self.assertIn("refresh_token", body)
        stored = self.get_success(self.stores.compat_sessions.get_sso_login(login.id))
        self.assertIsNotNone(stored.exchanged_at)
        session = self.compat_session(stored.compat_session_id)
        self.assertEqual(session.user_session_id, self.browser.id)
        # Used once.
        before = self.snapshot()
        again = self.token_login(login.login_token)
        self.assert_matrix_error(again, 403, "M_FORBIDDEN", "Invalid login token")
        self.assertEqual(self.snapshot(), before)

    def assert_refused(self, token: str, code: int, errcode: str, error: str) -> None:
        before = self.snapshot()
        self.assert_matrix_error(self.token_login(token), code, errcode, error)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.upserts(), [])

    def test_token_errors(self) -> None:
        self.assert_refused("nope", 403, "M_FORBIDDEN", "Invalid login token")
        pending = self.sso_login(fulfil=False)
        self.assert_refused(pending.login_token, 403, "M_FORBIDDEN", "Invalid login token")
        late = self.sso_login()
        self.reactor.advance(31)
        self.assert_refused(late.login_token, 403, "M_FORBIDDEN", "Login token expired")

    def test_browser_session_and_user_state(self) -> None:
        login = self.sso_login()
        self.get_success(self.stores.users.lock_user(self.alice, self.now()))
        self.assert_refused(login.login_token, 401, "M_USER_LOCKED", "User account has been locked")
        self.get_success(self.stores.browser_sessions.finish_browser_session(self.browser, self.now()))
        self.assert_refused(login.login_token, 403, "M_FORBIDDEN", "Invalid login token")

    @override_config({"passwords": {"enabled": False}})
    def test_token_login_works_without_passwords(self) -> None:
        login = self.sso_login()
        self.assertEqual(self.token_login(login.login_token).code, 200)
