# SPDX-License-Identifier: AGPL-3.0-only
"""The ``authorization_grant`` policy (MAS's ``policies/authorization_grant/``): may this
client get this scope?

Input ``{"user"?, "client", "scope", "grant_type", "session_counts"?, "requester"}``, used by
the consent page, the device code approval and the ``client_credentials`` grant. Each scope
token must be allowed (inventory §2.6):

- ``openid``, ``email``, ``urn:mas:graphql:*`` and the empty token: always;
- the Matrix API scopes (stable and unstable) and device scopes whose ID matches
  ``[A-Za-z0-9._~!$&'()*+,;=:@/-]{10,}``: only for the interactive grants
  (``authorization_code``, device code);
- ``urn:synapse:admin:*``: interactive grants of a user who may request admin (listed in
  ``data.admin_users`` or flagged ``can_request_admin``);
- ``urn:mas:admin``: the same, or the ``client_credentials`` grant of a client listed in
  ``data.admin_clients``.

Also: at most one device scope per prefix, a device scope only with an API scope, no mix of
stable and unstable Matrix scopes, no banned requester, and, with ``data.session_limit``, a
``too-many-sessions`` violation once the user has ``soft_limit`` sessions.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.oauth2.requests import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, DEVICE_CODE
from mas_twisted.oauth2.scope import (
    DEVICE_ID_PATTERN,
    DEVICE_SCOPE_PREFIX,
    DEVICE_SCOPE_PREFIX_UNSTABLE,
    EMAIL,
    MAS_ADMIN_SCOPE,
    MAS_GRAPHQL_SCOPE,
    MATRIX_API_SCOPE,
    MATRIX_API_SCOPE_PREFIX,
    MATRIX_API_SCOPE_PREFIX_UNSTABLE,
    MATRIX_API_SCOPE_UNSTABLE,
    MATRIX_SCOPE_PREFIX,
    MATRIX_SCOPE_PREFIX_UNSTABLE,
    OPENID,
    SYNAPSE_ADMIN_SCOPE,
)
from mas_twisted.policy._rego import defined, get, members, regex_match, truthy
from mas_twisted.policy.common import (
    requester_ban_violations,
    session_limit_violation,
    session_limits_apply,
    violation_set,
)
from mas_twisted.policy.model import Violation

INTERACTIVE_GRANT_TYPES = (AUTHORIZATION_CODE, DEVICE_CODE)

#: The device scopes granted, as MAS's Rego writes them: the prefix is not escaped, so each
#: ``.`` of the unstable prefix matches any character (``urn:matrix:orgXmatrix...`` passes).
_DEVICE_SCOPE_RES = tuple(
    f"^{prefix}{DEVICE_ID_PATTERN}$" for prefix in (DEVICE_SCOPE_PREFIX_UNSTABLE, DEVICE_SCOPE_PREFIX)
)
_ALWAYS_ALLOWED = ("", OPENID, EMAIL, MAS_GRAPHQL_SCOPE)


def _can_request_admin(user: Any, data: Any) -> bool:
    username = get(user, "username")
    if defined(username) and any(username == admin for admin in members(get(data, "admin_users"))):
        return True
    return truthy(get(user, "can_request_admin"))


def _allowed_scope(scope: str, input: Any, data: Any) -> bool:
    if scope in _ALWAYS_ALLOWED:
        return True
    grant_type = get(input, "grant_type")
    interactive = grant_type in INTERACTIVE_GRANT_TYPES
    if scope == SYNAPSE_ADMIN_SCOPE:
        return interactive and _can_request_admin(get(input, "user"), data)
    if scope == MAS_ADMIN_SCOPE:
        if interactive and _can_request_admin(get(input, "user"), data):
            return True
        client_id = get(input, "client", "id")
        return (
            grant_type == CLIENT_CREDENTIALS
            and defined(client_id)
            and any(client_id == client for client in members(get(data, "admin_clients")))
        )
    if not interactive:
        return False
    if scope in (MATRIX_API_SCOPE, MATRIX_API_SCOPE_UNSTABLE):
        return True
    return any(regex_match(pattern, scope) for pattern in _DEVICE_SCOPE_RES)


def evaluate_authorization_grant(input: dict[str, Any], data: dict[str, Any]) -> list[Violation]:
    """Evaluate the ``authorization_grant`` policy."""
    out: list[dict[str, Any]] = []
    scope = get(input, "scope")
    if isinstance(scope, str):
        tokens = scope.split(" ")
        for token in tokens:
            if not _allowed_scope(token, input, data):
                out.append({"msg": f"scope '{token}' not allowed"})

        unstable_devices = {t for t in tokens if t.startswith(DEVICE_SCOPE_PREFIX_UNSTABLE)}
        stable_devices = {t for t in tokens if t.startswith(DEVICE_SCOPE_PREFIX)}
        if len(unstable_devices) > 1 or len(stable_devices) > 1:
            out.append({"msg": "only one device scope is allowed at a time"})

        has_device_scope = bool(unstable_devices or stable_devices)
        has_api_scope = any(
            t.startswith((MATRIX_API_SCOPE_PREFIX, MATRIX_API_SCOPE_PREFIX_UNSTABLE)) for t in tokens
        )
        if has_device_scope and not has_api_scope:
            out.append(
                {"msg": "device scopes are only allowed when the client-server API scope is requested"}
            )

        uses_stable = any(t.startswith(MATRIX_SCOPE_PREFIX) for t in tokens)
        uses_unstable = any(t.startswith(MATRIX_SCOPE_PREFIX_UNSTABLE) for t in tokens)
        if uses_stable and uses_unstable:
            out.append({"msg": "request cannot mix unstable and stable scopes"})

    out.extend(requester_ban_violations(input, data))

    session_counts = get(input, "session_counts")
    if defined(session_counts) and session_counts is not None and session_limits_apply(input, data):
        out.extend(
            session_limit_violation(
                input, data, limit_key="soft_limit", msg="user has too many active sessions"
            )
        )
    return violation_set(out)
