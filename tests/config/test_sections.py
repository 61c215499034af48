# SPDX-License-Identifier: AGPL-3.0-only
"""The smaller sections: account, oauth, templates, policy, rate_limiting, captcha,
branding, telemetry and experimental. Defaults first, then each error MAS raises."""

from __future__ import annotations

from typing import Any

from mas_twisted.config.account import AccountConfig
from mas_twisted.config.branding import BrandingConfig
from mas_twisted.config.captcha import CaptchaConfig
from mas_twisted.config.experimental import ExperimentalConfig, InactiveSessionExpiration, SessionLimit
from mas_twisted.config.oauth import OAuthConfig
from mas_twisted.config.policy import PolicyConfig
from mas_twisted.config.rate_limiting import RateLimiter, RateLimitingConfig
from mas_twisted.config.telemetry import MetricsConfig, SentryConfig, TelemetryConfig, TracingConfig
from mas_twisted.config.templates import TemplatesConfig
from mas_twisted.util.paths import data_dir
from tests.config._helpers import assert_config_error, load, read_section

# -- account ----------------------------------------------------------------------------------


def test_account_defaults() -> None:
    account = load().account
    assert account.email_change_allowed is True
    assert account.displayname_change_allowed is True
    assert account.password_registration_enabled is False
    assert account.password_registration_email_required is True
    assert account.password_change_allowed is True
    assert account.password_recovery_enabled is False
    assert account.password_registration_token_required is False
    assert account.account_deactivation_allowed is True
    assert account.login_with_email_allowed is False
    assert account.registration_token_required is False
    assert account.registration_token_needed is False


def test_account_switches() -> None:
    account = read_section(
        AccountConfig,
        {
            "password_registration_enabled": True,
            "email_change_allowed": False,
            "login_with_email_allowed": True,
        },
    )
    assert account.password_registration_enabled is True
    assert account.email_change_allowed is False
    assert account.login_with_email_allowed is True
    assert account.password_change_allowed is True


def test_account_deprecated_registration_token_switch() -> None:
    assert (
        read_section(AccountConfig, {"registration_token_required": True}).registration_token_needed is True
    )
    assert (
        read_section(AccountConfig, {"password_registration_token_required": True}).registration_token_needed
        is True
    )


def test_account_wrong_type() -> None:
    assert_config_error(
        lambda: read_section(AccountConfig, {"email_change_allowed": "yes"}),
        ("account", "email_change_allowed"),
        "'yes'",
    )
    assert_config_error(
        lambda: read_section(AccountConfig, {"password_recovery_enabled": 1}),
        ("account", "password_recovery_enabled"),
        "1",
    )


# -- oauth ------------------------------------------------------------------------------------


def test_oauth_defaults_and_values() -> None:
    oauth = load().oauth
    assert oauth.device_code_grant_enabled is True
    assert oauth.device_code_user_code_auto_fill_enabled is False
    oauth = read_section(
        OAuthConfig, {"device_code_grant_enabled": False, "device_code_user_code_auto_fill_enabled": True}
    )
    assert (oauth.device_code_grant_enabled, oauth.device_code_user_code_auto_fill_enabled) == (False, True)


def test_oauth_wrong_type() -> None:
    assert_config_error(
        lambda: read_section(OAuthConfig, {"device_code_grant_enabled": "off"}),
        ("oauth", "device_code_grant_enabled"),
        "'off'",
    )


# -- templates --------------------------------------------------------------------------------


def test_templates_default_to_the_shipped_files() -> None:
    templates = load().templates
    assert templates.path == str(data_dir("templates"))
    assert templates.assets_manifest == str(data_dir("res") / "manifest.json")
    assert templates.translations_path == str(data_dir("translations"))
    assert templates.path_is_default is True


def test_templates_values() -> None:
    templates = read_section(
        TemplatesConfig,
        {"path": "/etc/mas/templates/", "assets_manifest": "/etc/mas/m.json", "translations_path": "/t/"},
    )
    assert (templates.path, templates.assets_manifest, templates.translations_path) == (
        "/etc/mas/templates/",
        "/etc/mas/m.json",
        "/t/",
    )
    assert templates.path_is_default is False


def test_templates_wrong_type() -> None:
    assert_config_error(
        lambda: read_section(TemplatesConfig, {"path": ["a"]}), ("templates", "path"), "a list"
    )


# -- policy -----------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = load().policy
    assert policy.wasm_module == "./share/policy.wasm"
    assert policy.client_registration_entrypoint == "client_registration/violation"
    assert policy.register_entrypoint == "register/violation"
    assert policy.authorization_grant_entrypoint == "authorization_grant/violation"
    assert policy.compat_login_entrypoint == "compat_login/violation"
    assert policy.password_entrypoint == "password/violation"
    assert policy.email_entrypoint == "email/violation"
    assert policy.data == {}


def test_policy_data_is_kept_and_copied() -> None:
    data = {"emails": {"allowed_addresses": {"suffixes": ["@example.com"]}}, "admin_users": ["alice"]}
    policy = read_section(PolicyConfig, {"data": data, "register_entrypoint": "custom/violation"})
    assert policy.data == data
    assert policy.register_entrypoint == "custom/violation"
    data["admin_users"].append("mallory")
    assert policy.data["admin_users"] == ["alice"]


def test_policy_wrong_type() -> None:
    assert_config_error(
        lambda: read_section(PolicyConfig, {"wasm_module": {"a": 1}}), ("policy", "wasm_module"), "a mapping"
    )


# -- rate_limiting ----------------------------------------------------------------------------


def test_rate_limiting_defaults() -> None:
    limits = load().rate_limiting
    assert limits.login_per_ip == RateLimiter(3, 3 / 60)
    assert limits.login_per_account == RateLimiter(1800, 0.5)
    assert limits.registration == RateLimiter(3, 3 / 3600)
    assert limits.account_recovery_per_ip == RateLimiter(3, 3 / 3600)
    assert limits.account_recovery_per_address == RateLimiter(3, 1 / 3600)
    assert limits.email_authentication_per_ip == RateLimiter(5, 1 / 60)
    assert limits.email_authentication_per_address == RateLimiter(3, 1 / 3600)
    assert limits.email_authentication_emails_per_session == RateLimiter(2, 1 / 300)
    assert limits.email_authentication_attempt_per_session == RateLimiter(10, 1 / 60)
    assert limits.login_per_ip.period == 20.0


def test_rate_limiting_overrides_one_limiter_only() -> None:
    limits = read_section(
        RateLimitingConfig,
        {
            "login": {"per_ip": {"burst": 10, "per_second": 1}},
            "registration": {"burst": 1, "per_second": 0.5},
        },
    )
    assert limits.login_per_ip == RateLimiter(10, 1.0)
    assert limits.login_per_account == RateLimiter(1800, 0.5)
    assert limits.registration == RateLimiter(1, 0.5)


def test_rate_limiter_needs_both_keys() -> None:
    assert_config_error(
        lambda: read_section(RateLimitingConfig, {"login": {"per_ip": {"burst": 3}}}),
        ("rate_limiting", "login", "per_ip", "per_second"),
        "missing",
    )
    assert_config_error(
        lambda: read_section(RateLimitingConfig, {"registration": {"per_second": 1}}),
        ("rate_limiting", "registration", "burst"),
        "missing",
    )


def test_rate_limiter_bounds() -> None:
    def limiter(burst: Any, per_second: Any) -> Any:
        return read_section(
            RateLimitingConfig,
            {"email_authentication": {"per_ip": {"burst": burst, "per_second": per_second}}},
        )

    path = ("rate_limiting", "email_authentication", "per_ip")
    assert_config_error(lambda: limiter(3, 0), path + ("per_second",), "0.0")
    assert_config_error(lambda: limiter(3, -1), path + ("per_second",), "-1.0")
    assert_config_error(lambda: limiter(3, 2e9), path + ("per_second",), "2000000000.0")
    assert_config_error(lambda: limiter(3, "fast"), path + ("per_second",), "'fast'")
    assert_config_error(lambda: limiter(0, 1), path + ("burst",), "0")
    assert_config_error(lambda: limiter(2**32, 1), path + ("burst",), str(2**32))
    assert limiter(1, 1e9).email_authentication_per_ip == RateLimiter(1, 1e9)


def test_rate_limiting_wrong_shape() -> None:
    assert_config_error(
        lambda: read_section(RateLimitingConfig, {"login": [1, 2]}), ("rate_limiting", "login"), "a list"
    )


# -- captcha ----------------------------------------------------------------------------------


def test_captcha_defaults() -> None:
    captcha = load().captcha
    assert (captcha.service, captcha.site_key, captcha.secret_key, captcha.enabled) == (
        None,
        None,
        None,
        False,
    )


def test_captcha_services() -> None:
    captcha = read_section(
        CaptchaConfig, {"service": "recaptcha_v2", "site_key": "site", "secret_key": "secret"}
    )
    assert (captcha.service, captcha.site_key, captcha.secret_key, captcha.enabled) == (
        "recaptcha_v2",
        "site",
        "secret",
        True,
    )
    # MAS only insists on the keys for reCAPTCHA.
    assert read_section(CaptchaConfig, {"service": "hcaptcha"}).service == "hcaptcha"
    assert read_section(CaptchaConfig, {"service": "cloudflare_turnstile"}).service == "cloudflare_turnstile"


def test_captcha_errors() -> None:
    assert_config_error(
        lambda: read_section(CaptchaConfig, {"service": "recaptcha_v2", "secret_key": "s"}),
        ("captcha", "site_key"),
        "'recaptcha_v2'",
    )
    assert_config_error(
        lambda: read_section(CaptchaConfig, {"service": "recaptcha_v2", "site_key": "s"}),
        ("captcha", "secret_key"),
        "'recaptcha_v2'",
    )
    assert_config_error(
        lambda: read_section(CaptchaConfig, {"service": "recaptcha_v3"}),
        ("captcha", "service"),
        "'recaptcha_v3'",
    )


# -- branding ---------------------------------------------------------------------------------


def test_branding() -> None:
    branding = load().branding
    assert (branding.service_name, branding.policy_uri, branding.tos_uri, branding.imprint) == (
        None,
        None,
        None,
        None,
    )
    branding = read_section(
        BrandingConfig,
        {
            "service_name": "Accounts",
            "policy_uri": "https://example.com/p",
            "tos_uri": "https://example.com/t",
            "imprint": "Ltd",
        },
    )
    assert (branding.service_name, branding.policy_uri, branding.tos_uri, branding.imprint) == (
        "Accounts",
        "https://example.com/p",
        "https://example.com/t",
        "Ltd",
    )


def test_branding_bad_url() -> None:
    assert_config_error(
        lambda: read_section(BrandingConfig, {"tos_uri": "/terms"}), ("branding", "tos_uri"), "'/terms'"
    )


# -- telemetry --------------------------------------------------------------------------------


def test_telemetry_defaults() -> None:
    telemetry = load().telemetry
    assert telemetry.tracing == TracingConfig()
    assert telemetry.tracing.exporter == "none"
    assert telemetry.tracing.propagators == ()
    assert telemetry.metrics == MetricsConfig()
    assert telemetry.metrics.exporter == "none"
    assert telemetry.sentry == SentryConfig()


def test_telemetry_values() -> None:
    telemetry = read_section(
        TelemetryConfig,
        {
            "tracing": {
                "exporter": "otlp",
                "endpoint": "https://otel:4318",
                "propagators": ["jaeger", "baggage"],
                "sample_rate": 0.25,
            },
            "metrics": {"exporter": "prometheus"},
            "sentry": {
                "dsn": "https://k@sentry.example/1",
                "environment": "dev",
                "sample_rate": 1,
                "traces_sample_rate": 0,
            },
        },
    )
    assert telemetry.tracing == TracingConfig("otlp", "https://otel:4318", ("jaeger", "baggage"), 0.25)
    assert telemetry.metrics == MetricsConfig("prometheus", None)
    assert telemetry.sentry == SentryConfig("https://k@sentry.example/1", "dev", 1.0, 0.0)


def test_telemetry_errors() -> None:
    assert_config_error(
        lambda: read_section(TelemetryConfig, {"tracing": {"exporter": "jaeger"}}),
        ("telemetry", "tracing", "exporter"),
        "'jaeger'",
    )
    assert_config_error(
        lambda: read_section(TelemetryConfig, {"metrics": {"exporter": "statsd"}}),
        ("telemetry", "metrics", "exporter"),
        "'statsd'",
    )
    assert_config_error(
        lambda: read_section(TelemetryConfig, {"tracing": {"propagators": ["tracecontext", "zipkin"]}}),
        ("telemetry", "tracing", "propagators", 1),
        "'zipkin'",
    )
    for section, key in (
        ("sentry", "sample_rate"),
        ("sentry", "traces_sample_rate"),
        ("tracing", "sample_rate"),
    ):
        assert_config_error(
            lambda: read_section(TelemetryConfig, {section: {key: 1.5}}), ("telemetry", section, key), "1.5"
        )
    assert_config_error(
        lambda: read_section(TelemetryConfig, {"tracing": {"endpoint": "otel:4318"}}),
        ("telemetry", "tracing", "endpoint"),
        "'otel:4318'",
    )


# -- experimental -----------------------------------------------------------------------------


def test_experimental_defaults() -> None:
    experimental = load().experimental
    assert experimental.access_token_ttl == 300
    assert experimental.compat_token_ttl == 300
    assert experimental.access_token_ttl_ms == 300_000
    assert experimental.inactive_session_expiration is None
    assert experimental.plan_management_iframe_uri is None
    assert experimental.session_limit is None


def test_experimental_values() -> None:
    experimental = read_section(
        ExperimentalConfig,
        {
            "access_token_ttl": 60,
            "compat_token_ttl": 86400,
            "inactive_session_expiration": {"ttl": 600, "expire_user_sessions": False},
            "plan_management_iframe_uri": "anything, passed through",
            "session_limit": {"soft_limit": 2, "hard_limit": 2, "dangerous_hard_limit_eviction": True},
        },
    )
    assert (experimental.access_token_ttl, experimental.compat_token_ttl) == (60, 86400)
    assert experimental.compat_token_ttl_ms == 86_400_000
    assert experimental.inactive_session_expiration == InactiveSessionExpiration(600, True, True, False)
    assert experimental.plan_management_iframe_uri == "anything, passed through"
    assert experimental.session_limit == SessionLimit(2, 2, None, True)


def test_experimental_token_ttl_outside_documented_range_loads_with_a_warning(caplog) -> None:
    # MAS documents 60-86400 in its schema but loads any u64: an operator's config loads unchanged.
    for key in ("access_token_ttl", "compat_token_ttl"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert getattr(read_section(ExperimentalConfig, {key: 59}), key) == 59
        assert f"experimental.{key} is 59, outside the documented range 60-86400" in caplog.text
        assert_config_error(lambda: read_section(ExperimentalConfig, {key: -1}), ("experimental", key), "-1")
        assert_config_error(
            lambda: read_section(ExperimentalConfig, {key: "5m"}), ("experimental", key), "'5m'"
        )


def test_experimental_inactive_session_expiration_bounds(caplog) -> None:
    path = ("experimental", "inactive_session_expiration", "ttl")
    with caplog.at_level("WARNING"):
        section = read_section(ExperimentalConfig, {"inactive_session_expiration": {"ttl": 599}})
    assert section.inactive_session_expiration.ttl == 599
    assert "experimental.inactive_session_expiration.ttl is 599, outside the documented range" in caplog.text
    assert_config_error(
        lambda: read_section(ExperimentalConfig, {"inactive_session_expiration": {"ttl": -5}}), path, "-5"
    )
    assert_config_error(
        lambda: read_section(
            ExperimentalConfig, {"inactive_session_expiration": {"expire_user_sessions": True}}
        ),
        path,
        "missing",
    )
    assert (
        read_section(
            ExperimentalConfig, {"inactive_session_expiration": {"ttl": 7_776_000}}
        ).inactive_session_expiration.ttl
        == 7_776_000
    )


def test_experimental_session_limit_rules() -> None:
    path = ("experimental", "session_limit", "hard_limit")
    assert_config_error(
        lambda: read_section(ExperimentalConfig, {"session_limit": {"soft_limit": 5, "hard_limit": 4}}),
        path,
        "4",
        "5",
    )
    assert_config_error(
        lambda: read_section(
            ExperimentalConfig,
            {"session_limit": {"soft_limit": 1, "hard_limit": 1, "dangerous_hard_limit_eviction": True}},
        ),
        path,
        "1",
    )
    assert_config_error(
        lambda: read_section(ExperimentalConfig, {"session_limit": {"soft_limit": 0, "hard_limit": 1}}),
        ("experimental", "session_limit", "soft_limit"),
        "0",
    )
    assert_config_error(
        lambda: read_section(
            ExperimentalConfig,
            {"session_limit": {"soft_limit": 1, "hard_limit": 2, "max_session_threshold": 0}},
        ),
        ("experimental", "session_limit", "max_session_threshold"),
        "0",
    )
