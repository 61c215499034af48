# SPDX-License-Identifier: AGPL-3.0-only
"""The ``register`` policy (MAS's ``policies/register/register.rego``): may this account be
created?

Input ``{"registration_method": "password" | "upstream-oauth2", "username", "email"?,
"requester"}``. The username must be non-empty (``username-too-short``), make a Matrix ID
``@username:server_name`` of at most 255 characters (``username-too-long``), not be all digits
(``username-all-numeric``), use only ``a-z 0-9 . = _ / + -`` (``username-invalid-chars``), not
match ``data.registration.banned_usernames`` (``username-banned``) and match
``data.registration.allowed_usernames`` when set (``username-not-allowed``); all with
``field: username``. The registration method must be known, the requester not banned, and an
email, if given, must pass the ``email`` policy (its violations with ``field: email``).
"""

from __future__ import annotations

from typing import Any

from mas_twisted.policy._rego import count, defined, get, regex_match, truthy
from mas_twisted.policy.common import (
    matches_string_constraints,
    mxid,
    requester_ban_violations,
    violation_set,
)
from mas_twisted.policy.email import email_violations
from mas_twisted.policy.model import Violation

REGISTRATION_METHODS = ("password", "upstream-oauth2")


def _username_allowed(username: Any, data: Any) -> bool:
    allowed = get(data, "registration", "allowed_usernames")
    if not truthy(allowed):
        return True
    return matches_string_constraints(username, allowed)


def evaluate_register(input: dict[str, Any], data: dict[str, Any]) -> list[Violation]:
    """Evaluate the ``register`` policy."""
    username = get(input, "username")
    server_name = get(data, "server_name")
    out: list[dict[str, Any]] = []

    if count(username) == 0:
        out.append({"field": "username", "code": "username-too-short", "msg": "username too short"})
    if isinstance(username, str) and defined(server_name) and len(mxid(username, server_name)) > 255:
        out.append({"field": "username", "code": "username-too-long", "msg": "username too long"})
    if regex_match(r"^[0-9]+$", username):
        out.append(
            {
                "field": "username",
                "code": "username-all-numeric",
                "msg": "username must contain at least one non-numeric character",
            }
        )
    if defined(username) and not regex_match(r"^[a-z0-9.=_/+-]+$", username):
        out.append(
            {
                "field": "username",
                "code": "username-invalid-chars",
                "msg": "username contains invalid characters",
            }
        )
    if matches_string_constraints(username, get(data, "registration", "banned_usernames")):
        out.append({"field": "username", "code": "username-banned", "msg": "username is banned"})
    if not _username_allowed(username, data):
        out.append({"field": "username", "code": "username-not-allowed", "msg": "username is not allowed"})

    method = get(input, "registration_method")
    if not truthy(method):
        out.append({"msg": "unspecified registration method"})
    if defined(method) and method not in REGISTRATION_METHODS:
        out.append({"msg": "unknown registration method"})

    out.extend(requester_ban_violations(input, data))

    if truthy(get(input, "email")):
        out.extend({"field": "email", **violation} for violation in email_violations(input, data))

    return violation_set(out)
