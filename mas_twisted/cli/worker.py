# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli worker``: runs the job worker alone, in the foreground (MAS's ``worker`` command;
``twistd -n mas --worker-only``). It neither migrates nor serves HTTP: run it next to
``server --no-worker`` processes sharing the database."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "worker",
        parents=[common],
        help="Runs the job worker",
        description="Runs the job worker alone (no HTTP listeners, no migrations).",
    )
    parser.set_defaults(func=run_worker)


def twistd_argv(args: argparse.Namespace) -> list[str]:
    argv = ["twistd", "--nodaemon", "--pidfile=", "mas", "--worker-only"]
    for path in getattr(args, "config_files", None) or []:
        argv += ["-c", path]
    return argv


def run_worker(args: argparse.Namespace) -> int:
    import logging

    from twisted.scripts.twistd import run

    # twistd logs through its own handler (app.service.setup_logging); mas-cli's console
    # handler would write every line a second time into the same output.
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
    sys.argv = twistd_argv(args)
    run()
    return 0
