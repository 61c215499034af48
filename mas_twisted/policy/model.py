# SPDX-License-Identifier: AGPL-3.0-only
"""What a policy evaluation returns (MAS's ``crates/policy/src/model.rs``).

A :class:`Violation` has a human-readable ``msg`` and, depending on the rule, a ``code``
(``username-too-short``, ``email-banned``, ``too-many-sessions`` …), the form ``field`` it
concerns, the offending ``redirect_uri``, or how many sessions the user ``need_to_remove``.
An evaluation with no violation allows the action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs


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
