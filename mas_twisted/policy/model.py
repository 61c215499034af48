# SPDX-License-Identifier: AGPL-3.0-only
"""The policies' data (MAS's ``crates/policy/src/model.rs``): the parts of their inputs the
callers build (:class:`Requester`, :class:`SessionCounts`, the ``LOGIN_*`` login types) and
what an evaluation returns.

A :class:`Violation` has a human-readable ``msg`` and, depending on the rule, a ``code``
(``username-too-short``, ``email-banned``, ``too-many-sessions`` …), the form ``field`` it
concerns, the offending ``redirect_uri``, or how many sessions the user ``need_to_remove``.
An evaluation with no violation allows the action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

#: ``login.type`` values of the ``compat_login`` input.
LOGIN_SSO = "m.login.sso"
LOGIN_TOKEN = "m.login.token"
LOGIN_PASSWORD = "m.login.password"


@attrs.frozen
class Requester:
    """Who made the request: its IP address and user agent, when known."""

    ip_address: str | None = None
    user_agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ip_address": self.ip_address, "user_agent": self.user_agent}


@attrs.frozen
class SessionCounts:
    """How many active sessions a user has, by kind."""

    total: int
    oauth2: int = 0
    compat: int = 0
    personal: int = 0

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


@attrs.frozen
class Violation:
    """One broken policy rule."""

    msg: str
    code: str | None = None
    field: str | None = None
    redirect_uri: str | None = None
    need_to_remove: int | None = None

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Violation:
        return cls(
            msg=str(value["msg"]),
            code=value.get("code"),
            field=value.get("field"),
            redirect_uri=value.get("redirect_uri"),
            need_to_remove=value.get("need_to_remove"),
        )

    def to_json(self) -> dict[str, Any]:
        """The violation as the policy wrote it: absent attributes omitted."""
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}


@attrs.frozen
class EvaluationResult:
    """The violations of one evaluation, in the order the policy engine lists them."""

    violations: tuple[Violation, ...] = ()

    @classmethod
    def from_violations(cls, violations: Iterable[Violation]) -> EvaluationResult:
        return cls(tuple(violations))

    @property
    def valid(self) -> bool:
        return not self.violations

    def __bool__(self) -> bool:
        return self.valid

    @property
    def messages(self) -> list[str]:
        return [v.msg for v in self.violations]

    def __str__(self) -> str:
        return ", ".join(self.messages)
