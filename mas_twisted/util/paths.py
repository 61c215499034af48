# SPDX-License-Identifier: AGPL-3.0-only
"""Where the project's data folders (``templates/``, ``res/``, ``sql/``) are.

In a checkout or an editable install they sit next to the ``mas_twisted`` package; in a
regular install they are under ``<prefix>/share/mas_twisted/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent


def data_dir(name: str) -> Path:
    """The absolute path of one of the project's data folders, e.g. ``data_dir("sql")``."""
    candidates = [
        _PACKAGE_ROOT / name,
        Path(sys.prefix) / "share" / "mas_twisted" / name,
    ]
    env = os.environ.get("MAS_TWISTED_DATA_DIR")
    if env:
        candidates.insert(0, Path(env) / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[-1]
