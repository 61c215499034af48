# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli doctor``: check that the service, the homeserver and the reverse proxy are wired
together (MAS's ``crates/cli/src/commands/doctor.rs``; inventory §8). The checks are in
:mod:`mas_twisted.handlers.doctor`; this prints one line per check on standard output and
exits 1 when any of them is an error (MAS always exits 0).

``--well-known-base URL`` fetches ``/.well-known/matrix/client`` from ``URL`` instead of
``https://<matrix.homeserver>`` (MAS's only choice), for test deployments without a
certificate for the server name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "doctor",
        parents=[common],
        help="Run diagnostics on the deployment",
        description=(
            "Check the configuration, this service's discovery, the homeserver, the reverse proxy, "
            "the email transport and the database. Run it with the configuration the service uses, "
            "while the service and the homeserver are running."
        ),
    )
    parser.add_argument(
        "--well-known-base",
        metavar="URL",
        default=None,
        help="Fetch /.well-known/matrix/client from URL instead of https://<matrix.homeserver>",
    )
    parser.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from twisted.internet import defer, reactor

    from mas_twisted.config.root import RootConfig
    from mas_twisted.handlers.doctor import Doctor, exit_code
    from mas_twisted.storage.prepare_database import check_schema

    config = RootConfig.load(args.config_files)
    print(
        "Running diagnostics: the service and the homeserver should be running, with the "
        f"configuration this command reads ({', '.join(config.paths)}).",
        flush=True,
    )
    doctor = Doctor(
        config,
        reactor,
        well_known_base=args.well_known_base,
        check_schema=lambda: check_schema(config.database),
        report=lambda result: print(result.line(), flush=True),
    )
    failure: list[Any] = []

    def _start() -> None:
        d = defer.ensureDeferred(doctor.run())
        d.addErrback(failure.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(_start)
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # the real reactor takes it
    if failure:
        failure[0].raiseException()
    code = exit_code(doctor.results)
    errors = sum(1 for r in doctor.results if r.level == "error")
    summary = f"{errors} check(s) failed" if code else "no problem found"
    print(summary, file=sys.stderr if code else sys.stdout, flush=True)
    return code
