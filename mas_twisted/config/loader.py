# SPDX-License-Identifier: AGPL-3.0-only
"""Finding, reading and merging configuration files the way ``mas-cli`` does.

MAS (``crates/cli/src/commands/mod.rs``) reads ``-c`` files in order, else the
colon-separated ``MAS_CONFIG`` list, else ``./config.yaml``; it starts from the ``MAS_*``
environment (split on ``_``) and *adjoin-merges* each file on top (figment ``admerge``):
mappings merge key by key, lists are concatenated, and any other value is replaced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from mas_twisted.api.errors import ConfigError

DEFAULT_CONFIG_PATH = "config.yaml"


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's scalars, as MAS's reader has.

    PyYAML implements YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans and ``0600``
    is octal; in YAML 1.2 (MAS) they are the strings ``"yes"``… and the integer 600, and
    octal is written ``0o600``; dates stay strings.
    """

    yaml_implicit_resolvers = {
        key: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag
            not in (
                "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:timestamp",
            )
        ]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return loader.construct_scalar(node).lower() == "true"


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    value = loader.construct_scalar(node)
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def config_paths(cli_paths: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The files to read, in merge order."""
    if cli_paths:
        return list(cli_paths)
    environ = os.environ if environ is None else environ
    value = environ.get("MAS_CONFIG")
    if value:
        return [p for p in value.split(":") if p]
    return [DEFAULT_CONFIG_PATH]


def admerge(base: Any, incoming: Any) -> Any:
    """figment's adjoin-merge: mappings recurse, lists concatenate, the rest is replaced."""
    if isinstance(base, dict) and isinstance(incoming, dict):
        merged = dict(base)
        for key, value in incoming.items():
            merged[key] = admerge(merged[key], value) if key in merged else value
        return merged
    if isinstance(base, list) and isinstance(incoming, list):
        return base + incoming
    return incoming


def read_yaml_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}")
    except OSError as e:
        raise ConfigError(f"could not read configuration file {path}: {e.strerror}")
    try:
        data = yaml.load(text, Loader=Yaml12Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"could not parse {path}: {where}{e.problem or e}")
    except yaml.YAMLError as e:
        raise ConfigError(f"could not parse {path}: {e}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a mapping at the top level")
    return data


def env_layer(environ: Mapping[str, str], known_sections: Iterable[str]) -> dict[str, Any]:
    """``MAS_HTTP_PUBLIC_BASE=…`` style overrides (figment ``Env::prefixed("MAS_").split("_")``).

    Only variables whose first segment names a configuration section are taken, so that
    ``MAS_CONFIG`` and unrelated ``MAS_*`` variables stay out of the tree.
    """
    known = set(known_sections)
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("MAS_"):
            continue
        parts = [p for p in name[4:].lower().split("_") if p]
        if not parts or parts[0] not in known:
            continue
        try:
            parsed = yaml.load(value, Loader=Yaml12Loader) if value else value
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, (dict, list)):
            parsed = value
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = parsed
    return tree


def load_raw_config(
    paths: Sequence[str], environ: Mapping[str, str] | None = None, known_sections: Iterable[str] = ()
) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = env_layer(environ, known_sections)
    for path in paths:
        merged = admerge(merged, read_yaml_file(path))
    return merged
