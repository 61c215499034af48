# SPDX-License-Identifier: AGPL-3.0-only
"""``policies/authorization_grant/authorization_grant_test.rego``."""

from __future__ import annotations

from typing import Any

import pytest

from mas_twisted.oauth2.scope import is_valid_device_id
from mas_twisted.policy import evaluate_authorization_grant

USER = {"username": "john"}
CLIENT = {"client_id": "client"}
AUTH_CODE = "authorization_code"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_CREDENTIALS = "client_credentials"
INTERACTIVE = (AUTH_CODE, DEVICE_CODE)


def _input(
    scope: str | None = None, grant_type: str | None = None, user: Any = USER, **extra: Any
) -> dict[str, Any]:
    input: dict[str, Any] = {"client": CLIENT, **extra}
    if user is not None:
        input["user"] = user
    if scope is not None:
        input["scope"] = scope
    if grant_type is not None:
        input["grant_type"] = grant_type
    return input


def _allow(
    scope: str, grant_type: str | None = None, data: dict[str, Any] | None = None, **kwargs: Any
) -> bool:
    return evaluate_authorization_grant(_input(scope, grant_type, **kwargs), data or {}) == []


def test_standard_scopes() -> None:
    for scope in ("", "openid", "email", "openid email"):
        assert _allow(scope)
    # Not supported (yet).
    assert not _allow("phone")
    assert not _allow("profile")
    assert [v.msg for v in evaluate_authorization_grant(_input("openid profile"), {})] == [
        "scope 'profile' not allowed"
    ]


@pytest.mark.parametrize("api", ["urn:matrix:org.matrix.msc2967.client:api:*", "urn:matrix:client:api:*"])
def test_matrix_api_scopes(api: str) -> None:
    assert _allow(api, AUTH_CODE)
    assert _allow(api, DEVICE_CODE)
    assert not _allow(api, CLIENT_CREDENTIALS)


@pytest.mark.parametrize(
    "api,device",
    [
        ("urn:matrix:org.matrix.msc2967.client:api:*", "urn:matrix:org.matrix.msc2967.client:device:"),
        ("urn:matrix:client:api:*", "urn:matrix:client:device:"),
    ],
)
def test_device_scopes(api: str, device: str) -> None:
    assert _allow(f"{api} {device}AAbbCCdd01", AUTH_CODE)
    assert _allow(f"{api} {device}AAbbCCdd01-asdasdsa1-2313", AUTH_CODE)
    # Too short.
    assert not _allow(f"{api} {device}abcd", AUTH_CODE)
    # Several device scopes.
    multiple = evaluate_authorization_grant(
        _input(f"{api} {device}AAbbCCdd01 {device}AAbbCCdd02", AUTH_CODE), {}
    )
    assert [v.msg for v in multiple] == ["only one device scope is allowed at a time"]
    assert _allow(f"{api} {device}AAbbCCdd01", DEVICE_CODE)
    assert not _allow(f"{api} {device}AAbbCCdd01", CLIENT_CREDENTIALS, user=None)


@pytest.mark.parametrize(
    "device_id,valid",
    [
        ("AAbbCCdd01", True),
        # Exactly ten characters, and nine.
        ("ABCDEFGHIJ", True),
        ("ABCDEFGHI", False),
        # Every punctuation character of the pattern, and a '.' (not a wildcard inside the class).
        ("ABCD.EFGHI", True),
        ("..........", True),
        ("._~!$&'()*+,;=:@/-", True),
        ("ABCDEFGHI-", True),
        ("-ABCDEFGHI", True),
        # Characters outside it, at either end and inside.
        ("ABCDEFGHI#", False),
        ("#ABCDEFGHI", False),
        ("ABCDE%FGHI", False),
        ('ABCDE"FGHI', False),
        ("ABCDE[FGHI", False),
        ("ABCDE^FGHI", False),
        ("ABCDEéFGHI", False),
        # '$' anchors at the very end (RE2), not before a final newline.
        ("ABCDEFGHIJ\n", False),
    ],
)
def test_device_id_edge_cases(device_id: str, valid: bool) -> None:
    # The policy and oauth2.scope.is_valid_device_id accept the same device IDs.
    assert is_valid_device_id(device_id) is valid
    for api, device in (
        ("urn:matrix:client:api:*", "urn:matrix:client:device:"),
        ("urn:matrix:org.matrix.msc2967.client:api:*", "urn:matrix:org.matrix.msc2967.client:device:"),
    ):
        assert _allow(f"{api} {device}{device_id}", AUTH_CODE) is valid


def test_device_scope_prefix_dots_are_wildcards() -> None:
    # MAS's Rego leaves the dots of the unstable device prefix unescaped, so they match any
    # character. Such a token is not a device scope for the other rules (no prefix match).
    assert _allow("urn:matrix:orgXmatrixXmsc2967Xclient:device:AAbbCCdd01", AUTH_CODE)
    assert not _allow("urn:matrix:orgXmatrixXmsc2967Xclient:device:AAbbCCdd01", CLIENT_CREDENTIALS)
    assert not _allow("urn:matrixXclient:device:AAbbCCdd01", AUTH_CODE)
    assert not _allow("urn:matrix:client:deviceXAAbbCCdd01", AUTH_CODE)


def test_device_scope_only_with_cs_api_scope() -> None:
    for scope in (
        "urn:matrix:client:device:AAbbCCdd01",
        "urn:matrix:org.matrix.msc2967.client:device:AAbbCCdd01",
    ):
        violations = evaluate_authorization_grant(_input(scope, AUTH_CODE), {})
        assert [v.msg for v in violations] == [
            "device scopes are only allowed when the client-server API scope is requested"
        ]


def test_mix_stable_and_unstable_scopes() -> None:
    for scope in (
        "urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:client:device:AAbbCCdd01",
        "urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:device:AAbbCCdd01",
        "urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:api:*",
    ):
        violations = evaluate_authorization_grant(_input(scope, AUTH_CODE), {})
        assert "request cannot mix unstable and stable scopes" in [v.msg for v in violations]


@pytest.mark.parametrize("grant_type", INTERACTIVE)
def test_synapse_admin_scopes(grant_type: str) -> None:
    scope = "urn:synapse:admin:*"
    assert _allow(scope, grant_type, {"admin_users": ["john"]})
    assert not _allow(scope, grant_type, {"admin_users": []})
    assert _allow(scope, grant_type, {"admin_users": []}, user={**USER, "can_request_admin": True})
    assert not _allow(scope, grant_type, {"admin_users": []}, user={**USER, "can_request_admin": False})
    assert not _allow(scope, CLIENT_CREDENTIALS, {"admin_users": ["john"]})


def test_mas_scopes() -> None:
    assert _allow("urn:mas:graphql:*")
    assert _allow("urn:mas:admin", AUTH_CODE, {"admin_users": ["john"]})
    assert not _allow("urn:mas:admin", AUTH_CODE, {"admin_users": []})


def test_mas_admin_for_admin_clients() -> None:
    client = {"id": "01HADMINCLIENT00000000000", "client_id": "01HADMINCLIENT00000000000"}
    data = {"admin_clients": ["01HADMINCLIENT00000000000"]}
    input = {"client": client, "scope": "urn:mas:admin", "grant_type": CLIENT_CREDENTIALS, "user": None}
    assert evaluate_authorization_grant(input, data) == []
    assert evaluate_authorization_grant(input, {"admin_clients": ["someone-else"]}) != []
    assert evaluate_authorization_grant({**input, "grant_type": AUTH_CODE}, data) != []


LIMITS = {"soft_limit": 32, "hard_limit": 64}


def _limited(total: int, session_limit: Any) -> tuple[bool, int]:
    violations = evaluate_authorization_grant(
        {"user": USER, "session_counts": {"total": total}}, {"session_limit": session_limit}
    )
    need = next((v.need_to_remove for v in violations if v.code == "too-many-sessions"), 0)
    return not violations, need


@pytest.mark.parametrize(
    "total,session_limit,allowed,need",
    [
        (1, LIMITS, True, 0),
        (31, LIMITS, True, 0),
        (32, LIMITS, False, 1),
        (42, LIMITS, False, 11),
        # Only the soft limit applies to interactive logins.
        (65, LIMITS, False, 34),
        (1, None, True, 0),
        (42, {**LIMITS, "max_session_threshold": 64}, False, 11),
        (128, {**LIMITS, "max_session_threshold": 64}, True, 0),
    ],
)
def test_session_limiting(total: int, session_limit: Any, allowed: bool, need: int) -> None:
    assert _limited(total, session_limit) == (allowed, need)


def test_session_limit_message_and_no_counts() -> None:
    violations = evaluate_authorization_grant(
        {"user": USER, "session_counts": {"total": 40}}, {"session_limit": LIMITS}
    )
    assert [v.to_json() for v in violations] == [
        {"msg": "user has too many active sessions", "code": "too-many-sessions", "need_to_remove": 9}
    ]
    # client_credentials: no user, no session counts, no limit.
    assert (
        evaluate_authorization_grant({"session_counts": None, "scope": ""}, {"session_limit": LIMITS}) == []
    )


def test_requester_ban() -> None:
    input = _input("openid", AUTH_CODE, requester={"ip_address": "192.0.2.7", "user_agent": None})
    violations = evaluate_authorization_grant(input, {"requester": {"banned_ips": ["192.0.2.0/24"]}})
    assert [v.msg for v in violations] == ["Requester [192.0.2.7 / null] isn't allowed to do this action"]
