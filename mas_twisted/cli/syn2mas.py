# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli syn2mas``: move a Synapse deployment's users and sessions in (MAS's
``crates/cli/src/commands/syn2mas.rs``), and the seed's ``syn2mas`` command.

``mas-cli [-c config.yaml] syn2mas --synapse-config homeserver.yaml [--synapse-config more.yaml]
[--synapse-database-uri URI] [--ignore-missing-auth-providers] {check | migrate [--dry-run]}``:
the ``syn2mas`` options, like ``-c``, may stand before or after the subcommand (MAS's global
flags). ``check`` exits 0 when all is well, 11 with warnings only and 10 with errors;
``migrate`` exits 10 on errors and otherwise migrates (warnings do not stop it), 0 when done.

``syn2mas --command=advisor --synapseConfigFile=homeserver.yaml [--masConfigFile config.yaml]``
and ``syn2mas --command migrate --synapseConfigFile … --masConfigFile … [--dryRun [false]]
[--upstreamProviderMapping <synapse_idp_id>:<provider id>]…`` (the seed's, after MAS's old
TypeScript tool) run the same code: advisor is ``check`` (without ``--masConfigFile`` and with
no ``MAS_CONFIG`` or ``./config.yaml``, only Synapse's side is checked), and ``--dryRun``
alone or ``--dryRun true`` is ``--dry-run``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from mas_twisted.cli.main import _AppendConfig


def _add_options(parser: argparse.ArgumentParser, synapse_configs: list[str]) -> None:
    parser.add_argument(
        "--synapse-config",
        action=_AppendConfig,
        collected=synapse_configs,
        dest="synapse_config_files",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="Synapse's configuration (repeatable; merged as Synapse does)",
    )
    parser.add_argument(
        "--synapse-database-uri",
        default=argparse.SUPPRESS,
        metavar="URI",
        help="Synapse's database instead of the configured one (postgresql://… or sqlite:///path)",
    )
    parser.add_argument(
        "--ignore-missing-auth-providers",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Skip links to providers missing from Synapse's configuration instead of failing",
    )


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    synapse_configs: list[str] = []
    options = argparse.ArgumentParser(add_help=False)
    _add_options(options, synapse_configs)
    parser = subparsers.add_parser(
        "syn2mas",
        parents=[common, options],
        help="Migrate from Synapse's built-in authentication",
        description="Check a Synapse deployment and migrate its users, devices and tokens here.",
    )
    commands = parser.add_subparsers(dest="syn2mas_command", metavar="COMMAND")
    commands.required = True
    check = commands.add_parser(
        "check",
        parents=[common, options],
        help="Check the setup for problems before migrating (Synapse may be running)",
    )
    check.set_defaults(func=run_syn2mas)
    migrate = commands.add_parser(
        "migrate",
        parents=[common, options],
        help="Migrate (Synapse must be stopped)",
    )
    migrate.add_argument(
        "--dry-run",
        action="store_true",
        help="Write everything, then roll it back (safe while Synapse runs)",
    )
    migrate.set_defaults(func=run_syn2mas)


def run_syn2mas(args: argparse.Namespace) -> int:
    from mas_twisted.syn2mas.runner import Options, run

    synapse_files = list(getattr(args, "synapse_config_files", []))
    if not synapse_files:
        print("mas-cli: give Synapse's configuration with --synapse-config homeserver.yaml", file=sys.stderr)
        return 1
    options = Options(
        command=args.syn2mas_command,
        config_files=list(args.config_files),
        synapse_config_files=synapse_files,
        synapse_database_uri=getattr(args, "synapse_database_uri", None),
        ignore_missing_auth_providers=bool(getattr(args, "ignore_missing_auth_providers", False)),
        dry_run=bool(getattr(args, "dry_run", False)),
    )
    return run(options, out=sys.stdout)


# -- the seed's `syn2mas` ----------------------------------------------------------------------
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _mapping(value: str) -> tuple[str, str]:
    synapse_id, sep, provider_id = value.rpartition(":")
    if not sep or not synapse_id or not provider_id:
        raise argparse.ArgumentTypeError(f"expected <synapse auth provider>:<provider id>, got {value!r}")
    return synapse_id, provider_id


def build_seed_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syn2mas", description="Migrate a Synapse homeserver's accounts (advisor or migrate)."
    )
    parser.add_argument("--command", required=True, choices=("advisor", "migrate"))
    parser.add_argument("--synapseConfigFile", action="append", required=True, dest="synapse_config_files")
    parser.add_argument("--masConfigFile", action="append", dest="config_files")
    parser.add_argument("--synapseDatabaseUri", dest="synapse_database_uri")
    parser.add_argument(
        "--dryRun", nargs="?", const=True, default=False, type=_flag, dest="dry_run", metavar="true|false"
    )
    parser.add_argument(
        "--upstreamProviderMapping", action="append", type=_mapping, default=[], dest="provider_mapping"
    )
    parser.add_argument(
        "--ignoreMissingAuthProviders", action="store_true", dest="ignore_missing_auth_providers"
    )
    return parser


def seed_main(argv: Sequence[str] | None = None) -> int:
    """The ``syn2mas`` console script."""
    from mas_twisted.cli.main import setup_logging
    from mas_twisted.syn2mas.runner import Options, run

    args = build_seed_parser().parse_args(argv)
    setup_logging()
    without_mas_config = (
        args.command == "advisor"
        and not args.config_files
        and not os.environ.get("MAS_CONFIG")
        and not os.path.exists("config.yaml")
    )
    if args.command == "migrate" and not args.config_files and not os.environ.get("MAS_CONFIG"):
        print("syn2mas: migrate needs --masConfigFile config.yaml", file=sys.stderr)
        return 1
    options = Options(
        command="check" if args.command == "advisor" else "migrate",
        config_files=list(args.config_files or []),
        synapse_config_files=args.synapse_config_files,
        synapse_database_uri=args.synapse_database_uri,
        ignore_missing_auth_providers=args.ignore_missing_auth_providers,
        dry_run=bool(args.dry_run) and args.command == "migrate",
        provider_mapping=dict(args.provider_mapping),
        without_mas_config=without_mas_config,
    )
    from mas_twisted.api.errors import MasError

    try:
        return run(options, out=sys.stdout)
    except MasError as e:
        print(f"syn2mas: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(seed_main())
