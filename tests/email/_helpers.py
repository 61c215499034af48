# SPDX-License-Identifier: AGPL-3.0-only
"""A real SMTP server for the tests (Twisted's own ``twisted.mail.smtp.ESMTP``): plain, with
STARTTLS or behind TLS from the first byte, with or without ``AUTH`` (PLAIN and LOGIN through
a cred portal), a self-signed certificate made for the test, recipients it refuses for good
(550) or for now (451). It records what it received, as received on the wire."""

from __future__ import annotations

import datetime
import email
import email.message
import email.policy
import ipaddress
import socket
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.cred import checkers, portal
from twisted.internet import defer, reactor, ssl, task
from twisted.mail import smtp
from twisted.mail.imap4 import LOGINCredentials, PLAINCredentials
from zope.interface import implementer


@attrs.frozen
class TestCertificate:
    """A self-signed certificate for ``localhost`` and 127.0.0.1 (its own CA) and its key."""

    cert_pem: bytes
    key_pem: bytes

    def write_ca(self, directory: Path) -> str:
        path = directory / "smtp-test-ca.pem"
        path.write_bytes(self.cert_pem)
        return str(path)

    def server_options(self) -> Any:
        return ssl.PrivateCertificate.loadPEM(self.cert_pem + self.key_pem).options()


TestCertificate.__test__ = False  # type: ignore[attr-defined]


def make_certificate(common_name: str = "localhost") -> TestCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return TestCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@attrs.define
class ReceivedMessage:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    #: The user that authenticated, or None.
    user: str | None
    #: Whether the message came over TLS (STARTTLS or TLS from the start).
    tls: bool

    def parsed(self) -> email.message.EmailMessage:
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        return message


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, server: SmtpTestServer, record: ReceivedMessage):
        self._server = server
        self._record = record
        self._lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self._lines.append(line)

    def eomReceived(self) -> defer.Deferred[None]:
        self._record.data = b"\n".join(self._lines) + b"\n"
        self._server.messages.append(self._record)
        return defer.succeed(None)

    def connectionLost(self) -> None:
        self._lines = []


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, server: SmtpTestServer, user: str | None):
        self._server = server
        self._user = user
        self._from = ""
        self._to: list[str] = []
        self.protocol: Any = None

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> bytes:
        return b"Received: from test-client by smtp-test-server"

    def validateFrom(self, helo: Any, origin: Any) -> Any:
        self._to = []
        self._from = str(origin)
        return origin

    def validateTo(self, user: smtp.User) -> Any:
        address = str(user.dest)
        if address in self._server.refuse:
            raise smtp.SMTPBadRcpt(user, 550, "No such user here")
        if address in self._server.defer:
            raise smtp.SMTPBadRcpt(user, 451, "Try again later")
        self._to.append(address)
        tls = bool(
            self.protocol is not None and self.protocol.transport is not None and _is_tls(self.protocol)
        )
        return lambda: _Message(
            self._server, ReceivedMessage(self._from, list(self._to), b"", self._user, tls)
        )


def _is_tls(proto: Any) -> bool:
    from twisted.internet.interfaces import ISSLTransport

    return bool(getattr(proto, "startedTLS", False)) or ISSLTransport.providedBy(proto.transport)


@implementer(portal.IRealm)
class _Realm:
    def __init__(self, server: SmtpTestServer):
        self._server = server

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:
        if smtp.IMessageDelivery not in interfaces:
            raise NotImplementedError()
        user = avatar_id.decode() if isinstance(avatar_id, bytes) else str(avatar_id)
        delivery = _Delivery(self._server, user)
        self._server._pending_delivery = delivery
        return smtp.IMessageDelivery, delivery, lambda: None


class _ServerProtocol(smtp.ESMTP):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.server.connections.add(self)

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.factory.server.connections.discard(self)

    def validateFrom(self, helo: Any, origin: Any) -> Any:
        if self.delivery is not None:
            self.delivery.protocol = self
        return super().validateFrom(helo, origin)

    def _cbAuthenticated(self, loginInfo: Any) -> Any:
        result = super()._cbAuthenticated(loginInfo)
        if self.delivery is not None:
            self.delivery.protocol = self
        return result


class _Factory(smtp.SMTPFactory):
    protocol = _ServerProtocol

    def __init__(self, server: SmtpTestServer):
        super().__init__(server.portal)
        self.server = server

    def buildProtocol(self, addr: Any) -> Any:
        challengers = {b"PLAIN": PLAINCredentials, b"LOGIN": LOGINCredentials} if self.server.users else {}
        ctx = self.server.certificate.server_options() if self.server.starttls else None
        p = _ServerProtocol(challengers, ctx)
        p.factory = self
        p.portal = self.portal
        p.host = b"smtp-test-server"
        if self.server.users is None:
            p.delivery = _Delivery(self.server, None)
            p.delivery.protocol = p
        return p


class SmtpTestServer:
    """Args:
    mode: ``plain`` (STARTTLS not offered), ``starttls`` (offered) or ``tls`` (TLS from the start).
    users: ``{username: password}``; when given, senders must authenticate.
    """

    def __init__(
        self,
        mode: str = "plain",
        users: dict[str, str] | None = None,
        certificate: TestCertificate | None = None,
        port: int = 0,
    ):
        self.mode = mode
        self.starttls = mode == "starttls"
        self.users = users
        self.certificate = certificate or make_certificate()
        self.messages: list[ReceivedMessage] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.connections: set[Any] = set()
        self._pending_delivery: Any = None
        self._port: Any = None
        self._wanted_port = port
        self.portal: Any = None
        if users is not None:
            checker = checkers.InMemoryUsernamePasswordDatabaseDontUse(
                **{k: v.encode() for k, v in users.items()}
            )
            self.portal = portal.Portal(_Realm(self), [checker])

    def start(self) -> SmtpTestServer:
        factory = _Factory(self)
        if self.mode == "tls":
            self._port = reactor.listenSSL(  # type: ignore[attr-defined]
                self._wanted_port, factory, self.certificate.server_options(), interface="127.0.0.1"
            )
        else:
            self._port = reactor.listenTCP(self._wanted_port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self._wanted_port = self._port.getHost().port
        return self

    @property
    def port(self) -> int:
        return int(self._wanted_port)

    async def stop(self) -> None:
        if self._port is not None:
            await self._port.stopListening()
            self._port = None
        for _ in range(200):
            if not self.connections:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        for conn in list(self.connections):
            conn.transport.abortConnection()
        await settle()


async def settle(seconds: float = 0.05) -> None:
    """Let closing connections close before trial checks the reactor."""
    await task.deferLater(reactor, seconds, lambda: None)


def free_port() -> int:
    """A port nothing listens on (for a server that is down, started there later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
