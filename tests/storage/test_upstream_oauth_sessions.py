# SPDX-License-Identifier: AGPL-3.0-only
"""The upstream login's storage: one conditional state change per step (a replayed callback
or a second use of a session is refused and writes nothing), and unlinking."""

from __future__ import annotations

from typing import Any

from mas_twisted.storage.config_sync import config_sync
from mas_twisted.storage.stores.upstream_oauth_sessions import SessionAlreadyUsedError
from mas_twisted.storage.stores.user_emails import replace_synced_user_email_txn
from mas_twisted.types.upstream import UpstreamOAuthAuthorizationSession
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication, UserEmail
from tests.unittest import MasTestCase

PROVIDER = "01J0000000000000000000PRV1"


class UpstreamSessionStoreTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["upstream_oauth2"] = {
            "providers": [
                {
                    "id": PROVIDER,
                    "issuer": "https://sso.example.org/",
                    "client_id": "mas",
                    "token_endpoint_auth_method": "none",
                }
            ]
        }
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.get_success(config_sync(server, prune=False, dry_run=False))
        self.store = server.get_stores().upstream_oauth_sessions

    def completed(self, subject: str) -> tuple[UpstreamOAuthAuthorizationSession, Any]:
        tokens = self.server.get_token_generator()
        session = UpstreamOAuthAuthorizationSession(
            id=tokens.ulid(), provider_id=PROVIDER, state=tokens.alphanumeric(32), created_at=1, nonce="n"
        )
        self.get_success(self.store.add_authorization_session(session))
        link = self.get_success(
            self.store.complete_authorization_session(
                session,
                subject=subject,
                human_account_name=None,
                new_link_id=tokens.ulid(),
                id_token="t",
                id_token_claims={"sub": subject, "sid": "s1"},
                userinfo=None,
                extra_callback_parameters={},
                now=2,
            )
        )
        return session, link

    def test_complete_once_then_consume_once(self) -> None:
        session, link = self.completed("alice")
        # The same subject again: the same link.
        _, again = self.completed("alice")
        self.assertEqual(again.id, link.id)
        # A replayed callback: refused.
        self.get_failure(
            self.store.complete_authorization_session(
                session,
                subject="alice",
                human_account_name=None,
                new_link_id="01J0000000000000000000NEW1",
                id_token=None,
                id_token_claims={},
                userinfo=None,
                extra_callback_parameters={},
                now=3,
            ),
            SessionAlreadyUsedError,
        )
        user = self.factory.user("alice", password=None)
        tokens = self.server.get_token_generator()
        browser = BrowserSession(id=tokens.ulid(), user=user, created_at=4)
        auth = BrowserSessionAuthentication(
            id=tokens.ulid(),
            user_session_id=browser.id,
            created_at=4,
            upstream_oauth_authorization_session_id=session.id,
        )
        self.get_success(
            self.store.login_through_link(
                session.id, browser, auth, new_session=True, link_to_user=(link.id, user.id)
            )
        )
        self.assertEqual(self.get_success(self.store.get_link(link.id)).user_id, user.id)
        # A second use: refused, and no second browser session is written.
        other = BrowserSession(id=tokens.ulid(), user=user, created_at=5)
        other_auth = BrowserSessionAuthentication(id=tokens.ulid(), user_session_id=other.id, created_at=5)
        self.get_failure(
            self.store.login_through_link(session.id, other, other_auth, new_session=True),
            SessionAlreadyUsedError,
        )
        self.assertIsNone(
            self.get_success(self.server.get_stores().browser_sessions.get_browser_session(other.id))
        )
        # The back-channel logout finds it by sub and sid.
        found = self.get_success(self.store.find_sessions_for_logout(PROVIDER, subject="alice", sid="s1"))
        self.assertEqual([s.id for s in found], [session.id])
        self.assertEqual(
            self.get_success(self.store.find_sessions_for_logout(PROVIDER, subject="bob", sid=None)), []
        )

    def test_unlink(self) -> None:
        session, link = self.completed("bob")
        user = self.factory.user("bob", password=None)
        tokens = self.server.get_token_generator()
        browser = BrowserSession(id=tokens.ulid(), user=user, created_at=4)
        auth = BrowserSessionAuthentication(id=tokens.ulid(), user_session_id=browser.id, created_at=4)
        self.get_success(
            self.store.login_through_link(
                session.id, browser, auth, new_session=True, link_to_user=(link.id, user.id)
            )
        )
        handler = self.server.get_upstream_oauth2_handler()
        links = self.get_success(handler.list_user_links(user.id))
        self.assertEqual([(lk.id, p.id if p else None) for lk, p in links], [(link.id, PROVIDER)])
        self.assertFalse(self.get_success(handler.unlink("01J0000000000000000000OTHR", link.id)))
        self.assertTrue(self.get_success(handler.unlink(user.id, link.id)))
        self.assertEqual(self.get_success(handler.list_user_links(user.id)), [])
        self.assertIsNone(self.get_success(self.store.get_link(link.id)).user_id)


class SyncedEmailTests(MasTestCase):
    """Profile sync's address replacement (``on_login: sync``): one transaction, never taking
    another user's address."""

    def replace(self, email: UserEmail, previous: str | None) -> bool:
        return bool(
            self.get_success(
                self.db_pool.runInteraction("replace", replace_synced_user_email_txn, email, previous)
            )
        )

    def emails(self, user_id: str) -> list[str]:
        found = self.get_success(self.server.get_stores().user_emails.list_user_emails(user_id))
        return sorted(e.email for e in found)

    def test_replaces_the_old_address_unless_someone_has_the_new_one(self) -> None:
        alice = self.factory.user("alice", password=None, emails=["alice@old.example", "alice@work.example"])
        bob = self.factory.user("bob", password=None, emails=["bob@example.org"])
        ids = self.server.get_token_generator()
        new = UserEmail(id=ids.ulid(), user_id=alice.id, email="alice@new.example", created_at=3)
        self.assertTrue(self.replace(new, "ALICE@old.example"))
        self.assertEqual(self.emails(alice.id), ["alice@new.example", "alice@work.example"])
        taken = UserEmail(id=ids.ulid(), user_id=alice.id, email="Bob@example.org", created_at=4)
        self.assertFalse(self.replace(taken, "alice@new.example"))
        self.assertEqual(self.emails(alice.id), ["alice@new.example", "alice@work.example"])
        self.assertEqual(self.emails(bob.id), ["bob@example.org"])
