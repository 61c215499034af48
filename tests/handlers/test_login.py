# SPDX-License-Identifier: AGPL-3.0-only
"""The login rules the login page, ``login_hint`` and the compatibility ``/login`` share."""

from __future__ import annotations

from mas_twisted.handlers.login import localpart_of
from tests.unittest import MasTestCase, override_config


def test_localpart_of() -> None:
    assert localpart_of("@alice:example.com", "example.com") == "alice"
    assert localpart_of("@alice:other.example", "example.com") is None
    assert localpart_of("alice:example.com", "example.com") is None
    assert localpart_of("@:example.com", "example.com") is None
    assert localpart_of("alice", "example.com") is None


class LoginHintTests(MasTestCase):
    def test_mxid_hint(self) -> None:
        login = self.server.get_login_handler()
        self.assertEqual(login.username_from_login_hint("mxid:@alice:example.com"), "alice")
        self.assertIsNone(login.username_from_login_hint("mxid:@alice:elsewhere.example"))
        self.assertIsNone(login.username_from_login_hint("alice@example.com"))
        self.assertIsNone(login.username_from_login_hint(""))
        self.assertIsNone(login.username_from_login_hint(None))
        self.assertEqual(login.localpart("@alice:example.com"), "alice")
        self.assertEqual(login.localpart("@alice:elsewhere.example"), "@alice:elsewhere.example")

    @override_config({"account": {"login_with_email_allowed": True}})
    def test_email_hint(self) -> None:
        login = self.server.get_login_handler()
        self.assertEqual(login.username_from_login_hint("alice@example.com"), "alice@example.com")
        self.assertIsNone(login.username_from_login_hint("alice @example.com"))

    def test_one_handler_per_process(self) -> None:
        self.assertIs(self.server.get_login_handler(), self.server.get_login_handler())
        self.assertIs(self.server.get_compat_login_handler(), self.server.get_compat_login_handler())
