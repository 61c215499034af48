# SPDX-License-Identifier: AGPL-3.0-only
"""Shared helpers of the configuration tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mas_twisted.api.errors import ConfigError, PathElement, format_path
from mas_twisted.config._base import Config, Reader
from mas_twisted.config.root import RootConfig

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
FULL_CONFIG = HERE / "full_config.yaml"

ENCRYPTION_KEY = "0123456789abcdef" * 4

#: The two sections MAS requires, and nothing else.
MINIMAL: dict[str, Any] = {
    "secrets": {"encryption": ENCRYPTION_KEY},
    "matrix": {"secret": "shared-secret"},
}


def minimal(**sections: Any) -> dict[str, Any]:
    """The minimal tree, with ``sections`` added or replaced."""
    raw = copy.deepcopy(MINIMAL)
    raw.update(sections)
    return raw


def load(**sections: Any) -> RootConfig:
    return RootConfig(minimal(**sections))


def read_section(cls: type[Config], value: Any, raw: dict[str, Any] | None = None) -> Any:
    """Read one section on its own, the way RootConfig does (for the list-valued ``clients``
    the section is read from ``raw``)."""
    raw = {cls.section: value} if raw is None else raw
    section = cls(None)
    reader_value = value if not isinstance(value, list) else None
    section.read_config(Reader(reader_value, (cls.section,)), raw)
    return section


def assert_config_error(func: Callable[[], Any], path: tuple[PathElement, ...], *values: Any) -> ConfigError:
    """``func()`` raises a one-line ConfigError naming ``path`` and every one of ``values``."""
    with pytest.raises(ConfigError) as info:
        func()
    err = info.value
    text = str(err)
    assert "\n" not in text, text
    assert err.path == path, text
    assert format_path(path) in text, text
    for value in values:
        assert str(value) in text, f"{value!r} not in {text!r}"
    return err
