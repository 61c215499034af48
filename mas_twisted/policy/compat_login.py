# SPDX-License-Identifier: AGPL-3.0-only
"""The ``compat_login`` policy (MAS's ``policies/compat_login/compat_login.rego``): may this
user log in through the legacy Matrix login API?

Input ``{"user", "session_counts": {"total", "oauth2", "compat", "personal"},
"session_replaced", "login": {"type", "redirect_uri"?}, "requester"}``. Refused for a banned
requester, and, when ``data.session_limit`` is set and the login does not replace an existing
session (and the user is within ``max_session_threshold``, if set), once the user has
``soft_limit`` sessions for the interactive ``m.login.sso`` (they can pick sessions to end)
or ``hard_limit`` sessions for the others (``m.login.password``, ``m.login.token``):
``too-many-sessions`` with ``need_to_remove``.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.policy._rego import get, truthy
from mas_twisted.policy.common import (
    requester_ban_violations,
    session_limit_violation,
    session_limits_apply,
    violation_set,
)
from mas_twisted.policy.model import LOGIN_SSO, Violation


def evaluate_compat_login(input: dict[str, Any], data: dict[str, Any]) -> list[Violation]:
    """Evaluate the ``compat_login`` policy."""
    out = requester_ban_violations(input, data)

    if not truthy(get(input, "session_replaced")) and session_limits_apply(input, data):
        if get(input, "login", "type") == LOGIN_SSO:
            out.extend(
                session_limit_violation(
                    input, data, limit_key="soft_limit", msg="user has too many active sessions (soft limit)"
                )
            )
        else:
            out.extend(
                session_limit_violation(
                    input, data, limit_key="hard_limit", msg="user has too many active sessions (hard limit)"
                )
            )
    return violation_set(out)
