# SPDX-License-Identifier: AGPL-3.0-only
"""The transports against real servers: Twisted's SMTP server started by each test (plain,
STARTTLS and TLS with a self-signed certificate made for the test, AUTH PLAIN/LOGIN through
a cred portal), a sendmail stand-in script, and the blackhole. The CA is trusted the way an
operator would: the standard ``SSL_CERT_FILE`` environment variable (OpenSSL's default paths,
which :func:`twisted.internet.ssl.platformTrust` reads)."""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from twisted.internet import reactor
from twisted.trial import unittest

from mas_twisted.email.transport import BlackholeTransport, DeliveryError, SendmailTransport, SmtpTransport
from tests.email._helpers import SmtpTestServer, free_port, make_certificate, settle
from tests.utils import temp_dir

MESSAGE = b"From: a@example.com\nTo: b@example.org\nSubject: hi\n\n.leading dot\nbody\n"


class SmtpTransportTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(temp_dir(self))
        self.certificate = make_certificate()

    async def serve(self, mode: str, users: dict[str, str] | None = None, port: int = 0) -> SmtpTestServer:
        server = SmtpTestServer(mode, users=users, certificate=self.certificate, port=port).start()
        self.addCleanup(server.stop)
        return server

    def transport(self, server_port: int, mode: str, **kwargs: Any) -> SmtpTransport:
        return SmtpTransport(reactor, mode=mode, hostname="localhost", port=server_port, **kwargs)  # type: ignore[arg-type]

    def trust_test_ca(self) -> None:
        patcher = mock.patch.dict(os.environ, {"SSL_CERT_FILE": self.certificate.write_ca(self.tmp)})
        patcher.start()
        self.addCleanup(patcher.stop)

    async def send(self, transport: SmtpTransport) -> None:
        try:
            await transport.send("a@example.com", ["b@example.org"], MESSAGE)
        finally:
            await settle()

    async def fails(self, transport: SmtpTransport) -> DeliveryError:
        try:
            await self.send(transport)
        except DeliveryError as e:
            return e
        raise AssertionError("the message was sent")

    async def test_plain(self) -> None:
        server = await self.serve("plain")
        await self.send(self.transport(server.port, "plain"))
        [received] = server.messages
        self.assertEqual(
            (received.mail_from, received.rcpt_to, received.tls), ("a@example.com", ["b@example.org"], False)
        )
        # Line ends and the dot-stuffed line arrive as they were.
        self.assertIn(b"\n.leading dot\nbody\n", received.data)
        self.assertTrue(received.data.endswith(MESSAGE.split(b"\n\n", 1)[1]))

    async def test_plain_mode_never_starts_tls(self) -> None:
        # Even when the relay offers STARTTLS (lettre's builder_dangerous: no TLS at all).
        server = await self.serve("starttls")
        await self.send(self.transport(server.port, "plain"))
        self.assertFalse(server.messages[0].tls)

    async def test_starttls_with_a_trusted_self_signed_certificate(self) -> None:
        self.trust_test_ca()
        server = await self.serve("starttls")
        await self.send(self.transport(server.port, "starttls"))
        [received] = server.messages
        self.assertTrue(received.tls)

    async def test_starttls_refuses_an_untrusted_certificate(self) -> None:
        server = await self.serve("starttls")
        error = await self.fails(self.transport(server.port, "starttls"))
        self.assertFalse(error.permanent)
        self.assertIn("certificate verify failed", str(error))
        self.assertEqual(server.messages, [])

    async def test_starttls_refuses_a_certificate_for_another_name(self) -> None:
        self.certificate = make_certificate("mail.example.org")
        self.trust_test_ca()
        server = await self.serve("starttls")
        error = await self.fails(self.transport(server.port, "starttls"))
        self.assertFalse(error.permanent)
        self.assertEqual(server.messages, [])

    async def test_starttls_required(self) -> None:
        # A relay that does not offer STARTTLS: nothing is sent in the clear.
        server = await self.serve("plain", users={"mas": "secret"})
        error = await self.fails(self.transport(server.port, "starttls", username="mas", password="secret"))
        self.assertIn("TLS", str(error))
        self.assertEqual(server.messages, [])

    async def test_tls_from_the_start(self) -> None:
        self.trust_test_ca()
        server = await self.serve("tls", users={"mas": "secret"})
        await self.send(self.transport(server.port, "tls", username="mas", password="secret"))
        [received] = server.messages
        self.assertEqual((received.tls, received.user), (True, "mas"))

    async def test_tls_refuses_an_untrusted_certificate(self) -> None:
        server = await self.serve("tls")
        error = await self.fails(self.transport(server.port, "tls"))
        self.assertFalse(error.permanent)
        self.assertEqual(server.messages, [])

    async def test_auth_over_starttls(self) -> None:
        self.trust_test_ca()
        server = await self.serve("starttls", users={"mas": "s3cret pass"})
        await self.send(self.transport(server.port, "starttls", username="mas", password="s3cret pass"))
        self.assertEqual(server.messages[0].user, "mas")

    async def test_auth_refused_is_permanent_and_names_no_secret(self) -> None:
        self.trust_test_ca()
        server = await self.serve("starttls", users={"mas": "right"})
        error = await self.fails(
            self.transport(server.port, "starttls", username="mas", password="wrong-password")
        )
        self.assertTrue(error.permanent)
        self.assertIn("535", str(error))
        self.assertNotIn("wrong-password", str(error))
        self.assertNotIn("d3JvbmctcGFzc3dvcmQ", str(error))  # nor its base64
        self.assertEqual(server.messages, [])

    async def test_relay_wanting_auth_without_credentials(self) -> None:
        server = await self.serve("plain", users={"mas": "secret"})
        error = await self.fails(self.transport(server.port, "plain"))
        self.assertTrue(error.permanent, error)
        self.assertEqual(server.messages, [])

    async def test_refused_recipient_is_permanent(self) -> None:
        server = await self.serve("plain")
        server.refuse.add("b@example.org")
        error = await self.fails(self.transport(server.port, "plain"))
        self.assertTrue(error.permanent)
        self.assertIn("550", str(error))

    async def test_deferred_recipient_is_transient(self) -> None:
        server = await self.serve("plain")
        server.defer.add("b@example.org")
        error = await self.fails(self.transport(server.port, "plain"))
        self.assertFalse(error.permanent)
        self.assertIn("451", str(error))

    async def test_server_down_is_transient(self) -> None:
        port = free_port()
        error = await self.fails(self.transport(port, "plain"))
        self.assertFalse(error.permanent)
        self.assertIn(f"localhost:{port}", str(error))
        self.assertIn("connection refused", str(error))

    async def silent_server(self) -> int:
        """A port that accepts connections and never says a word."""
        from twisted.internet import protocol

        connections: list[Any] = []

        class Silent(protocol.Protocol):
            def connectionMade(self) -> None:
                connections.append(self)

        port = reactor.listenTCP(0, protocol.Factory.forProtocol(Silent), interface="127.0.0.1")  # type: ignore[attr-defined]

        async def _stop() -> None:
            await port.stopListening()
            for conn in connections:
                conn.transport.abortConnection()
            await settle()

        self.addCleanup(_stop)
        return int(port.getHost().port)

    async def test_a_relay_that_does_not_answer(self) -> None:
        port = await self.silent_server()
        error = await self.fails(self.transport(port, "plain", reply_timeout=0.3))
        self.assertFalse(error.permanent)
        self.assertIn("Timeout", str(error))
        with self.assertRaises(DeliveryError) as cm:
            await self.transport(port, "plain").probe(0.3)
        await settle()
        self.assertIn("no answer within 0.3 s", str(cm.exception))
        self.assertFalse(cm.exception.permanent)

    async def test_probe(self) -> None:
        self.trust_test_ca()
        server = await self.serve("starttls", users={"mas": "secret"})
        await self.transport(server.port, "starttls", username="mas", password="secret").probe(5)
        await settle()
        self.assertEqual(server.messages, [])
        with self.assertRaises(DeliveryError) as cm:
            await self.transport(server.port, "starttls", username="mas", password="nope").probe(5)
        await settle()
        self.assertIn("535", str(cm.exception))

    async def test_probe_of_a_server_down(self) -> None:
        port = free_port()
        with self.assertRaises(DeliveryError) as cm:
            await self.transport(port, "plain").probe(5)
        self.assertIn("connection refused", str(cm.exception))


class SendmailTransportTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(temp_dir(self))

    def script(self, body: str) -> str:
        path = self.tmp / "fake-sendmail"
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)

    async def test_message_on_stdin_and_lettres_arguments(self) -> None:
        out = self.tmp / "out"
        command = self.script(
            "import sys, json\n"
            f"open({str(out)!r}, 'wb').write(json.dumps(sys.argv[1:]).encode() + b'\\n' + sys.stdin.buffer.read())\n"
        )
        await SendmailTransport(reactor, command).send("a@example.com", ["b@example.org"], MESSAGE)  # type: ignore[arg-type]
        args, data = out.read_bytes().split(b"\n", 1)
        self.assertEqual(args, b'["-i", "-f", "a@example.com", "--", "b@example.org"]')
        self.assertEqual(data, MESSAGE)

    async def test_nonzero_exit_fails(self) -> None:
        command = self.script(
            "import sys\nsys.stdin.read()\nsys.stderr.write('queue is full')\nsys.exit(75)\n"
        )
        with self.assertRaises(DeliveryError) as cm:
            await SendmailTransport(reactor, command).send("a@example.com", ["b@example.org"], MESSAGE)  # type: ignore[arg-type]
        self.assertFalse(cm.exception.permanent)
        self.assertIn("exited with status 75: queue is full", str(cm.exception))

    async def test_unknown_user_exit_is_permanent(self) -> None:
        command = self.script("import sys\nsys.stdin.read()\nsys.exit(67)\n")
        with self.assertRaises(DeliveryError) as cm:
            await SendmailTransport(reactor, command).send("a@example.com", ["b@example.org"], MESSAGE)  # type: ignore[arg-type]
        self.assertTrue(cm.exception.permanent)

    async def test_missing_command(self) -> None:
        with self.assertRaises(DeliveryError) as cm:
            await SendmailTransport(reactor, str(self.tmp / "nope")).send(
                "a@example.com", ["b@example.org"], MESSAGE
            )  # type: ignore[arg-type]
        self.assertIn("command not found", str(cm.exception))


class BlackholeTestCase(unittest.TestCase):
    async def test_drops_with_a_warning_naming_nothing(self) -> None:
        with self.assertLogs("mas_twisted.email", logging.WARNING) as logs:
            await BlackholeTransport().send("a@example.com", ["b@example.org"], MESSAGE)
        self.assertEqual(len(logs.output), 1)
        self.assertNotIn("example", logs.output[0])
        self.assertNotIn("Subject", logs.output[0])
