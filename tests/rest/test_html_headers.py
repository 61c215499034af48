# SPDX-License-Identifier: AGPL-3.0-only
"""The security headers of every HTML page (``rest/_base.html_response``), through the real
``Site``: a ``Content-Security-Policy`` without ``'unsafe-inline'``, never framed
(``frame-ancestors 'none'``, ``X-Frame-Options: DENY``), ``nosniff``, ``no-referrer``, and a
``form-action`` naming where the page's forms (and the redirects after them) may go. Also:
no template has an inline script, style or event handler, which that policy would block."""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import urlsplit

from tests.rest.human._base import PASSWORD, REDIRECT_URI, DeviceTestCase, csrf_from
from tests.server import FakeChannel

SELF = "'self'"
CLIENT_ORIGIN = "https://app.example.com"
SSO_APP = "https://sso-app.example.net/callback"

#: Inline code a strict CSP blocks: a script without ``src``, a ``<style>`` element, a
#: ``style=""`` attribute, an ``on…=`` event handler, a ``javascript:`` URL.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style[\s>]|\sstyle=|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        assert name not in out, f"{name} twice in {policy!r}"
        out[name] = values
    return out


class HtmlHeaderTests(DeviceTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"].append({"name": "compat"})
        return config

    def assert_page(
        self, channel: FakeChannel, code: int = 200, form_action: tuple[str, ...] = (SELF,)
    ) -> None:
        self.assertEqual(channel.code, code, channel)
        self.assertEqual(channel.header("Content-Type"), "text/html; charset=utf-8")
        policy = channel.header("Content-Security-Policy")
        assert policy is not None, channel
        self.assertNotIn("unsafe-inline", policy)
        self.assertNotIn("unsafe-eval", policy)
        self.assertEqual(
            directives(policy),
            {
                "default-src": [SELF],
                "script-src": [SELF],
                "style-src": [SELF],
                "img-src": [SELF, "data:"],
                "object-src": ["'none'"],
                "form-action": list(form_action),
                "frame-ancestors": ["'none'"],
                "base-uri": ["'none'"],
            },
        )
        self.assertEqual(channel.header("X-Frame-Options"), "DENY")
        self.assertEqual(channel.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(channel.header("Referrer-Policy"), "no-referrer")
        self.assertIsNone(INLINE.search(channel.text_body), channel.text_body)

    def start_grant(self, **extra: str) -> str:
        before = {g[0] for g in self.grants()}
        client = self.add_client()
        channel = self.authorize(**self.code_params(client, **extra))
        self.assertEqual(channel.code, 303, channel)
        [grant_id] = {g[0] for g in self.grants()} - before
        return str(grant_id)

    def test_signed_out_pages(self) -> None:
        self.assert_page(self.browse("GET", "/"))
        self.assert_page(self.browse("GET", "/login"))
        self.assert_page(self.browse("GET", "/link"))
        # The login page of an authorization: a successful login may redirect on to the client.
        grant_id = self.start_grant()
        login = self.browse("GET", f"/login?kind=continue_authorization_grant&id={grant_id}")
        self.assert_page(login, form_action=(SELF, CLIENT_ORIGIN))

    def test_error_pages(self) -> None:
        # An invalid authorization request: the HTML error page.
        self.assert_page(self.browse("GET", "/authorize"), 400)
        # The human router's 404 page, and its 405.
        self.assert_page(self.browse("GET", "/consent/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404)
        self.assert_page(self.browse("PUT", "/login"), 405)
        # The listener's fallback for a path nothing serves, as a browser asks for it.
        self.assert_page(self.browse("GET", "/no/such/page", headers=(("Accept", "text/html"),)), 404)

    def test_signed_in_pages(self) -> None:
        self.sign_in()
        self.assert_page(self.browse("GET", "/"))
        # Consent: allowing or denying redirects to the client.
        grant_id = self.start_grant()
        consent = self.browse("GET", f"/consent/{grant_id}")
        self.assert_page(consent, form_action=(SELF, CLIENT_ORIGIN))
        # The form_post response page posts to the client, and only there.
        form_post_grant = self.start_grant(response_mode="form_post")
        page = self.browse("GET", f"/consent/{form_post_grant}")
        posted = self.browse(
            "POST", f"/consent/{form_post_grant}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assert_page(posted, form_action=(CLIENT_ORIGIN,))
        self.assertIn(f'action="{REDIRECT_URI}"', posted.text_body)
        self.assertIn('<script src="/assets/form_post.js"></script>', posted.text_body)
        # The device grant's consent page stays on this service.
        grant = self.add_device_grant()
        self.assert_page(self.browse("GET", f"/device/{grant.id}"))

    def test_compat_sso_page(self) -> None:
        self.sign_in()
        channel = self.make_request("GET", f"/_matrix/client/v3/login/sso/redirect?redirectUrl={SSO_APP}")
        self.assertEqual(channel.code, 303, channel)
        assert channel.location is not None
        target = urlsplit(channel.location)
        page = self.browse("GET", target.path + (f"?{target.query}" if target.query else ""))
        self.assert_page(page, form_action=(SELF, "https://sso-app.example.net"))
        self.assertIn("sso-app.example.net", page.text_body)

    def test_account_locked_page(self) -> None:
        self.factory.user("lenny", PASSWORD, locked_at=self.server.get_clock().time_msec())
        self.assert_page(self.login("lenny", PASSWORD))

    def test_templates_have_no_inline_code(self) -> None:
        # Every template with every sample, including the pages the tests above do not reach.
        renders = self.server.get_templates().check_render(
            self.server.get_clock().time_msec(), random.Random(7)
        )
        self.assertGreater(len(renders), 10)
        for (template, sample), html in renders.items():
            match = INLINE.search(html)
            self.assertIsNone(match, f"{template} ({sample}): {match and match.group(0)}")

    def test_form_action_sources(self) -> None:
        from mas_twisted.rest._base import form_action_source

        self.assertEqual(
            form_action_source("https://app.example.com:8443/cb?x=1#f"), "https://app.example.com:8443"
        )
        self.assertEqual(form_action_source("http://user@127.0.0.1:9000/cb"), "http://127.0.0.1:9000")
        # A native app's private-use URI scheme (RFC 8252 §7.1): the scheme.
        self.assertEqual(form_action_source("com.example.app:/oauth2redirect"), "com.example.app:")
