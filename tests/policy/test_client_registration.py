# SPDX-License-Identifier: AGPL-3.0-only
"""``policies/client_registration/client_registration_test.rego``."""

from __future__ import annotations

from typing import Any

import pytest

from mas_twisted.policy import evaluate_client_registration
from mas_twisted.policy.client_registration import is_subdomain, parse_uri, reverse_dns_match

INSECURE = {"client_registration": {"allow_insecure_uris": True}}
HOST_MISMATCH = {"client_registration": {"allow_host_mismatch": True}}
MISSING_CLIENT_URI = {"client_registration": {"allow_missing_client_uri": True}}


def _violations(metadata: dict[str, Any], data: dict[str, Any] | None = None) -> list[str]:
    return [v.msg for v in evaluate_client_registration({"client_metadata": metadata}, data or {})]


def _allow(metadata: dict[str, Any], data: dict[str, Any] | None = None) -> bool:
    return _violations(metadata, data) == []


def test_valid() -> None:
    assert _allow(
        {
            "grant_types": ["authorization_code"],
            "client_uri": "https://example.com/",
            "redirect_uris": ["https://example.com/callback"],
        }
    )


def test_missing_client_uri() -> None:
    assert _violations({"grant_types": []}) == ["missing client_uri"]
    assert _allow({"grant_types": []}, MISSING_CLIENT_URI)


def test_insecure_client_uri() -> None:
    assert _violations({"grant_types": [], "client_uri": "http://example.com/"}) == ["invalid client_uri"]


@pytest.mark.parametrize(
    "field,path", [("tos_uri", "/tos"), ("logo_uri", "/logo.png"), ("policy_uri", "/policy")]
)
def test_secondary_uris(field: str, path: str) -> None:
    base = {"grant_types": [], "client_uri": "https://example.com/"}
    assert _allow({**base, field: f"https://example.com{path}"})
    # Insecure.
    assert _violations({**base, field: f"http://example.com{path}"}) == [f"invalid {field}"]
    assert _allow({**base, field: f"http://example.com{path}"}, INSECURE)
    # Host mismatch.
    assert _violations({**base, field: f"https://example.org{path}"}) == [
        f"{field} not on the same host as the client_uri"
    ]
    assert _allow({**base, field: f"https://sub.example.com{path}"})
    assert _allow({**base, field: f"https://example.org{path}"}, HOST_MISMATCH)


def test_redirect_uris() -> None:
    assert _violations({"client_uri": "https://example.com/"}) == ["missing redirect_uris"]
    assert _violations(
        {"client_uri": "https://example.com/", "redirect_uris": "https://example.com/callback"}
    ) == ["invalid redirect_uris: it must be an array"]
    assert _violations({"client_uri": "https://example.com/", "redirect_uris": []}) == [
        "invalid redirect_uris: it must have at least one redirect_uri"
    ]
    # Not required for client_credentials.
    assert _allow({"grant_types": ["client_credentials"], "client_uri": "https://example.com/"})
    # Required for authorization_code and implicit.
    assert not _allow(
        {
            "grant_types": ["client_credentials", "refresh_token", "authorization_code"],
            "client_uri": "https://example.com/",
        }
    )
    assert not _allow(
        {"grant_types": ["client_credentials", "implicit"], "client_uri": "https://example.com/"}
    )


def test_web_redirect_uri() -> None:
    assert _allow(
        {
            "application_type": "web",
            "client_uri": "https://example.com/",
            "redirect_uris": [
                "https://example.com/second/callback",
                "https://example.com/callback",
                "https://example.com/callback?query=value",
                "https://example.com/callback~path_with_extra_chars",
            ],
        }
    )
    assert _allow(
        {
            "application_type": "web",
            "client_uri": "http://localhost:8080",
            "redirect_uris": ["http://localhost:8080/?no_universal_links=true"],
        },
        INSECURE,
    )
    assert _allow(
        {
            "application_type": "web",
            "client_uri": "https://example.com/",
            "redirect_uris": ["https://example.com:8443/callback"],
        }
    )


def test_web_redirect_uri_insecure() -> None:
    metadata = {
        "application_type": "web",
        "client_uri": "https://example.com/",
        "redirect_uris": ["http://example.com/callback", "https://example.com/callback"],
    }
    violations = evaluate_client_registration({"client_metadata": metadata}, {})
    assert [v.to_json() for v in violations] == [
        {"msg": "invalid redirect_uri", "redirect_uri": "http://example.com/callback"}
    ]
    assert _allow(metadata, INSECURE)


def test_web_redirect_uri_host_mismatch() -> None:
    metadata = {
        "application_type": "web",
        "client_uri": "https://example.com/",
        "redirect_uris": ["https://example.com/second/callback", "https://example.org/callback"],
    }
    assert not _allow(metadata)
    assert _allow(metadata, HOST_MISMATCH)
    assert _allow(
        {
            "application_type": "web",
            "client_uri": "https://example.com/",
            "redirect_uris": ["https://app.example.com/callback"],
        }
    )


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "com.example.app:/callback",
        "http://locahost:1234/callback",
        "http://127.0.0.1:1234/callback",
        "http://[::1]:1234/callback",
    ],
)
def test_web_redirect_uri_refusals(redirect_uri: str) -> None:
    assert not _allow(
        {"application_type": "web", "client_uri": "https://example.com/", "redirect_uris": [redirect_uri]}
    )


def test_web_redirect_uri_with_query() -> None:
    assert _allow(
        {
            "application_type": "web",
            "client_uri": "https://example.com/",
            "redirect_uris": ["https://example.com/callback?query=value", "https://example.com?query=value"],
        }
    )


def test_native_redirect_uri_allowed() -> None:
    assert _allow(
        {
            "application_type": "native",
            "client_uri": "https://example.com/",
            "redirect_uris": [
                "com.example.app:/callback",
                "http://localhost/callback",
                "http://localhost:1234/callback",
                "http://127.0.0.1/callback",
                "http://127.0.0.1:1234/callback",
                "http://[::1]/callback",
                "http://[::1]:1234/callback",
                "https://example.com/callback",
            ],
        }
    )


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://example.com/",  # insecure
        "http://bad.com/",  # mismatch
        "https://localhost:1234/",  # no https on localhost
        "http://localhost.com/",  # localhost only as the whole host
        "org.example.app:/callback",  # not the reverse of the client_uri host
    ],
)
def test_native_redirect_uri_denied(redirect_uri: str) -> None:
    assert not _allow(
        {"application_type": "native", "client_uri": "https://example.com/", "redirect_uris": [redirect_uri]}
    )


def test_client_credentials_grant() -> None:
    assert _allow(
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "client_uri": "https://example.com/",
        }
    )
    assert _allow({"grant_types": ["client_credentials"], "client_uri": "https://example.com/"})
    assert _violations(
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "none",
            "client_uri": "https://example.com/",
        }
    ) == ["client_credentials grant_type requires some form of client authentication"]


def test_helpers() -> None:
    assert is_subdomain("example.com", "example.com")
    assert is_subdomain("example.com", "app.example.com")
    assert not is_subdomain("example.com", "example.org")
    assert not is_subdomain("test.com", "example.com")
    assert reverse_dns_match("example.com", "com.example")
    assert reverse_dns_match("example.com", "com.example.app")
    assert not reverse_dns_match("example.com", "org.example")
    assert not reverse_dns_match("test.com", "com.example")
    client_uri = parse_uri("https://element.io/")
    redirect_uri = parse_uri("io.element.app:/callback")
    assert client_uri is not None and redirect_uri is not None
    assert reverse_dns_match(client_uri["host"], redirect_uri["scheme"])


def test_parse_uri() -> None:
    assert parse_uri("https://example.com:8080/users?query=test") == {
        "scheme": "https",
        "authority": "example.com:8080",
        "host": "example.com",
        "port": "8080",
        "path": "/users",
        "query": "?query=test",
    }
    # MAS's pattern only knows lower-case hosts: this one reads as a path, with no host.
    assert parse_uri("https://Example.com/") == {
        "scheme": "https",
        "authority": "",
        "host": "",
        "port": "",
        "path": "//Example.com/",
        "query": "",
    }
    assert parse_uri("https://example.com/%20") is None
    assert parse_uri(42) is None


def test_missing_client_uri_option_skips_host_checks() -> None:
    # MAS's rule reads data.client_metadata, so the option disables every host check.
    metadata = {"client_uri": "https://example.com/", "tos_uri": "https://example.org/tos", "grant_types": []}
    assert _violations(metadata) == ["tos_uri not on the same host as the client_uri"]
    assert _allow(metadata, MISSING_CLIENT_URI)
