# SPDX-License-Identifier: AGPL-3.0-only
"""Scopes (RFC 6749 §3.3), the Matrix scopes (MSC2967, inventory §2.6, §2.10) and how consent
pages describe them."""

from __future__ import annotations

import pytest

from mas_twisted.oauth2.scope import (
    InvalidScopeFormat,
    Scope,
    compat_session_scope,
    describe_scopes,
    device_id_from_scope,
    device_id_from_scope_token,
    device_scope_tokens,
    is_scope_token,
    is_valid_device_id,
    normalize_scope,
)


def test_scope_token_charset() -> None:
    # NQCHAR = %x21 / %x23-5B / %x5D-7E
    for code in range(0x21, 0x7F):
        ch = chr(code)
        assert is_scope_token(ch) == (ch not in '"\\'), ch
    for bad in ("", " ", '"', "\\", "\x7f", "caf\u00e9"):
        assert not is_scope_token(bad)
    assert is_scope_token("urn:matrix:client:device:AA~bb1234_-.")


def test_parse_scope() -> None:
    scope = Scope.parse("openid profile address")
    assert len(scope) == 3
    assert "openid" in scope and "profile" in scope and "address" in scope
    assert "unknown" not in scope
    assert Scope.parse("order does not matter") == Scope.parse("matter not order does")
    assert str(Scope.parse("b a b c")) == "a b c"
    assert Scope.parse("openid").has_openid
    assert Scope.parse("http://example.com")
    assert Scope.parse("urn:matrix:client:api:*")
    assert Scope.parse("urn:matrix:org.matrix.msc2967.client:api:*")


@pytest.mark.parametrize(
    "bad", ["", "invalid\\scope", "no  double space", " no leading space", "no trailing space "]
)
def test_invalid_scopes(bad: str) -> None:
    with pytest.raises(InvalidScopeFormat):
        Scope.parse(bad)


def test_optional_scope() -> None:
    assert Scope.parse_optional(None) == Scope()
    assert str(Scope.parse_optional(None)) == ""
    assert not Scope.parse_optional(None)
    with pytest.raises(InvalidScopeFormat):
        Scope.parse_optional("")


def test_device_scopes() -> None:
    assert device_scope_tokens("AABBCCDDEE") == (
        "urn:matrix:client:device:AABBCCDDEE",
        "urn:matrix:org.matrix.msc2967.client:device:AABBCCDDEE",
    )
    assert device_id_from_scope_token("urn:matrix:client:device:AABBCCDDEE") == "AABBCCDDEE"
    assert (
        device_id_from_scope_token("urn:matrix:org.matrix.msc2967.client:device:AABBCCDDEE") == "AABBCCDDEE"
    )
    assert device_id_from_scope_token("openid") is None
    assert device_id_from_scope(
        Scope.parse("openid urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ")
    ) == ("ABCDEFGHIJ")
    assert device_id_from_scope(Scope.parse("openid")) is None
    with pytest.raises(InvalidScopeFormat):
        device_scope_tokens("has space")


def test_device_id_pattern() -> None:
    assert is_valid_device_id("AAbbCCdd01")
    assert is_valid_device_id("AAbbCCdd01-asdasdsa1-2313")
    assert not is_valid_device_id("abcd")
    assert not is_valid_device_id("ABCDEFGHI#")


def test_normalize_scope_adds_both_forms() -> None:
    assert normalize_scope(Scope.parse("openid")) == Scope.parse("openid")
    assert normalize_scope(
        Scope.parse("urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ")
    ) == Scope(
        [
            "urn:matrix:client:api:*",
            "urn:matrix:org.matrix.msc2967.client:api:*",
            "urn:matrix:client:device:ABCDEFGHIJ",
            "urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ",
        ]
    )
    unstable = normalize_scope(
        Scope.parse(
            "urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:XYZ"
        )
    )
    assert "urn:matrix:client:api:*" in unstable
    assert "urn:matrix:client:device:XYZ" in unstable


def test_compat_session_scope() -> None:
    assert str(compat_session_scope("ABCDEF", is_synapse_admin=False, supports_explicit_device_id=False)) == (
        "urn:matrix:client:api:* urn:matrix:client:device:ABCDEF "
        "urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:ABCDEF"
    )
    explicit = compat_session_scope("ABCDEF", is_synapse_admin=True, supports_explicit_device_id=True)
    assert (
        str(explicit)
        == "urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:api:* urn:synapse:admin:*"
    )
    with pytest.raises(InvalidScopeFormat):
        compat_session_scope("bad id", is_synapse_admin=False, supports_explicit_device_id=False)
    # With the header, an unencodable device id is fine: it goes in device_id instead.
    compat_session_scope("bad id", is_synapse_admin=False, supports_explicit_device_id=True)


def test_describe_scopes() -> None:
    described = describe_scopes(
        "openid urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:api:* "
        "urn:matrix:client:device:AAA urn:synapse:admin:* custom:scope"
    )
    texts = [d.description for d in described]
    assert texts[0].startswith("See your profile")
    assert texts.count("Read your messages, rooms and account data") == 1
    assert "custom:scope" in texts
    assert not any("AAA" in t for t in texts)
    assert [d.dangerous for d in described if d.scope == "urn:synapse:admin:*"] == [True]
    assert describe_scopes(["openid"]) == describe_scopes("openid")
