# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli database``: manage the database (``database migrate``).

As in MAS (``crates/cli/src/commands/database.rs``), only the ``database`` section of the
configuration is read, so ``migrate`` works before the rest of the file is complete. It
applies every pending schema delta (:mod:`mas_twisted.storage.prepare_database`) and exits 0;
a database that cannot be reached, or whose schema is newer than this code, prints one
line and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "database",
        parents=[common],
        help="Manage the database",
        description="Manage the database.",
    )
    commands = parser.add_subparsers(dest="database_command", metavar="COMMAND")
    commands.required = True

    migrate = commands.add_parser("migrate", parents=[common], help="Run database migrations")
    migrate.set_defaults(func=run_migrate)


def load_database_config(config_files: list[str] | None) -> Any:
    """The ``database`` section of the configuration files, alone."""
    from mas_twisted.config._base import Reader
    from mas_twisted.config.database import DatabaseConfig
    from mas_twisted.config.loader import config_paths, load_raw_config

    paths = config_paths(config_files, os.environ)
    raw = load_raw_config(paths, os.environ, (DatabaseConfig.section,))
    config = DatabaseConfig()
    config.read_config(Reader(raw.get(DatabaseConfig.section), (DatabaseConfig.section,)), raw)
    return config


def run_migrate(args: argparse.Namespace) -> int:
    from mas_twisted.storage.prepare_database import prepare_database

    db_config = load_database_config(args.config_files)
    applied = prepare_database(db_config)
    if applied:
        logger.info("Applied %d migration(s) to the %s", len(applied), db_config.describe_target())
    else:
        logger.info("No pending migrations for the %s", db_config.describe_target())
    return 0
