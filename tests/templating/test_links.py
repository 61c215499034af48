# SPDX-License-Identifier: AGPL-3.0-only
"""No template links to nothing (issue 11, item 6): every template, rendered with every sample
as the running server renders it, and each same-origin link, form action, stylesheet and script
of the renders requested through that server's ``Site``.

The samples show what the live crawl (``tests/rest/human/test_links.py``) may not reach: a
login page with upstream providers and a post-auth action, the device-limit page, each
inactive-account page, every error page. A link to a page that does not exist yet must be hidden
by its feature (``SiteFeatures``, :data:`~mas_twisted.templating.context.LINKED_PAGES`), and
shown as soon as a route serves the page, when the configuration has the feature on.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from mas_twisted import urls
from mas_twisted.rest.registry import RESOURCE_CLASSES
from mas_twisted.templating import (
    CompatLoginPolicyViolationContext,
    IndexContext,
    LoginContext,
    Templates,
    site_features,
)
from mas_twisted.templating.context import LINKED_PAGES
from mas_twisted.templating.samples import SAMPLES
from mas_twisted.types.upstream import UpstreamOAuthProviderParams
from mas_twisted.urls import MountedRoutes, UrlBuilder
from tests.rest.human._base import HumanTestCase
from tests.rest.human._links import Crawler, page_links
from tests.server import FakeChannel
from tests.unittest import TEST_PUBLIC_BASE, override_config

ORIGIN = TEST_PUBLIC_BASE.rstrip("/")
NOW_MS = 1_700_000_000_000

#: Where a page is served, for its forms without ``action`` (which post to the page itself).
_STEP_ID = "0" * 26
PAGE_PATHS = {
    "pages/login.html": urls.LOGIN,
    "pages/login_two_factor.html": urls.LOGIN_SECOND_FACTOR,
    "pages/register/password.html": urls.PASSWORD_REGISTER,
    "pages/register/steps/registration_token.html": urls.path_for(urls.REGISTER_TOKEN, id=_STEP_ID),
    "pages/register/steps/verify_email.html": urls.path_for(urls.REGISTER_VERIFY_EMAIL, id=_STEP_ID),
    "pages/register/steps/display_name.html": urls.path_for(urls.REGISTER_DISPLAY_NAME, id=_STEP_ID),
    "pages/account/email_verify.html": urls.path_for(urls.ACCOUNT_EMAIL_VERIFY, id=_STEP_ID),
    "pages/recovery/start.html": urls.ACCOUNT_RECOVERY_START,
    "pages/recovery/progress.html": urls.path_for(urls.ACCOUNT_RECOVERY_PROGRESS, session_id=_STEP_ID),
    "pages/recovery/finish.html": urls.ACCOUNT_RECOVERY_FINISH,
    "pages/recovery/expired.html": urls.ACCOUNT_RECOVERY_FINISH,
    "pages/end_session.html": urls.OIDC_END_SESSION,
    "pages/upstream_oauth2/do_register.html": urls.path_for(urls.UPSTREAM_OAUTH2_LINK, link_id=_STEP_ID),
    "pages/upstream_oauth2/suggest_link.html": urls.path_for(urls.UPSTREAM_OAUTH2_LINK, link_id=_STEP_ID),
}

#: The text of each optional link.
LINK_TEXTS = {
    "password_registration": "Create an account",
    "account_recovery": "Forgot your password?",
    "account_management": ">Your account</a>",
    "device_management": "Manage devices",
    "upstream_login": "Continue with Example SSO",
    "personal_tokens": "Personal access tokens</a>",
}
#: The optional pages this service mounts already (their links show).
MOUNTED_PAGES = (
    "password_registration",
    "account_recovery",
    "account_management",
    "device_management",
    "personal_tokens",
    "connected_accounts",
)

FEATURES_ON = {
    "account": {
        "password_registration_enabled": True,
        "password_recovery_enabled": True,
        "login_with_email_allowed": True,
    },
    "branding": {"policy_uri": "https://example.com/privacy", "tos_uri": "https://example.com/tos"},
    # The "Two-factor" tab of the account pages (its route answers 404 while this is off).
    "experimental": {"mfa": {"enabled": True}},
    # A provider configured turns the "Connected accounts" tab on (the samples' providers are
    # stored by the crawl itself).
    "upstream_oauth2": {
        "providers": [
            {
                "id": "01J0000000000000000000PRV1",
                "issuer": "https://sso.example.org/",
                "client_id": "mas",
                "token_endpoint_auth_method": "none",
                "discovery_mode": "disabled",
                "authorization_endpoint": "https://sso.example.org/authorize",
                "token_endpoint": "https://sso.example.org/token",
            }
        ]
    },
}


def _provider_params() -> UpstreamOAuthProviderParams:
    return UpstreamOAuthProviderParams(
        issuer=None,
        human_name="Example SSO",
        brand_name=None,
        scope="openid",
        token_endpoint_auth_method="none",
        token_endpoint_signing_alg=None,
        id_token_signed_response_alg="RS256",
        fetch_userinfo=False,
        userinfo_signed_response_alg=None,
        client_id="mas",
        encrypted_client_secret=None,
        claims_imports={},
        authorization_endpoint_override="https://sso.example.org/authorize",
        token_endpoint_override="https://sso.example.org/token",
        userinfo_endpoint_override=None,
        jwks_uri_override=None,
        discovery_mode="disabled",
        pkce_mode="auto",
        response_mode=None,
        additional_authorization_parameters=(),
        forward_login_hint=False,
        ui_order=0,
        on_backchannel_logout="do_nothing",
        registration_token_required=False,
    )


class TemplateLinkTests(HumanTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"] = [
            {"name": name} for name, classes in RESOURCE_CLASSES.items() if classes
        ]
        config.update(FEATURES_ON)
        return config

    def _browse(self, method: str, target: str, form: dict[str, Any] | None) -> FakeChannel:
        return self.browse(method, target, form=form)

    def renders(self, templates: Templates) -> dict[tuple[str, str], str]:
        return templates.check_render(NOW_MS, random.Random(42))

    def test_every_sample_links_only_to_pages_that_answer(self) -> None:
        crawler = Crawler(self._browse, ORIGIN)
        links = []
        renders = self.renders(self.server.get_templates())
        for (template, sample), html in renders.items():
            page_url = ORIGIN + PAGE_PATHS.get(template, urls.INDEX)
            for link in page_links(html, page_url):
                links.append(attrs.evolve(link, source=f"{template} {sample}"))
        self.assertGreater(len(links), len(renders))
        # The samples' providers exist (without discovery, so that no request leaves the test).
        prefix = ORIGIN + urls.path_for(urls.UPSTREAM_OAUTH2_AUTHORIZE, provider_id="")
        for provider_id in {v.url[len(prefix) :].split("?")[0] for v in links if v.url.startswith(prefix)}:
            self.get_success(
                self.server.get_stores().upstream_oauth_providers.upsert_upstream_oauth_provider(
                    provider_id, _provider_params()
                )
            )
        crawler.crawl(links)
        self.assertEqual(crawler.dead, [], "\n" + crawler.describe_dead())
        # The stylesheet, the form-post script, the index, the login page and each kind of form
        # were among them.
        requested = {(v.link.method, v.link.url.split("?")[0]) for v in crawler.visits}
        for expected in (
            ("GET", ORIGIN + "/assets/mas.css"),
            ("GET", ORIGIN + "/assets/form_post.js"),
            ("GET", ORIGIN + "/"),
            ("POST", ORIGIN + "/login"),
            ("POST", ORIGIN + "/logout"),
            ("POST", ORIGIN + "/link"),
        ):
            self.assertIn(expected, requested)

    def test_hidden_links_are_those_without_a_page(self) -> None:
        # With every feature on in the configuration, registration and account recovery
        # (issue 12), the account pages (issue 13), the upstream login (issue 14) and the
        # personal tokens page (issue 15) are the optional pages mounted (MOUNTED_PAGES):
        # their links are in the renders, and none of the others' is.
        routes = self.server.get_mounted_routes()
        for name, path in LINKED_PAGES.items():
            if name in MOUNTED_PAGES:
                self.assertTrue(routes.serves(path), path)
                self.assertNotEqual(self.browse("GET", path).code, 404, path)
            elif name == "upstream_login":
                # Mounted (issue 14); the sample id names no provider: a 404 page.
                self.assertTrue(routes.serves(path), path)
            else:
                self.assertFalse(routes.serves(path), path)
                self.assertEqual(self.browse("GET", path).code, 404, path)
        html = "\n".join(self.renders(self.server.get_templates()).values())
        for name, text in LINK_TEXTS.items():
            if name in MOUNTED_PAGES or name == "upstream_login":
                self.assertIn(text, html, name)
            else:
                self.assertNotIn(text, html, name)
        self.assertIn('href="/register', html)
        self.assertIn('href="/account/', html)
        self.assertIn('href="/recover"', html)
        self.assertIn('href="/upstream/authorize/', html)
        self.assertIn('href="/account/personal-tokens"', html)

    def with_pages(self, *names: str) -> MountedRoutes:
        """The routes mounted now, plus routes for the optional pages ``names``."""
        routes = self.server.get_mounted_routes()
        extra = [(LINKED_PAGES[name], frozenset({"GET"})) for name in names]
        return MountedRoutes([*routes.rules.items(), *extra])

    def templates_with(self, routes: MountedRoutes) -> Templates:
        return Templates.from_config(self.server.config, UrlBuilder(self.server.config.http), routes=routes)

    def optional_page_renders(self, templates: Templates) -> str:
        rng = random.Random(42)
        pages = [
            *(templates.render_index(ctx) for ctx in SAMPLES[IndexContext](NOW_MS, rng)),
            *(templates.render_login(ctx) for ctx in SAMPLES[LoginContext](NOW_MS, rng)),
        ]
        for ctx in SAMPLES[CompatLoginPolicyViolationContext](NOW_MS, rng):
            assert isinstance(ctx, CompatLoginPolicyViolationContext)
            pages.append(templates.render_compat_login_policy_violation(ctx))
        return "\n".join(pages)

    def test_each_link_appears_once_its_page_is_mounted(self) -> None:
        # What the later issues do: mount the page, and its link is there, no template edited.
        mounted = self.server.get_mounted_routes()
        already = {name for name, path in LINKED_PAGES.items() if mounted.serves(path)}
        for name, text in LINK_TEXTS.items():
            html = self.optional_page_renders(self.templates_with(self.with_pages(name)))
            self.assertIn(text, html, name)
            for other, other_text in LINK_TEXTS.items():
                if other != name and other not in already:
                    self.assertNotIn(other_text, html, (name, other))
        html = self.optional_page_renders(self.templates_with(self.with_pages(*LINK_TEXTS)))
        self.assertIn('href="/register?kind=continue_authorization_grant&amp;id=', html)
        self.assertIn('href="/recover"', html)
        self.assertIn('href="/account/"', html)
        self.assertIn('href="/account/sessions"', html)
        self.assertRegex(html, r'href="/upstream/authorize/[0-9A-Z]{26}\?kind=continue_authorization_grant')

    @override_config(
        {"account": {"password_registration_enabled": False, "password_recovery_enabled": False}}
    )
    def test_a_mounted_page_is_linked_only_with_its_feature_configured(self) -> None:
        # MAS's switches still decide: registration and recovery off, pages mounted, no links.
        html = self.optional_page_renders(self.templates_with(self.with_pages(*LINK_TEXTS)))
        self.assertNotIn("Create an account", html)
        self.assertNotIn("Forgot your password?", html)
        self.assertIn(LINK_TEXTS["account_management"], html)
        features = site_features(self.server.config, self.with_pages(*LINK_TEXTS))
        self.assertFalse(features.password_registration or features.account_recovery)
        self.assertTrue(features.account_management and features.upstream_login)

    @override_config({"passwords": {"enabled": False}})
    def test_no_registration_or_recovery_without_passwords(self) -> None:
        features = site_features(self.server.config, self.with_pages(*LINK_TEXTS))
        self.assertFalse(features.password_login)
        self.assertFalse(features.password_registration or features.account_recovery)
