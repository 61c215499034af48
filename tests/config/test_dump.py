# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli config dump`` prints the *parsed* configuration as MAS serialises its
``RootConfig``: defaults included except where MAS skips them, values read from files as
their ``*_file`` paths, and a dump that loads back to the same dump."""

from __future__ import annotations

from typing import Any

import pytest

from mas_twisted.config.root import RootConfig
from tests.config._helpers import FULL_CONFIG, HERE, load


@pytest.fixture(scope="module")
def full_dump() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(HERE)
        return RootConfig.load([FULL_CONFIG.name], environ={}).dump_tree()


def test_sections_in_mas_field_order(full_dump: dict[str, Any]) -> None:
    assert list(full_dump) == [
        "clients", "http", "database", "telemetry", "templates", "email", "secrets", "passwords", "matrix",
        "policy", "rate_limiting", "upstream_oauth2", "branding", "captcha", "account", "oauth", "experimental",
    ]  # fmt: skip


def test_dump_loads_back_to_the_same_dump(full_dump: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(HERE)
        assert RootConfig(full_dump).dump_tree() == full_dump


def test_values_from_files_are_printed_as_their_paths(full_dump: dict[str, Any]) -> None:
    # MAS keeps x_file as a path and reads it when used, so it prints the path back.
    assert full_dump["matrix"]["secret_file"] == "fixtures/matrix-secret.txt"
    assert "secret" not in full_dump["matrix"]
    assert full_dump["database"]["password_file"] == "fixtures/database-password.txt"
    assert "password" not in full_dump["database"]
    assert full_dump["email"]["password_file"] == "fixtures/smtp-password.txt"
    assert "password" not in full_dump["email"]
    assert full_dump["clients"][2] == {
        "client_id": "01M89BQ1ETN8RC4EH849N8832N",
        "client_auth_method": "client_secret_post",
        "client_secret_file": "fixtures/client-secret.txt",
    }
    provider = full_dump["upstream_oauth2"]["providers"][0]
    assert (
        provider["client_secret_file"] == "fixtures/provider-secret.txt" and "client_secret" not in provider
    )
    apple = full_dump["upstream_oauth2"]["providers"][2]["sign_in_with_apple"]
    assert apple == {
        "private_key_file": "fixtures/apple-signin.p8",
        "team_id": "TEAM123456",
        "key_id": "KEY1234567",
    }
    assert full_dump["passwords"]["schemes"][1] == {
        "version": 2,
        "algorithm": "pbkdf2",
        "secret_file": "fixtures/pepper.bin",
    }
    tls = full_dump["http"]["listeners"][2]["tls"]
    assert tls == {
        "certificate_file": "fixtures/tls-rsa.crt",
        "key_file": "fixtures/tls-rsa-encrypted.key",
        "password_file": "fixtures/tls-password.txt",
    }
    keys = full_dump["secrets"]["keys"]
    assert keys[:3] == [
        {"kid": "rsa-pkcs8", "key_file": "fixtures/signing-rsa-pkcs8.pem"},
        {"key_file": "fixtures/signing-p384-sec1.der"},
        {
            "kid": "k256-encrypted",
            "password_file": "fixtures/signing-password.txt",
            "key_file": "fixtures/signing-k256-encrypted.pem",
        },
    ]
    # keys_dir stays a directory: its keys are not listed under keys.
    assert full_dump["secrets"]["keys_dir"] == "fixtures/keys.d"
    assert len(keys) == 4


def test_inline_secrets_are_printed_as_written(full_dump: dict[str, Any]) -> None:
    # As MAS prints them: `config dump` output is as sensitive as the file it came from.
    assert (
        full_dump["secrets"]["encryption"]
        == "0000111122223333444455556666777788889999aaaabbbbccccddddeeeeffff"
    )
    assert full_dump["secrets"]["keys"][3]["kid"] == "inline-p256"
    assert full_dump["secrets"]["keys"][3]["key"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert full_dump["clients"][1]["client_secret"] == "client-secret-inline"
    assert full_dump["passwords"]["schemes"][2]["secret"] == "an-inline-pepper"
    assert full_dump["http"]["listeners"][3]["tls"]["key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_http_section_as_mas_serialises_it(full_dump: dict[str, Any]) -> None:
    web = full_dump["http"]["listeners"][0]
    assert web["name"] == "web" and web["prefix"] == "/auth"
    # Options only where they differ from the default; the default assets path is left out.
    assert {"name": "graphql", "playground": True} in web["resources"]
    assert {"name": "assets"} in web["resources"]
    assert web["binds"] == [
        {"address": "[::]:8080"},
        {"host": "localhost", "port": 8082},
        {"port": 8083},
        {"socket": "/tmp/mas-full-config-test.sock", "mode": "660"},
        {"fd": 1, "kind": "tcp"},
        {"fd": 2, "kind": "unix"},
    ]
    assert web["proxy_protocol"] is False
    # Networks keep their address bits, as MAS's IpNetwork prints them.
    assert full_dump["http"]["trusted_proxies"] == ["192.168.0.0/16", "10.0.0.0/8", "127.0.0.1/8", "::1/128"]
    assert full_dump["http"]["public_base"] == "https://auth.example.com/"
    assert full_dump["http"]["issuer"] == "https://example.com/"


def test_database_section_prints_every_pool_setting(full_dump: dict[str, Any]) -> None:
    assert full_dump["database"] == {
        "host": "db.example.com",
        "port": 5433,
        "username": "mas",
        "password_file": "fixtures/database-password.txt",
        "database": "mas",
        "ssl_mode": "verify-full",
        "ssl_ca_file": "fixtures/tls.crt",
        "ssl_certificate_file": "fixtures/tls.crt",
        "ssl_key_file": "fixtures/tls.key",
        "max_connections": 20,
        "min_connections": 2,
        "connect_timeout": 15,
        "idle_timeout": 300,
        "max_lifetime": 3600,
    }


def test_upstream_provider_skips_what_mas_skips(full_dump: dict[str, Any]) -> None:
    disabled = full_dump["upstream_oauth2"]["providers"][3]
    assert disabled == {
        "enabled": False,
        "id": "01M89BQ1ETN8RC4EH849N8832W",
        "issuer": "https://old.example.com/",
        "client_id": "old",
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "RS256",
        "fetch_userinfo": False,
        "forward_login_hint": False,
        "registration_token_required": False,
    }
    keycloak = full_dump["upstream_oauth2"]["providers"][0]
    # A BTreeMap in MAS: printed in key order.
    assert list(keycloak["additional_authorization_parameters"]) == sorted(
        keycloak["additional_authorization_parameters"]
    )
    assert keycloak["claims_imports"]["localpart"] == {
        "action": "require",
        "template": "{{ user.preferred_username }}",
        "on_conflict": "add",
    }


def test_defaults_only_sections_are_left_out() -> None:
    tree = load().dump_tree()
    # MAS always prints these six, defaults and all...
    assert list(tree) == ["http", "database", "email", "secrets", "passwords", "matrix"]
    # ...and leaves out the others while they hold only defaults.
    tree = load(
        account={"password_registration_enabled": False, "login_with_email_allowed": True},
        rate_limiting={"registration": {"burst": 3, "per_second": 3 / 3600}},
        telemetry={"metrics": {"exporter": "none"}},
        experimental={"access_token_ttl": 300},
        oauth={"device_code_grant_enabled": True},
    ).dump_tree()
    assert tree["account"] == {"login_with_email_allowed": True}
    for section in ("rate_limiting", "telemetry", "experimental", "oauth", "policy", "templates"):
        assert section not in tree, section


def test_one_changed_limiter_prints_every_limiter() -> None:
    tree = load(rate_limiting={"login": {"per_ip": {"burst": 9, "per_second": 1}}}).dump_tree()
    limits = tree["rate_limiting"]
    assert list(limits) == ["account_recovery", "login", "registration", "email_authentication"]
    assert limits["login"]["per_ip"] == {"burst": 9, "per_second": 1.0}
    assert limits["login"]["per_account"] == {"burst": 1800, "per_second": 0.5}
    assert limits["registration"] == {"burst": 3, "per_second": 3 / 3600}


def test_a_configured_http_section_without_issuer_prints_none() -> None:
    tree = load(http={"public_base": "https://auth.example.com", "trusted_proxies": ["10.1.2.3"]}).dump_tree()
    assert tree["http"] == {
        "listeners": [],
        "trusted_proxies": ["10.1.2.3/32"],
        "public_base": "https://auth.example.com/",
    }


def test_session_limit_prints_an_unset_threshold_as_null() -> None:
    tree = load(experimental={"session_limit": {"soft_limit": 2, "hard_limit": 3}}).dump_tree()
    assert tree["experimental"] == {
        "session_limit": {
            "soft_limit": 2,
            "hard_limit": 3,
            "max_session_threshold": None,
            "dangerous_hard_limit_eviction": False,
        }
    }
