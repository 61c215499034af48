# SPDX-License-Identifier: AGPL-3.0-only
"""``policies/register/register_test.rego``."""

from __future__ import annotations

from typing import Any

from mas_twisted.policy import evaluate_register

MOCK = {"registration_method": "password", "username": "hello", "email": "hello@staging.element.io"}


def _allow(input: dict[str, Any], data: dict[str, Any] | None = None) -> bool:
    return evaluate_register(input, {"server_name": "example.com", **(data or {})}) == []


def _codes(input: dict[str, Any], data: dict[str, Any] | None = None) -> list[tuple[str | None, str | None]]:
    return [
        (v.field, v.code) for v in evaluate_register(input, {"server_name": "example.com", **(data or {})})
    ]


def test_allow_all_domains() -> None:
    assert _allow(MOCK)


def test_allowed_domain() -> None:
    assert _allow(MOCK, {"allowed_domains": ["*.element.io"]})


def test_not_allowed_domain() -> None:
    assert not _allow(MOCK, {"allowed_domains": ["example.com"]})
    assert _codes(MOCK, {"allowed_domains": ["example.com"]}) == [("email", "email-domain-not-allowed")]


def test_banned_domain() -> None:
    assert not _allow(MOCK, {"banned_domains": ["*.element.io"]})


def test_banned_subdomain() -> None:
    assert not _allow(MOCK, {"allowed_domains": ["*.element.io"], "banned_domains": ["staging.element.io"]})


def test_no_email() -> None:
    assert _allow({"username": "hello", "registration_method": "password"})
    assert _allow({"username": "hello", "registration_method": "upstream-oauth2"})


def test_empty_username() -> None:
    assert not _allow({"username": "", "registration_method": "upstream-oauth2"})
    assert ("username", "username-too-short") in _codes(
        {"username": "", "registration_method": "upstream-oauth2"}
    )


def test_long_username() -> None:
    username = "a" * 249
    assert not _allow(
        {"username": username, "registration_method": "upstream-oauth2"}, {"server_name": "matrix.org"}
    )
    # "@" + 249 + ":" + "a.io" is exactly 255 characters.
    assert _allow({"username": username, "registration_method": "upstream-oauth2"}, {"server_name": "a.io"})
    assert _codes(
        {"username": "a" * 250, "registration_method": "upstream-oauth2"}, {"server_name": "a.io"}
    ) == [("username", "username-too-long")]


def test_invalid_username() -> None:
    assert _codes({"username": "hello world", "registration_method": "upstream-oauth2"}) == [
        ("username", "username-invalid-chars")
    ]
    assert not _allow({"username": "Hello", "registration_method": "password"})
    assert not _allow({"username": "hello\n", "registration_method": "password"})


def test_numeric_username() -> None:
    assert _codes({"username": "1234", "registration_method": "upstream-oauth2"}) == [
        ("username", "username-all-numeric")
    ]


def test_allowed_username() -> None:
    data = {"registration": {"allowed_usernames": {"literals": ["hello"]}}}
    assert _allow({"username": "hello", "registration_method": "upstream-oauth2"}, data)
    data = {"registration": {"allowed_usernames": {"literals": ["world"]}}}
    assert _codes({"username": "hello", "registration_method": "upstream-oauth2"}, data) == [
        ("username", "username-not-allowed")
    ]


def test_banned_username() -> None:
    data = {"registration": {"banned_usernames": {"literals": ["hello"]}}}
    assert _codes({"username": "hello", "registration_method": "upstream-oauth2"}, data) == [
        ("username", "username-banned")
    ]
    data = {"registration": {"banned_usernames": {"literals": ["world"]}}}
    assert _allow({"username": "hello", "registration_method": "upstream-oauth2"}, data)


def test_ip_ban() -> None:
    input = {
        "username": "hello",
        "registration_method": "upstream-oauth2",
        "requester": {"ip_address": "1.1.1.1"},
    }
    assert not _allow(input, {"requester": {"banned_ips": ["1.1.1.1"]}})
    assert not _allow(input, {"requester": {"banned_ips": ["1.0.0.0/8"]}})
    violations = evaluate_register(input, {"server_name": "x", "requester": {"banned_ips": ["1.0.0.0/8"]}})
    assert [v.msg for v in violations] == ["Requester [1.1.1.1] isn't allowed to do this action"]
    ua = {
        "username": "hello",
        "registration_method": "upstream-oauth2",
        "requester": {"user_agent": "Evil Client"},
    }
    assert not _allow(ua, {"requester": {"banned_user_agents": {"substrings": ["Evil"]}}})


def test_registration_method() -> None:
    assert [v.msg for v in evaluate_register({"username": "hello"}, {"server_name": "x"})] == [
        "unspecified registration method"
    ]
    assert [
        v.msg
        for v in evaluate_register(
            {"username": "hello", "registration_method": "magic"}, {"server_name": "x"}
        )
    ] == ["unknown registration method"]
