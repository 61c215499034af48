# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli config check`` tries the SMTP relay ``email`` configures, as a subprocess
against a real SMTP server (Twisted's, started by the test on trial's reactor): a relay that
is down, or refuses the credentials, is one warning line naming ``host:port`` and the reason;
the exit status stays 0."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml
from twisted.internet import utils
from twisted.trial import unittest

from tests.email._helpers import SmtpTestServer, free_port, make_certificate, settle
from tests.utils import temp_dir


class ConfigCheckEmailTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(temp_dir(self))
        self.certificate = make_certificate()

    def write_config(self, email: dict[str, Any] | None) -> str:
        data: dict[str, Any] = {
            "matrix": {"homeserver": "example.com", "secret": "s"},
            "secrets": {"encryption": "0123456789abcdef" * 4},
        }
        if email is not None:
            data["email"] = email
        path = self.tmp / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    async def check(self, email: dict[str, Any] | None, **env: str) -> tuple[int, list[str]]:
        config = self.write_config(email)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAS_") and k != "SSL_CERT_FILE"}
        environ.update(env)
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable,
            ["-m", "mas_twisted.cli.main", "config", "check", "-c", config],
            env=environ,
            path=str(self.tmp),
        )
        await settle()
        lines = err.decode().splitlines()
        self.assertNotIn("Traceback", err.decode())
        return code, lines

    def warnings(self, lines: list[str]) -> list[str]:
        return [line for line in lines if "email:" in line]

    async def serve(self, mode: str, users: dict[str, str] | None = None) -> SmtpTestServer:
        server = SmtpTestServer(mode, users=users, certificate=self.certificate).start()
        self.addCleanup(server.stop)
        return server

    async def test_relay_down(self) -> None:
        port = free_port()
        code, lines = await self.check(
            {"transport": "smtp", "mode": "plain", "hostname": "localhost", "port": port}
        )
        self.assertEqual(code, 0, lines)
        self.assertTrue(any("Configuration file looks good" in line for line in lines), lines)
        [warning] = self.warnings(lines)
        self.assertIn(f"localhost:{port}", warning)
        self.assertIn("connection refused", warning)

    async def test_relay_answers_over_starttls_with_auth(self) -> None:
        server = await self.serve("starttls", users={"mas": "relay-secret"})
        email = {
            "transport": "smtp",
            "mode": "starttls",
            "hostname": "localhost",
            "port": server.port,
            "username": "mas",
            "password": "relay-secret",
        }
        code, lines = await self.check(email, SSL_CERT_FILE=self.certificate.write_ca(self.tmp))
        self.assertEqual((code, self.warnings(lines)), (0, []), lines)
        self.assertEqual(server.messages, [])

    async def test_untrusted_certificate_and_refused_password(self) -> None:
        server = await self.serve("starttls", users={"mas": "relay-secret"})
        email = {
            "transport": "smtp",
            "mode": "starttls",
            "hostname": "localhost",
            "port": server.port,
            "username": "mas",
            "password": "not-the-secret",
        }
        code, lines = await self.check(email)
        [warning] = self.warnings(lines)
        self.assertIn("certificate verify failed", warning)
        code, lines = await self.check(email, SSL_CERT_FILE=self.certificate.write_ca(self.tmp))
        self.assertEqual(code, 0)
        [warning] = self.warnings(lines)
        self.assertIn(f"localhost:{server.port}", warning)
        self.assertIn("535", warning)
        self.assertNotIn("not-the-secret", "\n".join(lines))

    async def test_other_transports_are_not_probed(self) -> None:
        for email in (None, {"transport": "blackhole"}, {"transport": "sendmail", "command": "/nonexistent"}):
            with self.subTest(email=email):
                code, lines = await self.check(email)
                self.assertEqual((code, self.warnings(lines)), (0, []), lines)
