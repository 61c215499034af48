# SPDX-License-Identifier: AGPL-3.0-only
"""WHATWG URL parsing and serialisation, as MAS (the ``url`` crate) stores client URLs."""

from __future__ import annotations

import pytest

from mas_twisted.oauth2.url import InvalidUrlError, form_urlencode, normalize_url, parse_url


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("HTTPS://Example.COM", "https://example.com/"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:443/a/./b/../c?x=1 2#f g", "https://example.com/a/c?x=1%202#f%20g"),
        ("http://example.com:8080", "http://example.com:8080/"),
        ("http://127.1:80", "http://127.0.0.1/"),
        ("http://0x7f.0.0.1/", "http://127.0.0.1/"),
        ("http://[0:0:0:0:0:0:0:1]:1234/cb", "http://[::1]:1234/cb"),
        ("https://ex\u00e4mple.com/\u00fc", "https://xn--exmple-cua.com/%C3%BC"),
        ("https:\\\\example.com\\a", "https://example.com/a"),
        ("  https://example.com/\t\n ", "https://example.com/"),
        ("https://example.com?query=value", "https://example.com/?query=value"),
        ("https://example.com/it's?it's", "https://example.com/it's?it%27s"),
        ("com.example.app:/callback", "com.example.app:/callback"),
        ("Com.Example.App:/callback", "com.example.app:/callback"),
        ("urn:ietf:params:x", "urn:ietf:params:x"),
        ("https://user:pw@host/", "https://user:pw@host/"),
        ("file:///etc/passwd", "file:///etc/passwd"),
    ],
)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected
    # Normalising is idempotent.
    assert normalize_url(expected) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "this is not a uri",
        "/relative",
        "//example.com/",
        "https://",
        "http://a:99999",
        "https://exa mple.com",
        "http://[::1",
        "https://x:y",
    ],
)
def test_invalid_urls(raw: str) -> None:
    with pytest.raises(InvalidUrlError):
        parse_url(raw)


def test_parts() -> None:
    url = parse_url("http://[::1]:1234/cb?x=1#frag")
    assert (url.scheme, url.host, url.port, url.path, url.query, url.fragment) == (
        "http",
        "[::1]",
        1234,
        "/cb",
        "x=1",
        "frag",
    )
    assert str(url.with_port(None)) == "http://[::1]/cb?x=1#frag"
    custom = parse_url("io.element.app:/")
    assert custom.host is None and not custom.has_authority and custom.path == "/"


def test_form_urlencode() -> None:
    assert form_urlencode([("a b", "c&d=e"), ("x", "~*-._/")]) == "a+b=c%26d%3De&x=%7E*-._%2F"
    assert form_urlencode([("k", "\u00e9")]) == "k=%C3%A9"
