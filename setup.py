# SPDX-License-Identifier: AGPL-3.0-only
"""Metadata is in setup.cfg; this only lists the data folders (templates/, res/, sql/) for a
regular install, where mas_twisted.util.paths finds them under <prefix>/share/mas_twisted/."""

import os

from setuptools import setup


def _data_files(*roots: str) -> list[tuple[str, list[str]]]:
    out = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            files = [os.path.join(folder, f) for f in sorted(files) if not f.endswith((".pyc", "~"))]
            if files:
                out.append((os.path.join("share", "mas_twisted", folder), files))
    return out


setup(data_files=_data_files("templates", "res", "sql", "translations"))
