# SPDX-License-Identifier: AGPL-3.0-only
"""The ``email`` policy (MAS's ``policies/email/email.rego``): may this address be used?

Input ``{"email", "requester"}``. Data:

- ``allowed_domains`` / ``banned_domains``: globs over the domain with ``.`` as separator
  (``*.example.com`` matches ``a.example.com``, not ``example.com`` or ``a.b.example.com``;
  ``**`` crosses dots). Without ``allowed_domains`` every domain is allowed.
- ``emails.allowed_addresses`` / ``emails.banned_addresses``: string constraints
  (``literals``, ``substrings``, ``regexes``, ``prefixes``, ``suffixes``) on the address.

Codes: ``email-domain-not-allowed``, ``email-domain-banned``, ``email-not-allowed``,
``email-banned``.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.policy._rego import get, glob_match, members, truthy
from mas_twisted.policy.common import matches_string_constraints, violation_set
from mas_twisted.policy.model import Violation


def _domain(input: Any) -> str | None:
    email = get(input, "email")
    if not isinstance(email, str):
        return None
    parts = email.split("@")
    return parts[1] if len(parts) == 2 else None


def _domain_allowed(input: Any, data: Any) -> bool:
    allowed = get(data, "allowed_domains")
    if not truthy(allowed):
        return True
    domain = _domain(input)
    return domain is not None and any(glob_match(pattern, ["."], domain) for pattern in members(allowed))


def _address_allowed(input: Any, data: Any) -> bool:
    allowed = get(data, "emails", "allowed_addresses")
    if not truthy(allowed):
        return True
    return matches_string_constraints(get(input, "email"), allowed)


def email_violations(input: Any, data: Any) -> list[dict[str, Any]]:
    """The violation objects, unordered (also used by the ``register`` policy)."""
    out: list[dict[str, Any]] = []
    if not _domain_allowed(input, data):
        out.append({"code": "email-domain-not-allowed", "msg": "email domain is not allowed"})
    domain = _domain(input)
    if domain is not None and any(glob_match(p, ["."], domain) for p in members(get(data, "banned_domains"))):
        out.append({"code": "email-domain-banned", "msg": "email domain is banned"})
    if not _address_allowed(input, data):
        out.append({"code": "email-not-allowed", "msg": "email is not allowed"})
    if matches_string_constraints(get(input, "email"), get(data, "emails", "banned_addresses")):
        out.append({"code": "email-banned", "msg": "email is not allowed"})
    return out


def evaluate_email(input: dict[str, Any], data: dict[str, Any]) -> list[Violation]:
    """Evaluate the ``email`` policy."""
    return violation_set(email_violations(input, data))
