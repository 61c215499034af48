# SPDX-License-Identifier: AGPL-3.0-only
"""The "Connected accounts" tab (issue 14 item 5, beyond MAS: #3135, #4495): the user's upstream
links, "Link" for a provider not linked yet (it starts the upstream login while signed in), and
"Unlink" (CSRF POST), refused when it is the last way to sign in. The flow through a real
provider is in ``tests/integration/test_upstream_browser.py``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from mas_twisted.storage.config_sync import config_sync
from mas_twisted.storage.database import DatabasePool
from mas_twisted.types.upstream import UpstreamOAuthLink
from mas_twisted.types.users import User, UserPassword
from tests.rest.human._account import AccountTestCase
from tests.rest.human._base import csrf_from
from tests.unittest import override_config

PRV1 = "01J0000000000000000000PRV1"
PRV2 = "01J0000000000000000000PRV2"
PAGE = "/account/connected-accounts"


def _provider(provider_id: str, name: str, host: str) -> dict[str, Any]:
    return {
        "id": provider_id,
        "issuer": f"https://{host}/",
        "client_id": "mas",
        "token_endpoint_auth_method": "none",
        "human_name": name,
        # No discovery: nothing leaves the fake reactor.
        "discovery_mode": "disabled",
        "authorization_endpoint": f"https://{host}/authorize",
        "token_endpoint": f"https://{host}/token",
    }


PROVIDERS = {
    "upstream_oauth2": {
        "providers": [
            _provider(PRV1, "Example SSO", "sso.example.org"),
            _provider(PRV2, "Other SSO", "other.example.net"),
        ]
    }
}


class NoProvidersTests(AccountTestCase):
    def test_no_tab_and_no_page_without_providers(self) -> None:
        self.sign_in()
        profile = self.browse("GET", "/account/")
        self.assertEqual(profile.code, 200)
        self.assertNotIn("Connected accounts", profile.text_body)
        self.assertEqual(self.browse("GET", PAGE).code, 404)


class ConnectedAccountsTests(AccountTestCase):
    def default_config(self) -> dict[str, Any]:
        return {**super().default_config(), **PROVIDERS}

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.get_success(config_sync(server, prune=False, dry_run=False))

    def add_link(
        self, user: User | None, provider_id: str, subject: str, name: str | None = None
    ) -> UpstreamOAuthLink:
        link = UpstreamOAuthLink(
            id=self.server.get_token_generator().ulid(),
            provider_id=provider_id,
            subject=subject,
            created_at=self.clock.time_msec(),
            user_id=user.id if user is not None else None,
            human_account_name=name,
        )
        self.get_success(
            self.db_pool.runInteraction(
                "add_link",
                lambda txn: DatabasePool.simple_insert_txn(txn, "upstream_oauth_links", link.to_row()),
            )
        )
        return link

    def link_owner(self, link: UpstreamOAuthLink) -> str | None:
        rows = self.get_success(
            self.db_pool.execute(
                "owner", "SELECT user_id FROM upstream_oauth_links WHERE upstream_oauth_link_id = ?", link.id
            )
        )
        return rows[0][0]

    def test_signed_out_goes_through_login(self) -> None:
        channel = self.browse("GET", PAGE)
        self.assertEqual(channel.code, 303)
        assert channel.location is not None
        self.assertTrue(channel.location.startswith("/login"), channel.location)

    def test_lists_links_and_offers_the_other_providers(self) -> None:
        user = self.sign_in()
        self.add_link(user, PRV1, "alice-at-sso", name="alice@sso.example.org")
        profile = self.browse("GET", "/account/")
        self.assertIn(f'href="{PAGE}"', profile.text_body)
        page = self.browse("GET", PAGE)
        self.assertEqual(page.code, 200)
        for text in ("Example SSO", "alice@sso.example.org", "Unlink", "Link Other SSO"):
            self.assertIn(text, page.text_body)
        self.assertNotIn("Link Example SSO", page.text_body)
        start = f"/upstream/authorize/{PRV2}?kind=manage_account"
        self.assertIn(f'href="{start}"', page.text_body)
        # "Link" starts the upstream login while signed in: off to the provider.
        upstream = self.browse("GET", start)
        self.assertEqual(upstream.code, 303, upstream)
        assert upstream.location is not None
        self.assertTrue(
            upstream.location.startswith("https://other.example.net/authorize?"), upstream.location
        )
        self.assertIn("state", parse_qs(urlsplit(upstream.location).query))

    def test_unlink(self) -> None:
        user = self.sign_in()
        link = self.add_link(user, PRV1, "alice-at-sso")
        page = self.browse("GET", PAGE)
        refused = self.browse("POST", f"{PAGE}/{link.id}/unlink", form={})
        self.assertEqual(refused.code, 400)
        self.assertEqual(self.link_owner(link), user.id)
        done = self.browse("POST", f"{PAGE}/{link.id}/unlink", form={"csrf": csrf_from(page)})
        self.assertEqual(done.code, 303, done)
        self.assertEqual(done.location, f"{PAGE}?unlinked={PRV1}")
        self.assertIsNone(self.link_owner(link))
        after = self.browse("GET", done.location)
        self.assertIn("Example SSO is no longer connected to your account.", after.text_body)
        self.assertIn("Link Example SSO", after.text_body)
        # Gone: a second unlink is a 404.
        again = self.browse("POST", f"{PAGE}/{link.id}/unlink", form={"csrf": csrf_from(page)})
        self.assertEqual(again.code, 404)

    def test_never_the_last_way_to_sign_in(self) -> None:
        user = self.sign_in()
        # An account made through an upstream provider: no password.
        self.get_success(
            self.db_pool.execute("nopw", "DELETE FROM user_passwords WHERE user_id = ?", user.id)
        )
        first = self.add_link(user, PRV1, "alice-at-sso")
        page = self.browse("GET", PAGE)
        refused = self.browse("POST", f"{PAGE}/{first.id}/unlink", form={"csrf": csrf_from(page)})
        self.assertEqual(refused.code, 400)
        self.assertIn("This is the only way you can sign in", refused.text_body)
        self.assertEqual(self.link_owner(first), user.id)
        # With a second provider linked, either one may go, but not both.
        second = self.add_link(user, PRV2, "alice-at-other")
        done = self.browse("POST", f"{PAGE}/{first.id}/unlink", form={"csrf": csrf_from(page)})
        self.assertEqual(done.code, 303)
        self.assertIsNone(self.link_owner(first))
        refused = self.browse("POST", f"{PAGE}/{second.id}/unlink", form={"csrf": csrf_from(page)})
        self.assertEqual(refused.code, 400)
        self.assertEqual(self.link_owner(second), user.id)

    @override_config({**PROVIDERS, "passwords": {"enabled": False}})
    def test_a_password_does_not_count_when_password_login_is_off(self) -> None:
        user = self.factory.user("alice", password=None)
        # A password from before password login was switched off.
        old = UserPassword(
            id=self.server.get_token_generator().ulid(),
            user_id=user.id,
            hashed_password="$argon2id$old",
            version=1,
            created_at=0,
        )
        self.get_success(self.server.get_stores().user_passwords.add_user_password(old))
        link = self.add_link(user, PRV1, "alice-at-sso")
        handler = self.server.get_upstream_oauth2_handler()
        from mas_twisted.handlers.upstream_oauth2 import UnlinkOutcome

        self.assertIs(
            self.get_success(handler.unlink_from_account(user.id, link.id)), UnlinkOutcome.LAST_WAY_IN
        )
        self.assertEqual(self.link_owner(link), user.id)

    def test_another_users_link_is_404(self) -> None:
        self.sign_in()
        bob = self.factory.user("bob")
        bobs = self.add_link(bob, PRV1, "bob-at-sso", name="bob@sso.example.org")
        page = self.browse("GET", PAGE)
        self.assertNotIn("bob@sso.example.org", page.text_body)
        channel = self.browse("POST", f"{PAGE}/{bobs.id}/unlink", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 404)
        self.assertEqual(self.link_owner(bobs), bob.id)
