# SPDX-License-Identifier: AGPL-3.0-only
"""Where messages go: ``email.transport`` (MAS's ``crates/email/src/transport.rs``, lettre's
transports underneath; inventory §7).

- ``blackhole`` drops every message, with a warning that names neither its content nor its
  recipient (MAS: "An email was supposed to be sent but no email backend is configured").
- ``smtp`` speaks to a relay with Twisted's own client (:class:`twisted.mail.smtp.ESMTPSender`):
  ``plain`` never uses TLS (lettre's ``builder_dangerous``), ``starttls`` requires STARTTLS
  (lettre's ``starttls_relay``) and ``tls`` wraps the connection in TLS from the start
  (``relay``); the ports default to 25, 587 and 465, and every address of ``hostname`` is
  tried (``HostnameEndpoint``: IPv6 and IPv4). With ``username``/``password`` the
  client authenticates with ``AUTH PLAIN`` or ``AUTH LOGIN`` (lettre's default mechanisms, in
  that order) and refuses to go on if the relay offers neither. Certificates are checked
  against the system's trust store for ``hostname`` (:func:`twisted.internet.ssl.platformTrust`,
  which is OpenSSL's default paths, so the standard ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
  environment variables choose another store). Each server reply must come within 30 s and
  the whole exchange within 60 s (lettre's timeout).
- ``sendmail`` runs ``command`` (looked up in ``PATH`` unless it is a path) as lettre does:
  ``command -i -f <from> -- <to>``, the message on standard input; a non-zero exit fails.

Failures are :class:`DeliveryError`: ``permanent`` when trying again cannot help (the relay
answered 5xx, for instance a refused recipient or refused credentials; sendmail's usage, data
or address exit codes), else transient (connection refused, timeout, a TLS failure, 4xx).
Errors name the relay and its reply, never the SMTP conversation (which holds the
credentials).
"""

from __future__ import annotations

import logging
import os
import shutil
from io import BytesIO
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer, error, protocol
from twisted.mail import smtp

if TYPE_CHECKING:
    from mas_twisted.config.email import EmailConfig
    from mas_twisted.util.reactor import IMasReactor

logger = logging.getLogger(__name__)

#: Seconds for one SMTP reply, and for the whole exchange (lettre's default is 60 s).
REPLY_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
#: Sendmail is given this long before it is killed.
SENDMAIL_TIMEOUT_S = 60.0

#: sysexits(3) codes that no retry will change: usage, data, unknown user, unknown host.
_PERMANENT_EXIT_CODES = frozenset({64, 65, 67, 68})


class DeliveryError(Exception):
    """A message was not handed over; :attr:`permanent` says whether retrying is useless."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    """Hands a serialised message to the next hop."""

    async def send(self, envelope_from: str, envelope_to: list[str], message: bytes) -> None:
        """Raises :class:`DeliveryError`."""

    async def probe(self, timeout: float) -> None:
        """Check that the transport can be reached (SMTP: connect, EHLO, STARTTLS, AUTH);
        nothing to check for the others. Raises :class:`DeliveryError`."""

    def describe(self) -> str:
        """What the transport is, for a log line (no secrets)."""


class BlackholeTransport:
    async def send(self, envelope_from: str, envelope_to: list[str], message: bytes) -> None:
        logger.warning("An email was supposed to be sent but no email transport is configured (blackhole)")

    async def probe(self, timeout: float) -> None:
        return None

    def describe(self) -> str:
        return "blackhole"


# -- SMTP ---------------------------------------------------------------------------------


class _Sender(smtp.ESMTPSender):
    """Twisted's single-message sender, with PLAIN then LOGIN only (lettre's mechanisms), that
    tells its factory when the connection ends (an endpoint, unlike a connector, does not)."""

    def _registerAuthenticators(self) -> None:
        self.registerAuthenticator(smtp.PLAINAuthenticator(self.username))
        self.registerAuthenticator(smtp.LOGINAuthenticator(self.username))

    def connectionMade(self) -> None:
        # The message goes out in a few writes and the relay answers only at the end: with
        # Nagle's algorithm the last write waits for a delayed ACK (40 ms a message on Linux).
        for transport in (self.transport, getattr(self.transport, "transport", None)):
            set_no_delay = getattr(transport, "setTcpNoDelay", None)
            if set_no_delay is not None:
                try:
                    set_no_delay(True)
                except OSError:
                    pass
                break
        super().connectionMade()

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        super().connectionLost(reason)
        self.factory.connection_ended(reason)


class _Prober(_Sender):
    """Goes as far as a message would (EHLO, STARTTLS, AUTH), then says QUIT instead of MAIL."""

    def getMailFrom(self) -> None:
        self.factory.ready = True
        return None


class _SenderFactory(smtp.ESMTPSenderFactory):
    protocol = _Sender
    #: A probe reached the point where it would send MAIL.
    ready = False

    def connection_ended(self, reason: Any) -> None:
        if self.sendFinished:
            return
        if self.ready:
            # A probe that got as far as MAIL and said QUIT: the relay is usable.
            self.sendFinished = True
            self.result.callback(None)
            return
        # With no retries left, Twisted's factory fails the result with the reason (the TLS
        # or protocol failure the connection ended with, if any).
        self._processConnectionError(None, reason)

    def connect_failed(self, reason: Any) -> None:
        if not self.sendFinished:
            self.sendFinished = True
            self.result.errback(reason)


class _ProbeFactory(_SenderFactory):
    protocol = _Prober


class SmtpTransport:
    """``transport: smtp``.

    Args:
        reactor: connects on it (``HostnameEndpoint``: every address of ``hostname``, IPv6 and
            IPv4, as lettre).
        mode: ``plain``, ``starttls`` or ``tls``.
    """

    def __init__(
        self,
        reactor: IMasReactor,
        *,
        mode: str,
        hostname: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        reply_timeout: float = REPLY_TIMEOUT_S,
    ):
        self._reactor = reactor
        self.mode = mode
        self.hostname = hostname
        self.port = port
        self._username = username.encode("utf-8") if username is not None else None
        self._password = password.encode("utf-8") if password is not None else None
        self._reply_timeout = reply_timeout

    def describe(self) -> str:
        return f"smtp ({self.mode}) {self.hostname}:{self.port}"

    def _tls_options(self) -> Any:
        """Verify ``hostname`` against the platform's trust store (read at each connection, so
        ``SSL_CERT_FILE`` applies)."""
        from twisted.internet import ssl

        return ssl.optionsForClientTLS(self.hostname, trustRoot=ssl.platformTrust())

    async def send(self, envelope_from: str, envelope_to: list[str], message: bytes) -> None:
        await self._exchange(_SenderFactory, envelope_from, envelope_to, message, SEND_TIMEOUT_S)

    async def probe(self, timeout: float) -> None:
        await self._exchange(_ProbeFactory, "probe@localhost", ["probe@localhost"], b"", timeout)

    async def _exchange(
        self,
        factory_class: type[_SenderFactory],
        sender: str,
        recipients: list[str],
        message: bytes,
        timeout: float,
    ) -> None:
        from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

        connecting: defer.Deferred[Any] | None = None

        def _cancel(_: Any) -> None:
            factory.sendFinished = True
            current = factory.currentProtocol
            if current is not None and current.transport is not None:
                current.transport.abortConnection()
            elif connecting is not None:
                connecting.cancel()

        result: defer.Deferred[Any] = defer.Deferred(_cancel)
        starttls = self.mode == "starttls"
        factory = factory_class(
            self._username,
            self._password,
            sender,
            recipients,
            BytesIO(message),
            result,
            retries=0,
            timeout=self._reply_timeout,
            # STARTTLS only in starttls mode, and then required; never in plain mode.
            contextFactory=self._tls_options() if starttls else None,
            heloFallback=False,
            requireAuthentication=self._username is not None,
            requireTransportSecurity=starttls,
            hostname=None,
        )
        endpoint: Any = HostnameEndpoint(self._reactor, self.hostname, self.port, timeout=CONNECT_TIMEOUT_S)
        if self.mode == "tls":
            endpoint = wrapClientTLS(self._tls_options(), endpoint)
        connecting = endpoint.connect(factory)
        connecting.addErrback(factory.connect_failed)
        result.addTimeout(timeout, self._reactor)
        try:
            await result
        except defer.TimeoutError:
            raise DeliveryError(f"{self.describe()}: no answer within {timeout:g} s", permanent=False)
        except smtp.SMTPClientError as e:
            raise _smtp_error(self, e)
        except Exception as e:
            raise DeliveryError(f"{self.describe()}: {_one_line(e)}", permanent=False)


def _smtp_error(transport: SmtpTransport, e: smtp.SMTPClientError) -> DeliveryError:
    """An SMTP client error as a delivery error, with the relay's reply but not the log."""
    cause = e.__cause__
    if e.code > 0:
        reply = e.resp.decode("utf-8", "replace") if isinstance(e.resp, bytes) else str(e.resp)
        text = f"{e.code:03d} {' '.join(reply.split())}"
    elif cause is not None:
        text = _one_line(cause)
    else:
        reply = e.resp.decode("utf-8", "replace") if isinstance(e.resp, bytes) else str(e.resp)
        text = " ".join(reply.split())
    addresses: Any = e.addresses
    if isinstance(e, smtp.SMTPDeliveryError) and addresses:
        refused = [
            f"{addr.decode('ascii', 'replace') if isinstance(addr, bytes) else addr}: {code:03d}"
            for addr, code, _resp in addresses
            if code not in smtp.SUCCESS
        ]
        if refused:
            text += f" ({', '.join(refused)})"
    return DeliveryError(f"{transport.describe()}: {text}", permanent=e.code >= 500)


def _one_line(e: BaseException) -> str:
    if isinstance(e, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, error.TimeoutError):
        return "connection timed out"
    if isinstance(e, error.DNSLookupError):
        return "host name not found"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# -- sendmail -----------------------------------------------------------------------------


class _SendmailProcess(protocol.ProcessProtocol):
    MAX_STDERR = 4096

    def __init__(self, message: bytes, done: defer.Deferred[int]):
        self._message = message
        self._done = done
        self.stderr = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self._message)
        self.transport.closeStdin()

    def errReceived(self, data: bytes) -> None:
        if len(self.stderr) < self.MAX_STDERR:
            self.stderr += data[: self.MAX_STDERR - len(self.stderr)]

    def processEnded(self, reason: Any) -> None:
        value = reason.value
        if isinstance(value, error.ProcessDone):
            self._done.callback(0)
        elif isinstance(value, error.ProcessTerminated) and value.exitCode is not None:
            self._done.callback(value.exitCode)
        else:
            self._done.callback(-1)


class SendmailTransport:
    """``transport: sendmail``: ``command -i -f <from> -- <to…>``, the message on stdin."""

    def __init__(self, reactor: IMasReactor, command: str = "sendmail"):
        self._reactor = reactor
        self.command = command

    def describe(self) -> str:
        return f"sendmail ({self.command})"

    async def probe(self, timeout: float) -> None:
        return None

    async def send(self, envelope_from: str, envelope_to: list[str], message: bytes) -> None:
        executable = shutil.which(self.command)
        if executable is None:
            raise DeliveryError(f"{self.describe()}: command not found", permanent=False)
        done: defer.Deferred[int] = defer.Deferred()
        process = _SendmailProcess(message, done)
        args = [self.command, "-i", "-f", envelope_from, "--", *envelope_to]
        try:
            handle = self._reactor.spawnProcess(process, executable, args, env=dict(os.environ))  # type: ignore[attr-defined]
        except OSError as e:
            raise DeliveryError(f"{self.describe()}: {_one_line(e)}", permanent=False)
        timer = self._reactor.callLater(SENDMAIL_TIMEOUT_S, _kill, handle)
        code = await done
        if timer.active():
            timer.cancel()
            timed_out = False
        else:
            timed_out = True
        if code == 0:
            return
        if timed_out:
            raise DeliveryError(f"{self.describe()}: killed after {SENDMAIL_TIMEOUT_S:g} s", permanent=False)
        stderr = " ".join(process.stderr.decode("utf-8", "replace").split())[:300]
        detail = f": {stderr}" if stderr else ""
        raise DeliveryError(
            f"{self.describe()}: exited with status {code}{detail}", permanent=code in _PERMANENT_EXIT_CODES
        )


def _kill(handle: Any) -> None:
    try:
        handle.signalProcess("KILL")
    except error.ProcessExitedAlready:
        pass


def make_transport(config: EmailConfig, reactor: IMasReactor) -> Transport:
    """The transport ``config`` describes (``config.email``, already validated)."""
    from mas_twisted.config.email import TRANSPORT_SENDMAIL, TRANSPORT_SMTP

    if config.transport == TRANSPORT_SMTP:
        assert config.mode is not None and config.hostname is not None and config.smtp_port is not None
        return SmtpTransport(
            reactor,
            mode=config.mode,
            hostname=config.hostname,
            port=config.smtp_port,
            username=config.username,
            password=config.password,
        )
    if config.transport == TRANSPORT_SENDMAIL:
        return SendmailTransport(reactor, config.command or "sendmail")
    return BlackholeTransport()
