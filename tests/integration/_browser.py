# SPDX-License-Identifier: AGPL-3.0-only
"""Debian's chromium under Playwright, for the browser tests (the ``chromium`` fixture of
``conftest.py``). Playwright's own browser download is never used: the tests launch
``/usr/bin/chromium``, which ``scripts/setup.sh test`` installs (as root) from Debian."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
#: As root and on a closed network: no sandbox, no GPU, and none of chromium's background
#: requests (updates, sync, field trials), which would otherwise flood the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium() -> Iterator[Any]:
    """Yield a launched browser, closed afterwards; fails (never skips) with how to install
    what is missing."""
    if not CHROMIUM.is_file():
        raise AssertionError(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(run `scripts/setup.sh test` as root, or `apt-get install chromium`)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise AssertionError(
            f"Playwright for Python is missing ({e}): run `scripts/setup.sh test` "
            "(it installs the `test` extra of setup.cfg); never `playwright install`"
        ) from e
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
