# SPDX-License-Identifier: AGPL-3.0-only
"""Forms as the templates see them.

Forms carry their CSRF token (``csrf_token``) in a hidden ``csrf`` field, and
:class:`FormState` holds what a refused form showed back: values (never passwords), per-field
error codes and form error codes, which the ``components/form.html`` macros turn into text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs


@attrs.frozen
class FormState:
    """What a form shows back after it was refused.

    ``values`` never holds a password; ``field_errors`` maps a field to error codes
    (``required``, ``invalid``…) and ``form_errors`` lists form-wide codes
    (``invalid_credentials``, ``rate_limit_exceeded``…). Each ``with_*`` returns a new state.
    """

    values: Mapping[str, str] = attrs.field(factory=dict)
    field_errors: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    form_errors: tuple[str, ...] = ()

    #: Fields whose value is never echoed back into a page.
    REDACTED: ClassVar[frozenset[str]] = frozenset({"password", "password_confirm", "csrf"})

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> FormState:
        return cls(values={k: str(v) for k, v in form.items() if k not in cls.REDACTED and v is not None})

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def has_value(self, name: str) -> bool:
        return bool(self.values.get(name))

    def errors(self, name: str) -> tuple[str, ...]:
        return tuple(self.field_errors.get(name, ()))

    @property
    def is_valid(self) -> bool:
        return not self.form_errors and not any(self.field_errors.values())

    def with_value(self, name: str, value: str | None) -> FormState:
        values = dict(self.values)
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
        return attrs.evolve(self, values=values)

    def with_field_error(self, name: str, code: str) -> FormState:
        errors = dict(self.field_errors)
        errors[name] = tuple(errors.get(name, ())) + (code,)
        return attrs.evolve(self, field_errors=errors)

    def with_form_error(self, code: str) -> FormState:
        return attrs.evolve(self, form_errors=self.form_errors + (code,))
