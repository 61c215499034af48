# SPDX-License-Identifier: AGPL-3.0-only
"""Sending email from the queue (the sending half of MAS's ``crates/tasks/src/email.rs`` and
``recovery.rs``).

``send-email`` is ours: MAS's ``send-email-authentication-code`` and
``send-account-recovery-email`` jobs generate the code or ticket and then send; ours carries
the message to send (kind, recipient, context, language), so that the registration and
recovery flows create their code or ticket in the transaction of the change and schedule the
message beside it (:func:`mas_twisted.handlers.email.schedule_email_txn`).

Unlike MAS, which fails a job for good on any mailer error, a transient failure (relay down,
timeout, TLS failure, 4xx reply) is retried with the queue's backoff; a 5xx reply, or a
message that cannot be built, fails for good.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer

from mas_twisted.queue.base import Job, JobContext, JobError

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: Seconds the start-up check gives the mail transport (MAS's ``test_mailer_in_background``).
STARTUP_PROBE_TIMEOUT_S = 30.0


@attrs.frozen
class SendEmailJob(Job):
    """``send-email``: render ``emails/<template>.*`` with ``context`` and send it to ``to``."""

    QUEUE_NAME = "send-email"
    to: str
    template: str
    context: dict[str, Any] = attrs.field(factory=dict)
    to_name: str | None = None
    language: str = "en"
    #: Epoch ms after which the message is of no use (a code that has expired): an attempt
    #: after it fails for good instead of sending.
    not_after: int | None = None

    async def run(self, server: MasServer, context: JobContext) -> None:
        from mas_twisted.email.mailer import DeliveryError, Mailbox, MessageError

        if not (
            isinstance(self.to, str)
            and isinstance(self.template, str)
            and isinstance(self.context, dict)
            and (self.to_name is None or isinstance(self.to_name, str))
            and isinstance(self.language, str)
            and (self.not_after is None or isinstance(self.not_after, int))
        ):
            raise JobError.fatal("bad payload for send-email")
        if self.not_after is not None and server.get_clock().time_msec() > self.not_after:
            raise JobError.fatal(
                f"the {self.template} email is no longer of use (not after {self.not_after})"
            )
        mailer = server.get_mailer()
        try:
            await mailer.send(
                Mailbox(address=self.to, name=self.to_name),
                self.template,
                self.context,
                language=self.language,
            )
        except MessageError as e:
            raise JobError.fatal(e)
        except DeliveryError as e:
            raise JobError(str(e), retry=not e.permanent)
        logger.info(
            "Handed the %s email of job %s to %s", self.template, context.id, mailer.transport.describe()
        )


def probe_mailer_in_background(server: MasServer) -> defer.Deferred[None]:
    """Try the mail transport once, without holding up the start: a warning if it cannot be
    used (MAS does this when ``server`` and ``worker`` start; we do it where jobs run)."""

    async def _probe() -> None:
        from mas_twisted.email.mailer import DeliveryError

        try:
            await server.get_mailer().probe(STARTUP_PROBE_TIMEOUT_S)
        except DeliveryError as e:
            logger.warning("Could not connect to the mail transport, jobs sending email may fail: %s", e)
        except Exception as e:
            logger.warning("Could not check the mail transport: %s: %s", type(e).__name__, e)

    return defer.ensureDeferred(_probe())
