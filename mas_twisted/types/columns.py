# SPDX-License-Identifier: AGPL-3.0-only
"""Column codecs of the models' ``from_row``/``to_row``: the one place where a JSON ``TEXT``
column or a boolean column (0/1 on SQLite) is read and written."""

from __future__ import annotations

import json
from typing import Any


def db_bool(value: Any) -> bool:
    """A boolean column as Python ``bool`` (SQLite returns 0/1)."""
    return bool(value)


def db_json(value: Any) -> Any:
    """A JSON ``TEXT`` column, parsed (``None`` stays ``None``; a value the driver already
    parsed is returned as it is)."""
    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def to_db_json(value: Any) -> str | None:
    """A value for a JSON ``TEXT`` column: compact, with sorted keys so equal values store equal text."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
