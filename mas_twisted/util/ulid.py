# SPDX-License-Identifier: AGPL-3.0-only
"""ULIDs (the ids of every row, as in MAS): 26 Crockford base-32 characters, a 48-bit
millisecond timestamp then 80 random bits, so that ids sort by creation time as text.

Pure functions over ``python-ulid``; importable from any layer (config, types, templates).
"""

from __future__ import annotations

import re

from ulid import ULID

#: Crockford's base-32 alphabet, as ULIDs write it.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# 26 characters; the first is at most 7 (a 128-bit value). Either case is the same ULID.
_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)

_MAX_MS = 1 << 48


def is_ulid(value: str) -> bool:
    """Whether ``value`` is written as a ULID (either case)."""
    return bool(_ULID_RE.match(value))


def make_ulid(ms: int, randomness: bytes) -> str:
    """The ULID stamped ``ms`` with the 10 bytes ``randomness``."""
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + randomness))


def ulid_ms(value: str) -> int:
    """The timestamp of a ULID, in milliseconds."""
    return int(ULID.from_str(value).milliseconds)


def max_ulid_at(ms: int) -> str:
    """The greatest ULID whose timestamp is ``ms``: an id bound for "created at or before ``ms``".

    ULIDs sort by creation time as text, so cleanup jobs compare ids against this bound (MAS's
    ``cleanup(since, until, limit)`` over grants takes such an ``until``).
    """
    if not 0 <= ms < _MAX_MS:
        raise ValueError(f"timestamp out of the ULID range: {ms}")
    return "".join(CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5)) + "Z" * 16
