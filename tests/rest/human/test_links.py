# SPDX-License-Identifier: AGPL-3.0-only
"""No page links to nothing (issue 11, item 6): the live pages of a server that mounts every
resource, crawled from their entry points, signed out and signed in.

The server has every feature on that the configuration can turn on (password registration and
recovery, login with email, the device code grant, an upstream provider, a session limit), so
a link appears wherever a page would show it; a link to a page that does not exist yet must
then be hidden by the page (``SiteFeatures``), not left dangling. From each entry point — the
index, the login page, the ``/authorize`` flows, the consent and device pages, the legacy SSO
pages, logout, the error pages, the device-limit and policy pages, the locked account page —
the crawler (``_links.Crawler``) follows every same-origin link, form action, stylesheet,
script, image and redirect breadth first; none may answer 404 (or 405 to its form's method, or
5xx). Every URL of ours that the discovery document advertises must answer too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from mas_twisted.rest.registry import RESOURCE_CLASSES
from mas_twisted.storage.config_sync import config_sync
from tests.rest.human._base import DeviceTestCase, csrf_from
from tests.rest.human._links import Crawler, Link, Visit, is_dead
from tests.server import FakeChannel
from tests.unittest import TEST_PUBLIC_BASE

ORIGIN = TEST_PUBLIC_BASE.rstrip("/")
SSO_APP = "https://app.example.com/sso/callback"
PROVIDER_ID = "01J0000000000000000000PRV1"

#: How each URL field of the discovery document is requested: what a client does with it.
DISCOVERY_METHODS = {
    "issuer": "GET",
    "authorization_endpoint": "GET",
    "token_endpoint": "POST",
    "jwks_uri": "GET",
    "registration_endpoint": "POST",
    "revocation_endpoint": "POST",
    "introspection_endpoint": "POST",
    "userinfo_endpoint": "GET",
    "device_authorization_endpoint": "POST",
    "end_session_endpoint": "GET",
    "account_management_uri": "GET",
}


class LiveLinkTests(DeviceTestCase):
    #: The path the service is served under (``http.public_base``'s path and the listener's
    #: ``prefix``); every request of the tests is sent under it.
    PREFIX = ""

    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        # Every resource that mounts something, on the one listener.
        config["http"]["listeners"][0]["resources"] = [
            {"name": name} for name, classes in RESOURCE_CLASSES.items() if classes
        ]
        if self.PREFIX:
            config["http"]["public_base"] = f"{ORIGIN}{self.PREFIX}/"
            config["http"]["listeners"][0]["prefix"] = self.PREFIX
        config["account"] = {
            "password_registration_enabled": True,
            "password_recovery_enabled": True,
            "login_with_email_allowed": True,
        }
        config["branding"] = {
            "policy_uri": "https://example.com/privacy",
            "tos_uri": "https://example.com/tos",
        }
        config["upstream_oauth2"] = {
            "providers": [
                {
                    "id": PROVIDER_ID,
                    "issuer": "https://sso.example.org/",
                    "client_id": "mas",
                    "token_endpoint_auth_method": "none",
                    "human_name": "Example SSO",
                    # No discovery: no request may leave the test's fake reactor.
                    "discovery_mode": "disabled",
                    "authorization_endpoint": "https://sso.example.org/authorize",
                    "token_endpoint": "https://sso.example.org/token",
                }
            ]
        }
        config["experimental"] = {"session_limit": {"soft_limit": 1, "hard_limit": 3}}
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.get_success(config_sync(server, prune=False, dry_run=False))
        self.crawler = Crawler(self._browse, ORIGIN)

    def _browse(self, method: str, target: str, form: dict[str, Any] | None) -> FakeChannel:
        # The crawler's requests go exactly where the pages point (never under PREFIX here).
        return DeviceTestCase.browse(self, method, target, form=form)

    def browse(self, method: str, path: str, **kwargs: Any) -> FakeChannel:
        """A request under :attr:`PREFIX` (the paths the tests name are the service's own)."""
        if self.PREFIX and not path.startswith(self.PREFIX + "/"):
            path = self.PREFIX + path
        return super().browse(method, path, **kwargs)

    def assert_no_dead_links(self) -> None:
        self.assertEqual(self.crawler.dead, [], "\n" + self.crawler.describe_dead())

    def seed(self, path: str, code: int | tuple[int, ...] = 200) -> FakeChannel:
        """Open ``path`` (expecting ``code``) and crawl from what it shows or redirects to."""
        channel = self.browse("GET", path)
        codes = (code,) if isinstance(code, int) else code
        self.assertIn(channel.code, codes, (path, channel))
        self.crawler.seed_page(ORIGIN + self.PREFIX + path, channel)
        return channel

    def start_sso(self) -> str:
        channel = self.browse(
            "GET", f"/_matrix/client/v3/login/sso/redirect?redirectUrl={quote(SSO_APP, safe='')}"
        )
        self.assertEqual(channel.code, 303, channel)
        assert channel.location is not None
        parts = urlsplit(channel.location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def authorize_path(self, **extra: str) -> str:
        client = self.add_client()
        return "/authorize?" + urlencode(self.code_params(client, **extra))

    def reach_the_session_limit(self) -> None:
        """One more device for the signed-in user of each kind the policies count
        (``soft_limit: 1``): a legacy session and an OAuth 2.0 session."""
        self.factory.compat_session(self.user)
        self.factory.oauth2_session(self.add_client(), user=self.user)

    def link_device(self, user_code: str) -> FakeChannel:
        """Type the device's code into the /link form, as a person would."""
        page = self.browse("GET", "/link")
        return self.browse("POST", "/link", form={"csrf": csrf_from(page), "code": user_code})

    # -- the crawls -------------------------------------------------------------------------
    def test_signed_out(self) -> None:
        grant = self.add_device_grant()
        self.seed("/")
        self.seed("/login")
        self.seed("/login?" + urlencode({"kind": "continue_device_code_grant", "id": grant.id}))
        self.seed(self.authorize_path(), 303)
        self.seed(self.authorize_path(prompt="create"), 303)
        self.seed(self.authorize_path(login_hint="mxid:@alice:example.com"), 303)
        self.seed("/link")
        self.seed(f"/link?code={grant.user_code}")
        self.seed(f"/device/{grant.id}", 303)
        self.seed(self.start_sso(), 303)
        # The error pages: no such page, a broken authorization request, a form without CSRF.
        self.seed("/nowhere/at/all", 404)
        self.seed("/authorize", 400)
        self.seed("/authorize?" + urlencode({"client_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}), 400)
        refused = self.browse("POST", "/login", form={"username": "alice", "password": "x"})
        self.assertEqual(refused.code, 400, refused)
        self.crawler.seed_page(ORIGIN + self.PREFIX + "/login#refused", refused)
        self.assert_no_dead_links()
        self.assert_reached("/", "/login", "/link", "/assets/mas.css")

    def test_signed_in(self) -> None:
        self.sign_in()
        grant = self.add_device_grant()
        self.seed("/")
        self.seed("/login", 303)
        self.seed(self.authorize_path(), 303)
        self.seed("/link")
        linked = self.link_device(grant.user_code)
        self.assertEqual(linked.code, 303, linked)
        self.crawler.seed_page(ORIGIN + self.PREFIX + "/link", linked)
        self.seed(self.start_sso(), 200)
        self.seed("/nowhere/at/all", 404)
        self.assert_no_dead_links()
        self.assert_reached("/consent/", f"/device/{grant.id}", "/complete-compat-sso/")

    def test_limits_policies_and_inactive_accounts(self) -> None:
        self.sign_in()
        self.reach_the_session_limit()
        # The device-limit page of a legacy SSO login, and the policy page of an authorization.
        page = self.seed(self.start_sso(), 403)
        self.assertIn("Device limit reached", page.text_body)
        self.assertIn("Manage devices", page.text_body)
        self.seed(self.authorize_path(), 303)
        self.assertTrue(
            any("too many active sessions" in body for body in self.crawler.pages.values()),
            list(self.crawler.pages),
        )
        # A locked account: the pages say so.
        self.get_success(
            self.server.get_stores().users.lock_user(self.user, self.server.get_clock().time_msec())
        )
        self.assertIn("<h1>Account locked</h1>", self.seed("/login", 200).text_body)
        self.assertIn("<h1>Account locked</h1>", self.seed("/", 200).text_body)
        self.seed(self.authorize_path(), 303)
        self.assert_no_dead_links()

    def test_logout(self) -> None:
        self.sign_in()
        page = self.seed("/")

        channel = self.browse("POST", "/logout", form={"csrf": csrf_from(page)})
        self.assertEqual(channel.code, 303, channel)
        self.crawler.seed_page(ORIGIN + self.PREFIX + "/logout", channel)
        self.assertIn(f'href="{self.PREFIX}/login">Sign in</a>', self.browse("GET", "/").text_body)
        self.assert_no_dead_links()

    def test_discovery_urls_answer(self) -> None:
        doc = self.browse("GET", "/.well-known/openid-configuration").json_body
        ours = {
            key: value for key, value in doc.items() if isinstance(value, str) and value.startswith(ORIGIN)
        }
        self.assertEqual(set(ours), set(DISCOVERY_METHODS), "a new URL field: say how a client requests it")
        links = [
            Link(
                kind="form" if DISCOVERY_METHODS[k] == "POST" else "a",
                method=DISCOVERY_METHODS[k],
                url=v,
                source=k,
            )
            for k, v in ours.items()
        ]
        self.crawler.crawl(links)
        self.assert_no_dead_links()
        # The account management URI is a page a person can use (MSC4191: clients open it):
        # signed out, the login page that comes back to it; signed in, the account page.
        self.assertIn(ORIGIN + self.PREFIX + "/login?kind=manage_account", self.crawler.pages)
        self.sign_in()
        self.crawler = Crawler(self._browse, ORIGIN)
        self.crawler.crawl(
            [Link(kind="a", method="GET", url=doc["account_management_uri"], source="signed in")]
        )
        self.assert_no_dead_links()
        self.assertIn(doc["account_management_uri"], self.crawler.pages)
        self.assert_reached("/account/sessions", "/account/password/change", "/account/deactivate")

    # -- the crawler itself -----------------------------------------------------------------
    def test_the_crawler_reports_a_link_to_nothing(self) -> None:
        self.crawler.crawl(
            [
                Link(kind="a", method="GET", url=ORIGIN + self.PREFIX + "/recover/missing", source="(test)"),
                Link(kind="form", method="GET", url=ORIGIN + self.PREFIX + "/logout", source="(test)"),
                # A link that forgot the public base's path.
                Link(kind="a", method="GET", url=ORIGIN + "/login", source="(test)"),
                Link(kind="a", method="GET", url="https://elsewhere.example.net/missing", source="(test)"),
            ]
        )
        self.assertEqual(
            [(v.code, v.link.url) for v in self.crawler.dead],
            [(404, ORIGIN + self.PREFIX + "/recover/missing"), (405, ORIGIN + self.PREFIX + "/logout")]
            + ([(404, ORIGIN + "/login")] if self.PREFIX else []),
        )
        self.assertFalse(is_dead(Visit(Link("a", "GET", ORIGIN + "/logout", "(test)"), 405, None)))

    def assert_reached(self, *prefixes: str) -> None:
        reached = [urlsplit(v.link.url).path for v in self.crawler.visits] + [
            urlsplit(url).path for url in self.crawler.pages
        ]
        for prefix in prefixes:
            wanted = self.PREFIX + prefix
            self.assertTrue(any(path.startswith(wanted) for path in reached), (wanted, sorted(set(reached))))


class PrefixedLiveLinkTests(LiveLinkTests):
    """The same crawls with the service under ``/mas/``: a link written without the public
    base's path (``prefix_url``) would answer 404 here."""

    PREFIX = "/mas"
