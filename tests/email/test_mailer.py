# SPDX-License-Identifier: AGPL-3.0-only
"""The messages the mailer builds, read back with the standard library's parser as a mail
client would: MIME structure, encoded headers, dates and ids, line lengths, escaping, and the
templates an operator overrides."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
from pathlib import Path
from typing import Any

from mas_twisted.email.mailer import Mailbox, Mailer, MessageError
from mas_twisted.email.transport import BlackholeTransport
from tests.unittest import TEST_SERVER_NAME, MasTestCase, override_config
from tests.utils import temp_dir

NON_ASCII = {
    "email": {
        "from": '"Sérvice d’accès" <auth@example.com>',
        "reply_to": "Équipe <help@example.com>",
        "transport": "blackhole",
    },
    "branding": {"service_name": "Ŝerv Ωmega"},
}


def parse(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


class MailerTestCase(MasTestCase):
    def mailer(self) -> Mailer:
        return Mailer(self.server, transport=BlackholeTransport())

    def build(
        self, to: Mailbox, template: str = "verification", context: dict[str, Any] | None = None
    ) -> bytes:
        return self.mailer().prepare(to, template, context if context is not None else {"code": "123456"})

    def test_multipart_alternative_text_then_html(self) -> None:
        message = parse(
            self.build(Mailbox("bob@example.org", "Bob"), context={"code": "042917", "username": "bob"})
        )
        self.assertEqual(message.get_content_type(), "multipart/alternative")
        text, html = message.iter_parts()
        self.assertEqual((text.get_content_type(), html.get_content_type()), ("text/plain", "text/html"))
        self.assertEqual((text.get_content_charset(), html.get_content_charset()), ("utf-8", "utf-8"))
        self.assertIn("042917", text.get_content())
        self.assertIn("Hello bob,", text.get_content())
        self.assertIn("042917", html.get_content())
        self.assertIn("<html", html.get_content())
        self.assertEqual(message["MIME-Version"], "1.0")
        self.assertEqual((text["MIME-Version"], html["MIME-Version"]), (None, None))
        self.assertIn("042917", message["Subject"])

    def test_default_addresses_date_and_message_id(self) -> None:
        mailer = self.mailer()
        first = parse(mailer.prepare(Mailbox("bob@example.org"), "verification", {"code": "1"}))
        second = parse(mailer.prepare(Mailbox("bob@example.org"), "verification", {"code": "1"}))
        # MAS's default mailbox, in both headers.
        self.assertEqual(first["From"].addresses[0].display_name, "Authentication Service")
        self.assertEqual(first["From"].addresses[0].addr_spec, "root@localhost")
        self.assertEqual(str(first["Reply-To"]), str(first["From"]))
        self.assertEqual(first["To"].addresses[0].addr_spec, "bob@example.org")
        self.assertEqual(email.utils.parsedate_to_datetime(first["Date"]).timestamp(), self.START_TIME)
        self.assertTrue(first["Message-ID"].endswith(f"@{TEST_SERVER_NAME}>"), first["Message-ID"])
        self.assertNotEqual(first["Message-ID"], second["Message-ID"])

    @override_config(NON_ASCII)
    def test_non_ascii_names_and_subject_are_encoded_words(self) -> None:
        data = self.build(Mailbox("zoe@example.org", "Zoë Ünïcode"))
        # The wire form is 7-bit: RFC 2047 encoded words in the headers.
        self.assertTrue(data.isascii())
        headers = data.split(b"\n\n", 1)[0].decode("ascii")
        self.assertIn("=?utf-8?", headers)
        message = parse(data)
        self.assertEqual(message["From"].addresses[0].display_name, "Sérvice d’accès")
        self.assertEqual(message["From"].addresses[0].addr_spec, "auth@example.com")
        self.assertEqual(message["Reply-To"].addresses[0].display_name, "Équipe")
        self.assertEqual(message["To"].addresses[0].display_name, "Zoë Ünïcode")
        self.assertEqual(message["Subject"], "123456 is your Ŝerv Ωmega code")
        text, _html = message.iter_parts()
        self.assertIn("Ŝerv Ωmega", text.get_content())

    def test_lines_fit_and_long_links_survive(self) -> None:
        url = "https://auth.example.com/account/password/recovery?ticket=" + "x" * 120
        data = self.build(
            Mailbox("bob@example.org", "Bob"),
            "recovery",
            {"username": "bøb", "recovery_url": url, "expires_in_minutes": 10},
        )
        self.assertTrue(data.isascii())
        self.assertLessEqual(max(len(line) for line in data.split(b"\n")), 78)
        text, html = parse(data).iter_parts()
        self.assertIn(text["Content-Transfer-Encoding"], ("quoted-printable", "base64"))
        self.assertIn(f"\n{url}\n", text.get_content())
        self.assertIn(f'href="{url}"', html.get_content())
        self.assertIn("10 minutes", text.get_content())

    def test_html_is_escaped_and_text_is_not(self) -> None:
        message = parse(self.build(Mailbox("bob@example.org"), context={"code": "1", "username": "<b>&bob"}))
        text, html = message.iter_parts()
        self.assertIn("Hello <b>&bob,", text.get_content())
        self.assertIn("Hello &lt;b&gt;&amp;bob,", html.get_content())
        self.assertNotIn("<b>&bob", html.get_content())

    def test_international_domain_is_written_as_idna(self) -> None:
        message = parse(self.build(Mailbox("bob@exämple.org")))
        self.assertEqual(message["To"].addresses[0].addr_spec, "bob@xn--exmple-cua.org")

    def test_what_cannot_be_built(self) -> None:
        cases = [
            (Mailbox("bøb@example.org"), "verification", {"code": "1"}),  # needs SMTPUTF8
            (Mailbox("not-an-address"), "verification", {"code": "1"}),
            (Mailbox("bob@example.org\r\nBcc: eve@example.org"), "verification", {"code": "1"}),
            (Mailbox("bob@example.org>\r\nRCPT TO:<eve@example.org"), "verification", {"code": "1"}),
            (Mailbox("bob smith@example.org"), "verification", {"code": "1"}),
            (Mailbox("bob@example.org", "Bob\r\nBcc: eve@example.org"), "verification", {"code": "1"}),
            (Mailbox("bob@exa_mple.org"), "verification", {"code": "1"}),
            (Mailbox("bob@example.org"), "no-such-kind", {}),
            (Mailbox("bob@example.org"), "verification", {}),  # the code is missing
        ]
        for to, template, context in cases:
            with self.subTest(to=to, template=template), self.assertRaises(MessageError):
                self.mailer().prepare(to, template, context)

    def test_every_kind_renders_its_samples(self) -> None:
        rendered = self.mailer().templates.check_render()
        self.assertEqual({name for name, _ in rendered}, {"verification", "recovery"})
        for (name, index), message in rendered.items():
            with self.subTest(name=name, index=index):
                self.assertTrue(message.subject.strip())
                self.assertNotIn("\n", message.subject.strip())
                self.assertIn("</html>", message.html)
                self.assertIn(TEST_SERVER_NAME, message.text)


class OverriddenTemplatesTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        self.templates_dir = Path(temp_dir(self))
        (self.templates_dir / "emails").mkdir()
        (self.templates_dir / "emails" / "verification.subject").write_text("Code: {{ code }}\n")
        config["templates"] = {"path": str(self.templates_dir)}
        return config

    def test_an_operator_overrides_one_file(self) -> None:
        data = Mailer(self.server, transport=BlackholeTransport()).prepare(
            Mailbox("bob@example.org"), "verification", {"code": "777"}
        )
        message = parse(data)
        self.assertEqual(message["Subject"], "Code: 777")
        # The other two are still the shipped ones.
        text, _html = message.iter_parts()
        self.assertIn("enter this code", text.get_content())
