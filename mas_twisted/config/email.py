# SPDX-License-Identifier: AGPL-3.0-only
"""The ``email`` section: how outgoing mail is sent.

MAS behaviour (``crates/config/src/sections/email.rs``, ``crates/cli/src/util.rs``):
``from`` and ``reply_to`` are RFC 5322 mailboxes (default
``"Authentication Service" <root@localhost>``); ``transport`` (required once the section is
present) is ``blackhole`` (drop everything, the default when the section is absent),
``smtp`` (``mode`` plain|starttls|tls and ``hostname`` required, optional ``port``, and
``username`` together with ``password``/``password_file``; ``command`` not allowed) or
``sendmail`` (``command`` required; none of the SMTP keys allowed). The SMTP port defaults
to 25, 587 or 465 for plain, starttls and tls. A password read from a file is trimmed.
"""

from __future__ import annotations

import re
from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader, describe, without_none

TRANSPORT_BLACKHOLE = "blackhole"
TRANSPORT_SMTP = "smtp"
TRANSPORT_SENDMAIL = "sendmail"
TRANSPORTS: tuple[str, ...] = (TRANSPORT_BLACKHOLE, TRANSPORT_SMTP, TRANSPORT_SENDMAIL)

MODE_PLAIN = "plain"
MODE_STARTTLS = "starttls"
MODE_TLS = "tls"
SMTP_MODES: tuple[str, ...] = (MODE_PLAIN, MODE_STARTTLS, MODE_TLS)
DEFAULT_SMTP_PORTS = {MODE_PLAIN: 25, MODE_STARTTLS: 587, MODE_TLS: 465}

DEFAULT_MAILBOX = '"Authentication Service" <root@localhost>'

# The keys MAS refuses with the sendmail transport.
_SMTP_KEYS = ("mode", "hostname", "port", "username", "password")

# An addr-spec without comments or quoted local parts' oddities: local@domain.
_ADDR_SPEC = r"[^\s<>@\",]+@[^\s<>@\",]+"
_MAILBOX_RES = (
    re.compile(rf"^(?P<addr>{_ADDR_SPEC})$"),
    re.compile(rf'^"(?P<name>(?:[^"\\]|\\.)*)"\s*<(?P<addr>{_ADDR_SPEC})>$'),
    re.compile(rf"^(?P<name>[^<>\"]*?)\s*<(?P<addr>{_ADDR_SPEC})>$"),
)


def parse_mailbox(value: str) -> tuple[str | None, str]:
    """Split ``Name <local@domain>`` (or a bare address) into (display name, address).

    Raises:
        ValueError: the value is not a single mailbox.
    """
    text = value.strip()
    for pattern in _MAILBOX_RES:
        match = pattern.match(text)
        if match is not None:
            name = match.groupdict().get("name")
            if name is not None:
                name = re.sub(r"\\(.)", r"\1", name).strip() or None
            return name, match.group("addr")
    raise ValueError(value)


class EmailConfig(Config):
    """``config.email``: sender addresses and the mail transport."""

    section = "email"

    from_address: str
    reply_to: str
    transport: str
    mode: str | None
    hostname: str | None
    #: The configured SMTP port, or None (see :attr:`smtp_port`).
    port: int | None
    username: str | None
    #: The password given inline, or read (and trimmed) from ``password_file``.
    password: str | None
    password_file: str | None
    command: str | None

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.from_address = r.str("from", DEFAULT_MAILBOX)
        self.reply_to = r.str("reply_to", DEFAULT_MAILBOX)
        if raw.get(self.section) is None:
            self.transport = TRANSPORT_BLACKHOLE
        else:
            self.transport = r.enum("transport", TRANSPORTS, required=True)
        self.mode = r.enum("mode", SMTP_MODES)
        self.hostname = r.str("hostname")
        self.port = r.int("port", None, min=1, max=65535)
        self.username = r.str("username")
        self.password_file = r.str("password_file")
        self.password = r.secret("password", strip=True)
        self.command = r.str("command")

        for key in ("from", "reply_to"):
            value = r.str(key, DEFAULT_MAILBOX)
            try:
                parse_mailbox(value)
            except ValueError:
                raise r.error(
                    key, f'expected an email address such as "Name" <user@example.com>, got {describe(value)}'
                )

        if self.transport == TRANSPORT_SMTP:
            has_password = self.password is not None
            if self.username is not None and not has_password:
                raise r.error("password", f"missing required value (username {self.username!r} is set)")
            if self.username is None and has_password:
                raise r.error("username", "missing required value (a password is set)")
            if self.mode is None:
                raise r.error("mode", f"missing required value for transport {self.transport!r}")
            if self.hostname is None:
                raise r.error("hostname", f"missing required value for transport {self.transport!r}")
            if self.command is not None:
                raise r.error(
                    "command", f"not allowed with transport {self.transport!r}, got {self.command!r}"
                )
        elif self.transport == TRANSPORT_SENDMAIL:
            if self.command is None:
                raise r.error("command", f"missing required value for transport {self.transport!r}")
            for key in _SMTP_KEYS:
                if r.has(key):
                    raise r.error(
                        key, f"not allowed with transport {self.transport!r}, got {describe(r.data[key])}"
                    )

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises it: the password file's path rather than its content."""
        return without_none(
            ("from", self.from_address),
            ("reply_to", self.reply_to),
            ("transport", self.transport),
            ("mode", self.mode),
            ("hostname", self.hostname),
            ("port", self.port),
            ("username", self.username),
            ("password", self.password if self.password_file is None else None),
            ("password_file", self.password_file),
            ("command", self.command),
        )

    @property
    def smtp_port(self) -> int | None:
        """The port to connect to: the configured one, else the mode's usual port."""
        if self.port is not None:
            return self.port
        return DEFAULT_SMTP_PORTS.get(self.mode) if self.mode is not None else None

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return f"""\
# Outgoing email (verification codes, password recovery).
email:
  from: '{DEFAULT_MAILBOX}'
  reply_to: '{DEFAULT_MAILBOX}'
  # blackhole drops every message. For a relay use:
  #   transport: smtp
  #   mode: starttls        # plain, starttls or tls
  #   hostname: smtp.example.com
  #   port: 587             # defaults to 25, 587 or 465 depending on the mode
  #   username: mas
  #   password: "..."       # or password_file: /path/to/password
  #   # The relay's certificate is checked against the system's CAs (SSL_CERT_FILE=...
  #   # in the environment to use another bundle).
  # or a local binary:
  #   transport: sendmail
  #   command: sendmail
  transport: blackhole
"""
