# SPDX-License-Identifier: AGPL-3.0-only
"""``/register``, ``/register/password`` and ``/register/steps/<id>/…`` (MAS's
``views/register/`` and its tests), through the real listener, with the homeserver's
``is_localpart_available`` answered by a recording resource. The emailed code is read from
the database here; ``tests/handlers/test_user_registration.py`` reads it from a real SMTP
server."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from treq.testing import StubTreq
from twisted.internet.task import LoopingCall

from mas_twisted.handlers.captcha import CaptchaVerifier
from mas_twisted.rest._cookies import SESSION_COOKIE
from tests.handlers._captcha import GOOD_RESPONSE as CAPTCHA_GOOD
from tests.handlers._captcha import SECRET as CAPTCHA_SECRET
from tests.handlers._captcha import LocalVerifier
from tests.rest.human._base import csrf_from
from tests.rest.human._register import (
    EMAIL,
    REGISTRATION_TABLES,
    STRONG_PASSWORD,
    WEAK_PASSWORD,
    RegisterTestCase,
)
from tests.unittest import override_config

GRANT_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
ACTION = f"?kind=continue_authorization_grant&id={GRANT_ID}"
INVALID = "This value is not valid."
EXISTS = "This value is already in use."
REQUIRED = "Fill in this field."
RATE_LIMITED = "Too many attempts."


class ChooserTests(RegisterTestCase):
    def test_password_only_goes_straight_to_the_form(self) -> None:
        channel = self.browse("GET", "/register" + ACTION)
        self.assertEqual(channel.code, 303, channel)
        target = urlsplit(channel.location)
        self.assertEqual(target.path, "/register/password")
        self.assertEqual(parse_qs(target.query), {"kind": ["continue_authorization_grant"], "id": [GRANT_ID]})

    @override_config({"account": {"password_registration_enabled": False}})
    def test_no_way_to_register_says_so(self) -> None:
        channel = self.browse("GET", "/register")
        self.assertEqual(channel.code, 200, channel)
        self.assertIn("Creating an account is not possible on this server.", channel.text_body)
        self.assertIn('href="/login"', channel.text_body)
        self.assertNotIn('action="/register/password"', channel.text_body)

    @override_config({"account": {"password_registration_enabled": False}})
    def test_password_form_is_off(self) -> None:
        channel = self.browse("GET", "/register/password" + ACTION)
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(urlsplit(channel.location).path, "/login")
        self.assertEqual(parse_qs(urlsplit(channel.location).query)["id"], [GRANT_ID])
        page = self.browse("GET", "/login")
        post = self.browse(
            "POST", "/register/password", form={"csrf": csrf_from(page), "username": "zoe", "password": "x"}
        )
        self.assertEqual(post.code, 405, post)
        self.assertEqual(self.count_rows("user_registrations"), 0)

    @override_config({"passwords": {"enabled": False}})
    def test_password_registration_needs_passwords(self) -> None:
        channel = self.browse("GET", "/register/password")
        self.assertEqual(channel.code, 303, channel)

    def test_signed_in_goes_on(self) -> None:
        self.factory.user()
        self.login("alice", STRONG_PASSWORD)
        for path in ("/register", "/register/password"):
            channel = self.browse("GET", path + ACTION)
            self.assertEqual(channel.location, f"/consent/{GRANT_ID}", path)


class PasswordFormTests(RegisterTestCase):
    def test_form(self) -> None:
        page = self.browse("GET", "/register/password")
        self.assertEqual(page.code, 200, page)
        self.assertEqual(page.header("X-Frame-Options"), "DENY")
        body = page.text_body
        for name in ("username", "email", "password", "password_confirm"):
            self.assertIn(f'name="{name}"', body)
        self.assertNotIn('name="accept_terms"', body)
        self.assertNotIn("captcha", body)
        self.assertIn('autocomplete="new-password"', body)

    def test_prefill_from_username_and_login_hint(self) -> None:
        page = self.browse("GET", "/register/password?username=zoe")
        self.assertIn('value="zoe"', page.text_body)
        page = self.browse("GET", "/register/password?login_hint=" + quote("mxid:@yann:example.com"))
        self.assertIn('value="yann"', page.text_body)
        page = self.browse("GET", "/register/password?login_hint=" + quote("mxid:@yann:elsewhere.example"))
        self.assertNotIn('value="yann"', page.text_body)

    @override_config({"account": {"password_registration_email_required": False}})
    def test_no_email_field_when_not_required(self) -> None:
        page = self.browse("GET", "/register/password")
        self.assertNotIn('name="email"', page.text_body)

    def assert_refused(self, channel: object, *messages: str) -> None:
        self.assertEqual(channel.code, 200, channel)  # type: ignore[attr-defined]
        body = channel.text_body  # type: ignore[attr-defined]
        for message in messages:
            self.assertIn(message, body)
        self.assertNotIn(STRONG_PASSWORD, body)
        for table in REGISTRATION_TABLES:
            self.assertEqual(self.count_rows(table), 0, table)
        self.assertEqual(self.email_jobs(), [])

    def test_empty_form(self) -> None:
        channel = self.submit_form(username="", email="", password="", password_confirm="")
        self.assert_refused(channel)
        self.assertGreaterEqual(channel.text_body.count(REQUIRED), 4)

    def test_username_taken_here(self) -> None:
        self.factory.user("zoe")
        channel = self.submit_form(username="ZOE")
        self.assert_refused(channel, EXISTS)
        # Taken here: the homeserver is not asked.
        self.assertEqual(self.homeserver.requests, [])

    def test_username_taken_on_the_homeserver(self) -> None:
        self.homeserver.answer(400, {"errcode": "M_USER_IN_USE", "error": "User ID already taken."})
        channel = self.submit_form()
        self.assert_refused(channel, EXISTS)
        [asked] = self.homeserver.requests
        self.assertEqual(asked["path"], "/_synapse/mas/is_localpart_available")
        self.assertEqual(asked["query"], {"localpart": ["zoe"]})

    def test_homeserver_down(self) -> None:
        self.homeserver.answer(502, b"bad gateway")
        channel = self.submit_form()
        self.assert_refused(channel, "The homeserver cannot be reached right now.")

    def test_weak_password(self) -> None:
        channel = self.submit_form(password=WEAK_PASSWORD, password_confirm=WEAK_PASSWORD)
        self.assert_refused(channel, "This password is too weak.")

    def test_confirmation_mismatch(self) -> None:
        channel = self.submit_form(password_confirm=STRONG_PASSWORD + "!")
        self.assert_refused(channel, "The two passwords are different.")

    def test_invalid_email(self) -> None:
        channel = self.submit_form(email="not an address")
        self.assert_refused(channel, INVALID)
        self.assertIn('value="not an address"', channel.text_body)

    def test_policy_violations_shown_on_their_fields(self) -> None:
        channel = self.submit_form(username="Zoe!")
        self.assert_refused(channel, "username contains invalid characters")
        channel = self.submit_form(username="12345")
        self.assert_refused(channel, "username must contain at least one non-numeric character")
        # The homeserver was never asked about names the policy refused.
        self.assertEqual(self.homeserver.requests, [])

    @override_config(
        {"policy": {"data": {"emails": {"banned_addresses": {"literals": ["zoe@example.org"]}}}}}
    )
    def test_email_policy(self) -> None:
        channel = self.submit_form()
        self.assert_refused(channel)
        self.assertIn('id="error-email"', channel.text_body)

    @override_config({"branding": {"tos_uri": "https://example.com/tos"}})
    def test_terms_must_be_ticked(self) -> None:
        page = self.browse("GET", "/register/password")
        self.assertIn('name="accept_terms"', page.text_body)
        self.assertIn('href="https://example.com/tos"', page.text_body)
        channel = self.submit_form()
        self.assert_refused(channel, "Accept the terms of service to continue.")
        # Ticked, the terms accepted are recorded with the user.
        finished = self.register_fully(accept_terms="on")
        self.assertEqual(finished.code, 303, finished)
        rows = self.get_success(self.db_pool.execute("terms", "SELECT terms_url FROM user_terms"))
        self.assertEqual([r[0] for r in rows], ["https://example.com/tos"])

    def use_local_verifier(self) -> LocalVerifier:
        """Answer the configured provider's siteverify from :class:`LocalVerifier` (StubTreq)."""
        verifier = LocalVerifier("auth.example.com")
        stub = StubTreq(verifier)
        flusher = LoopingCall(stub.flush)
        flusher.clock = self.reactor
        flusher.start(0.01)
        self.addCleanup(flusher.stop)
        config = self.server.config.captcha
        self.server._captcha_verifier = CaptchaVerifier(  # type: ignore[attr-defined]
            reactor=self.reactor,
            http_client=stub,
            service=config.service,
            secret_key=config.secret_key,
            site_hostname="auth.example.com",
            verify_url="http://verifier.test/siteverify",
        )
        return verifier

    @override_config({"captcha": {"service": "hcaptcha", "site_key": "site", "secret_key": CAPTCHA_SECRET}})
    def test_captcha_widget_and_verification(self) -> None:
        verifier = self.use_local_verifier()
        page = self.browse("GET", "/register/password")
        body = page.text_body
        self.assertIn('class="h-captcha" data-sitekey="site"', body)
        self.assertIn('<script src="https://js.hcaptcha.com/1/api.js"', body)
        self.assertIn("the CAPTCHA needs JavaScript", body)  # in <noscript>
        csp = page.header("Content-Security-Policy") or ""
        self.assertIn("script-src 'self' https://hcaptcha.com https://*.hcaptcha.com", csp)
        # Other pages keep their own-origin-only policy.
        self.assertIn(
            "script-src 'self';", self.browse("GET", "/login").header("Content-Security-Policy") or ""
        )

        # A wrong answer, none, another provider's: refused, nothing created.
        for fields in ({"h-captcha-response": "wrong"}, {}, {"g-recaptcha-response": CAPTCHA_GOOD}):
            channel = self.submit_form(**fields)
            self.assert_refused(channel, "The CAPTCHA was not solved. Try again.")
        # The provider cannot be reached: refused, with its own message.
        verifier.failure = 503
        self.assert_refused(
            self.submit_form(**{"h-captcha-response": CAPTCHA_GOOD}),
            "The CAPTCHA cannot be checked right now",
        )
        verifier.failure = None
        # Solved: the registration starts, and the provider was told the client's address.
        self.start(**{"h-captcha-response": CAPTCHA_GOOD})
        self.assertEqual(verifier.requests[-1]["remoteip"], ["127.0.0.1"])
        self.assertEqual(verifier.requests[-1]["secret"], [CAPTCHA_SECRET])

    @override_config({"rate_limiting": {"registration": {"burst": 2, "per_second": 0.001}}})
    def test_registration_rate_limit_per_ip(self) -> None:
        self.start(username="one", email="one@example.org")
        self.start(username="two", email="two@example.org")
        channel = self.submit_form(username="three", email="three@example.org")
        self.assertIn(RATE_LIMITED, channel.text_body)
        self.assertEqual(self.count_rows("user_registrations"), 2)
        # Another address is another key.
        self.assertEqual(self.submit_form(username="four", client_ip="192.0.2.9").code, 303)

    def test_csrf_missing(self) -> None:
        channel = self.browse(
            "POST",
            "/register/password",
            form={
                "username": "zoe",
                "email": EMAIL,
                "password": STRONG_PASSWORD,
                "password_confirm": STRONG_PASSWORD,
            },
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertEqual(channel.content_type, "text/html; charset=utf-8")
        self.assertEqual(self.count_rows("user_registrations"), 0)

    def test_bad_input_is_a_400_page(self) -> None:
        page = self.browse("GET", "/register/password")
        for body, content_type in (
            (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
            (b"{}", "application/json"),
        ):
            channel = self.make_request(
                "POST",
                "/register/password",
                content=body,
                headers=[("Content-Type", content_type)],
                cookies=dict(self.jar),
            )
            self.assertEqual(channel.code, 400, channel)
        # A NUL is refused at the parsing boundary with the HTML 400 page, and so is a repeated
        # field (which username would it be?), with nothing written.
        channel = self.browse(
            "POST",
            "/register/password",
            form=[("csrf", csrf_from(page)), ("username", "zoe"), ("email", "\x00")],
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertIn("Something went wrong", channel.text_body)
        channel = self.browse(
            "POST",
            "/register/password",
            form=[("csrf", csrf_from(page)), ("username", "zoe"), ("username", "other"), ("email", "")],
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertIn("Something went wrong", channel.text_body)
        self.assertEqual(self.count_rows("user_registrations"), 0)


class StepTests(RegisterTestCase):
    def test_whole_flow(self) -> None:
        registration_id = self.start(ACTION)
        self.assertEqual(self.count_rows("users"), 0)
        [job] = self.email_jobs()
        self.assertEqual((job["to"], job["template"]), (EMAIL, "verification"))
        self.assertEqual(job["context"]["code"], self.latest_code())
        self.assertRegex(job["context"]["code"], r"^[0-9]{6}$")

        step = self.finish(registration_id)
        self.assertEqual(step.location, f"/register/steps/{registration_id}/verify-email")
        page = self.browse("GET", step.location)
        self.assertIn(f"<strong>{EMAIL}</strong>", page.text_body)
        wrong = self.post_step(
            registration_id, "verify-email", code="000000" if self.latest_code() != "000000" else "111111"
        )
        self.assertEqual(wrong.code, 200)
        self.assertIn(INVALID, wrong.text_body)
        right = self.post_step(registration_id, "verify-email", code=self.latest_code())
        self.assertEqual(right.location, f"/register/steps/{registration_id}/finish")

        step = self.finish(registration_id)
        self.assertEqual(step.location, f"/register/steps/{registration_id}/display-name")
        empty = self.post_step(registration_id, "display-name", action="set", display_name="   ")
        self.assertIn(INVALID, empty.text_body)
        self.post_step(registration_id, "display-name", action="set", display_name="Zoë Z")
        self.assertEqual(self.count_rows("users"), 0)

        done = self.finish(registration_id)
        self.assertEqual(done.code, 303, done)
        self.assertEqual(done.location, f"/consent/{GRANT_ID}")
        self.assertIn(SESSION_COOKIE, done.cookies)
        for table, count in (
            ("users", 1),
            ("user_passwords", 1),
            ("user_emails", 1),
            ("user_sessions", 1),
            ("user_session_authentications", 1),
        ):
            self.assertEqual(self.count_rows(table), count, table)
        [provision] = self.provision_jobs()
        self.assertEqual(provision["set_display_name"], "Zoë Z")
        home = self.browse("GET", "/")
        self.assertIn("You are signed in as <strong>zoe</strong>", home.text_body)
        # Done: the steps now only send the browser on, and nothing is created twice.
        again = self.finish(registration_id)
        self.assertEqual(again.location, f"/consent/{GRANT_ID}")
        self.assertEqual(self.count_rows("users"), 1)
        # The new password works.
        self.jar.clear()
        self.assertEqual(self.login("zoe", STRONG_PASSWORD).code, 303)

    def test_skip_display_name_uses_the_username(self) -> None:
        registration_id = self.start()
        self.post_step(registration_id, "verify-email", code=self.latest_code())
        self.post_step(registration_id, "display-name", action="skip")
        self.assertEqual(self.finish(registration_id).location, "/")
        [provision] = self.provision_jobs()
        self.assertEqual(provision["set_display_name"], "zoe")

    @override_config({"account": {"password_registration_email_required": False}})
    def test_without_email(self) -> None:
        registration_id = self.start(email="ignored@example.org")
        self.assertEqual(self.email_jobs(), [])
        self.assertEqual(
            self.finish(registration_id).location, f"/register/steps/{registration_id}/display-name"
        )
        self.post_step(registration_id, "display-name", action="skip")
        self.assertEqual(self.finish(registration_id).code, 303)
        self.assertEqual(self.count_rows("users"), 1)
        self.assertEqual(self.count_rows("user_emails"), 0)

    def test_expired_code(self) -> None:
        registration_id = self.start()
        code = self.latest_code()
        self.reactor.advance(5 * 60 + 1)
        channel = self.post_step(registration_id, "verify-email", code=code)
        self.assertEqual(channel.code, 200)
        self.assertIn("This code has expired.", channel.text_body)
        # A new one works.
        page = self.browse("GET", f"/register/steps/{registration_id}/verify-email")
        resent = self.browse(
            "POST",
            f"/register/steps/{registration_id}/verify-email",
            form={"csrf": csrf_from(page), "action": "resend"},
        )
        self.assertIn("A new code is on its way.", resent.text_body)
        self.assertEqual(len(self.email_jobs()), 2)
        new_code = self.latest_code()
        channel = self.post_step(registration_id, "verify-email", code=new_code)
        self.assertEqual(channel.code, 303, channel)

    def test_attempts_are_limited(self) -> None:
        registration_id = self.start()
        code = self.latest_code()
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(10):
            self.assertIn(INVALID, self.post_step(registration_id, "verify-email", code=wrong).text_body)
        # Exhausted: even the right code is refused now.
        channel = self.post_step(registration_id, "verify-email", code=code)
        self.assertIn(RATE_LIMITED, channel.text_body)
        self.assertEqual(
            self.finish(registration_id).location, f"/register/steps/{registration_id}/verify-email"
        )
        # One more attempt a minute later.
        self.reactor.advance(61)
        channel = self.post_step(registration_id, "verify-email", code=code)
        self.assertEqual(channel.code, 303)

    def test_resend_is_limited(self) -> None:
        registration_id = self.start()
        page = self.browse("GET", f"/register/steps/{registration_id}/verify-email")
        form = {"csrf": csrf_from(page), "action": "resend"}
        path = f"/register/steps/{registration_id}/verify-email"
        self.assertIn("A new code is on its way.", self.browse("POST", path, form=form).text_body)
        self.assertIn("A new code is on its way.", self.browse("POST", path, form=form).text_body)
        refused = self.browse("POST", path, form=form)
        self.assertIn(RATE_LIMITED, refused.text_body)
        self.assertEqual(len(self.email_jobs()), 3)

    def test_email_in_use_is_only_said_after_verification(self) -> None:
        self.factory.user("alice", emails=(EMAIL,))
        registration_id = self.start(ACTION)
        self.assertEqual(
            self.finish(registration_id).location, f"/register/steps/{registration_id}/verify-email"
        )
        self.post_step(registration_id, "verify-email", code=self.latest_code())
        page = self.finish(registration_id)
        self.assertEqual(page.code, 200)
        self.assertIn("This email address is already in use", page.text_body)
        self.assertIn(f'href="/login{ACTION}"', page.text_body.replace("&amp;", "&"))
        self.assertEqual(self.count_rows("users"), 1)

    def test_username_taken_meanwhile(self) -> None:
        registration_id = self.start()
        self.post_step(registration_id, "verify-email", code=self.latest_code())
        self.post_step(registration_id, "display-name", action="skip")
        self.factory.user("zoe")
        channel = self.finish(registration_id)
        self.assertEqual(channel.code, 400, channel)
        self.assertIn("That username was taken meanwhile.", channel.text_body)
        self.assertEqual(self.count_rows("users"), 1)
        self.assertEqual(self.count_rows("user_sessions"), 0)

    def test_taken_on_the_homeserver_meanwhile(self) -> None:
        registration_id = self.start()
        self.post_step(registration_id, "verify-email", code=self.latest_code())
        self.post_step(registration_id, "display-name", action="skip")
        self.homeserver.answer(400, {"errcode": "M_USER_IN_USE", "error": "taken"})
        channel = self.finish(registration_id)
        self.assertEqual(channel.code, 400, channel)
        self.assertIn("That username is not available.", channel.text_body)
        self.assert_nothing_created()

    def test_other_browser(self) -> None:
        registration_id = self.start()
        self.jar.clear()
        for step in ("finish", "verify-email", "display-name", "token"):
            channel = self.browse("GET", f"/register/steps/{registration_id}/{step}")
            self.assertEqual(channel.code, 400, (step, channel))
            self.assertIn("started in another browser", channel.text_body)

    def test_registration_expires_after_an_hour(self) -> None:
        registration_id = self.start()
        self.reactor.advance(3601)
        channel = self.finish(registration_id)
        self.assertEqual(channel.code, 400, channel)

    def test_unknown_and_malformed_ids(self) -> None:
        for registration_id in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "%00"):
            for step in ("finish", "verify-email", "display-name", "token"):
                channel = self.browse("GET", f"/register/steps/{registration_id}/{step}")
                self.assertEqual(channel.code, 404, (registration_id, step, channel))

    def test_step_posts_need_csrf(self) -> None:
        registration_id = self.start()
        for step, fields in (
            ("verify-email", {"code": self.latest_code()}),
            ("display-name", {"action": "skip"}),
            ("token", {"token": "x"}),
        ):
            channel = self.browse("POST", f"/register/steps/{registration_id}/{step}", form=fields)
            self.assertEqual(channel.code, 400, (step, channel))
        self.assertEqual(
            self.finish(registration_id).location, f"/register/steps/{registration_id}/verify-email"
        )

    def test_unknown_display_name_action(self) -> None:
        registration_id = self.start()
        channel = self.post_step(registration_id, "display-name", action="bogus")
        self.assertEqual(channel.code, 400, channel)


class RegistrationTokenTests(RegisterTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["account"]["registration_token_required"] = True
        return config

    def issue(self, **kwargs: object) -> str:
        handler = self.server.get_user_registration_handler()
        return self.get_success(handler.issue_registration_token(**kwargs)).token  # type: ignore[arg-type]

    def test_token_step_comes_first(self) -> None:
        token = self.issue(token="let-me-in")
        registration_id = self.start()
        self.assertEqual(self.finish(registration_id).location, f"/register/steps/{registration_id}/token")
        empty = self.post_step(registration_id, "token", token="  ")
        self.assertIn(REQUIRED, empty.text_body)
        wrong = self.post_step(registration_id, "token", token="let-me-out")
        self.assertIn(INVALID, wrong.text_body)
        right = self.post_step(registration_id, "token", token=token)
        self.assertEqual(right.location, f"/register/steps/{registration_id}/finish")
        self.assertEqual(
            self.finish(registration_id).location, f"/register/steps/{registration_id}/verify-email"
        )
        self.post_step(registration_id, "verify-email", code=self.latest_code())
        self.post_step(registration_id, "display-name", action="skip")
        self.assertEqual(self.finish(registration_id).code, 303)
        rows = self.get_success(
            self.db_pool.execute("t", "SELECT times_used, last_used_at FROM user_registration_tokens")
        )
        self.assertEqual(rows[0][0], 1)
        self.assertIsNotNone(rows[0][1])

    def test_used_up_expired_and_revoked_tokens_are_refused(self) -> None:
        used_up = self.issue(token="used-up", usage_limit=1)
        expiring = self.issue(token="expiring", expires_in_s=60)
        revoked = self.issue(token="revoked", usage_limit=None)
        stores = self.server.get_stores().user_registrations
        found = self.get_success(stores.find_registration_token(revoked))
        assert found is not None
        self.get_success(stores.revoke_registration_token(found.id, self.clock.time_msec()))
        # Use up the first one.
        first = self.start(username="first", email="first@example.org")
        self.post_step(first, "token", token=used_up)
        self.post_step(first, "verify-email", code=self.latest_code())
        self.post_step(first, "display-name", action="skip")
        self.assertEqual(self.finish(first).code, 303)
        self.jar.pop(SESSION_COOKIE)

        self.reactor.advance(61)
        second = self.start(username="second", email="second@example.org")
        for token in (used_up, expiring, revoked):
            channel = self.post_step(second, "token", token=token)
            self.assertIn(INVALID, channel.text_body, token)
        self.assertEqual(self.finish(second).location, f"/register/steps/{second}/token")
        self.assertEqual(self.count_rows("users"), 1)

    def test_token_that_stops_being_valid_before_the_end(self) -> None:
        token = self.issue(token="last-one", usage_limit=1)
        first = self.start(username="first", email="first@example.org")
        second = self.start(username="second", email="second@example.org")
        for registration_id in (first, second):
            self.assertEqual(self.post_step(registration_id, "token", token=token).code, 303)
            self.post_step(registration_id, "display-name", action="skip")
        for registration_id in (first, second):
            authentication = self.get_success(
                self.db_pool.execute(
                    "auth",
                    "SELECT c.code FROM user_email_authentication_codes c JOIN user_registrations r"
                    " ON r.email_authentication_id = c.user_email_authentication_id WHERE r.user_registration_id = ?",
                    registration_id,
                )
            )
            self.post_step(registration_id, "verify-email", code=authentication[0][0])
        self.assertEqual(self.finish(first).code, 303)
        self.jar.pop(SESSION_COOKIE)
        channel = self.finish(second)
        self.assertEqual(channel.code, 400, channel)
        self.assertIn("The registration token is no longer valid.", channel.text_body)
        self.assertEqual(self.count_rows("users"), 1)


class PasswordRegistrationTokenTests(RegisterTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["account"]["password_registration_token_required"] = True
        return config

    def test_password_registration_token_required(self) -> None:
        registration_id = self.start()
        self.assertEqual(self.finish(registration_id).location, f"/register/steps/{registration_id}/token")
