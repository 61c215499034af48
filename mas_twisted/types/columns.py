# SPDX-License-Identifier: AGPL-3.0-only
"""How the models are stored: column codecs and the one row mapper.

- Codecs: the one place where a JSON ``TEXT`` column or a boolean column (0/1 on SQLite) is
  read and written (:func:`db_bool`, :func:`db_json`, :func:`to_db_json`), and the
  :class:`Codec` values the models' fields name (:data:`INT`, :data:`BOOL`, :data:`JSON`, ...).
- The mapper: a model declares each field's column with :func:`column` (the column's name if
  it is not the field's, its codec; a field may span several columns) as the metadata of its
  ``attrs.field`` (``attrs.field(metadata=column(...))``) and is decorated with
  :func:`mapped`, which generates ``COLUMNS`` (the table's columns in field order),
  ``from_row(row)`` and ``to_row()`` once per class. Both are compiled Python functions, the
  code one would write by hand (positional arguments, one codec call per coded column): a
  generic loop over the fields costs 1.7-2× per row (bench/mapper/from_row.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, overload

import attrs


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


# -- codecs --------------------------------------------------------------------------------
@attrs.frozen
class Codec:
    """How a field is stored. ``read`` turns the column value (one argument per column) into
    the field's value, ``write`` the field's value into the column value (a tuple of values
    when the field spans several columns); ``None``: as it is."""

    read: Callable[..., Any] | None = None
    write: Callable[[Any], Any] | None = None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _json_array(value: Any) -> tuple[Any, ...]:
    return tuple(db_json(value) or ())


def _to_json_array(value: Any) -> str | None:
    return to_db_json(list(value))


#: An integer column (``int()`` on read).
INT = Codec(int)
#: A nullable integer column.
OPTIONAL_INT = Codec(_optional_int)
#: A boolean column (SQLite's 0/1 read as ``bool``; written as the ``bool``).
BOOL = Codec(db_bool)
#: A JSON ``TEXT`` column.
JSON = Codec(db_json, to_db_json)
#: A JSON array in ``TEXT``, as a tuple (``NULL``: empty).
JSON_ARRAY = Codec(_json_array, _to_json_array)


# -- the mapper ----------------------------------------------------------------------------
_COLUMNS = "mas_twisted.columns"
_CODEC = "mas_twisted.codec"


def column(*names: str, codec: Codec | None = None) -> dict[str, Any]:
    """The ``metadata`` of an ``attrs.field`` stored in column ``names`` (none: the field's
    name; several: a field spanning them, read and written by ``codec``)."""
    return {_COLUMNS: names, _CODEC: codec}


class Row:
    """Base of the mapped models: what :func:`mapped` adds, for the type checker."""

    __slots__ = ()

    #: The table's columns, in the order ``from_row`` reads them.
    COLUMNS: ClassVar[tuple[str, ...]]

    if TYPE_CHECKING:

        @classmethod
        def from_row(cls, row: Sequence[Any]) -> Self: ...

        def to_row(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=type[Row])


def _layout(cls: type) -> list[tuple[str, tuple[str, ...], Codec | None]]:
    """``(field, columns, codec)`` of each field of ``cls``, in field order."""
    layout = []
    for field in attrs.fields(cls):
        names = field.metadata.get(_COLUMNS) or (field.name,)
        codec = field.metadata.get(_CODEC)
        if len(names) > 1 and (codec is None or codec.read is None or codec.write is None):
            raise TypeError(f"{cls.__name__}.{field.name}: a field over several columns needs a codec")
        layout.append((field.name, tuple(names), codec))
    return layout


def _compile(source: str, name: str, namespace: dict[str, Any]) -> Any:
    exec(compile(source, f"<mapped {name}>", "exec"), namespace)
    return namespace[name]


def _make_from_row(cls: type, layout: list[tuple[str, tuple[str, ...], Codec | None]]) -> Any:
    namespace: dict[str, Any] = {"cls": cls}
    values: list[str] = []
    args: list[str] = []
    for i, (_name, names, codec) in enumerate(layout):
        variables = [f"v{i}_{j}" for j in range(len(names))]
        values.extend(variables)
        if codec is None or codec.read is None:
            args.append(variables[0])
        else:
            namespace[f"r{i}"] = codec.read
            args.append(f"r{i}({', '.join(variables)})")
    source = f"def from_row(cls, row):\n    {', '.join(values)}, = row\n    return cls({', '.join(args)})\n"
    return classmethod(_compile(source, "from_row", namespace))


def _make_to_row(layout: list[tuple[str, tuple[str, ...], Codec | None]]) -> Any:
    namespace: dict[str, Any] = {}
    lines: list[str] = []
    items: list[str] = []
    for i, (name, names, codec) in enumerate(layout):
        if codec is None or codec.write is None:
            items.append(f"{names[0]!r}: self.{name}")
            continue
        namespace[f"w{i}"] = codec.write
        if len(names) == 1:
            items.append(f"{names[0]!r}: w{i}(self.{name})")
        else:
            variables = [f"v{i}_{j}" for j in range(len(names))]
            lines.append(f"    {', '.join(variables)}, = w{i}(self.{name})\n")
            items.extend(f"{n!r}: {v}" for n, v in zip(names, variables))
    source = "def to_row(self):\n" + "".join(lines) + "    return {" + ", ".join(items) + "}\n"
    return _compile(source, "to_row", namespace)


@overload
def mapped(cls: R, *, to_row: bool = True) -> R: ...
@overload
def mapped(*, to_row: bool = True) -> Callable[[R], R]: ...
def mapped(cls: R | None = None, *, to_row: bool = True) -> R | Callable[[R], R]:
    """Give the ``attrs`` class ``cls`` its ``COLUMNS``, ``from_row`` and (unless
    ``to_row=False``) ``to_row``, from its fields' :func:`column` metadata. Apply it over
    ``@attrs.frozen``."""

    def decorate(cls: R) -> R:
        layout = _layout(cls)
        cls.COLUMNS = tuple(n for _field, names, _codec in layout for n in names)
        cls.from_row = _make_from_row(cls, layout)  # type: ignore[method-assign]
        if to_row:
            cls.to_row = _make_to_row(layout)  # type: ignore[method-assign]
        return cls

    return decorate if cls is None else decorate(cls)
