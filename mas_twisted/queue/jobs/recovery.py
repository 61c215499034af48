# SPDX-License-Identifier: AGPL-3.0-only
"""Emailing the tickets of an account recovery (MAS's ``crates/tasks/src/recovery.rs``).

``send-account-recovery-email`` (MAS's queue name and payload, ``user_recovery_session_id``)
looks up every user email row holding the session's address, adds a 32-character ticket for
each (valid 10 minutes) and schedules one ``send-email`` message per ticket (template
``recovery``, to that row's address, named after its user), all in one transaction. Nothing
is sent for an address nobody holds, or for a session already consumed: the web request that
scheduled this job did the same work whatever the address, so its answer tells nothing.

The messages go through ``send-email`` rather than being sent here (as MAS does), so that a
relay that is down is retried with the queue's backoff, and a retry of this job never mails
a second set of links.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from mas_twisted import urls
from mas_twisted.handlers.email import schedule_email_txn
from mas_twisted.queue.base import Job, JobContext, JobError
from mas_twisted.types.recovery import RECOVERY_TICKET_TTL_MS, UserRecoveryTicket

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.types.users import User, UserEmail

logger = logging.getLogger(__name__)


@attrs.frozen
class SendAccountRecoveryEmailsJob(Job):
    """``send-account-recovery-email``: a ticket and an email for every holder of the address."""

    QUEUE_NAME = "send-account-recovery-email"
    user_recovery_session_id: str

    async def run(self, server: MasServer, context: JobContext) -> None:
        if not isinstance(self.user_recovery_session_id, str):
            raise JobError.fatal("bad payload for send-account-recovery-email")
        tokens = server.get_token_generator()
        clock = server.get_clock()
        url_builder = server.get_url_builder()
        now = clock.time_msec()

        def new_ticket(email: UserEmail) -> UserRecoveryTicket:
            return UserRecoveryTicket(
                id=tokens.ulid(),
                user_recovery_session_id=self.user_recovery_session_id,
                user_email_id=email.id,
                ticket=tokens.recovery_ticket(),
                created_at=now,
                expires_at=now + RECOVERY_TICKET_TTL_MS,
            )

        def send(txn: LoggingTransaction, ticket: UserRecoveryTicket, email: UserEmail, user: User) -> None:
            schedule_email_txn(
                txn,
                server,
                to=email.email,
                to_name=user.username,
                template="recovery",
                context={
                    "username": user.username,
                    "recovery_url": url_builder.absolute(
                        urls.ACCOUNT_RECOVERY_FINISH, {"ticket": ticket.ticket}
                    ),
                    "expires_in_minutes": RECOVERY_TICKET_TTL_MS // 60_000,
                },
                not_after=ticket.expires_at,
            )

        try:
            tickets = await server.get_stores().user_recovery.add_tickets(
                self.user_recovery_session_id, new_ticket, send
            )
        except ValueError as e:
            # An address the mailer cannot write (stored before it checked them): of no use.
            raise JobError.fatal(e)
        except Exception as e:
            raise JobError.retryable(e)
        if tickets is None:
            logger.info(
                "Recovery session %s is unknown or consumed: no email sent", self.user_recovery_session_id
            )
            return
        logger.info(
            "Recovery session %s: %d recovery email(s) scheduled", self.user_recovery_session_id, len(tickets)
        )
