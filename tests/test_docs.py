# SPDX-License-Identifier: AGPL-3.0-only
"""Every shell block marked ```` ```sh test ```` in docs/*.md runs, in a temporary directory,
against this virtualenv (its bin first on PATH), and succeeds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```sh test\n(.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        for n, match in enumerate(BLOCK.finditer(doc.read_text())):
            found.append((doc.name, n, match.group(1)))
    return found


def test_docs_have_tested_blocks() -> None:
    assert len(_blocks()) >= 2


@pytest.mark.parametrize(("doc", "n", "script"), _blocks(), ids=lambda v: str(v)[:20])
def test_doc_block_runs(tmp_path: Path, doc: str, n: int, script: str) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MAS_CONFIG", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{doc} block {n} failed:\n{script}\n{result.stdout}\n{result.stderr}"
