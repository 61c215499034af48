# SPDX-License-Identifier: AGPL-3.0-only
"""The error hierarchy shared by every layer (STYLE.md §5.4).

Errors that reach a client carry a message that is safe to show (``msg``); anything only
an operator should read goes in ``debug``, which is logged and never sent.
"""

from typing import Iterable, Sequence, Union

PathElement = Union[str, int]


def format_path(path: Iterable[PathElement]) -> str:
    """Render a YAML path the way an operator would type it: ``http.listeners[0].binds[1].port``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        elif out:
            out += f".{element}"
        else:
            out = str(element)
    return out


class MasError(Exception):
    """Base class of the errors the service raises on purpose."""

    code: int = 500

    def __init__(self, msg: str = "", *, code: int | None = None, debug: str | None = None):
        super().__init__(msg)
        self.msg = msg
        if code is not None:
            self.code = code
        self.debug = debug


class ConfigError(MasError):
    """A configuration value is missing or wrong.

    ``str(err)`` is one line naming the YAML path and the problem, which is what the CLI
    and ``twistd mas`` print before exiting non-zero.
    """

    def __init__(self, msg: str, path: Sequence[PathElement] = ()):
        super().__init__(msg)
        self.path = tuple(path)

    def __str__(self) -> str:
        if self.path:
            return f"Invalid configuration at {format_path(self.path)}: {self.msg}"
        return f"Invalid configuration: {self.msg}"


class DatabaseError(MasError):
    """The database is unusable (unreachable, or its schema is newer than this code)."""


class RowsAffectedError(MasError):
    """A state-changing statement touched an unexpected number of rows (MAS's ``ensure_affected_rows``)."""

    def __init__(self, expected: int, actual: int):
        super().__init__(f"expected {expected} row(s) to be affected, got {actual}")
        self.expected = expected
        self.actual = actual
