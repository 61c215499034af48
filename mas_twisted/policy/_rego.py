# SPDX-License-Identifier: AGPL-3.0-only
"""The pieces of Rego's evaluation model the ported policies need.

MAS's policies are Rego (OPA) rules over JSON ``input`` and ``data``. Porting them faithfully
means keeping Rego's notion of *undefined*, which is not ``null``:

- a missing key is :data:`UNDEFINED`; a JSON ``null`` is a value, and a *truthy* one (in a
  rule body only ``false`` and undefined fail, so ``not input.x`` holds for a missing or
  ``false`` ``x`` but not for ``null``);
- a function called with an undefined argument is undefined, and so is ``not f(undefined)``
  (MAS's tests rely on this: ``not secure_url(input.client_metadata.tos_uri)`` is no
  violation when there is no ``tos_uri``);
- a built-in given the wrong types (``regex.match`` on a number) is undefined, so ``not`` of
  it holds.

Built-ins reproduced: ``regex.match`` (RE2 semantics: unanchored search, ``$`` only at the
very end), ``glob.match`` with delimiters (gobwas/glob: ``*``, ``**``, ``?``, ``[…]``,
``{a,b}``), ``net.cidr_contains``, ``sprintf("%s")``, plus OPA's ordering of values, used to
list a violation set in OPA's order.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


#: A reference that does not exist (a missing key), as opposed to ``None`` (JSON ``null``).
UNDEFINED: Any = _Undefined()


def get(value: Any, *path: str) -> Any:
    """``value.a.b…``: the nested value, or :data:`UNDEFINED` as soon as a key is missing."""
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return UNDEFINED
    return value


def defined(value: Any) -> bool:
    return value is not UNDEFINED


def truthy(value: Any) -> bool:
    """Whether ``value`` as a rule-body expression succeeds: defined and not ``false``."""
    return value is not UNDEFINED and value is not False


def members(collection: Any) -> Iterator[Any]:
    """``some x in collection``: array elements or object values; nothing otherwise."""
    if isinstance(collection, list):
        yield from collection
    elif isinstance(collection, dict):
        yield from collection.values()


def count(value: Any) -> int | None:
    """``count(value)`` (characters of a string), or ``None`` when undefined for its type."""
    if isinstance(value, (str, list, dict)):
        return len(value)
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- regex.match ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _compile_re2(pattern: str) -> re.Pattern[str] | None:
    """Compile an RE2 pattern for Python's ``re``: outside character classes, ``$`` (end of
    text in RE2, but also before a final newline in Python) becomes ``\\Z``, and ``\\z``
    becomes ``\\Z``."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" and not in_class else ch + nxt)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            # A ``]`` right after ``[`` or ``[^`` is a literal.
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("\\]")
                i += 1
        elif ch == "$":
            out.append("\\Z")
        else:
            out.append(ch)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        return None


def regex_match(pattern: Any, value: Any) -> bool | None:
    """``regex.match(pattern, value)``; ``None`` (undefined) for non-strings or a bad pattern."""
    if not isinstance(pattern, str) or not isinstance(value, str):
        return None
    compiled = _compile_re2(pattern)
    if compiled is None:
        return None
    return compiled.search(value) is not None


# -- glob.match -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _compile_glob(pattern: str, delimiters: str) -> re.Pattern[str] | None:
    not_delim = f"[^{re.escape(delimiters)}]" if delimiters else "."
    out = []
    i = 0
    depth = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                out.append(".*")
                i += 2
                continue
            out.append(f"{not_delim}*")
        elif ch == "?":
            out.append(not_delim)
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                return None
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        elif ch == "{":
            depth += 1
            out.append("(?:")
        elif ch == "}" and depth:
            depth -= 1
            out.append(")")
        elif ch == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(ch))
        i += 1
    if depth:
        return None
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return None


def glob_match(pattern: Any, delimiters: list[str], value: Any) -> bool | None:
    """``glob.match(pattern, delimiters, value)``; ``None`` (undefined) for non-strings."""
    if not isinstance(pattern, str) or not isinstance(value, str):
        return None
    compiled = _compile_glob(pattern, "".join(delimiters))
    if compiled is None:
        return None
    return compiled.fullmatch(value) is not None


# -- net.cidr_contains --------------------------------------------------------------------------------
def cidr_contains(cidr: Any, ip: Any) -> bool | None:
    """``net.cidr_contains(cidr, ip_or_cidr)``; ``None`` (undefined) when either does not parse."""
    if not isinstance(cidr, str) or not isinstance(ip, str):
        return None
    try:
        network = ipaddress.ip_network(cidr, strict=False)
        inner = ipaddress.ip_network(ip, strict=False) if "/" in ip else ipaddress.ip_network(ip)
    except ValueError:
        return None
    if network.version != inner.version:
        return False
    return inner.subnet_of(network)  # type: ignore[arg-type]


# -- sprintf -----------------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """What ``sprintf("%s", [value])`` prints for a JSON value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# -- OPA's ordering of values --------------------------------------------------------------------------
def _type_rank(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if is_number(value):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, list):
        return 6
    return 7


def compare(a: Any, b: Any) -> int:
    """OPA's total order on JSON values (``ast.Compare``): by type, then by value; objects
    by sorted keys, key then value, then size."""
    rank_a, rank_b = _type_rank(a), _type_rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if isinstance(a, list):
        for x, y in zip(a, b):
            c = compare(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if isinstance(a, dict):
        keys_a, keys_b = sorted(a), sorted(b)
        for ka, kb in zip(keys_a, keys_b):
            c = compare(ka, kb)
            if c:
                return c
            c = compare(a[ka], b[kb])
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    return (a > b) - (a < b)


def as_set(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Rego set of objects: duplicates dropped, in OPA's order."""
    unique: dict[str, dict[str, Any]] = {}
    for item in items:
        unique.setdefault(json.dumps(item, sort_keys=True), item)
    return sorted(unique.values(), key=functools.cmp_to_key(compare))


# -- data merging (MAS's ``merge_data``) -------------------------------------------------------------
def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    return "null"


def merge_data(left: Any, right: Any) -> Any:
    """Merge policy data ``right`` over ``left`` as MAS does: objects recurse, arrays
    concatenate, scalars of the same kind are replaced, ``null`` is replaced by anything
    and replaces anything.

    Raises:
        ValueError: ``Cannot merge a <kind> into a <kind>`` for other mixes of kinds.
    """
    if isinstance(left, dict) and isinstance(right, dict):
        out = dict(left)
        for key, value in right.items():
            out[key] = merge_data(out[key], value) if key in out else value
        return out
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    if left is None or right is None or _kind(left) == _kind(right):
        return right
    raise ValueError(f"Cannot merge a {_kind(right)} into a {_kind(left)}")
