# SPDX-License-Identifier: AGPL-3.0-only
"""Building one outgoing message (what MAS's ``crates/email/src/mailer.rs`` asks of lettre).

A message is ``multipart/alternative`` with a ``text/plain`` part then a ``text/html`` part
(RFC 2046 §5.1.4: the last part is the preferred one), both UTF-8. Headers follow RFC 5322:
``From`` and ``Reply-To`` from ``email.from`` / ``email.reply_to``, ``To``, ``Subject``,
``Date`` (the server's clock), ``Message-ID`` ``<ulid@server_name>`` and ``MIME-Version``.
Display names and subjects outside ASCII are RFC 2047 encoded words, every body part is
7-bit clean (quoted-printable or base64, whichever the stdlib finds shorter, when plain ASCII
lines do not fit) and no line is longer than 78 characters, so the message needs neither
``8BITMIME`` nor ``SMTPUTF8`` from the relay.

The serialised message uses ``\\n`` line ends: Twisted's SMTP client turns them into CRLF
on the wire (and dot-stuffs), and sendmail reads local line ends.
"""

from __future__ import annotations

import datetime
import email.policy
import email.utils
import re
from email.headerregistry import Address
from email.message import EmailMessage

import attrs

#: 7-bit bodies, 78-character lines, ``\n`` line ends, RFC 2047 headers.
POLICY = email.policy.default.clone(cte_type="7bit", max_line_length=78, linesep="\n")


#: RFC 5322 dot-atom text; host names of letters, digits and inner hyphens.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AddressError(ValueError):
    """An address that cannot be written in a message without ``SMTPUTF8``."""


@attrs.frozen
class Mailbox:
    """A display name (optional) and an address."""

    address: str
    name: str | None = None

    def header_address(self) -> Address:
        """As a header value; a non-ASCII domain is written in its IDNA (punycode) form.

        Only dot-atom local parts and host-name domains are accepted, so that nothing in an
        address can end a header or an SMTP command.

        Raises:
            AddressError: not such an address, a local part outside ASCII (it would need
                ``SMTPUTF8``), or a display name with control characters.
        """
        local, sep, domain = self.address.rpartition("@")
        if not sep or not local or not domain:
            raise AddressError(f"not an email address: {self.address!r}")
        if not local.isascii():
            raise AddressError(
                "an address with a non-ASCII local part needs SMTPUTF8, which is not supported"
            )
        if not domain.isascii():
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError:
                raise AddressError(f"not a valid domain: {domain!r}")
        if (
            _LOCAL_PART.fullmatch(local) is None
            or _DOMAIN.fullmatch(domain) is None
            or len(self.address) > 254
        ):
            raise AddressError(f"not an email address: {self.address!r}")
        if self.name is not None and _CONTROL.search(self.name):
            raise AddressError("a display name may not hold control characters")
        return Address(display_name=self.name or "", username=local, domain=domain)

    @property
    def envelope_address(self) -> str:
        """The address for ``MAIL FROM`` / ``RCPT TO`` and sendmail's arguments."""
        return self.header_address().addr_spec


def is_valid_address(address: str) -> bool:
    """Whether ``address`` is one we accept for a user and can send to: a dot-atom local part,
    a host-name domain, at most 254 characters (RFC 5321 §4.5.3.1.3), as :class:`Mailbox`
    checks. The one rule for registration, the account pages, the admin API and the CLI."""
    try:
        Mailbox(address=address).header_address()
    except ValueError:
        return False
    return True


@attrs.frozen
class RenderedEmail:
    """A message's three rendered templates."""

    subject: str
    text: str
    html: str


def build_message(
    *,
    from_: Mailbox,
    reply_to: Mailbox,
    to: Mailbox,
    rendered: RenderedEmail,
    now_ms: int,
    message_id: str,
) -> EmailMessage:
    """The whole message, ready for :func:`serialise`.

    Args:
        message_id: the ``Message-ID`` without angle brackets (``id@server_name``).

    Raises:
        AddressError: one of the addresses cannot be written.
    """
    message = EmailMessage(policy=POLICY)
    message["From"] = from_.header_address()
    message["Reply-To"] = reply_to.header_address()
    message["To"] = to.header_address()
    # A subject is one line; the template's surrounding whitespace and inner newlines go.
    message["Subject"] = " ".join(rendered.subject.split())
    message["Date"] = email.utils.format_datetime(
        datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC)
    )
    message["Message-ID"] = f"<{message_id}>"
    message["MIME-Version"] = "1.0"
    message.set_content(_with_final_newline(rendered.text), subtype="plain", charset="utf-8")
    # ``add_alternative`` would give the HTML part a MIME-Version of its own: only the
    # message has one (RFC 2045 §4).
    html = EmailMessage(policy=POLICY)
    html.set_content(_with_final_newline(rendered.html), subtype="html", charset="utf-8")
    del html["MIME-Version"]
    message.make_alternative()
    message.attach(html)
    return message


def serialise(message: EmailMessage) -> bytes:
    """The message as bytes, ``\\n`` line ends."""
    return message.as_bytes(policy=POLICY)


def _with_final_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
