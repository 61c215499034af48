# SPDX-License-Identifier: AGPL-3.0-only
"""Scheduling an email: what the registration and recovery flows call (issue 12).

The message is sent by the ``send-email`` job (``queue/jobs/email.py``), never on the request
path. :func:`schedule_email_txn` enqueues it inside the caller's transaction, so that, say,
"the registration is created and its code is on its way" is one commit::

    def _txn(txn):
        ...create the registration and its code...
        schedule_email_txn(txn, server, to=email, template="verification",
                           context={"code": code, "username": username})

The context is stored in the job's payload (``queue_jobs``) until the job is cleaned up, so it
holds what the message shows and nothing more; it must be JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mas_twisted.email.message import Mailbox
from mas_twisted.email.templates import check_context
from mas_twisted.queue.base import enqueue_txn
from mas_twisted.queue.jobs.email import SendEmailJob

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction


def email_job(
    *,
    to: str,
    template: str,
    context: Mapping[str, Any],
    to_name: str | None = None,
    language: str = "en",
    not_after: int | None = None,
) -> SendEmailJob:
    """The job that sends one message, checked now rather than when it runs.

    Args:
        not_after: epoch ms after which the message is of no use (the code it carries has
            expired): a retry after it fails instead of sending.

    Raises:
        ValueError: an unknown kind, a context that lacks a key or is not JSON, or a
            recipient that is not an address (a caller's mistake, not the user's).
    """
    check_context(template, context)
    try:
        json.dumps(dict(context))
    except (TypeError, ValueError) as e:
        raise ValueError(f"the context of the {template!r} email is not JSON: {e}")
    if not isinstance(to, str) or not (to_name is None or isinstance(to_name, str)):
        raise ValueError("the recipient and its name are strings")
    Mailbox(address=to, name=to_name).header_address()  # raises AddressError, a ValueError
    return SendEmailJob(
        to=to,
        template=template,
        context=dict(context),
        to_name=to_name,
        language=language,
        not_after=not_after,
    )


def schedule_email_txn(
    txn: LoggingTransaction,
    server: MasServer,
    *,
    to: str,
    template: str,
    context: Mapping[str, Any],
    to_name: str | None = None,
    language: str | None = None,
    not_after: int | None = None,
) -> str:
    """Schedule one message in the caller's transaction; the job's id. See :func:`email_job`.

    ``language`` defaults to the one negotiated from the ``Accept-Language`` of the request
    being handled, so that the worker writes to the user in the language of their pages.
    """
    if language is None:
        language = server.get_i18n().current_locale()
    job = email_job(
        to=to, template=template, context=context, to_name=to_name, language=language, not_after=not_after
    )
    return enqueue_txn(txn, server, job)


async def schedule_email(
    server: MasServer,
    *,
    to: str,
    template: str,
    context: Mapping[str, Any],
    to_name: str | None = None,
    language: str | None = None,
    not_after: int | None = None,
) -> str:
    """Schedule one message in a transaction of its own (a resend); the job's id.
    ``language`` as in :func:`schedule_email_txn`."""
    if language is None:
        language = server.get_i18n().current_locale()
    job = email_job(
        to=to, template=template, context=context, to_name=to_name, language=language, not_after=not_after
    )
    ids: list[str] = []

    def _txn(txn: LoggingTransaction) -> None:
        ids.append(enqueue_txn(txn, server, job))

    await server.get_stores().queue.schedule_in_transaction("schedule_email", _txn)
    return ids[-1]
