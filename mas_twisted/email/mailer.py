# SPDX-License-Identifier: AGPL-3.0-only
"""The mailer: renders a kind of message, builds it and hands it to the transport (MAS's
``crates/email/src/mailer.rs``). Built once by ``MasServer.get_mailer()``; only jobs call
:meth:`Mailer.send` (``queue/jobs/email.py``), never a request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2

from mas_twisted.config.email import parse_mailbox
from mas_twisted.email.message import AddressError, Mailbox, build_message, serialise
from mas_twisted.email.templates import EmailTemplates, UnknownEmailKind
from mas_twisted.email.transport import DeliveryError, Transport, make_transport

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class MessageError(Exception):
    """A message that cannot be built (unknown kind, a template that fails, an address that
    cannot be written): trying again will not help."""


def mailbox_from_config(value: str) -> Mailbox:
    name, address = parse_mailbox(value)
    return Mailbox(address=address, name=name)


class Mailer:
    """Args:
    server: reads ``config.email`` and the templates' sections; the clock, ids and reactor.
    transport: preset by tests of the mailer alone; else built from ``email.transport``.
    """

    def __init__(self, server: MasServer, transport: Transport | None = None):
        config = server.config
        self._clock = server.get_clock()
        self._ids = server.get_token_generator()
        self._server_name = config.matrix.homeserver
        self.from_ = mailbox_from_config(config.email.from_address)
        self.reply_to = mailbox_from_config(config.email.reply_to)
        self.transport = (
            transport if transport is not None else make_transport(config.email, server.get_reactor())
        )
        self.templates = EmailTemplates(config)

    def prepare(
        self,
        to: Mailbox,
        template: str,
        context: Mapping[str, Any],
        *,
        language: str = "en",
    ) -> bytes:
        """The serialised message.

        Raises:
            MessageError: unknown kind, a template that fails, an address that cannot be written.
        """
        try:
            rendered = self.templates.render(template, context, language=language)
        except (UnknownEmailKind, jinja2.TemplateError) as e:
            raise MessageError(f"cannot render the {template!r} email: {e}")
        try:
            message = build_message(
                from_=self.from_,
                reply_to=self.reply_to,
                to=to,
                rendered=rendered,
                now_ms=self._clock.time_msec(),
                message_id=f"{self._ids.ulid()}@{self._server_name}",
            )
        except (AddressError, ValueError) as e:
            raise MessageError(f"cannot build the {template!r} email: {e}")
        return serialise(message)

    async def send(
        self,
        to: Mailbox,
        template: str,
        context: Mapping[str, Any],
        *,
        language: str = "en",
    ) -> None:
        """Render, build and send one message.

        Raises:
            MessageError: the message cannot be built.
            DeliveryError: the transport refused it or could not be reached.
        """
        data = self.prepare(to, template, context, language=language)
        try:
            envelope_to = to.envelope_address
            envelope_from = self.from_.envelope_address
        except AddressError as e:
            raise MessageError(str(e))
        await self.transport.send(envelope_from, [envelope_to], data)

    async def probe(self, timeout: float) -> None:
        """Check the transport can be reached (``config check`` and start-up). Raises
        :class:`DeliveryError`."""
        await self.transport.probe(timeout)


__all__ = ["DeliveryError", "Mailbox", "Mailer", "MessageError"]
