# SPDX-License-Identifier: AGPL-3.0-only
"""Account recovery (``/recover``, ``/recover/progress/<id>``, ``/account/password/recovery``;
MAS's ``views/recovery/`` and ``setPasswordByRecovery``) through the real listener, with the
``send-account-recovery-email`` job run by the real queue worker. The links are read from the
``send-email`` jobs it schedules; ``tests/integration/test_recovery_browser.py`` reads them from
a real SMTP server."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mas_twisted.queue.jobs.cleanup import CleanupUserRecoverySessionsJob
from mas_twisted.queue.jobs.recovery import SendAccountRecoveryEmailsJob
from mas_twisted.queue.worker import QueueWorker
from mas_twisted.rest._cookies import SESSION_COOKIE
from tests.factories import PASSWORD
from tests.rest.human._base import HumanTestCase, csrf_from
from tests.server import FakeChannel
from tests.unittest import override_config

NEW_PASSWORD = "a brand new and quite long passphrase"
EMAIL = "alice@example.org"
INVALID_LOGIN = "That username and password do not match an account."
CHECK_EMAIL = "a link to choose a new password is on its way"
RATE_LIMITED = "Too many attempts."
RECOVERY_TABLES = ("user_recovery_sessions", "user_recovery_tickets")


class RecoveryTestCase(HumanTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["account"] = {"password_recovery_enabled": True}
        # Generous limits: the tests of the limits set their own.
        config["rate_limiting"] = {
            "account_recovery": {
                "per_ip": {"burst": 100, "per_second": 1},
                "per_address": {"burst": 100, "per_second": 1},
            }
        }
        return config

    def run_recovery_jobs(self) -> None:
        """Run the pending ``send-account-recovery-email`` jobs (only those)."""
        worker = QueueWorker(
            self.server, {SendAccountRecoveryEmailsJob.QUEUE_NAME: SendAccountRecoveryEmailsJob}
        )
        self.get_success(worker.start())
        for _ in range(5):
            self.reactor.advance(1)
        self.get_success(worker.stop())

    def jobs(self, queue: str) -> list[dict[str, Any]]:
        rows = self.get_success(
            self.db_pool.execute(
                "jobs", "SELECT payload FROM queue_jobs WHERE queue_name = ? ORDER BY queue_job_id", queue
            )
        )
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def emails(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs("send-email") if j["template"] == "recovery"]

    def links(self) -> list[str]:
        """The recovery links mailed so far, as paths with their query."""
        out = []
        for message in self.emails():
            url = urlsplit(message["context"]["recovery_url"])
            out.append(f"{url.path}?{url.query}")
        return out

    def ask(self, email: str = EMAIL, *, client_ip: str = "127.0.0.1") -> FakeChannel:
        page = self.browse("GET", "/recover", client_ip=client_ip)
        self.assertEqual(page.code, 200, page)
        return self.browse(
            "POST", "/recover", form={"csrf": csrf_from(page), "email": email}, client_ip=client_ip
        )

    def ask_and_mail(self, email: str = EMAIL) -> str:
        """Ask for links, run the job; the one link mailed."""
        before = len(self.links())
        channel = self.ask(email)
        self.assertEqual(channel.code, 303, channel)
        self.run_recovery_jobs()
        links = self.links()[before:]
        self.assertEqual(len(links), 1, links)
        return links[0]

    def set_password(
        self, link: str, password: str = NEW_PASSWORD, confirm: str | None = None
    ) -> FakeChannel:
        page = self.browse("GET", link)
        self.assertEqual(page.code, 200, page)
        ticket = parse_qs(urlsplit(link).query)["ticket"][0]
        return self.browse(
            "POST",
            "/account/password/recovery",
            form={
                "csrf": csrf_from(page),
                "ticket": ticket,
                "new_password": password,
                "new_password_confirm": password if confirm is None else confirm,
            },
        )

    def signs_in(self, password: str) -> bool:
        jar = self.jar
        self.jar = {}
        try:
            channel = self.login("alice", password)
        finally:
            self.jar = jar
        if channel.code == 303:
            return True
        self.assertIn(INVALID_LOGIN, channel.text_body)
        return False


class DisabledTests(HumanTestCase):
    def test_every_page_says_it_is_off(self) -> None:
        self.factory.user(emails=[EMAIL])
        for method, path in (
            ("GET", "/recover"),
            ("POST", "/recover"),
            ("GET", "/recover/progress/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            ("POST", "/recover/progress/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            ("GET", "/account/password/recovery?ticket=abc"),
            ("POST", "/account/password/recovery"),
        ):
            channel = self.browse(method, path, form={"email": EMAIL} if method == "POST" else None)
            self.assertEqual(channel.code, 200, (path, channel))
            self.assertIn("Account recovery is off", channel.text_body, path)
        for table in RECOVERY_TABLES:
            self.assertEqual(self.count_rows(table), 0)
        # The login page does not offer it.
        self.assertNotIn("Forgot your password?", self.browse("GET", "/login").text_body)

    @override_config({"account": {"password_recovery_enabled": True}, "passwords": {"enabled": False}})
    def test_needs_passwords(self) -> None:
        self.assertIn("Account recovery is off", self.browse("GET", "/recover").text_body)


class StartTests(RecoveryTestCase):
    def test_login_page_links_to_it(self) -> None:
        body = self.browse("GET", "/login").text_body
        self.assertIn('href="/recover"', body)
        self.assertIn("Forgot your password?", body)

    def test_known_and_unknown_addresses_look_the_same(self) -> None:
        self.factory.user(emails=[EMAIL])
        known = self.ask(EMAIL)
        unknown = self.ask("nobody@example.org")
        for channel in (known, unknown):
            self.assertEqual(channel.code, 303, channel)
            self.assertRegex(urlsplit(channel.location).path, r"^/recover/progress/[0-9A-Z]{26}$")
        # The same writes for both: a session and its job each, nothing else yet.
        self.assertEqual(self.count_rows("user_recovery_sessions"), 2)
        self.assertEqual(self.count_rows("user_recovery_tickets"), 0)
        self.assertEqual(len(self.jobs("send-account-recovery-email")), 2)
        self.assertEqual(self.jobs("send-email"), [])
        pages = [self.browse("GET", c.location) for c in (known, unknown)]
        for page in pages:
            self.assertEqual(page.code, 200, page)
            self.assertIn(CHECK_EMAIL, page.text_body)
        normalise = [
            re.sub(r"[0-9A-Z]{26}|name=\"csrf\" value=\"[^\"]*\"", "X", p.text_body)
            .replace(EMAIL, "E")
            .replace("nobody@example.org", "E")
            for p in pages
        ]
        self.assertEqual(normalise[0], normalise[1])
        # Only the holder gets mail.
        self.run_recovery_jobs()
        [message] = self.emails()
        self.assertEqual(message["to"], EMAIL)
        self.assertEqual(message["to_name"], "alice")

    def test_every_holder_of_the_address_gets_a_link(self) -> None:
        # MAS: one email per user email row holding the address, ignoring case.
        self.factory.user("alice", emails=[EMAIL])
        self.factory.user("bob", emails=[EMAIL.upper()])
        self.factory.user("carol", emails=["carol@example.org"])
        self.assertEqual(self.ask("Alice@Example.org").code, 303)
        self.run_recovery_jobs()
        messages = self.emails()
        self.assertEqual(
            sorted((m["to"], m["context"]["username"]) for m in messages),
            [
                (EMAIL.upper(), "bob"),
                (EMAIL, "alice"),
            ],
        )
        tickets = {parse_qs(urlsplit(m["context"]["recovery_url"]).query)["ticket"][0] for m in messages}
        self.assertEqual(len(tickets), 2)
        for ticket in tickets:
            self.assertRegex(ticket, r"^[A-Za-z0-9]{32}$")
        for message in messages:
            self.assertTrue(message["context"]["recovery_url"].startswith("https://"))
            self.assertEqual(message["context"]["expires_in_minutes"], 10)

    def test_bad_addresses(self) -> None:
        for value, message in (("", "Fill in this field."), ("not an address", "This value is not valid.")):
            channel = self.ask(value)
            self.assertEqual(channel.code, 200, channel)
            self.assertIn(message, channel.text_body)
        self.assertEqual(self.count_rows("user_recovery_sessions"), 0)
        self.assertEqual(self.jobs("send-account-recovery-email"), [])

    def test_without_csrf_nothing_happens(self) -> None:
        channel = self.browse("POST", "/recover", form={"email": EMAIL})
        self.assertEqual(channel.code, 400, channel)
        self.assertEqual(self.count_rows("user_recovery_sessions"), 0)

    def test_signed_in_goes_home(self) -> None:
        self.factory.user(emails=[EMAIL])
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        self.assertEqual(self.browse("GET", "/recover").location, "/")
        self.assertEqual(self.browse("GET", "/account/password/recovery?ticket=x").location, "/")

    @override_config(
        {
            "rate_limiting": {
                "account_recovery": {
                    "per_ip": {"burst": 100, "per_second": 1},
                    "per_address": {"burst": 2, "per_second": 0.0001},
                }
            }
        }
    )
    def test_per_address_limit(self) -> None:
        for _ in range(2):
            self.assertEqual(self.ask("x@example.org").code, 303)
        refused = self.ask("X@example.org")
        self.assertEqual(refused.code, 200, refused)
        self.assertIn(RATE_LIMITED, refused.text_body)
        self.assertEqual(self.count_rows("user_recovery_sessions"), 2)
        # Another address is not held back.
        self.assertEqual(self.ask("y@example.org").code, 303)

    @override_config(
        {
            "rate_limiting": {
                "account_recovery": {
                    "per_ip": {"burst": 2, "per_second": 0.0001},
                    "per_address": {"burst": 100, "per_second": 1},
                }
            }
        }
    )
    def test_per_ip_limit(self) -> None:
        for n in range(2):
            self.assertEqual(self.ask(f"{n}@example.org", client_ip="192.0.2.1").code, 303)
        refused = self.ask("2@example.org", client_ip="192.0.2.1")
        self.assertIn(RATE_LIMITED, refused.text_body)
        self.assertEqual(self.ask("2@example.org", client_ip="192.0.2.2").code, 303)


class ProgressTests(RecoveryTestCase):
    def test_unknown_session_goes_back_to_the_start(self) -> None:
        for path in ("/recover/progress/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/recover/progress/nonsense"):
            channel = self.browse("GET", path)
            self.assertEqual(channel.code, 303, channel)
            self.assertEqual(channel.location, "/recover")

    def test_resend_sends_new_links(self) -> None:
        self.factory.user(emails=[EMAIL])
        first_link = self.ask_and_mail()
        sessions = self.get_success(
            self.db_pool.execute("s", "SELECT user_recovery_session_id FROM user_recovery_sessions")
        )
        path = f"/recover/progress/{sessions[0][0]}"
        page = self.browse("GET", path)
        resent = self.browse("POST", path, form={"csrf": csrf_from(page)})
        self.assertEqual(resent.code, 200, resent)
        self.assertIn("New links are on their way.", resent.text_body)
        self.run_recovery_jobs()
        links = self.links()
        self.assertEqual(len(links), 2)
        self.assertNotEqual(links[0], links[1])
        # The earlier link still works (MAS: tickets live their 10 minutes).
        self.assertEqual(links[0], first_link)
        self.assertEqual(self.browse("GET", first_link).code, 200)

    @override_config(
        {
            "rate_limiting": {
                "account_recovery": {
                    "per_ip": {"burst": 100, "per_second": 1},
                    "per_address": {"burst": 1, "per_second": 0.0001},
                }
            }
        }
    )
    def test_resend_is_limited(self) -> None:
        channel = self.ask()
        page = self.browse("GET", channel.location)
        refused = self.browse("POST", channel.location, form={"csrf": csrf_from(page)})
        self.assertEqual(refused.code, 429, refused)
        self.assertIn("Too many emails were asked for.", refused.text_body)
        self.assertEqual(len(self.jobs("send-account-recovery-email")), 1)


class FinishTests(RecoveryTestCase):
    def test_recovery_end_to_end(self) -> None:
        user = self.factory.user(emails=[EMAIL])
        # Two browsers signed in as alice: the recovery signs both out.
        other = self.factory.browser_session(user)
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        signed_in = dict(self.jar)
        self.jar = {}
        link = self.ask_and_mail()
        page = self.browse("GET", link)
        self.assertEqual(page.code, 200, page)
        self.assertIn("@alice:", page.text_body)
        self.assertIn('name="new_password"', page.text_body)
        self.assertIn('autocomplete="new-password"', page.text_body)

        done = self.set_password(link)
        self.assertEqual(done.code, 200, done)
        self.assertIn("Your password has been changed", done.text_body)
        self.assertNotIn(NEW_PASSWORD, done.text_body)
        self.assertFalse(self.signs_in(PASSWORD))
        self.assertTrue(self.signs_in(NEW_PASSWORD))
        # Single use: the link now shows the consumed page, and a POST sets nothing.
        again = self.browse("GET", link)
        self.assertIn("This link was used already", again.text_body)
        self.assertEqual(self.count_rows("user_passwords"), 2)
        # The browser sessions that existed are finished.
        rows = self.get_success(
            self.db_pool.execute(
                "s", "SELECT finished_at FROM user_sessions WHERE user_session_id = ?", other.id
            )
        )
        self.assertIsNotNone(rows[0][0])
        # The browser that was signed in finds itself signed out.
        self.jar = signed_in
        self.assertIn(SESSION_COOKIE, self.jar)
        home = self.browse("GET", "/login")
        self.assertIn("<title>Signed out", home.text_body)

    def test_sibling_links_die_with_the_first_use(self) -> None:
        self.factory.user("alice", emails=[EMAIL])
        self.factory.user("bob", emails=[EMAIL])
        self.assertEqual(self.ask().code, 303)
        self.run_recovery_jobs()
        first, second = self.links()
        self.assertIn("Your password has been changed", self.set_password(first).text_body)
        self.assertIn("This link was used already", self.browse("GET", second).text_body)

    def test_weak_and_mismatched_passwords_are_refused(self) -> None:
        self.factory.user(emails=[EMAIL])
        link = self.ask_and_mail()
        weak = self.set_password(link, "password")
        self.assertIn("This password is too weak.", weak.text_body)
        mismatch = self.set_password(link, NEW_PASSWORD, NEW_PASSWORD + "!")
        self.assertIn("The two passwords are different.", mismatch.text_body)
        empty = self.set_password(link, "", "")
        self.assertIn("Fill in this field.", empty.text_body)
        self.assertEqual(self.count_rows("user_passwords"), 1)
        self.assertTrue(self.signs_in(PASSWORD))
        # The link still works after refused attempts.
        self.assertIn("Your password has been changed", self.set_password(link).text_body)

    def test_expired_link_offers_new_links(self) -> None:
        self.factory.user(emails=[EMAIL])
        link = self.ask_and_mail()
        self.reactor.advance(10 * 60 + 1)
        page = self.browse("GET", link)
        self.assertEqual(page.code, 200, page)
        self.assertIn("This link has expired", page.text_body)
        ticket = parse_qs(urlsplit(link).query)["ticket"][0]
        # Posting a password with it does nothing.
        refused = self.browse(
            "POST",
            "/account/password/recovery",
            form={
                "csrf": csrf_from(page),
                "ticket": ticket,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        )
        self.assertIn("This link has expired", refused.text_body)
        self.assertEqual(self.count_rows("user_passwords"), 1)
        resend = self.browse(
            "POST",
            "/account/password/recovery",
            form={"csrf": csrf_from(page), "ticket": ticket, "action": "resend"},
        )
        self.assertEqual(resend.code, 303, resend)
        self.assertRegex(resend.location, r"^/recover/progress/[0-9A-Z]{26}$")
        self.run_recovery_jobs()
        fresh = self.links()[-1]
        self.assertNotEqual(fresh, link)
        self.assertIn("Your password has been changed", self.set_password(fresh).text_body)

    def test_unknown_tickets(self) -> None:
        for path in (
            "/account/password/recovery",
            "/account/password/recovery?ticket=",
            "/account/password/recovery?ticket=" + "a" * 32,
            "/account/password/recovery?ticket=%C3%A9t%C3%A9",
        ):
            channel = self.browse("GET", path)
            self.assertEqual(channel.code, 404, (path, channel))
            self.assertIn("This link is not valid.", channel.text_body)
        channel = self.browse("GET", "/account/password/recovery?ticket=a&ticket=b")
        self.assertEqual(channel.code, 400, channel)

    def test_locked_user_cannot_recover(self) -> None:
        user = self.factory.user(emails=[EMAIL])
        link = self.ask_and_mail()
        self.get_success(self.server.get_stores().users.lock_user(user, self.clock.time_msec()))
        page = self.browse("GET", link)
        self.assertEqual(page.code, 403, page)
        self.assertIn("This account is locked.", page.text_body)

    def test_post_without_csrf(self) -> None:
        self.factory.user(emails=[EMAIL])
        link = self.ask_and_mail()
        ticket = parse_qs(urlsplit(link).query)["ticket"][0]
        channel = self.browse(
            "POST",
            "/account/password/recovery",
            form={"ticket": ticket, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertEqual(self.count_rows("user_passwords"), 1)


class CleanupTests(RecoveryTestCase):
    def test_sessions_go_after_seven_days(self) -> None:
        self.factory.user(emails=[EMAIL])
        self.ask_and_mail()
        self.reactor.advance(6 * 86400)
        self.ask_and_mail()
        self.reactor.advance(86400 + 60)
        worker = QueueWorker(
            self.server, {CleanupUserRecoverySessionsJob.QUEUE_NAME: CleanupUserRecoverySessionsJob}
        )
        from mas_twisted.queue.base import enqueue_txn

        self.get_success(
            self.server.get_stores().queue.schedule_in_transaction(
                "t", lambda txn: enqueue_txn(txn, self.server, CleanupUserRecoverySessionsJob())
            )
        )
        self.get_success(worker.start())
        for _ in range(5):
            self.reactor.advance(1)
        self.get_success(worker.stop())
        self.assertEqual(self.count_rows("user_recovery_sessions"), 1)
        self.assertEqual(self.count_rows("user_recovery_tickets"), 1)
