# SPDX-License-Identifier: AGPL-3.0-only
"""Building blocks of the configuration: the section base class and a typed reader.

Every section module (``mas_twisted/config/<section>.py``) defines one ``Config`` subclass
whose ``section`` is MAS's YAML key, reads its values through a :class:`Reader` (so every
error names the YAML path and the bad value in one line) and sets every attribute on every
path, like Synapse's ``synapse/config/_base.py``.
"""

from __future__ import annotations

import abc
import builtins
import ipaddress
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from mas_twisted.api.errors import ConfigError, PathElement
from mas_twisted.util.ulid import is_ulid

T = TypeVar("T")

JsonDict = dict[str, Any]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def describe(value: Any) -> str:
    """Show a bad value in an error message, briefly."""
    if isinstance(value, (dict, list)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        return kind
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


class Reader:
    """Typed access to one mapping of the YAML tree, remembering where it is.

    Example::

        r = Reader(raw.get("passwords"), ("passwords",))
        enabled = r.bool("enabled", True)
    """

    def __init__(self, data: Any, path: Sequence[PathElement]):
        self.path: tuple[PathElement, ...] = tuple(path)
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected a mapping, got {describe(data)}", self.path)
        self.data: Mapping[str, Any] = data

    # -- plumbing -------------------------------------------------------------------------
    def at(self, key: PathElement) -> tuple[PathElement, ...]:
        return self.path + (key,)

    def error(self, key: PathElement | None, msg: str) -> ConfigError:
        return ConfigError(msg, self.path if key is None else self.at(key))

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def _get(self, key: str, default: Any, required: bool) -> Any:
        value = self.data.get(key)
        if value is None:
            if required or default is MISSING:
                raise self.error(key, "missing required value")
            return default
        return value

    # -- scalars --------------------------------------------------------------------------
    def str(
        self,
        key: str,
        default: Any = None,
        *,
        required: bool = False,
        allow_empty: bool = True,
        choices: Sequence[str] | None = None,
    ) -> Any:
        value = self._get(key, default, required)
        if value is None or value is default and not required:
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(key, f"expected a string, got {describe(value)}")
        value = value if isinstance(value, str) else str(value)
        if not allow_empty and not value:
            raise self.error(key, "must not be empty")
        if choices is not None and value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}; got {describe(value)}")
        return value

    def enum(
        self,
        key: builtins.str,
        choices: Sequence[builtins.str],
        default: Any = None,
        *,
        required: builtins.bool = False,
    ) -> Any:
        return self.str(key, default, required=required, choices=choices)

    def bool(self, key: builtins.str, default: Any = MISSING) -> Any:
        value = self._get(key, default, False)
        if value is default:
            return value
        if not isinstance(value, bool):
            raise self.error(key, f"expected a boolean (true or false), got {describe(value)}")
        return value

    def int(
        self,
        key: builtins.str,
        default: Any = MISSING,
        *,
        required: builtins.bool = False,
        min: int | None = None,
        max: int | None = None,
    ) -> Any:
        value = self._get(key, default, required)
        if value is default and not required:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self.error(key, f"expected an integer, got {describe(value)}")
        if min is not None and value < min:
            raise self.error(key, f"must be at least {min}, got {value}")
        if max is not None and value > max:
            raise self.error(key, f"must be at most {max}, got {value}")
        return value

    def float(
        self,
        key: builtins.str,
        default: Any = MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> Any:
        value = self._get(key, default, False)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {describe(value)}")
        value = float(value)
        if min is not None and value < min:
            raise self.error(key, f"must be at least {min}, got {value}")
        if max is not None and value > max:
            raise self.error(key, f"must be at most {max}, got {value}")
        return value

    def url(
        self,
        key: builtins.str,
        default: Any = None,
        *,
        required: builtins.bool = False,
        schemes: Sequence[builtins.str] | None = None,
    ) -> Any:
        value = self.str(key, default, required=required)
        if value is None or value is default:
            return value
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc:
            raise self.error(key, f"expected an absolute URL, got {describe(value)}")
        if schemes is not None and parts.scheme not in schemes:
            raise self.error(key, f"expected a {' or '.join(schemes)} URL, got {describe(value)}")
        return value

    def ulid(self, key: builtins.str, default: Any = None, *, required: builtins.bool = False) -> Any:
        value = self.str(key, default, required=required)
        if value is None or value is default:
            return value
        if not is_ulid(value):
            raise self.error(
                key, f"expected a ULID (26 characters of Crockford base32), got {describe(value)}"
            )
        return value.upper()

    def ip_network(
        self, key: builtins.str, value: Any, index: builtins.int
    ) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        try:
            return ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise ConfigError(
                f"expected an IP address or CIDR range, got {describe(value)}", self.at(key) + (index,)
            )

    # -- containers -----------------------------------------------------------------------
    def list(self, key: builtins.str, default: Any = (), *, required: builtins.bool = False) -> Any:
        value = self._get(key, default, required)
        if value is default and not required:
            return list(value) if isinstance(value, (list, tuple)) else value
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {describe(value)}")
        return value

    def str_list(
        self, key: builtins.str, default: Any = (), *, required: builtins.bool = False
    ) -> builtins.list[builtins.str]:
        items = self.list(key, default, required=required)
        out = []
        for i, item in enumerate(items or ()):
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ConfigError(f"expected a string, got {describe(item)}", self.at(key) + (i,))
            out.append(str(item))
        return out

    def child(self, key: builtins.str) -> Reader:
        return Reader(self.data.get(key), self.at(key))

    def children(self, key: builtins.str, default: Any = ()) -> Iterator[Reader]:
        for i, item in enumerate(self.list(key, default) or ()):
            yield Reader(item, self.at(key) + (i,))

    def mapping(self, key: builtins.str, default: Any = None) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {describe(value)}")
        return dict(value)

    # -- x / x_file pairs -----------------------------------------------------------------
    def secret(
        self,
        key: builtins.str,
        *,
        required: builtins.bool = False,
        strip: builtins.bool = False,
        binary: builtins.bool = False,
        file_suffix: builtins.str = "_file",
    ) -> Any:
        """Read a value given inline as ``key`` or in a file named by ``key_file``.

        MAS accepts exactly one of the two. ``strip`` trims surrounding whitespace of a value
        read from a file (MAS does for ``matrix.secret_file``); ``binary`` returns bytes.
        """
        file_key = key + file_suffix
        inline = self.data.get(key)
        path = self.data.get(file_key)
        if inline is not None and path is not None:
            raise self.error(key, f"set either {key} or {file_key}, not both")
        if inline is not None:
            value = self.str(key)
            return value.encode() if binary else value
        if path is not None:
            path = self.str(file_key)
            data = read_file(path, self.at(file_key), binary=True)
            if not binary:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.error(file_key, f"file {path} is not UTF-8 text")
                return text.strip() if strip else text
            return data.strip() if strip else data
        if required:
            raise self.error(key, f"missing required value (set {key} or {file_key})")
        return None


def read_file(path: str, config_path: Sequence[PathElement], *, binary: bool = False) -> Any:
    """Read a file named in the config, turning OS errors into a one-line :class:`ConfigError`."""
    try:
        with open(os.path.expanduser(path), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}", config_path)
    except IsADirectoryError:
        raise ConfigError(f"expected a file, got a directory: {path}", config_path)
    except OSError as e:
        raise ConfigError(f"could not read {path}: {e.strerror}", config_path)
    return data if binary else data.decode("utf-8")


class Config(abc.ABC):
    """One top-level section of the MAS configuration file.

    Subclasses set ``section`` to MAS's YAML key and implement :meth:`read_config`, which
    receives a :class:`Reader` positioned on that key (an empty one if the section is
    absent) and the whole raw tree for the rare cross-section lookup.
    """

    section: ClassVar[str]
    #: MAS refuses to start without these sections (``secrets`` and ``matrix``).
    required: ClassVar[bool] = False
    #: The section is a YAML list (``clients``), read from the raw tree by ``read_config``.
    list_section: ClassVar[bool] = False

    def __init__(self, root: Any = None):
        self.root = root

    @abc.abstractmethod
    def read_config(self, r: Reader, raw: JsonDict) -> None:
        """Read this section from ``r`` and set every attribute."""

    @abc.abstractmethod
    def to_dict(self) -> Any:
        """The section as MAS serialises its parsed form (``mas-cli config dump``).

        Defaults are included except where MAS skips them (``skip_serializing_if``); a value
        given as ``x_file`` is printed as that path, one given inline as itself, as MAS does.
        """

    def is_default(self) -> bool:
        """Whether ``config dump`` leaves the section out: MAS skips some sections when
        they hold nothing but defaults. Sections MAS always prints keep ``False``."""
        return False

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        """Commented YAML for ``mas-cli config generate``; empty when the defaults need no text."""
        return ""

    def validate_config(self, root: Any) -> None:
        """Cross-section checks, run once every section is read."""


def without_none(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """A mapping of the pairs whose value is not None, in order (serde's ``skip_serializing_if
    = "Option::is_none"``)."""
    return {key: value for key, value in pairs if value is not None}


def first_not_none(*values: T | None) -> T | None:
    for value in values:
        if value is not None:
            return value
    return None


Parser = Callable[[Reader], T]
