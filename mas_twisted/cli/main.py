# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli``: MAS's command tree (``crates/cli/src/commands/``).

Each command group lives in its own module exposing ``register(subparsers, common)``; a
leaf command sets ``func(args) -> int``. ``-c/--config`` is global and repeatable, as in
MAS (given before or after the subcommand).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from mas_twisted import __version__
from mas_twisted.api.errors import ConfigError, MasError

#: Command groups, in MAS's ``--help`` order. Only what works is listed.
COMMAND_MODULES: tuple[str, ...] = (
    "mas_twisted.cli.config",
    "mas_twisted.cli.database",
    "mas_twisted.cli.server",
)


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        action="append",
        dest="config_files",
        default=argparse.SUPPRESS,
        metavar="CONFIG",
        help="Path to the configuration file (repeatable; files are merged in order)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="mas-cli",
        description="Matrix Authentication Service (mas-twisted)",
        parents=[common],
    )
    parser.add_argument("-V", "--version", action="version", version=f"mas-cli {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "config_files"):
        args.config_files = []
    setup_logging(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    func = getattr(args, "func", None)
    if func is None:
        if args.command is None:
            # MAS runs the server when no subcommand is given.
            from mas_twisted.cli.server import run_server

            return run_server(args)
        parser.parse_args(list(argv or sys.argv[1:]) + ["--help"])
        return 2
    try:
        return int(func(args) or 0)
    except ConfigError as e:
        print(f"mas-cli: {e}", file=sys.stderr)
        return 1
    except MasError as e:
        print(f"mas-cli: {e.msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
