# SPDX-License-Identifier: AGPL-3.0-only
"""Introspection of compatibility tokens (inventory §2.10, MAS's ``introspection.rs``
``CompatAccessToken``/``CompatRefreshToken`` branches), through ``POST /oauth2/introspect``
as Synapse calls it."""

from __future__ import annotations

from mas_twisted.handlers.introspection import to_seconds
from tests.handlers._base import API, API_UNSTABLE, DEVICE, DEVICE_UNSTABLE
from tests.rest.compat._compat_fixtures import HOMESERVER_AUTH, CompatTestCase

ADMIN = "urn:synapse:admin:*"


class CompatIntrospectionTestCase(CompatTestCase):
    def test_access_token_with_device_header(self) -> None:
        session, access, _ = self.start_session(device_id="DEVICEAAAA", ttl_ms=60_000)
        self.reactor.advance(10)
        reply = self.introspect(access.access_token)
        created = to_seconds(access.created_at)
        self.assertEqual(
            reply,
            {
                "active": True,
                "scope": " ".join(sorted([API, API_UNSTABLE])),
                "client_id": "legacy",
                "username": "alice",
                "token_type": "access_token",
                "exp": to_seconds(access.expires_at),
                "expires_in": 50,
                "iat": created,
                "nbf": created,
                "sub": self.alice.id,
                "device_id": "DEVICEAAAA",
            },
        )
        # Activity is recorded (in a batch), without the caller's address.
        self.get_success(self.server.get_activity_tracker().flush())
        updated = self.compat_session(session.id)
        self.assertEqual((updated.last_active_at, updated.last_active_ip), (self.now(), None))

    def test_device_scopes_without_the_header_and_admin_scope(self) -> None:
        _, access, refresh = self.start_session(device_id="DEVICEBBBB", admin=True, refresh=True)
        assert refresh is not None
        reply = self.introspect(access.access_token, device_header=False)
        expected_scope = " ".join(
            sorted([API, API_UNSTABLE, DEVICE + "DEVICEBBBB", DEVICE_UNSTABLE + "DEVICEBBBB", ADMIN])
        )
        self.assertEqual(reply["scope"], expected_scope)
        self.assertEqual(reply["device_id"], "DEVICEBBBB")
        self.assertNotIn("exp", reply)
        reply = self.introspect(refresh.refresh_token, device_header=False)
        self.assertEqual(
            (reply["active"], reply["token_type"], reply["scope"]), (True, "refresh_token", expected_scope)
        )
        self.assertNotIn("exp", reply)
        self.assertNotIn("jti", reply)

    def test_unencodable_device(self) -> None:
        _, access, _ = self.start_session(device_id="HAS SPACE")
        self.assertEqual(self.introspect(access.access_token, device_header=False), {"active": False})
        self.assertTrue(self.introspect(access.access_token)["active"])

    def test_inactive(self) -> None:
        _, expired, _ = self.start_session(device_id="EXPIRED001", ttl_ms=1000)
        finished, finished_access, finished_refresh = self.start_session(device_id="FINISHED01", refresh=True)
        self.get_success(self.stores.compat_sessions.finish_compat_session(finished.id))
        self.reactor.advance(1)
        self.assertEqual(self.introspect(expired.access_token), {"active": False})
        assert finished_refresh is not None
        for token in (finished_access.access_token, finished_refresh.refresh_token):
            self.assertEqual(self.introspect(token), {"active": False})
        # A consumed refresh token, and a locked user.
        login = self.password_login(refresh_token=True).json_body
        self.post("/_matrix/client/v3/refresh", {"refresh_token": login["refresh_token"]})
        self.assertEqual(self.introspect(login["refresh_token"]), {"active": False})
        _, live, _ = self.start_session(device_id="LIVEDEV001")
        self.assertTrue(self.introspect(live.access_token)["active"])
        self.get_success(self.stores.users.lock_user(self.alice, self.now()))
        self.assertEqual(self.introspect(live.access_token), {"active": False})
        # The wrong hint.
        self.get_success(
            self.stores.users.unlock_user(self.get_success(self.stores.users.get_user(self.alice.id)))
        )
        channel = self.make_request(
            "POST",
            "/oauth2/introspect",
            form={"token": live.access_token, "token_type_hint": "refresh_token"},
            headers=[HOMESERVER_AUTH],
        )
        self.assertEqual(channel.json_body, {"active": False})
