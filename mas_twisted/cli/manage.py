# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage``: administer users from the command line (MAS's
``crates/cli/src/commands/manage.rs``).

- ``manage register-user [USERNAME] [-p PASSWORD] [-e EMAIL]… [-m PROVIDER_ID:SUBJECT]…
  [-a | -A] [-d NAME] [-y] [--ignore-password-complexity] [--skip-homeserver-check]``: create
  a user with an optional password, verified emails, links to upstream accounts and admin
  flag. Each ``-m`` links the subject at an enabled upstream provider to the new user, in the
  same transaction (a malformed mapping exits with status 2 as any bad argument; an unknown
  or disabled provider, or a subject that has a link already, with status 1 and nothing
  created: MAS panics on the first and fails on the second). Without ``-y`` the attributes (and the equivalent non-interactive
  command) are shown and confirmed on the terminal, and a missing username is asked for;
  with ``-y`` the username is required. The username may be a Matrix ID; it must be free
  and a valid localpart. A password below ``passwords.minimum_complexity`` is refused
  ("That password is too weak.", exit status 1) unless ``--ignore-password-complexity``.
  The username must also be free on the homeserver, as in MAS: if the homeserver says it is
  taken, or cannot be asked at all (down, unreachable, an unexpected answer), nothing is
  created and the command exits with status 1 and one line naming the reason (asked for
  interactively, a homeserver that cannot answer ends the command too, where MAS asks for
  another name that it could not check either).
  ``--skip-homeserver-check`` registers without asking (MAS's CLI has no such flag; its
  admin API's ``skip_homeserver_check`` is the model). The user is created with a
  ``provision-user`` job in the same transaction, which creates it on the homeserver with
  the display name of ``-d``.
- ``manage set-password USERNAME PASSWORD [--ignore-complexity]``: give a user a new
  password, hashed with the current scheme ("User not found" or "That password is too
  weak." exit with status 1).

Like MAS, these commands expect a migrated database (``mas-cli database migrate``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mas_twisted.api.errors import DatabaseError, MasError
from mas_twisted.util.reactor import IMasReactor

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

T = TypeVar("T")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "manage",
        parents=[common],
        help="Manage the instance (users, passwords, sessions, admins)",
        description="Manage the instance: users, passwords, sessions and admins.",
    )
    commands = parser.add_subparsers(dest="manage_command", metavar="COMMAND")
    commands.required = True

    set_password = commands.add_parser("set-password", parents=[common], help="Set a user password")
    set_password.add_argument("username")
    set_password.add_argument("password")
    set_password.add_argument(
        "--ignore-complexity",
        action="store_true",
        help="Don't enforce that the password provided is above the minimum configured complexity",
    )
    set_password.set_defaults(func=run_set_password)

    register_user = commands.add_parser(
        "register-user",
        parents=[common],
        help="Register a user",
        description=(
            "Register a user. Unless --yes is given, the attributes are shown and confirmed "
            "interactively. Policy checks on the password and emails are bypassed."
        ),
    )
    register_user.add_argument("username", nargs="?", help="Username to register (required with --yes)")
    register_user.add_argument("-p", "--password", help="Password to set")
    register_user.add_argument(
        "-e",
        "--email",
        action="append",
        dest="emails",
        default=[],
        metavar="EMAIL",
        help="Email to add (repeatable)",
    )
    register_user.add_argument(
        "-m",
        "--upstream-provider-mapping",
        action="append",
        dest="upstream_provider_mappings",
        default=[],
        type=_upstream_provider_mapping,
        metavar="UPSTREAM_PROVIDER_ID:SUBJECT",
        help="Upstream OAuth 2.0 provider mapping to add (repeatable)",
    )
    admin = register_user.add_mutually_exclusive_group()
    admin.add_argument("-a", "--admin", action="store_true", help="Make the user an admin")
    admin.add_argument("-A", "--no-admin", action="store_true", help="Make the user not an admin")
    register_user.add_argument("-d", "--display-name", help="Set the user's display name")
    register_user.add_argument("-y", "--yes", action="store_true", help="Don't ask questions, just do it")
    register_user.add_argument(
        "--ignore-password-complexity",
        action="store_true",
        help="Don't enforce that the password provided is above the minimum configured complexity",
    )
    register_user.add_argument(
        "--skip-homeserver-check",
        action="store_true",
        help="Don't ask the homeserver whether the username is available (register even if it is down)",
    )
    register_user.set_defaults(func=run_register_user, parser=register_user)

    from mas_twisted.cli.manage_users import register_commands

    register_commands(commands, common)


# -- running async work from the command line -------------------------------------------------


def run_with_server(config: RootConfig, func: Callable[[MasServer], Awaitable[T]]) -> T:
    """Run ``func(server)`` on the real reactor, then stop it; returns (or raises) its outcome.

    Database errors (a schema that was never migrated, say) become one-line
    :class:`~mas_twisted.api.errors.DatabaseError`\\ s.
    """
    from twisted.internet import defer, reactor
    from twisted.python.failure import Failure

    from mas_twisted.server import MasServer

    outcome: list[Any] = []

    async def _main() -> T:
        server = MasServer(config, cast(IMasReactor, reactor))
        module = server.get_db_pool().engine.module
        try:
            return await func(server)
        except module.Error as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DatabaseError(
                f"database error: {first_line} (has `mas-cli database migrate` been run?)"
            ) from None

    def _start() -> None:
        d = defer.ensureDeferred(_main())

        def _done(result: Any) -> None:
            outcome.append(result)
            reactor.stop()

        d.addBoth(_done)

    reactor.callWhenRunning(_start)
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # the real reactor takes it
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def _load_config(args: argparse.Namespace) -> RootConfig:
    from mas_twisted.config.root import RootConfig

    return RootConfig.load(args.config_files)


# -- set-password -----------------------------------------------------------------------------


def run_set_password(args: argparse.Namespace) -> int:
    config = _load_config(args)

    async def _set_password(server: MasServer) -> int:
        user = await server.get_user_handler().set_password(
            args.username, args.password, ignore_complexity=args.ignore_complexity
        )
        logger.info("Password changed for %s (%s)", user.username, user.id)
        return 0

    return run_with_server(config, _set_password)


# -- register-user ----------------------------------------------------------------------------


def _upstream_provider_mapping(text: str) -> tuple[str, str]:
    """``PROVIDER_ID:SUBJECT`` (split at the first ``:``; the id a ULID, in any case) as MAS's
    ``parse_upstream_provider_mapping``; argparse turns a refusal into exit status 2."""
    from mas_twisted.util.ulid import is_ulid

    provider_id, sep, subject = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("Invalid format: expected UPSTREAM_PROVIDER_ID:SUBJECT")
    if not is_ulid(provider_id.upper()):
        raise argparse.ArgumentTypeError(f"Invalid upstream provider ID: {provider_id!r}")
    return provider_id.upper(), subject


def _provider_name(provider: Any) -> str:
    """MAS's ``HumanReadable`` of a provider: its name (or issuer) and id."""
    name = provider.human_name or provider.issuer
    return f"{name} ({provider.id})" if name else str(provider.id)


def _prompt(question: str) -> str | None:
    """A line from the terminal, or ``None`` at end of input."""
    try:
        return input(question)
    except EOFError:
        return None


def _summary(registration: Any, mxid: str, providers: dict[str, Any] | None = None) -> str:
    rows = [("Username", registration.username), ("Matrix ID", mxid)]
    if registration.display_name:
        rows.append(("Display name", registration.display_name))
    if registration.hashed_password is not None:
        rows.append(("Password", "********"))
    for provider_id, subject in registration.upstream_links:
        provider = (providers or {}).get(provider_id)
        name = _provider_name(provider) if provider is not None else provider_id
        rows.append(("Upstream account", f"{name} : {json.dumps(subject, ensure_ascii=False)}"))
    rows.extend(("Email", email) for email in registration.emails)
    if registration.can_request_admin is not None:
        rows.append(("Can request admin", "true" if registration.can_request_admin else "false"))
    lines = ["User attributes"] + [f"{key:>17}: {value}" for key, value in rows]
    if not registration.emails:
        lines.append("No email address provided, user will be prompted to add one")
    if registration.hashed_password is None and not registration.upstream_links:
        lines.append("No password or upstream provider mapping provided, user will not be able to log in")
    return "\n".join(lines)


def _equivalent_command(registration: Any) -> str:
    parts = ["mas-cli", "manage", "register-user", "--yes", registration.username]
    for email in registration.emails:
        parts += ["--email", email]
    if registration.display_name:
        parts += ["--display-name", registration.display_name]
    for provider_id, subject in registration.upstream_links:
        parts += ["--upstream-provider-mapping", f"{provider_id}:{subject}"]
    command = " ".join(shlex.quote(p) for p in parts)
    if registration.hashed_password is not None:
        command += " --password $PASSWORD"
    if registration.can_request_admin is True:
        command += " --admin"
    elif registration.can_request_admin is False:
        command += " --no-admin"
    return command


def run_register_user(args: argparse.Namespace) -> int:
    from mas_twisted.handlers.users import InvalidUsernameError, Registration, UpstreamLinkError

    if args.yes and not args.username:
        args.parser.error("the following arguments are required with --yes: username")
    config = _load_config(args)
    admin: bool | None = True if args.admin else False if args.no_admin else None
    check = not args.skip_homeserver_check

    async def _register(server: MasServer) -> int:
        users = server.get_user_handler()
        if args.password is not None and not args.ignore_password_complexity:
            users.check_password_complexity(args.password)

        if args.username:
            username = await users.check_and_normalize_username(args.username, check_homeserver=check)
        else:
            while True:
                answer = _prompt("Username: ")
                if answer is None:
                    raise MasError("Aborted")
                try:
                    username = await users.check_and_normalize_username(
                        answer.strip(), check_homeserver=check
                    )
                    break
                except InvalidUsernameError as e:
                    logger.warning("Invalid username: %s", e.msg)

        # As MAS: the mappings name enabled providers (MAS panics on another; one line here).
        providers = {
            p.id: p
            for p in await server.get_stores().upstream_oauth_providers.list_upstream_oauth_providers(
                enabled_only=True
            )
        }
        for provider_id, _subject in args.upstream_provider_mappings:
            if provider_id not in providers:
                raise UpstreamLinkError(f"Unknown or disabled upstream provider {provider_id}")

        hashed = await users.hash_password(args.password) if args.password is not None else None
        registration = Registration(
            username=username,
            hashed_password=hashed,
            emails=tuple(args.emails),
            can_request_admin=admin,
            display_name=args.display_name,
            upstream_links=tuple(args.upstream_provider_mappings),
        )
        print(_summary(registration, users.mxid(username), providers), flush=True)
        if not args.emails:
            logger.warning("No email address provided, user will need to add one")
        if not args.yes:
            print(
                f"\nNon-interactive equivalent to create this user:\n\n  {_equivalent_command(registration)}\n"
            )
            answer = _prompt("Confirm? [y/N] ")
            if answer is None or answer.strip().lower() not in ("y", "yes"):
                # MAS exits successfully when the user declines.
                logger.warning("Aborted")
                return 0
        user = await users.register_user(registration)
        logger.info("User registered: %s (%s)", user.username, user.id)
        return 0

    return run_with_server(config, _register)
