# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli server``: runs the service in the foreground through twistd (``twistd -n mas``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "server",
        parents=[common],
        help="Runs the web server",
        description="Runs the HTTP listeners and, unless --no-worker, the job worker (twistd -n mas).",
    )
    parser.add_argument(
        "--no-migrate", action="store_true", help="Do not apply pending database migrations on start"
    )
    parser.add_argument(
        "--no-sync", action="store_true", help="Do not sync the static clients and upstream providers"
    )
    parser.add_argument("--no-worker", action="store_true", help="Do not run the job worker in this process")
    parser.add_argument("--migrate", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run_server)


def twistd_argv(args: argparse.Namespace) -> list[str]:
    argv = ["twistd", "--nodaemon", "--pidfile=", "mas"]
    for path in getattr(args, "config_files", None) or []:
        argv += ["-c", path]
    for flag in ("no_migrate", "no_sync", "no_worker"):
        if getattr(args, flag, False):
            argv.append("--" + flag.replace("_", "-"))
    return argv


def run_server(args: argparse.Namespace) -> int:
    import logging

    from twisted.scripts.twistd import run

    # twistd logs through its own handler (app.service.setup_logging); mas-cli's console
    # handler would write every line a second time into the same output.
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
    sys.argv = twistd_argv(args)
    run()
    return 0
