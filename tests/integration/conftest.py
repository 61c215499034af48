# SPDX-License-Identifier: AGPL-3.0-only
"""Fixtures every end-to-end module may use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration._browser import launch_chromium


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium under Playwright (:mod:`tests.integration._browser`), one per module."""
    yield from launch_chromium()
