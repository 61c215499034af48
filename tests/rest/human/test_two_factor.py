# SPDX-License-Identifier: AGPL-3.0-only
"""The TOTP second factor (``experimental.mfa``, issue 18) through the real listener and
database: enrolment on the account page's "Two-factor" tab, the second login step with its
replay refusal, recovery codes used once, the post-auth action kept across the step, turning
it off, new recovery codes, CSRF, the pending login's expiry and the attempt limit. Codes are
computed with pyotp from the secret read off the page, as an authenticator app would."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

import pyotp

from mas_twisted.rest._cookies import SESSION_COOKIE
from mas_twisted.types.users import UserPassword
from tests.rest.human._base import HumanTestCase, csrf_from

PASSWORD = "correct horse battery staple"
TAB = "/account/two-factor"
STEP = "/login/two-factor"
MFA_ON = {"experimental": {"mfa": {"enabled": True, "totp_issuer": "Example Chat"}}}
_SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
_CODES_RE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")
INVALID_CODE = "That code is not right, or it was used already."


class TwoFactorDisabledTests(HumanTestCase):
    def test_tab_absent_and_pages_404_while_off(self) -> None:
        self.factory.user("alice")
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        profile = self.browse("GET", "/account/")
        self.assertEqual(profile.code, 200)
        self.assertNotIn(TAB, profile.text_body)
        self.assertEqual(self.browse("GET", TAB).code, 404)
        self.assertEqual(self.browse("GET", STEP).code, 404)


class TwoFactorTests(HumanTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config.update(MFA_ON)
        config["http"]["listeners"][0]["resources"].append({"name": "compat"})
        return config

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.factory.user("alice")

    # -- helpers ----------------------------------------------------------------------------
    def code(self, secret: str, offset_steps: int = 0) -> str:
        """The code for the current step (of the test's clock) plus ``offset_steps``."""
        return self.code_at(secret, int(self.clock.time()) // 30 + offset_steps)

    @staticmethod
    def code_at(secret: str, step: int) -> str:
        return pyotp.TOTP(secret).generate_otp(step)

    def last_used_step(self) -> int:
        rows = self.get_success(self.db_pool.execute("step", "SELECT last_used_step FROM user_totp"))
        return int(rows[0][0])

    def post_tab(self, **form: Any) -> Any:
        page = self.browse("GET", TAB)
        self.assertEqual(page.code, 200, page.text_body)
        return self.browse("POST", TAB, form={"csrf": csrf_from(page), **form})

    def enrol(self) -> tuple[str, list[str]]:
        """Sign in, set up TOTP reading the secret off the page; the secret and the codes."""
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        started = self.post_tab(action="start")
        self.assertEqual(started.code, 200, started.text_body)
        match = _SECRET_RE.search(started.text_body)
        assert match is not None, started.text_body
        secret = match.group(1)
        self.assertIn("<svg", started.text_body)
        confirmed = self.post_tab(action="confirm", code=self.code(secret))
        self.assertEqual(confirmed.code, 200, confirmed.text_body)
        codes = _CODES_RE.findall(confirmed.text_body)
        self.assertEqual(len(codes), 10, confirmed.text_body)
        self.assertEqual(len(set(codes)), 10)
        return secret, codes

    def sign_out(self) -> None:
        page = self.browse("GET", TAB)
        self.assertEqual(self.browse("POST", "/logout", form={"csrf": csrf_from(page)}).code, 303)

    def submit_code(self, code: str, query: str = "") -> Any:
        page = self.browse("GET", STEP + query)
        self.assertEqual(page.code, 200, page.text_body)
        return self.browse("POST", STEP + query, form={"csrf": csrf_from(page), "code": code})

    def password_step(self, query: str = "") -> Any:
        channel = self.login("alice", PASSWORD, query=query)
        self.assertEqual(channel.code, 303, channel.text_body)
        return channel

    def signed_in(self) -> bool:
        # The tab asks nothing of the homeserver (the profile page's lookup moves the clock).
        return self.browse("GET", TAB).code == 200

    def second_factors(self) -> list[Any]:
        rows = self.get_success(
            self.db_pool.execute(
                "factors",
                "SELECT second_factor FROM user_session_authentications ORDER BY user_session_authentication_id",
            )
        )
        return [r[0] for r in rows]

    # -- tests ------------------------------------------------------------------------------
    def test_enrolment_page(self) -> None:
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        self.assertIn(f'href="{TAB}"', self.browse("GET", "/account/").text_body)
        started = self.post_tab(action="start")
        self.assertEqual(started.header("Cache-Control"), "no-store")
        secret = _SECRET_RE.search(started.text_body)
        assert secret is not None
        # The QR code is the otpauth:// URI (server-rendered SVG); the secret is stored encrypted.
        self.assertIn("<svg", started.text_body)
        stored = self.get_success(
            self.db_pool.execute("secret", "SELECT secret, confirmed_at FROM user_totp")
        )
        self.assertEqual(len(stored), 1)
        self.assertNotIn(secret.group(1), stored[0][0])
        self.assertIsNone(stored[0][1])
        # A wrong code does not confirm; the same secret is still shown.
        wrong = self.post_tab(
            action="confirm", code="000000" if self.code(secret.group(1)) != "000000" else "111111"
        )
        self.assertEqual(wrong.code, 400)
        self.assertIn(INVALID_CODE, wrong.text_body)
        self.assertIn(secret.group(1), wrong.text_body)
        # Not enrolled yet: a password login still needs nothing more.
        self.sign_out()
        self.assertEqual(self.password_step().location, "/")

    def test_login_asks_for_a_code_once_per_step(self) -> None:
        secret, _ = self.enrol()
        self.sign_out()
        sessions_before = self.count_rows("user_sessions")
        channel = self.password_step()
        self.assertEqual(channel.location, STEP)
        self.assertNotIn(SESSION_COOKIE, channel.cookies)
        self.assertEqual(self.count_rows("user_sessions"), sessions_before)
        self.assertFalse(self.signed_in())
        # The code that confirmed the enrolment is for a step already used: refused.
        used = self.last_used_step()
        replay = self.submit_code(self.code_at(secret, used))
        self.assertEqual(replay.code, 200)
        self.assertIn(INVALID_CODE, replay.text_body)
        self.assertEqual(self.count_rows("user_sessions"), sessions_before)
        # The next step's code (accepted up to one step early) signs in.
        ok = self.submit_code(self.code_at(secret, used + 1))
        self.assertEqual(ok.code, 303, ok.text_body)
        self.assertEqual(ok.location, "/")
        self.assertTrue(self.signed_in())
        self.assertEqual(self.second_factors()[-1], "totp")
        self.assertEqual(self.last_used_step(), used + 1)
        # The same code again, from a new login: refused.
        self.sign_out()
        self.password_step()
        again = self.submit_code(self.code_at(secret, used + 1))
        self.assertEqual(again.code, 200, again.location)
        self.assertIn(INVALID_CODE, again.text_body)
        self.assertFalse(self.signed_in())
        # Two steps ahead of the clock is outside the window.
        self.assertIn(INVALID_CODE, self.submit_code(self.code(secret, 2)).text_body)
        self.reactor.advance(60)
        final = self.submit_code(self.code(secret))
        self.assertEqual(final.code, 303, final.text_body)
        self.assertTrue(self.signed_in())

    def test_recovery_code_works_once(self) -> None:
        _, codes = self.enrol()
        self.sign_out()
        self.password_step()
        ok = self.submit_code(codes[3].upper())
        self.assertEqual(ok.code, 303, ok.text_body)
        self.assertTrue(self.signed_in())
        self.assertEqual(self.second_factors()[-1], "recovery_code")
        self.assertIn('<strong id="unused-recovery-codes">9</strong>', self.browse("GET", TAB).text_body)
        self.sign_out()
        self.password_step()
        self.assertIn(INVALID_CODE, self.submit_code(codes[3]).text_body)
        self.assertIn(INVALID_CODE, self.submit_code("nonsense-code").text_body)
        self.assertFalse(self.signed_in())
        self.assertEqual(self.submit_code(codes[4]).code, 303)

    def test_post_auth_action_survives_the_step(self) -> None:
        secret, _ = self.enrol()
        self.sign_out()
        query = "?kind=change_password"
        channel = self.password_step(query)
        self.assertEqual(channel.location, STEP + query)
        done = self.submit_code(self.code_at(secret, self.last_used_step() + 1), query)
        self.assertEqual(done.location, "/account/password/change")

    def test_compat_sso_login_goes_through_the_second_factor(self) -> None:
        secret, _ = self.enrol()
        self.sign_out()
        app = "https://app.example.com/cb"
        started = self.browse(
            "GET", f"/_matrix/client/v3/login/sso/redirect?redirectUrl={quote(app, safe='')}"
        )
        self.assertEqual(started.code, 303, started.text_body)
        complete = urlsplit(started.location).path
        self.assertTrue(complete.startswith("/complete-compat-sso/"), started.location)
        to_login = self.browse("GET", complete)
        self.assertEqual(urlsplit(to_login.location).path, "/login")
        query = "?" + urlsplit(to_login.location).query
        self.assertEqual(self.password_step(query).location, STEP + query)
        done = self.submit_code(self.code_at(secret, self.last_used_step() + 1), query)
        self.assertEqual(done.location, complete)
        page = self.browse("GET", complete)
        self.assertEqual(page.code, 200, page.text_body)
        fulfilled = self.browse("POST", complete, form={"csrf": csrf_from(page)})
        self.assertEqual(fulfilled.code, 303, fulfilled.text_body)
        self.assertTrue(fulfilled.location.startswith(app + "?loginToken="), fulfilled.location)

    def test_pending_login_expires(self) -> None:
        secret, _ = self.enrol()
        self.sign_out()
        self.password_step()
        self.reactor.advance(301)
        page = self.browse("GET", STEP)
        self.assertEqual(page.code, 303)
        self.assertEqual(page.location, "/login")

    def test_pending_login_void_once_the_password_changes(self) -> None:
        self.enrol()
        self.sign_out()
        self.password_step()
        self.assertEqual(self.browse("GET", STEP).code, 200)
        # A new password (as recovery or another session sets it).
        new = UserPassword(
            id=self.factory.ids.ulid(),
            user_id=self.alice.id,
            hashed_password="$argon2id$not-checked-here",
            version=1,
            created_at=self.clock.time_msec(),
        )
        self.get_success(self.server.get_stores().user_passwords.add_user_password(new))
        page = self.browse("GET", STEP)
        self.assertEqual(page.code, 303)
        self.assertEqual(page.location, "/login")

    def test_step_without_password_goes_to_login(self) -> None:
        channel = self.browse("GET", STEP + "?kind=change_password")
        self.assertEqual(channel.code, 303)
        self.assertEqual(channel.location, "/login?kind=change_password")

    def test_attempts_are_limited(self) -> None:
        secret, _ = self.enrol()
        self.sign_out()
        self.password_step()
        right = self.code_at(secret, self.last_used_step() + 1)
        wrong = "000000" if right != "000000" else "111111"
        answers = [self.submit_code(wrong).text_body for _ in range(6)]
        self.assertTrue(any("Too many attempts" in a for a in answers), answers[-1])
        # Even the right code is refused while limited.
        self.assertIn("Too many attempts", self.submit_code(right).text_body)
        self.assertFalse(self.signed_in())

    def test_disable_needs_password_and_code(self) -> None:
        secret, _ = self.enrol()
        self.reactor.advance(30)
        wrong_password = self.post_tab(action="disable", password="nope", disable_code=self.code(secret))
        self.assertEqual(wrong_password.code, 400)
        self.assertIn("That is not your password.", wrong_password.text_body)
        wrong_code = self.post_tab(action="disable", password=PASSWORD, disable_code="12345x")
        self.assertEqual(wrong_code.code, 400)
        self.assertEqual(self.count_rows("user_totp"), 1)
        removed = self.post_tab(action="disable", password=PASSWORD, disable_code=self.code(secret))
        self.assertEqual(removed.code, 200, removed.text_body)
        self.assertIn("Two-factor authentication was removed", removed.text_body)
        self.assertEqual((self.count_rows("user_totp"), self.count_rows("user_recovery_codes")), (0, 0))
        self.sign_out()
        self.assertEqual(self.password_step().location, "/")
        self.assertTrue(self.signed_in())

    def test_new_recovery_codes_replace_the_old(self) -> None:
        secret, old = self.enrol()
        self.reactor.advance(30)
        replaced = self.post_tab(action="regenerate", code=self.code(secret))
        self.assertEqual(replaced.code, 200, replaced.text_body)
        new = _CODES_RE.findall(replaced.text_body)
        self.assertEqual(len(new), 10)
        self.assertFalse(set(new) & set(old))
        self.sign_out()
        self.password_step()
        self.assertIn(INVALID_CODE, self.submit_code(old[0]).text_body)
        self.assertEqual(self.submit_code(new[0]).code, 303)

    def test_forms_need_csrf(self) -> None:
        self.assertEqual(self.login("alice", PASSWORD).code, 303)
        self.assertEqual(self.browse("POST", TAB, form={"action": "start"}).code, 400)
        self.assertEqual(self.count_rows("user_totp"), 0)
        self.sign_out()
        secret, _ = self.enrol()
        self.reactor.advance(30)
        forged = self.browse(
            "POST", TAB, form={"csrf": "forged", "action": "regenerate", "code": self.code(secret)}
        )
        self.assertEqual(forged.code, 400)
        self.sign_out()
        self.password_step()
        refused = self.browse(
            "POST", STEP, form={"csrf": "forged", "code": self.code_at(secret, self.last_used_step() + 1)}
        )
        self.assertEqual(refused.code, 400)
        self.assertFalse(self.signed_in())

    def test_second_start_after_enrolment_refused(self) -> None:
        self.enrol()
        again = self.post_tab(action="start")
        self.assertEqual(again.code, 400)
        self.assertIn("already set up", again.text_body)
