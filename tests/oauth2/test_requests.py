# SPDX-License-Identifier: AGPL-3.0-only
"""Response types, redirect URI resolution and authorization response redirects."""

from __future__ import annotations

import pytest

from mas_twisted.oauth2.requests import (
    GRANT_TYPE_ORDER,
    InvalidResponseType,
    RedirectUriError,
    ResponseType,
    callback_url,
    grant_type_sort_key,
    parse_prompt,
    resolve_redirect_uri,
)


def test_response_types() -> None:
    assert str(ResponseType.parse("id_token code")) == "code id_token"
    assert ResponseType.parse("code id_token") == ResponseType.parse("id_token  code")
    none = ResponseType.parse("none")
    assert str(none) == "none" and none.tokens == ()
    odd = ResponseType.parse("something_unsupported")
    assert odd.has_unknown and not odd.has_code
    rt = ResponseType.parse("code id_token token")
    assert rt.has_code and rt.has_id_token and rt.has_token
    for bad in ("", "   "):
        with pytest.raises(InvalidResponseType):
            ResponseType.parse(bad)


def test_grant_type_order() -> None:
    grants = ["urn:ietf:params:oauth:grant-type:device_code", "zzz", "refresh_token", "authorization_code"]
    assert sorted(grants, key=grant_type_sort_key) == [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "zzz",
    ]
    assert GRANT_TYPE_ORDER[0] == "authorization_code"


def test_prompt() -> None:
    assert parse_prompt(None) is None
    assert parse_prompt("login consent") == ("login", "consent")
    assert parse_prompt("create") == ("create",)


def test_resolve_redirect_uri() -> None:
    registered = ["http://127.0.0.1", "https://example.org"]
    assert resolve_redirect_uri(registered, "https://example.org") == "https://example.org/"
    with pytest.raises(RedirectUriError):
        resolve_redirect_uri(registered, "https://example.org:8080")
    # Loopback redirect URIs match on any port (RFC 8252 §7.3).
    assert resolve_redirect_uri(registered, "http://127.0.0.1") == "http://127.0.0.1/"
    assert resolve_redirect_uri(registered, "http://127.0.0.1:8080") == "http://127.0.0.1:8080/"
    with pytest.raises(RedirectUriError):
        resolve_redirect_uri(registered, "http://localhost")
    with pytest.raises(RedirectUriError, match="multiple"):
        resolve_redirect_uri(registered, None)
    assert resolve_redirect_uri(["https://only.example.com/cb"], None) == "https://only.example.com/cb"
    with pytest.raises(RedirectUriError, match="no redirect_uri"):
        resolve_redirect_uri([], "https://example.org/")
    with pytest.raises(RedirectUriError):
        resolve_redirect_uri(registered, "not a url")


def test_callback_url_query_keeps_existing_params_and_adds_empty_fragment() -> None:
    url = callback_url("https://client.example.com/cb?foo=bar", "query", [("code", "abc def")], state="s&1")
    assert url == "https://client.example.com/cb?foo=bar&state=s%261&code=abc+def#"


def test_callback_url_fragment() -> None:
    url = callback_url(
        "https://client.example.com/cb",
        "fragment",
        [("error", "login_required"), ("error_description", "a b")],
    )
    assert url == "https://client.example.com/cb#error=login_required&error_description=a+b"


def test_callback_url_refusals() -> None:
    with pytest.raises(ValueError):
        callback_url("https://client.example.com/cb#frag", "query", [])
    with pytest.raises(ValueError):
        callback_url("https://client.example.com/cb", "form_post", [])
