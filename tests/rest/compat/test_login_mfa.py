# SPDX-License-Identifier: AGPL-3.0-only
"""The compatibility ``/login`` for a user with a TOTP second factor (``experimental.mfa``,
issue 18): ``m.login.password`` is refused with ``M_FORBIDDEN`` (a password alone cannot
stand for both factors; SSO asks for the code) unless
``experimental.mfa.allow_compat_password_login``; users without one log in as before."""

from __future__ import annotations

from typing import Any

import pyotp

from tests.rest.compat._compat_fixtures import CompatTestCase
from tests.unittest import override_config


class CompatPasswordLoginWithTotpTests(CompatTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["experimental"] = {"mfa": {"enabled": True}}
        return config

    def enrol_alice(self) -> None:
        mfa = self.server.get_mfa_handler()
        enrolment = self.get_success(mfa.start_enrolment(self.alice))
        assert enrolment is not None
        code = pyotp.TOTP(enrolment.secret).at(int(self.clock.time()))
        codes = self.get_success(mfa.confirm_enrolment(self.alice, code))
        self.assertIsInstance(codes, list)

    def test_refused_with_a_second_factor(self) -> None:
        self.enrol_alice()
        channel = self.password_login()
        self.assertEqual(channel.code, 403, channel.body)
        self.assertEqual(channel.json_body["errcode"], "M_FORBIDDEN")
        self.assertIn("single sign-on", channel.json_body["error"])
        self.assertEqual(self.count_compat_sessions(), 0)

    def test_wrong_password_is_still_invalid_credentials(self) -> None:
        self.enrol_alice()
        channel = self.password_login(password="wrong")
        self.assertEqual(channel.code, 403, channel.body)
        self.assertNotIn("single sign-on", channel.json_body["error"])

    def test_without_a_second_factor_logs_in(self) -> None:
        channel = self.password_login()
        self.assertEqual(channel.code, 200, channel.body)

    @override_config({"experimental": {"mfa": {"enabled": True, "allow_compat_password_login": True}}})
    def test_operator_switch_allows_it(self) -> None:
        self.enrol_alice()
        channel = self.password_login()
        self.assertEqual(channel.code, 200, channel.body)
        self.assertTrue(channel.json_body["access_token"].startswith("mct_"))

    def count_compat_sessions(self) -> int:
        return len(
            self.get_success(self.stores.compat_sessions.list_active_compat_sessions_for_user(self.alice.id))
        )
