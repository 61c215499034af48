# SPDX-License-Identifier: AGPL-3.0-only
"""``policies/email/email_test.rego``."""

from __future__ import annotations

from typing import Any

from mas_twisted.policy import evaluate_email

EMAIL = "hello@staging.element.io"


def _allow(data: dict[str, Any], email: str = EMAIL) -> bool:
    return evaluate_email({"email": email, "requester": {"ip_address": None, "user_agent": None}}, data) == []


def _codes(data: dict[str, Any], email: str = EMAIL) -> list[str | None]:
    return [v.code for v in evaluate_email({"email": email}, data)]


def test_allow_all_domains() -> None:
    assert _allow({})


def test_allowed_domain() -> None:
    assert _allow({"allowed_domains": ["*.element.io"]})


def test_not_allowed_domain() -> None:
    assert not _allow({"allowed_domains": ["example.com"]})
    assert _codes({"allowed_domains": ["example.com"]}) == ["email-domain-not-allowed"]


def test_banned_domain() -> None:
    assert not _allow({"banned_domains": ["*.element.io"]})
    assert _codes({"banned_domains": ["*.element.io"]}) == ["email-domain-banned"]


def test_banned_subdomain() -> None:
    assert not _allow({"allowed_domains": ["*.element.io"], "banned_domains": ["staging.element.io"]})


def test_regex_banned() -> None:
    assert not _allow({"emails": {"banned_addresses": {"regexes": ["hello@.*"]}}})
    violations = evaluate_email({"email": EMAIL}, {"emails": {"banned_addresses": {"regexes": ["hello@.*"]}}})
    assert [(v.code, v.msg) for v in violations] == [("email-banned", "email is not allowed")]


def test_literal_banned() -> None:
    assert not _allow({"emails": {"banned_addresses": {"literals": ["hello@staging.element.io"]}}})


def test_regex_allowed() -> None:
    assert _allow({"emails": {"allowed_addresses": {"regexes": ["hello@.*"]}}})
    assert not _allow({"emails": {"allowed_addresses": {"regexes": ["hola@.*"]}}})
    assert _codes({"emails": {"allowed_addresses": {"regexes": ["hola@.*"]}}}) == ["email-not-allowed"]


def test_literal_allowed() -> None:
    assert _allow({"emails": {"allowed_addresses": {"literals": ["hello@staging.element.io"]}}})
    assert not _allow({"emails": {"allowed_addresses": {"literals": ["hola@staging.element.io"]}}})


def test_address_without_a_single_at_fails_a_domain_allow_list() -> None:
    assert not _allow({"allowed_domains": ["*.element.io"]}, email="no-at-sign")
    assert _allow({"banned_domains": ["*"]}, email="a@b@c")
