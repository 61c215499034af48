# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli config``: check, dump, generate and sync the configuration.

MAS behaviour (``crates/cli/src/commands/config.rs``):

- ``config check`` loads and validates the files and logs "Configuration file looks good";
  with ``email.transport: smtp`` it then tries the relay (connect, EHLO, STARTTLS, AUTH, QUIT,
  within 10 s) and logs a warning naming ``host:port`` and the reason when that fails (MAS
  tries the mail backend when ``server`` and ``worker`` start, with the warning "Could not
  connect to the mail backend"; its ``doctor`` does not). The exit status stays 0: a relay
  that is down now is not a bad configuration;
- ``config dump [-o FILE]`` writes the merged configuration as YAML;
- ``config generate [-o FILE] [--synapse-config FILE ...]`` writes a new configuration with
  fresh secrets; with Synapse's configuration it carries Synapse's settings
  (:mod:`mas_twisted.syn2mas.mas_config`) and prints the lines Synapse's configuration needs,
  and what did not translate: on standard error, or standard output when ``-o`` is given;
- ``config sync [--prune] [--dry-run]`` stores the static clients and upstream providers in
  the database (``--prune`` deletes the ones no longer configured; ``--dry-run`` rolls back).

Output goes to standard output unless ``-o`` names a file. Configuration errors are printed
by :mod:`mas_twisted.cli.main` as one line, with exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import yaml

logger = logging.getLogger(__name__)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "config",
        parents=[common],
        help="Configuration-related commands",
        description="Check, dump, generate or sync the configuration.",
    )
    commands = parser.add_subparsers(dest="config_command", metavar="COMMAND")
    commands.required = True

    check = commands.add_parser("check", parents=[common], help="Check a config file")
    check.set_defaults(func=run_check)

    dump = commands.add_parser("dump", parents=[common], help="Dump the current config as YAML")
    dump.add_argument("-o", "--output", metavar="FILE", help="Write to FILE instead of standard output")
    dump.set_defaults(func=run_dump)

    generate = commands.add_parser("generate", parents=[common], help="Generate a new config file")
    generate.add_argument("-o", "--output", metavar="FILE", help="Write to FILE instead of standard output")
    generate.add_argument(
        "--synapse-config",
        action="append",
        default=[],
        dest="synapse_config_files",
        metavar="FILE",
        help="Synapse's configuration to take the settings from (repeatable, merged as Synapse does)",
    )
    generate.set_defaults(func=run_generate)

    sync = commands.add_parser(
        "sync", parents=[common], help="Sync the clients and providers from the config file to the database"
    )
    sync.add_argument(
        "--prune", action="store_true", help="Delete clients and providers no longer in the config file"
    )
    sync.add_argument("--dry-run", action="store_true", help="Show what would change without writing it")
    sync.set_defaults(func=run_sync)


def _load(args: argparse.Namespace) -> Any:
    from mas_twisted.config.root import RootConfig

    return RootConfig.load(args.config_files)


def _write(text: str, output: str | None) -> None:
    if output:
        logger.info("Writing configuration to %s", output)
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        logger.info("Writing configuration to standard output")
        sys.stdout.write(text)
        sys.stdout.flush()


#: Seconds ``config check`` gives the SMTP relay.
EMAIL_PROBE_TIMEOUT_S = 10.0


def run_check(args: argparse.Namespace) -> int:
    config = _load(args)
    logger.info("Configuration file looks good (%s)", ", ".join(config.paths))
    problem = probe_email_transport(config)
    if problem is not None:
        logger.warning("%s", problem)
    return 0


def probe_email_transport(config: Any) -> str | None:
    """Try the SMTP relay ``email`` names on the real reactor; a warning line, or None when
    it answered (or the transport is not SMTP)."""
    from twisted.internet import defer, reactor

    from mas_twisted.config.email import TRANSPORT_SMTP
    from mas_twisted.email.transport import DeliveryError, make_transport

    if config.email.transport != TRANSPORT_SMTP:
        return None
    transport = make_transport(config.email, reactor)  # type: ignore[arg-type]
    outcome: list[str | None] = []

    async def _probe() -> None:
        try:
            await transport.probe(EMAIL_PROBE_TIMEOUT_S)
        except DeliveryError as e:
            outcome.append(f"email: cannot use the SMTP relay, sending email will fail: {e}")
        else:
            outcome.append(None)

    def _start() -> None:
        d = defer.ensureDeferred(_probe())
        d.addErrback(lambda f: outcome.append(f"email: cannot use the SMTP relay: {f.getErrorMessage()}"))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(_start)
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # the real reactor takes it
    return outcome[0] if outcome else None


def run_dump(args: argparse.Namespace) -> int:
    config = _load(args)
    text = yaml.safe_dump(config.dump_tree(), sort_keys=False, default_flow_style=False, allow_unicode=True)
    _write(text, args.output)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from mas_twisted.config.generate import generate_config

    if not args.synapse_config_files:
        _write(generate_config(), args.output)
        return 0

    from mas_twisted.handlers.upstream_oauth2 import make_claims_environment
    from mas_twisted.syn2mas.mas_config import generate_config_from_synapse

    logger.info("Adjusting the configuration to Synapse's (%s)", ", ".join(args.synapse_config_files))
    generated = generate_config_from_synapse(
        args.synapse_config_files, claims_environment=make_claims_environment()
    )
    _write(generated.config, args.output)
    # The operator's instructions go where the configuration does not.
    out = sys.stdout if args.output else sys.stderr
    out.write("\n" + generated.homeserver_lines)
    if generated.notes:
        out.write("\n# Not translated from Synapse's configuration (check these by hand):\n")
        out.writelines(f"#   - {note}\n" for note in generated.notes)
    out.flush()
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from mas_twisted.storage.config_sync import run_config_sync
    from mas_twisted.storage.prepare_database import prepare_database

    config = _load(args)
    # As MAS does, bring the schema up to date first (even for a dry run).
    applied = prepare_database(config.database)
    if applied:
        logger.info("Applied %d migration(s) to the %s", len(applied), config.database.describe_target())
    run_config_sync(config, prune=args.prune, dry_run=args.dry_run)
    return 0
