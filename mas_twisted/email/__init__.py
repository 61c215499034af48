# SPDX-License-Identifier: AGPL-3.0-only
"""Outgoing email (MAS's ``crates/email``): building messages from the templates in
``templates/emails/`` (:mod:`.templates`, :mod:`.message`), the ``blackhole``, ``smtp`` and
``sendmail`` transports (:mod:`.transport`) and the :class:`~.mailer.Mailer` that joins them.

Messages are sent by the ``send-email`` job only (``queue/jobs/email.py``); handlers schedule
one with :func:`mas_twisted.handlers.email.schedule_email_txn` in their own transaction.
"""
