# SPDX-License-Identifier: AGPL-3.0-only
"""Authorization-code and device-code grant storage: stages, exchanges into sessions, cleanup."""

from __future__ import annotations

from typing import Any

from mas_twisted.types.oauth2 import (
    AuthorizationGrant,
    DeviceCodeGrant,
    GrantStage,
    InvalidTransitionError,
    Pkce,
)
from mas_twisted.util.ulid import max_ulid_at
from tests.storage._base import API_SCOPE, DAY_MS, OAuth2StoreTestCase


class AuthorizationGrantStoreTestCase(OAuth2StoreTestCase):
    def make_grant(self, **kwargs: Any) -> AuthorizationGrant:
        values: dict[str, Any] = {
            "id": self.new_id(),
            "client_id": self.client.id,
            "redirect_uri": "https://app.example.com/cb",
            "scope": f"openid {API_SCOPE}",
            "created_at": self.now(),
            "response_mode": "query",
            "code": f"code{self._seq:028d}",
            "pkce": Pkce("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            "state": "af0ifjsldkj",
            "nonce": "n-0S6_WzA2Mj",
            "raw_parameters": {"client_id": self.client.id, "response_type": "code"},
        }
        values.update(kwargs)
        grant = AuthorizationGrant(**values)
        self.get_success(self.stores.authorization_grants.add_authorization_grant(grant))
        return grant

    def grant(self, grant_id: str) -> AuthorizationGrant | None:
        return self.get_success(self.stores.authorization_grants.get_authorization_grant(grant_id))

    def fulfill(self, grant: AuthorizationGrant) -> AuthorizationGrant:
        return self.get_success(
            self.stores.authorization_grants.fulfill_authorization_grant(grant, self.browser.id)
        )

    def exchange(self, grant: AuthorizationGrant) -> tuple[bool, Any, Any, Any]:
        """Exchange ``grant`` (as read by the caller) into a new session and token pair."""
        session = self.make_session(scope=grant.scope_string)
        access, refresh = self.make_pair(session)
        exchanged = grant.exchange(at=self.now(), session_id=session.id)
        won = self.get_success(
            self.stores.authorization_grants.exchange_authorization_grant(exchanged, session, access, refresh)
        )
        return won, session, access, refresh

    def test_add_get_find(self) -> None:
        grant = self.make_grant(
            login_hint="mxid:@alice:example.com", locale="fr", response_type_id_token=True
        )
        self.assertEqual(self.grant(grant.id), grant)
        assert grant.code is not None
        by_code = self.get_success(
            self.stores.authorization_grants.find_authorization_grant_by_code(grant.code)
        )
        self.assertEqual(by_code, grant)
        assert by_code is not None
        self.assertEqual(by_code.pkce, Pkce("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        self.assertIsNone(
            self.get_success(self.stores.authorization_grants.find_authorization_grant_by_code("nope"))
        )
        self.assertIsNone(self.grant(self.new_id()))
        # Grants without a code (response_type=id_token) do not clash on the unique code index.
        a = self.make_grant(code=None, pkce=None, response_mode="fragment", response_type_id_token=True)
        b = self.make_grant(code=None, pkce=None, response_mode="form_post", response_type_id_token=True)
        self.assertEqual((self.grant(a.id), self.grant(b.id)), (a, b))

    def test_fulfill_and_exchange(self) -> None:
        grant = self.make_grant()
        self.advance_ms(2000)
        fulfilled = self.fulfill(grant)
        self.assertEqual((fulfilled.fulfilled_at, fulfilled.user_session_id), (self.now(), self.browser.id))
        self.assertEqual(self.grant(grant.id), fulfilled)
        self.advance_ms(3000)

        won, session, access, refresh = self.exchange(fulfilled)
        self.assertTrue(won)
        stored = self.grant(grant.id)
        assert stored is not None
        self.assertEqual(stored.stage, GrantStage.EXCHANGED)
        self.assertEqual((stored.exchanged_at, stored.oauth2_session_id), (self.now(), session.id))
        self.assertEqual(self.session(session.id), session)
        self.assertEqual(self.access(access.id), access)
        self.assertEqual(self.refresh(refresh.id), refresh)

    def test_second_exchange_loses_and_writes_nothing(self) -> None:
        fulfilled = self.fulfill(self.make_grant())
        won, first_session, _, _ = self.exchange(fulfilled)
        self.assertTrue(won)
        counts = [self.count(t) for t in ("oauth2_sessions", "oauth2_access_tokens", "oauth2_refresh_tokens")]
        self.advance_ms(1000)
        # The caller read the grant before the first exchange committed.
        won, session, access, _ = self.exchange(fulfilled)
        self.assertFalse(won)
        self.assertEqual(
            [self.count(t) for t in ("oauth2_sessions", "oauth2_access_tokens", "oauth2_refresh_tokens")],
            counts,
        )
        self.assertIsNone(self.get_success(self.stores.oauth2_sessions.get_oauth2_session(session.id)))
        self.assertEqual(self.grant(fulfilled.id).oauth2_session_id, first_session.id)  # type: ignore[union-attr]

    def test_exchange_needs_a_fulfilled_grant(self) -> None:
        pending = self.make_grant()
        # The model refuses to exchange a pending grant...
        with self.assertRaises(InvalidTransitionError):
            pending.exchange(at=self.now(), session_id=self.new_id())
        # ...and the store refuses a grant that is not fulfilled in the database.
        pretend = pending.fulfill(self.now(), self.browser.id)
        won, session, _, _ = self.exchange(pretend)
        self.assertFalse(won)
        self.assertEqual(self.grant(pending.id), pending)
        self.assertEqual(self.count("oauth2_sessions"), 0)
        # A grant that was not transitioned first is a programming error.
        session = self.make_session()
        access, refresh = self.make_pair(session)
        self.get_failure(
            self.stores.authorization_grants.exchange_authorization_grant(pretend, session, access, refresh),
            ValueError,
        )

    def test_cancel(self) -> None:
        grant = self.make_grant()
        self.advance_ms(10)
        cancelled = self.get_success(self.stores.authorization_grants.cancel_authorization_grant(grant))
        self.assertEqual(self.grant(grant.id), cancelled)
        self.assertEqual(cancelled.stage, GrantStage.CANCELLED)
        # A cancelled grant cannot be fulfilled, even from a stale pending copy.
        self.get_failure(
            self.stores.authorization_grants.fulfill_authorization_grant(grant, self.browser.id),
            InvalidTransitionError,
        )
        self.get_failure(
            self.stores.authorization_grants.cancel_authorization_grant(grant), InvalidTransitionError
        )
        self.assertEqual(self.grant(grant.id), cancelled)

    def test_fulfil_twice_refused(self) -> None:
        grant = self.make_grant()
        fulfilled = self.fulfill(grant)
        self.get_failure(
            self.stores.authorization_grants.fulfill_authorization_grant(fulfilled, self.browser.id),
            InvalidTransitionError,
        )
        self.get_failure(
            self.stores.authorization_grants.fulfill_authorization_grant(grant, self.browser.id),
            InvalidTransitionError,
        )
        self.get_failure(
            self.stores.authorization_grants.cancel_authorization_grant(grant), InvalidTransitionError
        )
        self.assertEqual(self.grant(grant.id), fulfilled)

    def test_cleanup_by_id(self) -> None:
        g1 = self.make_grant()
        g2 = self.make_grant()
        self.advance_ms(8 * DAY_MS)
        g3 = self.make_grant()
        until = max_ulid_at(self.now() - 7 * DAY_MS)
        self.assertEqual(
            self.get_success(self.stores.authorization_grants.cleanup_authorization_grants(None, until, 1)),
            (1, g1.id),
        )
        self.assertEqual(
            self.get_success(self.stores.authorization_grants.cleanup_authorization_grants(g1.id, until, 10)),
            (1, g2.id),
        )
        self.assertEqual(
            self.get_success(self.stores.authorization_grants.cleanup_authorization_grants(g2.id, until, 10)),
            (0, None),
        )
        self.assertIsNone(self.grant(g1.id))
        self.assertEqual(self.grant(g3.id), g3)

    def test_exchanged_grant_goes_with_its_session(self) -> None:
        won, session, _, _ = self.exchange(self.fulfill(self.make_grant()))
        self.assertTrue(won)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        self.advance_ms(31 * DAY_MS)
        count, _ = self.get_success(
            self.stores.oauth2_sessions.cleanup_finished_oauth2_sessions(None, self.now() - 30 * DAY_MS, 10)
        )
        self.assertEqual(count, 1)
        self.assertEqual(self.count("oauth2_authorization_grants"), 0)


class DeviceCodeGrantStoreTestCase(OAuth2StoreTestCase):
    def make_device_grant(self, **kwargs: Any) -> DeviceCodeGrant:
        values: dict[str, Any] = {
            "id": self.new_id(),
            "client_id": self.client.id,
            "scope": f"openid {API_SCOPE}",
            "user_code": f"U{self._seq:05d}",
            "device_code": f"device{self._seq:026d}",
            "created_at": self.now(),
            "expires_at": self.now() + 1_200_000,
            "ip_address": "198.51.100.7",
            "user_agent": "tv-app/2.0",
        }
        values.update(kwargs)
        grant = DeviceCodeGrant(**values)
        self.get_success(self.stores.device_code_grants.add_device_code_grant(grant))
        return grant

    def grant(self, grant_id: str) -> DeviceCodeGrant | None:
        return self.get_success(self.stores.device_code_grants.get_device_code_grant(grant_id))

    def exchange(self, grant: DeviceCodeGrant, with_refresh: bool = True) -> tuple[bool, Any, Any, Any]:
        session = self.make_session(scope=grant.scope_string)
        access, refresh = self.make_pair(session)
        won = self.get_success(
            self.stores.device_code_grants.exchange_device_code_grant(
                grant.exchange(self.now(), session.id), session, access, refresh if with_refresh else None
            )
        )
        return won, session, access, refresh

    def test_add_and_find(self) -> None:
        grant = self.make_device_grant()
        self.assertEqual(self.grant(grant.id), grant)
        store = self.stores.device_code_grants
        self.assertEqual(self.get_success(store.find_device_code_grant_by_user_code(grant.user_code)), grant)
        self.assertEqual(
            self.get_success(store.find_device_code_grant_by_device_code(grant.device_code)), grant
        )
        self.assertIsNone(self.get_success(store.find_device_code_grant_by_user_code("ZZZZZZ")))
        self.assertIsNone(self.get_success(store.find_device_code_grant_by_device_code("nope")))
        # User codes are unique.
        failure = self.get_failure(
            store.add_device_code_grant(
                DeviceCodeGrant(
                    id=self.new_id(),
                    client_id=self.client.id,
                    scope="openid",
                    user_code=grant.user_code,
                    device_code="other",
                    created_at=self.now(),
                    expires_at=self.now() + 1,
                )
            ),
            Exception,
        )
        self.assertTrue(self.db_pool.engine.is_integrity_error(failure.value), failure)

    def test_fulfill_then_exchange_with_and_without_refresh_token(self) -> None:
        grant = self.make_device_grant()
        self.advance_ms(30_000)
        fulfilled = self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser.id, "de")
        )
        self.assertEqual(self.grant(grant.id), fulfilled)
        self.assertEqual((fulfilled.fulfilled_at, fulfilled.locale), (self.now(), "de"))
        self.advance_ms(5000)
        won, session, access, refresh = self.exchange(fulfilled, with_refresh=False)
        self.assertTrue(won)
        stored = self.grant(grant.id)
        assert stored is not None
        self.assertTrue(stored.is_exchanged)
        self.assertEqual((stored.oauth2_session_id, stored.exchanged_at), (session.id, self.now()))
        self.assertEqual(self.access(access.id), access)
        self.assertIsNone(self.refresh(refresh.id))

        other = self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(
                self.make_device_grant(), self.browser.id
            )
        )
        won, _, _, refresh = self.exchange(other)
        self.assertTrue(won)
        self.assertEqual(self.refresh(refresh.id), refresh)

    def test_second_exchange_loses(self) -> None:
        fulfilled = self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(
                self.make_device_grant(), self.browser.id
            )
        )
        self.assertTrue(self.exchange(fulfilled)[0])
        sessions = self.count("oauth2_sessions")
        won, session, _, _ = self.exchange(fulfilled)
        self.assertFalse(won)
        self.assertEqual(self.count("oauth2_sessions"), sessions)

    def test_reject(self) -> None:
        grant = self.make_device_grant()
        rejected = self.get_success(
            self.stores.device_code_grants.reject_device_code_grant(grant, self.browser.id)
        )
        self.assertEqual(self.grant(grant.id), rejected)
        self.assertTrue(rejected.is_rejected)
        self.get_failure(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser.id),
            InvalidTransitionError,
        )
        self.get_failure(
            self.stores.device_code_grants.reject_device_code_grant(grant, self.browser.id),
            InvalidTransitionError,
        )
        # Exchanging what the caller wrongly thinks is fulfilled loses.
        won, _, _, _ = self.exchange(grant.fulfill(self.now(), self.browser.id))
        self.assertFalse(won)
        self.assertEqual(self.grant(grant.id), rejected)

    def test_cleanup_by_id(self) -> None:
        g1 = self.make_device_grant()
        self.advance_ms(8 * DAY_MS)
        g2 = self.make_device_grant()
        until = max_ulid_at(self.now() - 7 * DAY_MS)
        self.assertEqual(
            self.get_success(self.stores.device_code_grants.cleanup_device_code_grants(None, until, 10)),
            (1, g1.id),
        )
        self.assertIsNone(self.grant(g1.id))
        self.assertEqual(self.grant(g2.id), g2)
