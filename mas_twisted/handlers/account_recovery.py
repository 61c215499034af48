# SPDX-License-Identifier: AGPL-3.0-only
"""Account recovery by email (MAS's ``crates/handlers/src/views/recovery/{start,progress}.rs``
and the GraphQL mutations ``setPasswordByRecovery`` and ``resendRecoveryEmail``, which we
serve as server-rendered forms).

- Allowed when ``passwords.enabled`` and ``account.password_recovery_enabled`` (MAS's
  ``account_recovery_allowed``); otherwise every page is the "disabled" page.
- :meth:`AccountRecoveryHandler.start`: the address must parse as one; then the
  ``rate_limiting.account_recovery`` limits (per IP, per address); then one transaction
  writes the recovery session and its ``send-account-recovery-email`` job. That is the whole
  of the request's work, the same for an address nobody holds: who holds it is looked up by
  the job (``queue/jobs/recovery.py``), so neither the page nor its timing tells.
- :meth:`AccountRecoveryHandler.resend`: the same limits, then a new job (new tickets; the
  earlier ones stay valid until they expire, as MAS).
- :meth:`AccountRecoveryHandler.check_ticket` / :meth:`set_password`: an unknown ticket, a
  consumed session, an expired ticket (10 minutes), a locked or deactivated user are refused,
  in MAS's order; the new password must meet ``passwords.minimum_complexity`` and match its
  confirmation. Then one transaction adds the password, consumes the session (so every link
  of it stops working) and finishes the user's browser sessions.

MAS 1.22's ``setPasswordByRecovery`` adds the password and consumes the session and touches
nothing else; finishing the browser sessions is ours (issue 12: whoever knew the old password
should not stay signed in). OAuth 2.0 and compatibility sessions are left alone, as MAS.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from mas_twisted.api.errors import NotFoundError
from mas_twisted.email.message import Mailbox
from mas_twisted.handlers.rate_limit import RateLimitExceededError
from mas_twisted.queue.base import enqueue_txn
from mas_twisted.queue.jobs.recovery import SendAccountRecoveryEmailsJob
from mas_twisted.storage.stores.user_recovery import RecoveryOutcome
from mas_twisted.types.recovery import UserRecoverySession, UserRecoveryTicket
from mas_twisted.types.users import User, UserPassword
from mas_twisted.util.ulid import is_ulid

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.storage.stores import Stores

logger = logging.getLogger(__name__)

# Field names of the forms.
EMAIL = "email"
NEW_PASSWORD = "new_password"
NEW_PASSWORD_CONFIRM = "new_password_confirm"

# Error codes (the templates turn them into text).
REQUIRED = "required"
INVALID = "invalid"
RATE_LIMITED = "rate_limit_exceeded"
PASSWORD_MISMATCH = "password_mismatch"
TOO_WEAK = "password_too_weak"

#: The longest address the form takes (RFC 5321's path limit).
MAX_EMAIL_LENGTH = 254


class TicketState(str, enum.Enum):
    """What a recovery link leads to."""

    VALID = "valid"
    #: No such ticket (or a malformed one).
    UNKNOWN = "unknown"
    #: Its session was consumed: this or a sibling link was used.
    CONSUMED = "consumed"
    EXPIRED = "expired"
    #: The user is locked or deactivated (MAS's ``AccountLocked``).
    LOCKED = "locked"


@attrs.frozen
class TicketCheck:
    state: TicketState
    ticket: UserRecoveryTicket | None = None
    session: UserRecoverySession | None = None
    user: User | None = None


@attrs.frozen
class Problem:
    """One reason a form was refused: on ``field``, or on the whole form when ``None``."""

    field: str | None
    code: str


@attrs.frozen
class StartResult:
    problems: tuple[Problem, ...] = ()
    session: UserRecoverySession | None = None


@attrs.frozen
class SetPasswordResult:
    """The ticket's state (``VALID`` with no problems: the password was set)."""

    check: TicketCheck
    problems: tuple[Problem, ...] = ()

    @property
    def done(self) -> bool:
        return self.check.state is TicketState.VALID and not self.problems


class AccountRecoveryHandler:
    """The rules of ``/recover``, ``/recover/progress/<id>`` and ``/account/password/recovery``
    (``server.get_account_recovery_handler()``)."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._passwords = server.get_password_manager()
        self._limiter = server.get_rate_limiter()
        config = server.config
        #: MAS's ``account_recovery_allowed``.
        self.enabled: bool = config.passwords.enabled and config.account.password_recovery_enabled

    @property
    def _stores(self) -> Stores:
        return self._server.get_stores()

    # -- /recover ---------------------------------------------------------------------------
    async def start(
        self, email: str, *, client_ip: str | None, user_agent: str | None, locale: str = "en"
    ) -> StartResult:
        """Validate the address and the limits, then record the session and schedule its job."""
        email = email.strip()
        if not email:
            return StartResult(problems=(Problem(EMAIL, REQUIRED),))
        if len(email) > MAX_EMAIL_LENGTH or not _is_address(email):
            return StartResult(problems=(Problem(EMAIL, INVALID),))
        try:
            await self._limiter.check_account_recovery(client_ip, email)
        except RateLimitExceededError as e:
            logger.warning("Account recovery refused: %s", e.debug)
            return StartResult(problems=(Problem(None, RATE_LIMITED),))
        session = UserRecoverySession(
            id=self._tokens.ulid(),
            email=email,
            user_agent=user_agent or "",
            created_at=self._clock.time_msec(),
            ip_address=client_ip,
            locale=locale,
        )
        await self._stores.user_recovery.add_session(session, also=self._schedule(session))
        logger.info("Account recovery session %s started", session.id)
        return StartResult(session=session)

    def _schedule(self, session: UserRecoverySession) -> Callable[[LoggingTransaction], None]:
        def _txn(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, SendAccountRecoveryEmailsJob(user_recovery_session_id=session.id))

        return _txn

    # -- /recover/progress/<id> -------------------------------------------------------------
    async def load_session(self, session_id: str) -> UserRecoverySession:
        """The recovery session.

        Raises:
            NotFoundError: none with this id (or not an id).
        """
        if not is_ulid(session_id):
            raise NotFoundError("Recovery not found", debug=f"not a ULID: {session_id[:40]!r}")
        session = await self._stores.user_recovery.get_session(session_id.upper())
        if session is None:
            raise NotFoundError("Recovery not found", debug=session_id)
        return session

    async def resend(self, session: UserRecoverySession, client_ip: str | None) -> bool:
        """Schedule a new batch of links (within the limits); whether it was."""
        try:
            await self._limiter.check_account_recovery(client_ip, session.email)
        except RateLimitExceededError as e:
            logger.warning("Recovery email resend refused: %s", e.debug)
            return False

        await self._stores.queue.schedule_in_transaction("resend_recovery_email", self._schedule(session))
        logger.info("Account recovery session %s: links sent again", session.id)
        return True

    # -- /account/password/recovery ---------------------------------------------------------
    async def check_ticket(self, ticket: str) -> TicketCheck:
        """What the link with this ticket leads to (MAS's order of checks)."""
        if not ticket or len(ticket) > 64 or not ticket.isalnum():
            return TicketCheck(TicketState.UNKNOWN)
        found = await self._stores.user_recovery.find_ticket(ticket)
        if found is None:
            return TicketCheck(TicketState.UNKNOWN)
        row, session, _email, user = found
        if session.consumed_at is not None:
            state = TicketState.CONSUMED
        elif not row.active(self._clock.time_msec()):
            state = TicketState.EXPIRED
        elif not user.is_valid:
            state = TicketState.LOCKED
        else:
            state = TicketState.VALID
        return TicketCheck(state, ticket=row, session=session, user=user)

    async def set_password(self, ticket: str, new_password: str, confirm: str) -> SetPasswordResult:
        """Set the user's new password through the ticket (see the module docstring)."""
        check = await self.check_ticket(ticket)
        if check.state is not TicketState.VALID:
            return SetPasswordResult(check)
        problems = []
        if not new_password:
            problems.append(Problem(NEW_PASSWORD, REQUIRED))
        elif not self._passwords.is_password_complex_enough(new_password):
            problems.append(Problem(NEW_PASSWORD, TOO_WEAK))
        if not confirm:
            problems.append(Problem(NEW_PASSWORD_CONFIRM, REQUIRED))
        elif new_password != confirm:
            problems.append(Problem(NEW_PASSWORD_CONFIRM, PASSWORD_MISMATCH))
        if problems:
            return SetPasswordResult(check, tuple(problems))
        assert check.user is not None and check.session is not None
        version, hashed = await self._passwords.hash(new_password)
        now = self._clock.time_msec()
        password = UserPassword(
            id=self._tokens.ulid(),
            user_id=check.user.id,
            hashed_password=hashed,
            version=version,
            created_at=now,
        )
        outcome, finished = await self._stores.user_recovery.recover(check.session.id, password, now)
        if outcome is RecoveryOutcome.ALREADY_CONSUMED:
            return SetPasswordResult(attrs.evolve(check, state=TicketState.CONSUMED))
        logger.info(
            "User %s set a new password by account recovery; %d browser session(s) finished",
            check.user.id,
            finished,
        )
        return SetPasswordResult(check)


def _is_address(email: str) -> bool:
    """Whether ``email`` is an address our mailer can send to (as the registration form)."""
    try:
        Mailbox(address=email).header_address()
    except ValueError:
        return False
    return True
