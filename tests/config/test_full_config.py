# SPDX-License-Identifier: AGPL-3.0-only
"""``full_config.yaml``, written from MAS's configuration reference with every section and
nearly every key, loads unchanged, and every value lands where later code reads it."""

from __future__ import annotations

import pytest

from mas_twisted.config.experimental import InactiveSessionExpiration, SessionLimit
from mas_twisted.config.passwords import PasswordScheme
from mas_twisted.config.rate_limiting import RateLimiter
from mas_twisted.config.root import RootConfig
from mas_twisted.config.upstream_oauth2 import ImportPreference
from tests.config._helpers import FULL_CONFIG, HERE


@pytest.fixture(scope="module")
def config() -> RootConfig:
    # The fixture paths in the file are relative to its folder, as an operator's would be
    # relative to where mas-cli runs.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(HERE)
        return RootConfig.load([FULL_CONFIG.name], environ={})


def test_clients(config: RootConfig) -> None:
    clients = config.clients.clients
    assert [c.client_auth_method for c in clients] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "private_key_jwt",
    ]
    spa = clients[0]
    assert spa.client_id == "01M89BQ1ETN8RC4EH849N8832K"
    assert spa.client_name == "Public SPA"
    assert spa.client_uri == "https://spa.example.com/"
    assert spa.redirect_uris == (
        "https://spa.example.com/callback",
        "com.example.app:/oauth2redirect",
        "http://localhost:3000/callback",
    )
    assert clients[1].client_secret == "client-secret-inline"
    assert clients[2].client_secret == "client-secret-from-file"
    assert [k["kid"] for k in clients[4].jwks["keys"]] == ["rsa-client-key", "ec-client-key"]
    assert clients[5].jwks_uri == "https://jwt-client.example.com/jwks.json"


def test_http(config: RootConfig) -> None:
    http = config.http
    assert http.public_base == "https://auth.example.com/"
    assert http.issuer == "https://example.com/"
    assert [str(n) for n in http.trusted_proxies] == [
        "192.168.0.0/16",
        "10.0.0.0/8",
        "127.0.0.0/8",
        "::1/128",
    ]
    assert [listener.name for listener in http.listeners] == ["web", "internal", "tls-files", "tls-inline"]
    web = http.listeners[0]
    assert web.resource_names == ("discovery", "human", "oauth", "compat", "graphql", "assets", "adminapi")
    assert web.prefix == "/auth"
    kinds = [type(b).__name__ for b in web.binds]
    assert kinds == ["AddressBind", "ListenBind", "ListenBind", "UnixBind", "FdBind", "FdBind"]
    assert web.binds[3].mode == 0o660
    assert (web.binds[5].fd, web.binds[5].kind) == (2, "unix")
    assert http.listeners[1].proxy_protocol is True
    assert http.listeners[1].resource_names == ("health", "prometheus", "connection-info")
    assert http.listeners[2].tls is not None and http.listeners[2].scheme == "https"
    assert http.listeners[3].tls is not None
    assert http.listeners[0].tls is None


def test_database(config: RootConfig) -> None:
    db = config.database
    assert (db.host, db.port, db.username, db.database) == ("db.example.com", 5433, "mas", "mas")
    assert db.password_file == "fixtures/database-password.txt"
    assert db.ssl_mode == "verify-full"
    assert (db.max_connections, db.min_connections, db.connect_timeout, db.idle_timeout, db.max_lifetime) == (
        20,
        2,
        15,
        300,
        3600,
    )
    assert not db.is_sqlite


def test_telemetry_and_templates(config: RootConfig) -> None:
    assert config.telemetry.tracing.exporter == "otlp"
    assert config.telemetry.tracing.propagators == ("tracecontext", "baggage", "jaeger")
    assert config.telemetry.tracing.sample_rate == 0.5
    assert config.telemetry.metrics.exporter == "prometheus"
    assert config.telemetry.sentry.environment == "staging"
    assert config.telemetry.sentry.traces_sample_rate == 0.1
    assert config.templates.path == "./share/templates/"
    assert config.templates.assets_manifest == "./share/manifest.json"
    assert config.templates.translations_path == "./share/translations/"


def test_email(config: RootConfig) -> None:
    email = config.email
    assert email.from_address == '"Example Accounts" <accounts@example.com>'
    assert email.reply_to == "Example Support <support@example.com>"
    assert (email.transport, email.mode, email.hostname, email.port) == (
        "smtp",
        "starttls",
        "smtp.example.com",
        2587,
    )
    assert (email.username, email.password) == ("mas", "smtp-password-from-file")


def test_secrets(config: RootConfig) -> None:
    secrets = config.secrets
    assert secrets.encryption_key == bytes.fromhex(
        "0000111122223333444455556666777788889999aaaabbbbccccddddeeeeffff"
    )
    described = [(key.kid, key.private_key.description) for key in secrets.keys]
    # keys_dir first, then keys[] in order.
    assert [d for _, d in described] == ["EC P-256", "RSA 2048", "EC P-384", "EC secp256k1", "EC P-256"]
    assert [kid for kid, _ in described][1::2] == ["rsa-pkcs8", "k256-encrypted"]
    assert described[4][0] == "inline-p256"


def test_passwords_and_matrix(config: RootConfig) -> None:
    passwords = config.passwords
    assert passwords.minimum_complexity == 2
    assert passwords.schemes == [
        PasswordScheme(1, "bcrypt", 10, None, True),
        PasswordScheme(2, "pbkdf2", None, b"pepper-from-file\n", False),
        PasswordScheme(3, "argon2id", None, b"an-inline-pepper", False),
    ]
    assert passwords.current_scheme.version == 3
    matrix = config.matrix
    assert (matrix.kind, matrix.homeserver, matrix.endpoint) == (
        "synapse_modern",
        "example.com",
        "https://matrix.example.com/",
    )
    assert matrix.secret == "matrix-secret-from-file"


def test_policy_and_rate_limiting(config: RootConfig) -> None:
    assert config.policy.wasm_module == "./share/policy.wasm"
    assert config.policy.data["client_registration"]["allow_insecure_uris"] is True
    assert config.policy.data["emails"]["allowed_addresses"]["suffixes"] == ["@example.com"]
    limits = config.rate_limiting
    assert limits.login_per_ip == RateLimiter(5, 0.1)
    assert limits.login_per_account == RateLimiter(100, 0.25)
    assert limits.registration == RateLimiter(10, 0.01)
    assert limits.account_recovery_per_address == RateLimiter(2, 0.001)
    assert limits.email_authentication_attempt_per_session == RateLimiter(12, 0.02)


def test_upstream_oauth2(config: RootConfig) -> None:
    keycloak, static, apple, old = config.upstream_oauth2.providers
    assert keycloak.client_secret == "provider-secret-from-file"
    assert keycloak.synapse_idp_id == "oidc-keycloak"
    assert (keycloak.discovery_mode, keycloak.pkce_method, keycloak.response_mode) == (
        "insecure",
        "always",
        "form_post",
    )
    assert keycloak.on_backchannel_logout == "logout_all"
    assert keycloak.claims_imports.skip_confirmation is True
    assert keycloak.claims_imports.localpart == ImportPreference(
        "require", "{{ user.preferred_username }}", "add"
    )
    assert keycloak.claims_imports.account_name_template == "@{{ user.preferred_username }}"
    assert keycloak.additional_authorization_parameters["prompt"] == "{% if logged_out %}login{% endif %}"
    assert static.issuer is None and static.discovery_mode == "disabled"
    assert static.token_endpoint_auth_signing_alg == "HS256"
    assert static.token_endpoint == "https://static.example.com/token"
    assert apple.sign_in_with_apple.team_id == "TEAM123456"
    assert apple.sign_in_with_apple.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert old.enabled is False
    assert [p.client_id for p in config.upstream_oauth2.enabled_providers] == [
        "mas",
        "static-client",
        "com.example.mas",
    ]


def test_branding_captcha_account_oauth_experimental(config: RootConfig) -> None:
    assert config.branding.service_name == "Example Accounts"
    assert config.branding.tos_uri == "https://example.com/terms"
    assert (config.captcha.service, config.captcha.site_key, config.captcha.secret_key) == (
        "recaptcha_v2",
        "site-key",
        "secret-key",
    )
    account = config.account
    assert account.password_registration_enabled is True
    assert account.email_change_allowed is False
    assert account.registration_token_needed is True
    assert config.oauth.device_code_grant_enabled is False
    assert config.oauth.device_code_user_code_auto_fill_enabled is True
    experimental = config.experimental
    assert (experimental.access_token_ttl, experimental.compat_token_ttl) == (600, 900)
    assert experimental.inactive_session_expiration == InactiveSessionExpiration(86400, False, True, False)
    assert experimental.plan_management_iframe_uri == "https://plans.example.com/embed"
    assert experimental.session_limit == SessionLimit(5, 10, 50, True)
