# SPDX-License-Identifier: AGPL-3.0-only
"""The compatibility layer's storage (inventory §3, §12) on both engines: a new session takes
its device from the sessions that held it, tokens resolve with their session and user in one
query, a refresh token and an SSO login are used once, devices for ``sync-devices``, cleanup."""

from __future__ import annotations

from typing import Any

from mas_twisted.storage.stores.compat_sessions import active_compat_device_ids_for_user_txn
from mas_twisted.types.compat import CompatAccessToken, CompatRefreshToken, CompatSession, CompatSsoLogin
from tests.storage._base import API_SCOPE, OAuth2StoreTestCase


class CompatStoreTestCase(OAuth2StoreTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.compat = self.stores.compat_sessions

    def make_compat(
        self, device: str | None = "DEVICE1", *, refresh: bool = False, ttl: int | None = None
    ) -> tuple[CompatSession, CompatAccessToken, CompatRefreshToken | None]:
        now = self.now()
        session = CompatSession(id=self.new_id(), user_id=self.user.id, device_id=device, created_at=now)
        access = CompatAccessToken(
            id=self.new_id(),
            session_id=session.id,
            access_token=f"mct_{self._seq:030d}_cccccc",
            created_at=now,
            expires_at=now + ttl if ttl else None,
        )
        refresh_token = None
        if refresh:
            refresh_token = CompatRefreshToken(
                id=self.new_id(),
                session_id=session.id,
                access_token_id=access.id,
                refresh_token=f"mcr_{self._seq:030d}_dddddd",
                created_at=now,
            )
        return session, access, refresh_token

    def test_start_replaces_the_device(self) -> None:
        old, old_access, _ = self.make_compat("DEVICE1")
        self.assertEqual(self.get_success(self.compat.start_compat_session(old, old_access)), 0)
        oauth_same, _, _ = self.start_session(scope=f"urn:matrix:client:device:DEVICE1 {API_SCOPE}")
        oauth_other, _, _ = self.start_session(scope=f"urn:matrix:client:device:OTHER {API_SCOPE}")
        self.advance_ms(1000)
        new, new_access, _ = self.make_compat("DEVICE1")
        self.assertEqual(self.get_success(self.compat.start_compat_session(new, new_access)), 2)
        self.assertIsNotNone(self.get_success(self.compat.get_compat_session(old.id)).finished_at)
        self.assertIsNotNone(self.session(oauth_same.id).finished_at)
        self.assertIsNone(self.session(oauth_other.id).finished_at)
        devices = self.get_success(
            self.db_pool.runInteraction("d", active_compat_device_ids_for_user_txn, self.user.id)
        )
        self.assertEqual(devices, {"DEVICE1"})

    def test_introspection_lookup(self) -> None:
        session, access, refresh = self.make_compat(refresh=True, ttl=60_000)
        self.get_success(self.compat.start_compat_session(session, access, refresh))
        found = self.get_success(self.compat.lookup_access_token_for_introspection(access.access_token))
        self.assertEqual((found.token, found.session, found.user.username), (access, session, "alice"))
        self.assertTrue(found.is_active(self.now()))
        self.assertFalse(found.is_active(self.now() + 60_001))
        self.assertIsNone(self.get_success(self.compat.lookup_access_token_for_introspection("mct_nope")))
        found_refresh = self.get_success(
            self.compat.lookup_refresh_token_for_introspection(refresh.refresh_token)
        )
        self.assertTrue(found_refresh.is_active)
        self.get_success(self.compat.finish_compat_session(session.id))
        found = self.get_success(self.compat.lookup_access_token_for_introspection(access.access_token))
        self.assertFalse(found.is_active(self.now()))

    def test_refresh_token_used_once(self) -> None:
        session, access, refresh = self.make_compat(refresh=True, ttl=300_000)
        self.get_success(self.compat.start_compat_session(session, access, refresh))
        self.advance_ms(1000)
        _, access2, _ = self.make_compat()
        access2 = CompatAccessToken(
            access2.id, session.id, access2.access_token, self.now(), self.now() + 300_000
        )
        refresh2 = CompatRefreshToken(
            self.new_id(), session.id, access2.id, "mcr_second_token_000000000000000_x", self.now()
        )
        self.assertTrue(self.get_success(self.compat.rotate_refresh_token(refresh, access2, refresh2)))
        self.assertFalse(self.get_success(self.compat.rotate_refresh_token(refresh, access2, refresh2)))
        old = self.get_success(self.compat.lookup_access_token_for_introspection(access.access_token))
        self.assertFalse(old.is_active(self.now() + 1))  # the old access token expired with the rotation
        self.assertFalse(
            self.get_success(
                self.compat.lookup_refresh_token_for_introspection(refresh.refresh_token)
            ).is_active
        )

    def test_sso_login_fulfilled_and_exchanged_once(self) -> None:
        login = CompatSsoLogin(
            id=self.new_id(),
            redirect_uri="https://client.example/",
            login_token="t" * 32,
            created_at=self.now(),
        )
        self.get_success(self.compat.add_sso_login(login))
        self.assertEqual(self.get_success(self.compat.find_sso_login_by_token("t" * 32)), login)
        session, access, _ = self.make_compat()
        # Not fulfilled yet: cannot be exchanged.
        self.assertFalse(self.get_success(self.compat.exchange_sso_login(login, session, access)))
        self.assertTrue(self.get_success(self.compat.fulfill_sso_login(login.id, self.browser.id)))
        self.assertFalse(self.get_success(self.compat.fulfill_sso_login(login.id, self.browser.id)))
        self.assertTrue(self.get_success(self.compat.exchange_sso_login(login, session, access)))
        session2, access2, _ = self.make_compat()
        self.assertFalse(self.get_success(self.compat.exchange_sso_login(login, session2, access2)))
        stored = self.get_success(self.compat.get_sso_login(login.id))
        self.assertEqual((stored.compat_session_id, stored.user_session_id), (session.id, self.browser.id))
        self.assertIsNone(self.get_success(self.compat.get_compat_session(session2.id)))

    def test_cleanup(self) -> None:
        session, access, _ = self.make_compat()
        self.get_success(self.compat.start_compat_session(session, access))
        self.get_success(self.compat.record_compat_session_activity(session.id, self.now(), "192.0.2.1"))
        self.get_success(self.compat.finish_compat_session(session.id))
        self.assertEqual(
            self.get_success(self.compat.cleanup_inactive_compat_session_ips(None, self.now() + 1, 10))[0], 1
        )
        self.assertEqual(
            self.get_success(self.compat.cleanup_finished_compat_sessions(None, self.now() + 1, 10))[0], 1
        )
        self.assertIsNone(self.get_success(self.compat.get_compat_session(session.id)))
        self.assertIsNone(
            self.get_success(self.compat.lookup_access_token_for_introspection(access.access_token))
        )
