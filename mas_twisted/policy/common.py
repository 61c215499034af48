# SPDX-License-Identifier: AGPL-3.0-only
"""Helpers shared by the policies (MAS's ``policies/common/common.rego``).

- String constraints: a value matches ``{literals, substrings, regexes, prefixes, suffixes}``
  when any one of the lists has a matching entry (data such as
  ``registration.banned_usernames`` and ``requester.banned_user_agents`` use this shape).
- Requester bans: a request is refused when its IP is in ``data.requester.banned_ips``
  (addresses or CIDRs) or its user agent matches ``data.requester.banned_user_agents``; the
  message names the requester as ``ip / user agent``.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.policy._rego import (
    UNDEFINED,
    as_set,
    cidr_contains,
    compare,
    defined,
    format_value,
    get,
    is_number,
    members,
    regex_match,
    truthy,
)
from mas_twisted.policy.model import Violation


def matches_string_constraints(value: Any, constraints: Any) -> bool:
    """Whether ``value`` matches any of the string ``constraints``."""
    if not defined(value) or not defined(constraints):
        return False
    if any(regex_match(pattern, value) for pattern in members(get(constraints, "regexes"))):
        return True
    if isinstance(value, str) and any(
        isinstance(pattern, str) and pattern in value for pattern in members(get(constraints, "substrings"))
    ):
        return True
    if any(value == literal for literal in members(get(constraints, "literals"))):
        return True
    if isinstance(value, str) and any(
        isinstance(suffix, str) and value.endswith(suffix) for suffix in members(get(constraints, "suffixes"))
    ):
        return True
    return bool(
        isinstance(value, str)
        and any(
            isinstance(prefix, str) and value.startswith(prefix)
            for prefix in members(get(constraints, "prefixes"))
        )
    )


def normalize_cidr(ip: Any) -> Any:
    """An address as a CIDR: ``/32`` or ``/128`` appended unless it already has a prefix."""
    if not isinstance(ip, str):
        return UNDEFINED
    if "/" in ip:
        return ip
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def ip_in_list(ip: Any, cidrs: Any) -> bool:
    """Whether ``ip`` is in any of the addresses or networks of ``cidrs``."""
    if not defined(ip):
        return False
    return any(cidr_contains(normalize_cidr(cidr), ip) for cidr in members(cidrs))


def mxid(username: str, server_name: Any) -> str:
    return f"@{format_value(username)}:{format_value(server_name)}"


def requester_banned(requester: Any, policy: Any) -> bool:
    """Whether the requester's IP or user agent is banned by ``policy`` (``data.requester``)."""
    if not defined(requester) or not defined(policy):
        return False
    if ip_in_list(get(requester, "ip_address"), get(policy, "banned_ips")):
        return True
    return matches_string_constraints(get(requester, "user_agent"), get(policy, "banned_user_agents"))


def format_requester(requester: Any) -> str:
    """``ip / user agent``, ``ip``, ``user agent`` or ``unknown``, as in MAS's messages.

    An absent (JSON ``null``) field still counts as present here, as in Rego: MAS always
    sends both keys, so a request without a user agent reads ``1.2.3.4 / null``.
    """
    ip = get(requester, "ip_address")
    user_agent = get(requester, "user_agent")
    if truthy(ip) and truthy(user_agent):
        return f"{format_value(ip)} / {format_value(user_agent)}"
    if truthy(ip):
        return format_value(ip)
    if truthy(user_agent):
        return format_value(user_agent)
    return "unknown"


def requester_ban_violations(input: Any, data: Any) -> list[dict[str, Any]]:
    """The "Requester [...] isn't allowed to do this action" violation, if the requester is banned."""
    requester = get(input, "requester")
    if requester_banned(requester, get(data, "requester")):
        return [{"msg": f"Requester [{format_requester(requester)}] isn't allowed to do this action"}]
    return []


def passes_session_threshold(input: Any, data: Any) -> bool:
    """Whether session limits apply to this user: no limit or no ``max_session_threshold``
    configured, or the user's session count is within it."""
    session_limit = get(data, "session_limit")
    if not truthy(session_limit) or session_limit is None:
        return True
    threshold = get(session_limit, "max_session_threshold")
    if not truthy(threshold) or threshold is None:
        return True
    total = get(input, "session_counts", "total")
    return _le(total, threshold)


def session_limits_apply(input: Any, data: Any) -> bool:
    """Whether the session limit rules run: ``data.session_limit`` is set (not ``null``) and
    the user is within its ``max_session_threshold`` (:func:`passes_session_threshold`)."""
    session_limit = get(data, "session_limit")
    return defined(session_limit) and session_limit is not None and passes_session_threshold(input, data)


def _le(a: Any, b: Any) -> bool:
    """Rego's ``a <= b`` (OPA's order across types); false when either is undefined."""
    if not defined(a) or not defined(b):
        return False
    return compare(a, b) <= 0


def session_limit_violation(input: Any, data: Any, *, limit_key: str, msg: str) -> list[dict[str, Any]]:
    """The ``too-many-sessions`` violation once the user is at or over
    ``data.session_limit.<limit_key>``; ``need_to_remove`` makes room for the new session."""
    limit = get(data, "session_limit", limit_key)
    total = get(input, "session_counts", "total")
    if not _le(limit, total) or not (is_number(limit) and is_number(total)):
        return []
    need = total - limit + 1
    if isinstance(need, float) and need.is_integer():
        need = int(need)
    return [{"code": "too-many-sessions", "msg": msg, "need_to_remove": need}]


def violation_set(violations: list[dict[str, Any]]) -> list[Violation]:
    """A policy's violation objects as its result: a Rego set (duplicates dropped, in OPA's
    order) of :class:`~mas_twisted.policy.model.Violation`."""
    return [Violation.from_json(v) for v in as_set(violations)]
