# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /`` and the HTML error pages of the human routes."""

from __future__ import annotations

from tests.rest.human._base import HumanTestCase
from tests.unittest import override_config


class IndexTests(HumanTestCase):
    def test_signed_out(self) -> None:
        channel = self.browse("GET", "/")
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.header("X-Frame-Options"), "DENY")
        body = channel.text_body
        self.assertIn('<html lang="en">', body)
        self.assertIn('<meta name="viewport" content="width=device-width, initial-scale=1">', body)
        self.assertIn('href="/login">Sign in</a>', body)
        self.assertIn("https://auth.example.com/.well-known/openid-configuration", body)
        self.assertNotIn("Create an account", body)

    @override_config(
        {"account": {"password_registration_enabled": True}, "branding": {"service_name": "Example Accounts"}}
    )
    def test_branding_and_registration_link(self) -> None:
        body = self.browse("GET", "/").text_body
        self.assertIn("<title>Example Accounts</title>", body)
        # Registration is on in the configuration and /register is mounted: the link shows
        # and leads to a page.
        self.assertIn('href="/register">Create an account</a>', body)
        self.assertIn(self.browse("GET", "/register").code, (200, 303))

    def test_signed_in(self) -> None:
        self.factory.user()
        self.login("alice", "correct horse battery staple")
        body = self.browse("GET", "/").text_body
        self.assertIn("You are signed in as <strong>alice</strong>", body)
        self.assertIn('action="/logout"', body)
        # The account pages are mounted with the human resource: the page links to them.
        self.assertIn('href="/account/">Your account</a>', body)

    def test_wrong_method_is_an_html_405(self) -> None:
        channel = self.browse("DELETE", "/login")
        self.assertEqual(channel.code, 405)
        self.assertEqual(channel.header("Allow"), "GET, HEAD, POST")
        self.assertIn("Something went wrong", channel.text_body)
        channel = self.browse("GET", "/logout")
        self.assertEqual(channel.code, 405)

    @override_config({"http": {"public_base": "https://example.com/auth/"}})
    def test_prefixed_public_base(self) -> None:
        self.factory.user()
        page = self.browse("GET", "/login")
        self.assertIn('href="/auth/assets/mas.css"', page.text_body)
        channel = self.login("alice", "correct horse battery staple")
        self.assertEqual(channel.location, "/auth/")
        self.assertEqual(channel.set_cookies["session"]["path"], "/auth/")
