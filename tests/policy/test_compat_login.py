# SPDX-License-Identifier: AGPL-3.0-only
"""``policies/compat_login/compat_login_test.rego``."""

from __future__ import annotations

from typing import Any

import pytest

from mas_twisted.policy import evaluate_compat_login
from mas_twisted.policy._rego import UNDEFINED

USER = {"username": "john"}
LIMITS = {"soft_limit": 32, "hard_limit": 64}


def _run(total: int, login_type: str, session_limit: Any, *, replaced: bool = False) -> tuple[bool, int]:
    data: dict[str, Any] = {} if session_limit is UNDEFINED else {"session_limit": session_limit}
    violations = evaluate_compat_login(
        {
            "user": USER,
            "session_counts": {"total": total},
            "login": {"type": login_type},
            "session_replaced": replaced,
        },
        data,
    )
    need = next((v.need_to_remove for v in violations if v.code == "too-many-sessions"), 0)
    return not violations, need


@pytest.mark.parametrize(
    "total,login_type,session_limit,allowed,need",
    [
        # No limit configured (undefined, then null).
        (1, "m.login.sso", UNDEFINED, True, 0),
        (1, "m.login.sso", None, True, 0),
        # m.login.sso: interactive, the soft limit applies.
        (1, "m.login.sso", LIMITS, True, 0),
        (31, "m.login.sso", LIMITS, True, 0),
        (32, "m.login.sso", LIMITS, False, 1),
        (42, "m.login.sso", LIMITS, False, 11),
        (65, "m.login.sso", LIMITS, False, 34),
        # m.login.password: not interactive, the hard limit applies.
        (1, "m.login.password", LIMITS, True, 0),
        (63, "m.login.password", LIMITS, True, 0),
        (64, "m.login.password", LIMITS, False, 1),
        (65, "m.login.password", LIMITS, False, 2),
        (1, "m.login.password", None, True, 0),
        # m.login.token (the end of an SSO login) is not interactive either.
        (64, "m.login.token", LIMITS, False, 1),
        # max_session_threshold: null is the same as absent.
        (3, "m.login.sso", {**LIMITS, "max_session_threshold": None}, True, 0),
        (42, "m.login.sso", {**LIMITS, "max_session_threshold": None}, False, 11),
        (42, "m.login.sso", {**LIMITS, "max_session_threshold": 64}, False, 11),
        (128, "m.login.sso", {**LIMITS, "max_session_threshold": 64}, True, 0),
    ],
)
def test_session_limiting(total: int, login_type: str, session_limit: Any, allowed: bool, need: int) -> None:
    assert _run(total, login_type, session_limit) == (allowed, need)


@pytest.mark.parametrize("login_type", ["m.login.sso", "m.login.password"])
def test_no_limit_when_replacing_a_session(login_type: str) -> None:
    assert _run(65, login_type, LIMITS, replaced=True) == (True, 0)


def test_messages() -> None:
    soft = evaluate_compat_login(
        {"session_counts": {"total": 40}, "login": {"type": "m.login.sso"}, "session_replaced": False},
        {"session_limit": LIMITS},
    )
    assert [v.to_json() for v in soft] == [
        {
            "msg": "user has too many active sessions (soft limit)",
            "code": "too-many-sessions",
            "need_to_remove": 9,
        }
    ]
    hard = evaluate_compat_login(
        {"session_counts": {"total": 64}, "login": {"type": "m.login.password"}, "session_replaced": False},
        {"session_limit": LIMITS},
    )
    assert hard[0].msg == "user has too many active sessions (hard limit)"


def test_requester_ban() -> None:
    violations = evaluate_compat_login(
        {
            "session_counts": {"total": 1},
            "login": {"type": "m.login.password"},
            "session_replaced": False,
            "requester": {"ip_address": "10.1.2.3", "user_agent": "curl/8"},
        },
        {"requester": {"banned_ips": ["10.0.0.0/8"]}},
    )
    assert [v.msg for v in violations] == ["Requester [10.1.2.3 / curl/8] isn't allowed to do this action"]
