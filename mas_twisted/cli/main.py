# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli``: MAS's command tree (``crates/cli/src/commands/``).

Each command group lives in its own module exposing ``register(subparsers, common)``; a
leaf command sets ``func(args) -> int``. ``-c/--config`` is global and repeatable, as in
MAS: it may be given at any level of the command (``mas-cli -c a.yaml config check -c
b.yaml``) and every file is kept, in command-line order.

Errors are one line on stderr and exit status 1: a configuration error names the YAML path,
a database error the database, and an unexpected error its type and message (its traceback
is logged at DEBUG, shown with ``-v`` where the command has it or ``MAS_LOG_LEVEL=debug``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from mas_twisted import __version__
from mas_twisted.api.errors import ConfigError, MasError
from mas_twisted.storage.engines._base import first_line

#: Command groups, in MAS's ``--help`` order. Only what works is listed.
COMMAND_MODULES: tuple[str, ...] = (
    "mas_twisted.cli.config",
    "mas_twisted.cli.database",
    "mas_twisted.cli.server",
    "mas_twisted.cli.worker",
    "mas_twisted.cli.manage",
    "mas_twisted.cli.templates",
    "mas_twisted.cli.syn2mas",
    "mas_twisted.cli.doctor",
)


logger = logging.getLogger(__name__)


class _AppendConfig(argparse.Action):
    """``-c``: appends to one list shared by every level of the command.

    argparse parses each subcommand into a fresh namespace and then copies it over its
    parent's, so a plain ``append`` action at two levels would keep only the last level's
    files. Every level's action appends to the same list instead (one per parser built by
    :func:`build_parser`), which therefore holds every file in command-line order.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, collected: list[str], **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self._collected = collected

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        self._collected.append(values)
        setattr(namespace, self.dest, self._collected)


def _common_parser(collected: list[str]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        action=_AppendConfig,
        collected=collected,
        dest="config_files",
        default=argparse.SUPPRESS,
        metavar="CONFIG",
        help="Path to the configuration file (repeatable; files are merged in order)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``mas-cli`` parser; build a new one for every command line it parses."""
    common = _common_parser([])
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
    level_name = (os.environ.get("MAS_LOG_LEVEL") or os.environ.get("RUST_LOG") or "").lower()
    debug = getattr(args, "verbose", False) or level_name in ("debug", "trace")
    setup_logging(logging.DEBUG if debug else logging.INFO)
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
    except Exception as e:
        # A bug or an error nobody anticipated: still one line; the traceback at DEBUG.
        logger.debug("Unexpected error", exc_info=True)
        detail = f"{type(e).__name__}: {first_line(e)}" if str(e).strip() else type(e).__name__
        print(
            f"mas-cli: unexpected error: {detail} (set MAS_LOG_LEVEL=debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
