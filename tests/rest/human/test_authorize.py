# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /authorize`` (MAS's ``oauth2/authorization/mod.rs`` and ``callback.rs`` and their tests),
through the real listener: error pages before the redirect URI is known, errors sent back to
the client after, and the pending grant with the way to login or consent."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from tests.rest.human._base import PASSWORD, REDIRECT_URI, AuthorizeTestCase
from tests.unittest import override_config


class AuthorizeErrorPageTests(AuthorizeTestCase):
    def test_missing_parameters(self) -> None:
        client = self.add_client()
        for missing in ("client_id", "response_type", "scope"):
            params = self.code_params(client)
            del params[missing]
            self.assert_error_page(self.authorize(**params))

    def test_empty_response_type_and_bad_scope(self) -> None:
        client = self.add_client()
        self.assert_error_page(self.authorize(**self.code_params(client, response_type=" ")))
        self.assert_error_page(self.authorize(**self.code_params(client, scope='openid "quoted"')))
        self.assert_error_page(self.authorize(**self.code_params(client, max_age="0")))

    def test_unknown_client(self) -> None:
        params = {"client_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "response_type": "code", "scope": "openid"}
        self.assert_error_page(self.authorize(**params))

    def test_unregistered_redirect_uri(self) -> None:
        client = self.add_client()
        channel = self.authorize(**self.code_params(client, redirect_uri="https://evil.example.com/cb"))
        self.assert_error_page(channel)
        self.assertIsNone(channel.location)

    def test_redirect_uri_required_with_several_registered(self) -> None:
        client = self.add_client(redirect_uris=(REDIRECT_URI, "https://app.example.com/other"))
        params = self.code_params(client)
        del params["redirect_uri"]
        self.assert_error_page(self.authorize(**params))

    def test_query_mode_refused_with_id_token(self) -> None:
        client = self.add_client()
        self.assert_error_page(
            self.authorize(**self.code_params(client, response_type="code id_token", response_mode="query"))
        )

    def test_unknown_response_mode(self) -> None:
        client = self.add_client()
        self.assert_error_page(self.authorize(**self.code_params(client, response_mode="web_message")))

    def test_redirect_uri_with_fragment(self) -> None:
        uri = "https://app.example.com/callback#frag"
        client = self.add_client(redirect_uris=(uri,))
        self.assert_error_page(self.authorize(**self.code_params(client, redirect_uri=uri)))


class AuthorizeRedirectedErrorTests(AuthorizeTestCase):
    def test_request_parameters_not_supported(self) -> None:
        client = self.add_client()
        self.assert_redirected_error(
            self.authorize(**self.code_params(client, request="eyJ")), "request_not_supported"
        )
        self.assert_redirected_error(
            self.authorize(**self.code_params(client, request_uri="https://app.example.com/r")),
            "request_uri_not_supported",
        )
        self.assert_redirected_error(
            self.authorize(**self.code_params(client, registration="{}")), "registration_not_supported"
        )

    def test_token_response_type(self) -> None:
        client = self.add_client()
        channel = self.authorize(**self.code_params(client, response_type="code token"))
        # `token` defaults to the fragment.
        self.assert_redirected_error(channel, "unsupported_response_type", mode="fragment")

    def test_id_token_without_implicit_grant(self) -> None:
        client = self.add_client()
        channel = self.authorize(**self.code_params(client, response_type="id_token"))
        self.assert_redirected_error(channel, "unauthorized_client", mode="fragment")

    def test_prompt_none_is_login_required(self) -> None:
        client = self.add_client()
        self.assert_redirected_error(
            self.authorize(**self.code_params(client, prompt="none")), "login_required"
        )

    def test_code_without_authorization_code_grant(self) -> None:
        client = self.add_client(grant_types=("refresh_token",))
        self.assert_redirected_error(self.authorize(**self.code_params(client)), "unauthorized_client")

    def test_pkce_without_code(self) -> None:
        client = self.add_client()
        # `none` asks for nothing; PKCE then makes no sense.
        channel = self.authorize(
            **self.code_params(
                client, response_type="none", code_challenge="abc", code_challenge_method="S256"
            )
        )
        self.assert_redirected_error(channel, "invalid_request")

    def test_form_post_error(self) -> None:
        client = self.add_client()
        channel = self.authorize(**self.code_params(client, prompt="none", response_mode="form_post"))
        self.assertEqual(channel.code, 200, channel)
        body = channel.text_body
        self.assertIn(f'action="{REDIRECT_URI}"', body)
        self.assertIn('name="error" value="login_required"', body)
        self.assertIn('name="state" value="st4te"', body)
        self.assertEqual(self.count_rows("oauth2_authorization_grants"), 0)

    def test_error_keeps_the_redirect_uri_query(self) -> None:
        uri = "https://app.example.com/callback?tenant=a"
        client = self.add_client(redirect_uris=(uri,))
        channel = self.authorize(**self.code_params(client, redirect_uri=uri, prompt="none"))
        self.assertEqual(channel.code, 303)
        parts = urlsplit(channel.location)
        self.assertEqual(parse_qs(parts.query)["tenant"], ["a"])
        self.assertEqual(parse_qs(parts.query)["error"], ["login_required"])
        # An empty fragment, so the browser does not carry one over.
        self.assertTrue(channel.location.endswith("#"))


class AuthorizeGrantTests(AuthorizeTestCase):
    def test_signed_out_goes_to_login(self) -> None:
        client = self.add_client()
        channel = self.authorize(
            **self.code_params(
                client,
                nonce="n0nce",
                login_hint="mxid:@alice:example.com",
                code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                code_challenge_method="S256",
            )
        )
        self.assertEqual(channel.code, 303, channel)
        [grant] = self.grants()
        grant_id, code, fulfilled_at, raw, mode, method, challenge, login_hint, locale, nonce, state = grant
        location = urlsplit(channel.location)
        self.assertEqual(location.path, "/login")
        self.assertEqual(
            parse_qs(location.query),
            {
                "kind": ["continue_authorization_grant"],
                "id": [grant_id],
                "login_hint": ["mxid:@alice:example.com"],
            },
        )
        self.assertEqual(len(code), 32)
        self.assertTrue(code.isalnum())
        self.assertIsNone(fulfilled_at)
        self.assertEqual(mode, "query")
        self.assertEqual((method, challenge), ("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        self.assertEqual(
            (login_hint, locale, nonce, state), ("mxid:@alice:example.com", "en", "n0nce", "st4te")
        )
        raw_params = raw if isinstance(raw, dict) else json.loads(raw)
        self.assertEqual(raw_params["client_id"], client.id)
        self.assertEqual(raw_params["code_challenge_method"], "S256")

    def test_single_redirect_uri_is_the_default(self) -> None:
        client = self.add_client()
        params = self.code_params(client)
        del params["redirect_uri"]
        self.assertEqual(self.authorize(**params).code, 303)
        self.assertEqual(self.count_rows("oauth2_authorization_grants"), 1)

    def test_loopback_redirect_uri_ignores_the_port(self) -> None:
        client = self.add_client(redirect_uris=("http://127.0.0.1/callback",))
        channel = self.authorize(**self.code_params(client, redirect_uri="http://127.0.0.1:51234/callback"))
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(self.count_rows("oauth2_authorization_grants"), 1)

    def test_prompt_create_goes_to_registration_with_the_action(self) -> None:
        client = self.add_client()
        channel = self.authorize(**self.code_params(client, prompt="create", login_hint="alice"))
        [grant] = self.grants()
        location = urlsplit(channel.location)
        self.assertEqual(location.path, "/register")
        self.assertEqual(
            parse_qs(location.query), {"kind": ["continue_authorization_grant"], "id": [grant[0]]}
        )

    def test_signed_in_goes_to_consent(self) -> None:
        self.factory.user()
        self.login("alice", PASSWORD)
        client = self.add_client()
        channel = self.authorize(**self.code_params(client))
        [grant] = self.grants()
        self.assertEqual(channel.code, 303)
        self.assertEqual(channel.location, f"/consent/{grant[0]}")
        self.assertIsNone(grant[2])

    @override_config({"http": {"public_base": "https://auth.example.com/prefix/"}})
    def test_redirects_keep_the_public_base_prefix(self) -> None:
        client = self.add_client()
        channel = self.authorize(**self.code_params(client))
        self.assertTrue(urlsplit(channel.location).path == "/prefix/login", channel.location)
