# SPDX-License-Identifier: AGPL-3.0-only
"""``/link`` and ``/device/<id>`` (MAS's ``oauth2/device/{link,consent}.rs``): entering the user
code, signing in, approving or rejecting, the policy, and refusals that change nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.rest.human._base import PASSWORD, DeviceTestCase, csrf_from
from tests.unittest import override_config


class DeviceLinkTests(DeviceTestCase):
    def test_code_form_redirects_to_the_grant(self) -> None:
        grant = self.add_device_grant()
        page = self.browse("GET", "/link")
        self.assertEqual(page.code, 200, page)
        self.assertEqual(page.header("X-Frame-Options"), "DENY")
        # Any case is accepted.
        channel = self.browse("POST", "/link", form={"csrf": csrf_from(page), "code": "abc123"})
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(channel.location, f"/device/{grant.id}")

    def test_unknown_expired_or_decided_codes_are_invalid(self) -> None:
        expired = self.add_device_grant(user_code="OLD111", expires_in_s=1)
        self.reactor.advance(2)
        page = self.browse("GET", "/link")
        for code in ("ZZZZZZ", "OLD111"):
            channel = self.browse("POST", "/link", form={"csrf": csrf_from(page), "code": code})
            self.assertEqual(channel.code, 200, channel)
            self.assertIn('aria-invalid="true"', channel.text_body)
            self.assertIn("This value is not valid.", channel.text_body)
            self.assertIsNone(channel.location)
        self.assertTrue(self.reload(expired).is_pending)

    def test_bad_csrf(self) -> None:
        self.add_device_grant()
        self.browse("GET", "/link")
        channel = self.browse("POST", "/link", form={"csrf": "nope", "code": "ABC123"})
        self.assertEqual(channel.code, 400, channel)

    def test_query_code_ignored_without_auto_fill(self) -> None:
        self.add_device_grant()
        channel = self.browse("GET", "/link?code=ABC123")
        self.assertEqual(channel.code, 200, channel)

    @override_config({"oauth": {"device_code_user_code_auto_fill_enabled": True}})
    def test_query_code_with_auto_fill(self) -> None:
        grant = self.add_device_grant()
        channel = self.browse("GET", "/link?code=ABC123")
        self.assertEqual(channel.code, 303, channel)
        self.assertEqual(channel.location, f"/device/{grant.id}")

    @override_config({"oauth": {"device_code_grant_enabled": False}})
    def test_disabled(self) -> None:
        grant = self.add_device_grant()
        # MAS answers 500; a disabled grant is a page that is not there.
        self.assertEqual(self.browse("GET", "/link").code, 404)
        self.assertEqual(self.browse("GET", f"/device/{grant.id}").code, 404)


class DeviceConsentTests(DeviceTestCase):
    def test_signed_out_goes_to_login_and_back(self) -> None:
        grant = self.add_device_grant()
        channel = self.browse("GET", f"/device/{grant.id}")
        self.assertEqual(channel.code, 303, channel)
        location = urlsplit(channel.location)
        self.assertEqual(location.path, "/login")
        self.assertEqual(parse_qs(location.query), {"kind": ["continue_device_code_grant"], "id": [grant.id]})
        self.factory.user()
        login = self.login("alice", PASSWORD, query=f"?kind=continue_device_code_grant&id={grant.id}")
        self.assertEqual(login.location, f"/device/{grant.id}")

    def test_approve(self) -> None:
        grant = self.add_device_grant()
        self.sign_in()
        page = self.browse("GET", f"/device/{grant.id}")
        self.assertEqual(page.code, 200, page)
        self.assertIn('name="confirm_device"', page.text_body)
        self.assertTrue(self.reload(grant).is_pending)
        channel = self.browse(
            "POST",
            f"/device/{grant.id}",
            form={"csrf": csrf_from(page), "action": "consent", "confirm_device": "on"},
        )
        self.assertEqual(channel.code, 200, channel)
        after = self.reload(grant)
        self.assertTrue(after.is_fulfilled)
        self.assertEqual(after.locale, "en")
        self.assertNotIn('name="confirm_device"', channel.text_body)
        # Sending the form again shows the decision, changing nothing.
        again = self.browse("POST", f"/device/{grant.id}", form={"csrf": csrf_from(page), "action": "reject"})
        self.assertEqual(again.code, 200)
        self.assertTrue(self.reload(grant).is_fulfilled)

    def test_approve_needs_confirmation(self) -> None:
        grant = self.add_device_grant()
        self.sign_in()
        page = self.browse("GET", f"/device/{grant.id}")
        channel = self.browse(
            "POST", f"/device/{grant.id}", form={"csrf": csrf_from(page), "action": "consent"}
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertTrue(self.reload(grant).is_pending)

    def test_reject(self) -> None:
        grant = self.add_device_grant()
        self.sign_in()
        page = self.browse("GET", f"/device/{grant.id}")
        channel = self.browse(
            "POST", f"/device/{grant.id}", form={"csrf": csrf_from(page), "action": "reject"}
        )
        self.assertEqual(channel.code, 200, channel)
        self.assertTrue(self.reload(grant).is_rejected)

    def test_bad_csrf(self) -> None:
        grant = self.add_device_grant()
        self.sign_in()
        self.browse("GET", f"/device/{grant.id}")
        channel = self.browse(
            "POST", f"/device/{grant.id}", form={"csrf": "nope", "action": "consent", "confirm_device": "on"}
        )
        self.assertEqual(channel.code, 400, channel)
        self.assertTrue(self.reload(grant).is_pending)

    def test_unknown_and_expired_grants(self) -> None:
        self.sign_in()
        # MAS answers these with 500s; they are the client's input: 404 and 410.
        self.assertEqual(self.browse("GET", "/device/01ARZ3NDEKTSV4RRFFQ69G5FAV").code, 404)
        grant = self.add_device_grant(expires_in_s=1)
        page = self.browse("GET", "/link")
        self.reactor.advance(2)
        self.assertEqual(self.browse("GET", f"/device/{grant.id}").code, 410)
        channel = self.browse(
            "POST",
            f"/device/{grant.id}",
            form={"csrf": csrf_from(page), "action": "consent", "confirm_device": "on"},
        )
        self.assertEqual(channel.code, 410)
        self.assertTrue(self.reload(grant).is_pending)

    def test_policy_refuses_admin_scope(self) -> None:
        grant = self.add_device_grant(scope="openid urn:synapse:admin:*")
        self.sign_in()
        page = self.browse("GET", f"/device/{grant.id}")
        self.assertEqual(page.code, 200)
        self.assertIn("<li>", page.text_body)
        self.assertNotIn('name="confirm_device"', page.text_body)
        channel = self.browse(
            "POST",
            f"/device/{grant.id}",
            form={"csrf": csrf_from(page), "action": "consent", "confirm_device": "on"},
        )
        self.assertIn("<li>", channel.text_body)
        self.assertTrue(self.reload(grant).is_pending)

    @override_config({"policy": {"data": {"admin_users": ["alice"]}}})
    def test_admin_users_may_approve_admin_scope(self) -> None:
        grant = self.add_device_grant(scope="openid urn:synapse:admin:*")
        self.sign_in()
        page = self.browse("GET", f"/device/{grant.id}")
        self.browse(
            "POST",
            f"/device/{grant.id}",
            form={"csrf": csrf_from(page), "action": "consent", "confirm_device": "on"},
        )
        self.assertTrue(self.reload(grant).is_fulfilled)
