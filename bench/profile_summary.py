# SPDX-License-Identifier: AGPL-3.0-only
"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks: ``frame;frame;… COUNT``).

Prints the share of samples spent in each package (by the leaf frame's file), in each function itself (the leaf frame: where the CPU
is) and in each function with what it calls (inclusive; a function counted once per stack
even when recursive; the reactor's own loop and dispatch left out), the top N of each.
Samples of pool threads waiting for work are dropped. Frames are shown as py-spy writes them,
``function (file:line)``, with the line dropped so that one function is one row.

Usage: python bench/profile_summary.py PROFILE.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_LINENO = re.compile(r":\d+\)$")
#: Frames that every request passes through (twistd's start-up, the reactor's loop and
#: dispatch): left out of the inclusive list, where they would fill the top.
_DISPATCH = re.compile(
    r"\((twistd|twisted/application/|twisted/scripts/|twisted/internet/base\.py|twisted/python/log\.py"
    r"|twisted/python/context\.py|twisted/internet/posixbase\.py|twisted/internet/epollreactor\.py)"
)
#: Leaf frames of a thread waiting for work, which py-spy does not always see as idle.
_IDLE = ("Condition.wait (threading.py)",)


def _frame(frame: str) -> str:
    return _LINENO.sub(")", frame.strip())


_FILE = re.compile(r"\(([^():]+)(?::\d+)?\)$")


def _package(frame: str) -> str:
    """Where a frame's code lives: ``twisted/web``, ``mas_twisted/storage``, ``json``, …"""
    match = _FILE.search(frame)
    if not match:
        return "?"
    if match.group(1).startswith("<"):
        return "generated code"  # attrs' __init__ and the like
    parts = match.group(1).split("/")
    if parts[0] in ("twisted", "mas_twisted") and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def summarise(path: Path, top: int = 25) -> str:
    packages: Counter[str] = Counter()
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        stack, count = match.group(1), int(match.group(2))
        frames = [_frame(f) for f in stack.split(";") if f]
        # py-spy puts the thread (or process) first when asked; keep Python frames only.
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        if frames[-1] in _IDLE:
            continue
        total += count
        self_counts[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            if not _DISPATCH.search(frame):
                inclusive[frame] += count
    if total == 0:
        return f"{path.name}: no samples\n"
    out = [f"{path.name}: {total} samples"]
    out.append(
        "  self, by package: "
        + ", ".join(f"{name} {100 * count / total:.0f}%" for name, count in packages.most_common(12))
    )
    out.append(f"  self (top {top}):")
    for frame, count in self_counts.most_common(top):
        out.append(f"    {100 * count / total:5.1f}%  {frame}")
    out.append(f"  inclusive, without the reactor's loop (top {top}):")
    for frame, count in inclusive.most_common(top):
        out.append(f"    {100 * count / total:5.1f}%  {frame}")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(args.profile, args.top), end="")


if __name__ == "__main__":
    main()
