# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage`` commands that change a user and tell the homeserver through the job
queue (MAS's ``crates/cli/src/commands/manage.rs``). Each change and the jobs it needs are one
transaction: the worker (``twistd mas``, or ``mas-cli worker``) carries them to the homeserver.

- ``lock-user USER [--deactivate]``: lock now; ``provision-user`` carries the lock flag to
  the homeserver; with ``--deactivate``, ``deactivate-user`` too.
- ``unlock-user USER [--reactivate]``: ``provision-user``; with ``--reactivate``,
  ``reactivate-user`` (which clears the deactivation; as in MAS the lock is then left in
  place), else the lock is lifted now.
- ``kill-sessions USER [--dry-run]``: end every compatibility, OAuth 2.0 and browser session of the user
  (tokens revoked), then ``sync-devices``; with ``--dry-run`` only count them.
- ``provision-all-users``: ``provision-user`` for every user.
- ``promote-admin USER`` / ``demote-admin USER``: allow (or not) the user to request admin
  scopes; ``list-admin-users``.
- ``add-email USER EMAIL`` / ``verify-email USER EMAIL`` (deprecated in MAS: adds a verified
  address too): the address is recorded, then ``provision-user`` updates the homeserver.
- ``issue-compatibility-token USER [DEVICE_ID] [--yes-i-want-to-grant-synapse-admin-privileges]``:
  the device is created on the homeserver first (if that fails: ``sync-devices`` is scheduled
  and the exit status is 1), then a compatibility session with a token that never expires
  (flagged Synapse admin with the long option), printed as MAS logs it:
  ``Compatibility token issued: mct_...`` (on standard output, not through the logs).
- ``issue-user-registration-token [--token TOKEN] [--usage-limit N | --unlimited]
  [--expires-in SECONDS]``: a token for registrations when ``account.registration_token_required``
  (or ``password_registration_token_required``) is on: 12 random alphanumerics unless
  ``--token``, usable once unless ``--usage-limit`` or ``--unlimited``, never expiring unless
  ``--expires-in``; printed as ``Created user registration token: <token>`` on standard output.

"User not found" exits with status 1, as every error of ``mas-cli``.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from mas_twisted.api.errors import MasError

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.types.users import User

logger = logging.getLogger(__name__)


def register_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    def add(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[common], help=help, description=help)
        parser.set_defaults(func=func)
        return parser

    p = add("lock-user", "Lock a user", run_lock_user)
    p.add_argument("username")
    p.add_argument(
        "--deactivate", action="store_true", help="Also deactivate the user (here and on the homeserver)"
    )
    p = add("unlock-user", "Unlock a user", run_unlock_user)
    p.add_argument("username")
    p.add_argument(
        "--reactivate", action="store_true", help="Also reactivate the user (here and on the homeserver)"
    )
    p = add("kill-sessions", "Kill all sessions for a user", run_kill_sessions)
    p.add_argument("username")
    p.add_argument("--dry-run", action="store_true", help="Do a dry run: count the sessions, end none")
    add("provision-all-users", "Trigger a provisioning job for all users", run_provision_all_users)
    p = add("promote-admin", "Make a user admin", run_promote_admin)
    p.add_argument("username")
    p = add("demote-admin", "Make a user non-admin", run_demote_admin)
    p.add_argument("username")
    add("list-admin-users", "List all users with admin privileges", run_list_admin_users)
    p = add("add-email", "Add an email address to the specified user", run_add_email)
    p.add_argument("username")
    p.add_argument("email")
    p = add("verify-email", "(DEPRECATED) Mark email address as verified", run_add_email)
    p.add_argument("username")
    p.add_argument("email")
    p = add("issue-compatibility-token", "Issue a compatibility token", run_issue_compatibility_token)
    p.add_argument("username", help="User for which to issue the token")
    p.add_argument("device_id", nargs="?", help="Device ID to set in the token (default: a random one)")
    p.add_argument(
        "--yes-i-want-to-grant-synapse-admin-privileges",
        dest="admin",
        action="store_true",
        help="Whether that token should be admin",
    )
    p = add(
        "issue-user-registration-token", "Create a new user registration token", run_issue_registration_token
    )
    p.add_argument("--token", help="Specific token string to use (default: 12 random alphanumerics)")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument(
        "--usage-limit",
        type=_u32,
        help="Maximum number of times this token can be used (default: once, unless --unlimited)",
    )
    limit.add_argument(
        "--unlimited", action="store_true", help="Allow the token to be used an unlimited number of times"
    )
    p.add_argument(
        "--expires-in",
        type=_u32,
        metavar="SECONDS",
        help="Time in seconds after which the token expires (default: never)",
    )


def _u32(value: str) -> int:
    """An unsigned 32-bit integer argument (MAS's ``u32``)."""
    try:
        number = int(value, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {value!r}") from None
    if not 0 <= number < 2**32:
        raise argparse.ArgumentTypeError(f"out of range: {value}")
    return number


def _run(args: argparse.Namespace, func: Any) -> int:
    from mas_twisted.cli.manage import _load_config, run_with_server

    return run_with_server(_load_config(args), func)


async def _find_user(server: MasServer, username: str) -> User:
    user = await server.get_stores().users.find_user_by_username(username)
    if user is None:
        raise MasError("User not found")
    return user


def _enqueue(txn: LoggingTransaction, server: MasServer, job: Any) -> None:
    from mas_twisted.queue.base import enqueue_txn

    enqueue_txn(txn, server, job)
    logger.info("Scheduled job %s", job.QUEUE_NAME)


def run_lock_user(args: argparse.Namespace) -> int:
    from mas_twisted.queue.jobs.matrix import ProvisionUserJob
    from mas_twisted.queue.jobs.user import DeactivateUserJob

    async def _lock(server: MasServer) -> int:
        user = await _find_user(server, args.username)
        now = server.get_clock().time_msec()

        def _jobs_txn(txn: LoggingTransaction) -> None:
            _enqueue(txn, server, ProvisionUserJob(user_id=user.id))
            if args.deactivate:
                _enqueue(txn, server, DeactivateUserJob(user_id=user.id, hs_erase=False))

        logger.info("Locking user %s (%s)", user.username, user.id)
        # Locked now, even if no worker runs: the tokens stop working at once.
        await server.get_stores().users.lock_user_unless_locked(user.id, now, also=_jobs_txn)
        if args.deactivate:
            logger.warning("Scheduled the deactivation of user %s", user.username)
        return 0

    return _run(args, _lock)


def run_unlock_user(args: argparse.Namespace) -> int:
    from mas_twisted.queue.jobs.matrix import ProvisionUserJob
    from mas_twisted.queue.jobs.user import ReactivateUserJob

    async def _unlock(server: MasServer) -> int:
        user = await _find_user(server, args.username)

        def _jobs_txn(txn: LoggingTransaction) -> None:
            _enqueue(txn, server, ProvisionUserJob(user_id=user.id))
            if args.reactivate:
                _enqueue(txn, server, ReactivateUserJob(user_id=user.id))

        if args.reactivate:
            # The reactivation job unlocks the user.
            await server.get_stores().queue.schedule_in_transaction("cli_unlock_user", _jobs_txn)
        else:
            await server.get_stores().users.unlock_user_by_id(user.id, also=_jobs_txn)
        logger.info(
            "Unlocked user %s%s", user.username, " (reactivation scheduled)" if args.reactivate else ""
        )
        return 0

    return _run(args, _unlock)


def run_kill_sessions(args: argparse.Namespace) -> int:
    from mas_twisted.queue.jobs.matrix import SyncDevicesJob

    async def _kill(server: MasServer) -> int:
        user = await _find_user(server, args.username)
        now = server.get_clock().time_msec()

        def _jobs_txn(txn: LoggingTransaction) -> None:
            _enqueue(txn, server, SyncDevicesJob(user_id=user.id))

        users = server.get_stores().users
        if args.dry_run:
            compat, oauth2, browser = await users.count_user_sessions(user.id)
        else:
            compat, oauth2, browser = await users.end_user_sessions(user.id, now, also=_jobs_txn)
        verb = "Would end" if args.dry_run else "Ended"
        logger.info("%s %d active compatibility session(s)", verb, compat)
        logger.info("%s %d active OAuth 2.0 session(s)", verb, oauth2)
        logger.info("%s %d active browser session(s)", verb, browser)
        if args.dry_run:
            logger.info("Dry run, not saving")
        return 0

    return _run(args, _kill)


def run_provision_all_users(args: argparse.Namespace) -> int:
    from mas_twisted.queue.jobs.matrix import ProvisionUserJob

    async def _provision(server: MasServer) -> int:
        from mas_twisted.queue.base import enqueue_txn

        def _job_txn(txn: LoggingTransaction, user_id: str) -> None:
            enqueue_txn(txn, server, ProvisionUserJob(user_id=user_id))

        count = await server.get_stores().users.for_every_user(_job_txn)
        logger.info("Scheduled provisioning of %d user(s)", count)
        return 0

    return _run(args, _provision)


def _set_admin(args: argparse.Namespace, admin: bool) -> int:
    async def _set(server: MasServer) -> int:
        user = await _find_user(server, args.username)
        await server.get_stores().users.set_can_request_admin(user, admin)
        logger.info("User %s %s admin", user.username, "is now" if admin else "is no longer")
        return 0

    return _run(args, _set)


def run_promote_admin(args: argparse.Namespace) -> int:
    return _set_admin(args, True)


def run_demote_admin(args: argparse.Namespace) -> int:
    return _set_admin(args, False)


def run_list_admin_users(args: argparse.Namespace) -> int:
    async def _list(server: MasServer) -> int:
        usernames = await server.get_stores().users.list_admin_usernames()
        if not usernames:
            logger.info("No admin users")
        for username in usernames:
            print(username, flush=True)
        return 0

    return _run(args, _list)


def run_add_email(args: argparse.Namespace) -> int:
    from mas_twisted.email.message import is_valid_address
    from mas_twisted.queue.jobs.matrix import ProvisionUserJob
    from mas_twisted.storage.stores.user_emails import add_user_email_txn, find_user_email_by_email_txn
    from mas_twisted.types.users import UserEmail

    async def _add(server: MasServer) -> int:
        if not is_valid_address(args.email):
            raise MasError(f"Invalid email address {args.email!r}")
        user = await _find_user(server, args.username)
        email = UserEmail(
            id=server.get_token_generator().ulid(),
            user_id=user.id,
            email=args.email,
            created_at=server.get_clock().time_msec(),
        )

        def _txn(txn: LoggingTransaction) -> bool:
            existing = find_user_email_by_email_txn(txn, args.email)
            if existing is not None:
                if existing.user_id != user.id:
                    raise MasError("Email address is already used by another user")
                return False
            add_user_email_txn(txn, email)
            _enqueue(txn, server, ProvisionUserJob(user_id=user.id))
            return True

        added = await server.get_db_pool().runInteraction("cli_add_email", _txn)
        logger.info(
            "Email %s %s user %s", args.email, "added to" if added else "already belongs to", user.username
        )
        return 0

    return _run(args, _add)


def run_issue_compatibility_token(args: argparse.Namespace) -> int:
    async def _issue(server: MasServer) -> int:
        from mas_twisted.api.errors import MatrixError

        user = await _find_user(server, args.username)
        try:
            issued = await server.get_compat_login_handler().issue_compatibility_token(
                user, args.device_id, synapse_admin=args.admin
            )
        except MatrixError as e:
            logger.error("Cannot issue a compatibility token: %s", e.msg)
            return 1
        if issued is None:
            return 1
        session, access_token = issued
        logger.info(
            "Compatibility token %s issued for user %s (%s): compat session %s, device %s%s",
            access_token.id,
            user.username,
            user.id,
            session.id,
            session.device_id,
            " (Synapse admin)" if session.is_synapse_admin else "",
        )
        print(f"Compatibility token issued: {access_token.access_token}", flush=True)
        return 0

    return _run(args, _issue)


def run_issue_registration_token(args: argparse.Namespace) -> int:
    usage_limit = None if args.unlimited else (args.usage_limit if args.usage_limit is not None else 1)

    async def _issue(server: MasServer) -> int:
        handler = server.get_user_registration_handler()
        try:
            token = await handler.issue_registration_token(
                token=args.token, usage_limit=usage_limit, expires_in_s=args.expires_in
            )
        except ValueError as e:
            raise MasError(str(e)) from None
        logger.info("Created user registration token %s", token.id)
        print(f"Created user registration token: {token.token}", flush=True)
        return 0

    return _run(args, _issue)
