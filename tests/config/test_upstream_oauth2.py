# SPDX-License-Identifier: AGPL-3.0-only
"""The ``upstream_oauth2`` section: provider keys, defaults and MAS's checks."""

from __future__ import annotations

from typing import Any

from mas_twisted.config.upstream_oauth2 import (
    ClaimsImports,
    ImportPreference,
    SignInWithApple,
    UpstreamOAuth2Config,
    UpstreamProvider,
)
from tests.config._helpers import FIXTURES, assert_config_error, load, read_section

PROVIDER_ID = "01M89BQ1ETN8RC4EH849N8832S"


def providers(*items: dict[str, Any]) -> UpstreamOAuth2Config:
    return read_section(UpstreamOAuth2Config, {"providers": list(items)})


def provider(**keys: Any) -> UpstreamProvider:
    base = {
        "id": PROVIDER_ID,
        "issuer": "https://id.example.com/",
        "client_id": "mas",
        "token_endpoint_auth_method": "none",
    }
    base.update(keys)
    base = {k: v for k, v in base.items() if v is not None}
    return providers(base).providers[0]


def at(*path: Any) -> tuple:
    return ("upstream_oauth2", "providers", 0) + path


def test_absent_section() -> None:
    assert load().upstream_oauth2.providers == []


def test_providers_key_is_required_in_a_present_section() -> None:
    assert_config_error(
        lambda: read_section(UpstreamOAuth2Config, {}), ("upstream_oauth2", "providers"), "missing"
    )
    assert read_section(UpstreamOAuth2Config, {"providers": []}).providers == []


def test_provider_defaults() -> None:
    p = provider()
    assert p == UpstreamProvider(
        id=PROVIDER_ID, client_id="mas", token_endpoint_auth_method="none", issuer="https://id.example.com/"
    )
    assert p.enabled is True
    assert p.scope == "openid"
    assert p.discovery_mode == "oidc"
    assert p.pkce_method == "auto"
    assert p.id_token_signed_response_alg == "RS256"
    assert p.fetch_userinfo is False
    assert p.response_mode is None
    assert p.on_backchannel_logout == "do_nothing"
    assert p.forward_login_hint is False
    assert p.registration_token_required is False
    assert p.additional_authorization_parameters == {}
    assert p.claims_imports == ClaimsImports()
    assert p.claims_imports.subject == "{{ user.sub }}"
    assert p.claims_imports.localpart == ImportPreference("ignore", None, "fail")


def test_provider_every_key() -> None:
    p = provider(
        enabled=False,
        synapse_idp_id="oidc-github",
        human_name="GitHub",
        brand_name="github",
        client_secret_file=str(FIXTURES / "provider-secret.txt"),
        token_endpoint_auth_method="client_secret_post",
        id_token_signed_response_alg="ES256",
        scope="openid profile email",
        discovery_mode="insecure",
        pkce_method="always",
        fetch_userinfo=True,
        userinfo_signed_response_alg="RS512",
        authorization_endpoint="https://id.example.com/authorize",
        token_endpoint="https://id.example.com/token",
        userinfo_endpoint="https://id.example.com/userinfo",
        jwks_uri="https://id.example.com/jwks",
        response_mode="form_post",
        additional_authorization_parameters={"prompt": "login", "max_age": 300},
        on_backchannel_logout="logout_browser_only",
        registration_token_required=True,
        claims_imports={
            "subject": {"template": "{{ user.id }}"},
            "localpart": {"action": "force", "template": "{{ user.login }}", "on_conflict": "replace"},
            "displayname": {"action": "suggest"},
            "email": {"action": "require", "template": "{{ user.mail }}"},
            "account_name": {"template": "@{{ user.login }}"},
        },
    )
    assert p.enabled is False
    assert p.synapse_idp_id == "oidc-github"
    assert (p.human_name, p.brand_name) == ("GitHub", "github")
    assert p.client_secret == "provider-secret-from-file"
    assert p.token_endpoint_auth_method == "client_secret_post"
    assert p.id_token_signed_response_alg == "ES256"
    assert p.scope == "openid profile email"
    assert (p.discovery_mode, p.pkce_method, p.fetch_userinfo) == ("insecure", "always", True)
    assert p.userinfo_signed_response_alg == "RS512"
    assert (p.authorization_endpoint, p.token_endpoint, p.userinfo_endpoint, p.jwks_uri) == (
        "https://id.example.com/authorize",
        "https://id.example.com/token",
        "https://id.example.com/userinfo",
        "https://id.example.com/jwks",
    )
    assert p.response_mode == "form_post"
    assert p.additional_authorization_parameters == {"prompt": "login", "max_age": "300"}
    assert p.on_backchannel_logout == "logout_browser_only"
    assert p.registration_token_required is True
    claims = p.claims_imports
    assert claims.subject == "{{ user.id }}"
    assert claims.localpart == ImportPreference("force", "{{ user.login }}", "replace")
    assert claims.displayname == ImportPreference("suggest", None)
    assert claims.email == ImportPreference("require", "{{ user.mail }}")
    assert claims.account_name_template == "@{{ user.login }}"


def test_enabled_providers_keep_order() -> None:
    config = providers(
        {
            "id": "01M89BQ1ETN8RC4EH849N8832S",
            "issuer": "https://a.example/",
            "client_id": "a",
            "token_endpoint_auth_method": "none",
        },
        {
            "id": "01M89BQ1ETN8RC4EH849N8832T",
            "issuer": "https://b.example/",
            "client_id": "b",
            "token_endpoint_auth_method": "none",
            "enabled": False,
        },
        {
            "id": "01M89BQ1ETN8RC4EH849N8832V",
            "issuer": "https://c.example/",
            "client_id": "c",
            "token_endpoint_auth_method": "none",
        },
    )
    assert [p.client_id for p in config.providers] == ["a", "b", "c"]
    assert [p.client_id for p in config.enabled_providers] == ["a", "c"]


def test_forward_login_hint_becomes_a_parameter() -> None:
    assert provider(forward_login_hint=True).effective_additional_authorization_parameters == {
        "login_hint": "{{ params.login_hint }}"
    }
    explicit = provider(
        forward_login_hint=True, additional_authorization_parameters={"login_hint": "{{ params.x }}"}
    )
    assert explicit.effective_additional_authorization_parameters == {"login_hint": "{{ params.x }}"}


def test_sign_in_with_apple() -> None:
    p = provider(
        token_endpoint_auth_method="sign_in_with_apple",
        sign_in_with_apple={
            "private_key_file": str(FIXTURES / "apple-signin.p8"),
            "team_id": "TEAM",
            "key_id": "KEY",
        },
    )
    siwa = p.sign_in_with_apple
    assert (siwa.team_id, siwa.key_id) == ("TEAM", "KEY")
    assert siwa.private_key == (FIXTURES / "apple-signin.p8").read_text()
    # With both, the inline key wins and the file is not read (MAS lets both be set).
    p = provider(
        token_endpoint_auth_method="sign_in_with_apple",
        sign_in_with_apple={
            "private_key": "PEM",
            "private_key_file": "/nonexistent.p8",
            "team_id": "T",
            "key_id": "K",
        },
    )
    assert p.sign_in_with_apple == SignInWithApple(
        team_id="T", key_id="K", private_key="PEM", private_key_file="/nonexistent.p8"
    )


def test_bad_id() -> None:
    assert_config_error(lambda: provider(id="github"), at("id"), "'github'")
    assert_config_error(lambda: provider(id=None), at("id"), "missing")


def test_required_keys() -> None:
    assert_config_error(lambda: provider(client_id=None), at("client_id"), "missing")
    assert_config_error(
        lambda: provider(token_endpoint_auth_method=None), at("token_endpoint_auth_method"), "missing"
    )


def test_issuer_needed_unless_discovery_disabled() -> None:
    assert_config_error(lambda: provider(issuer=None), at("issuer"), "'oidc'")
    assert_config_error(lambda: provider(issuer=None, discovery_mode="insecure"), at("issuer"), "'insecure'")
    # MAS accepts a provider without discovery even before its endpoints are filled in
    # (its config sync only logs the missing ones).
    p = provider(
        issuer=None, discovery_mode="disabled", authorization_endpoint="https://id.example.com/authorize"
    )
    assert p.issuer is None
    assert p.token_endpoint is None


def test_client_secret_rules() -> None:
    for method in ("client_secret_basic", "client_secret_post"):
        assert_config_error(lambda: provider(token_endpoint_auth_method=method), at("client_secret"), method)
    assert_config_error(
        lambda: provider(
            token_endpoint_auth_method="client_secret_jwt", token_endpoint_auth_signing_alg="HS256"
        ),
        at("client_secret"),
        "client_secret_jwt",
    )
    assert_config_error(lambda: provider(client_secret="s"), at("client_secret"), "'none'")
    assert_config_error(
        lambda: provider(
            client_secret_file=str(FIXTURES / "provider-secret.txt"),
            token_endpoint_auth_method="private_key_jwt",
            token_endpoint_auth_signing_alg="RS256",
        ),
        at("client_secret_file"),
        "'private_key_jwt'",
    )


def test_signing_alg_rules() -> None:
    assert_config_error(
        lambda: provider(token_endpoint_auth_method="private_key_jwt"),
        at("token_endpoint_auth_signing_alg"),
        "private_key_jwt",
    )
    assert_config_error(
        lambda: provider(
            token_endpoint_auth_method="client_secret_basic",
            client_secret="s",
            token_endpoint_auth_signing_alg="HS256",
        ),
        at("token_endpoint_auth_signing_alg"),
        "'HS256'",
    )
    assert (
        provider(
            token_endpoint_auth_method="private_key_jwt", token_endpoint_auth_signing_alg="ES256K"
        ).token_endpoint_auth_signing_alg
        == "ES256K"
    )


def test_sign_in_with_apple_rules() -> None:
    assert_config_error(
        lambda: provider(token_endpoint_auth_method="sign_in_with_apple"),
        at("sign_in_with_apple"),
        "sign_in_with_apple",
    )
    assert_config_error(
        lambda: provider(sign_in_with_apple={"private_key": "PEM", "team_id": "T", "key_id": "K"}),
        at("sign_in_with_apple"),
        "'none'",
    )
    assert_config_error(
        lambda: provider(
            token_endpoint_auth_method="sign_in_with_apple",
            sign_in_with_apple={"private_key": "PEM", "key_id": "K"},
        ),
        at("sign_in_with_apple", "team_id"),
        "missing",
    )
    assert_config_error(
        lambda: provider(
            token_endpoint_auth_method="sign_in_with_apple",
            sign_in_with_apple={"private_key_file": "/nonexistent.p8", "team_id": "T", "key_id": "K"},
        ),
        at("sign_in_with_apple", "private_key_file"),
        "/nonexistent.p8",
    )


def test_skip_confirmation_rules() -> None:
    assert_config_error(
        lambda: provider(claims_imports={"skip_confirmation": True, "localpart": {"action": "force"}}),
        at("claims_imports", "localpart", "action"),
        "'force'",
    )
    assert_config_error(
        lambda: provider(
            claims_imports={
                "skip_confirmation": True,
                "localpart": {"action": "require"},
                "email": {"action": "suggest"},
            }
        ),
        at("claims_imports", "email", "action"),
        "'suggest'",
    )
    assert_config_error(
        lambda: provider(
            claims_imports={
                "skip_confirmation": True,
                "localpart": {"action": "require"},
                "displayname": {"action": "suggest"},
            }
        ),
        at("claims_imports", "displayname", "action"),
        "'suggest'",
    )
    p = provider(
        claims_imports={
            "skip_confirmation": True,
            "localpart": {"action": "require"},
            "email": {"action": "force"},
        }
    )
    assert p.claims_imports.skip_confirmation is True


def test_on_conflict_needs_a_forced_localpart() -> None:
    for on_conflict in ("add", "replace", "set"):
        assert_config_error(
            lambda: provider(claims_imports={"localpart": {"action": "suggest", "on_conflict": on_conflict}}),
            at("claims_imports", "localpart", "action"),
            "'suggest'",
            on_conflict,
        )
    assert (
        provider(
            claims_imports={"localpart": {"action": "require", "on_conflict": "set"}}
        ).claims_imports.localpart.on_conflict
        == "set"
    )


def test_bad_scope() -> None:
    assert_config_error(lambda: provider(scope="openid  profile"), at("scope"), "'openid  profile'")
    assert_config_error(lambda: provider(scope='openid "x"'), at("scope"), "openid")
    assert_config_error(lambda: provider(scope=""), at("scope"), "''")


def test_bad_enums() -> None:
    for key, value in (
        ("discovery_mode", "auto"),
        ("pkce_method", "sometimes"),
        ("response_mode", "fragment"),
        ("on_backchannel_logout", "logout_everything"),
        ("token_endpoint_auth_method", "tls_client_auth"),
    ):
        assert_config_error(lambda: provider(**{key: value}), at(key), repr(value))
    assert_config_error(
        lambda: provider(claims_imports={"email": {"action": "maybe"}}),
        at("claims_imports", "email", "action"),
        "'maybe'",
    )
    assert_config_error(
        lambda: provider(claims_imports={"localpart": {"action": "force", "on_conflict": "merge"}}),
        at("claims_imports", "localpart", "on_conflict"),
        "'merge'",
    )


def test_bad_values() -> None:
    assert_config_error(
        lambda: provider(token_endpoint="id.example.com/token"),
        at("token_endpoint"),
        "'id.example.com/token'",
    )
    assert_config_error(
        lambda: provider(additional_authorization_parameters={"prompt": ["login"]}),
        at("additional_authorization_parameters"),
        "'prompt'",
    )
    assert_config_error(lambda: provider(fetch_userinfo="yes"), at("fetch_userinfo"), "'yes'")
    assert_config_error(
        lambda: read_section(UpstreamOAuth2Config, {"providers": {"id": PROVIDER_ID}}),
        ("upstream_oauth2", "providers"),
        "a mapping",
    )


def test_on_login_sync_extension() -> None:
    # Beyond MAS (#3117): displayname and email may be re-imported on every sign-in.
    p = provider(
        claims_imports={
            "displayname": {"action": "force", "on_login": "sync"},
            "email": {"action": "suggest", "on_login": "keep"},
        }
    )
    assert p.claims_imports.displayname.on_login == "sync"
    assert p.claims_imports.email.on_login == "keep"
    assert p.claims_imports.to_dict()["displayname"] == {"action": "force", "on_login": "sync"}
    # A MAS configuration (no on_login) keeps MAS's behaviour and serialises as before.
    mas = provider(claims_imports={"displayname": {"action": "force"}})
    assert mas.claims_imports.displayname.on_login == "keep"
    assert mas.claims_imports.to_dict() == {"displayname": {"action": "force"}}
    assert_config_error(
        lambda: provider(claims_imports={"displayname": {"on_login": "always"}}),
        at("claims_imports", "displayname", "on_login"),
        "'always'",
    )
