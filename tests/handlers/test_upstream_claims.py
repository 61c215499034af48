# SPDX-License-Identifier: AGPL-3.0-only
"""Claim templates of upstream providers: the sandboxed Jinja2 environment and MAS's filters
(``b64decode``, ``b64encode``, ``tlvdecode``, ``string``, ``from_json``); a failing template is
an error page naming the provider, never a 500."""

from __future__ import annotations

import base64
from typing import Any

from mas_twisted.handlers.upstream_oauth2 import ClaimTemplateError, UpstreamOAuth2Handler
from mas_twisted.types.upstream import UpstreamOAuthProvider
from tests.unittest import MasTestCase


def _provider() -> UpstreamOAuthProvider:
    return UpstreamOAuthProvider(
        id="01J0000000000000000000PRV1",
        issuer="https://sso.example.org/",
        human_name="Example SSO",
        brand_name=None,
        scope="openid",
        client_id="mas",
        encrypted_client_secret=None,
        token_endpoint_signing_alg=None,
        token_endpoint_auth_method="none",
        id_token_signed_response_alg="RS256",
        userinfo_signed_response_alg=None,
        discovery_mode="oidc",
        pkce_mode="auto",
        response_mode=None,
        fetch_userinfo=False,
        authorization_endpoint_override=None,
        token_endpoint_override=None,
        userinfo_endpoint_override=None,
        jwks_uri_override=None,
        claims_imports={},
        additional_authorization_parameters=(),
        forward_login_hint=False,
        on_backchannel_logout="do_nothing",
        registration_token_required=False,
        ui_order=0,
        created_at=0,
    )


class ClaimTemplatesTestCase(MasTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.handler: UpstreamOAuth2Handler = server.get_upstream_oauth2_handler()
        self.context = self.handler.template_context(
            {"sub": "abc", "name": " Alice ", "blob": base64.b64encode(b'{"uid": "al1"}').decode()},
            {"email": "alice@example.org", "tlv": base64.b64encode(b"\x01\x03abc\x02\x01z").decode()},
            {"extra": "x"},
        )

    def render(self, template: str) -> str | None:
        return self.handler.render_claim(_provider(), "localpart", template, self.context)

    def test_filters_and_contexts(self) -> None:
        self.assertEqual(self.render("{{ user.sub }}"), "abc")
        self.assertEqual(self.render("{{ user.name }}"), "Alice")  # stripped
        self.assertEqual(self.render("{{ user.email }}"), "alice@example.org")  # userinfo merged in
        self.assertEqual(self.render("{{ (user.blob | b64decode | from_json).uid }}"), "al1")
        self.assertEqual(self.render("{{ user.sub | b64encode }}"), "YWJj")
        self.assertEqual(self.render("{{ (user.tlv | b64decode | tlvdecode)[0].value | string }}"), "abc")
        self.assertEqual(self.render("{{ (user.tlv | b64decode | tlvdecode)[1].tag }}"), "2")
        self.assertEqual(self.render("{{ extra_callback_parameters.extra }}"), "x")
        # A missing claim renders empty, which is no value.
        self.assertIsNone(self.render("{{ user.missing }}"))
        self.assertIsNone(self.render("{{ user.missing.deeper }}"))
        # The sandbox hides Python's internals: nothing, or (below) an error.
        self.assertIsNone(self.render("{{ user.__class__.__mro__ }}"))

    def test_failures_are_error_pages_naming_the_provider(self) -> None:
        for template in (
            "{{ user.name | from_json }}",  # not JSON
            "{{ user.name | b64decode }}",  # not base64
            "{{ ''.__class__.__subclasses__() }}",  # the sandbox refuses
            "{% for %}",  # does not parse
        ):
            with self.assertRaises(ClaimTemplateError, msg=template) as caught:
                self.render(template)
            self.assertEqual(caught.exception.code, 502)
            self.assertEqual(str(caught.exception.msg), "Signing in with Example SSO failed.")
