# SPDX-License-Identifier: AGPL-3.0-only
"""``/account/personal-tokens``: a signed-in user creates a personal access token (shown once),
sees their tokens without their values, and revokes them; the scopes offered follow
``can_request_admin``; every form needs its CSRF token."""

from __future__ import annotations

import re
from typing import Any

from tests.rest.human._base import HumanTestCase, csrf_from
from tests.unittest import TEST_MATRIX_SECRET

PASSWORD = "correct horse battery staple"
PAGE = "/account/personal-tokens"
API = "urn:matrix:client:api:*"
_TOKEN_RE = re.compile(r'<code id="created-token">(mpt_[A-Za-z0-9_]+)</code>')


class PersonalTokensPageTests(HumanTestCase):
    def sign_in_as(self, username: str = "alice", **changes: Any) -> None:
        self.factory.user(username, **changes)
        self.assertEqual(self.login(username, PASSWORD).code, 303)

    def create(self, **form: Any) -> Any:
        page = self.browse("GET", PAGE)
        self.assertEqual(page.code, 200, page)
        fields = {"csrf": csrf_from(page), "name": "my bot", "scope": [API], "expires_days": "30", **form}
        return self.browse("POST", PAGE, form=fields)

    def introspect(self, token: str) -> dict[str, Any]:
        channel = self.make_request(
            "POST",
            "/oauth2/introspect",
            form={"token": token},
            headers=[("Authorization", f"Bearer {TEST_MATRIX_SECRET}")],
        )
        return channel.json_body

    def test_signed_out_goes_to_login(self) -> None:
        channel = self.browse("GET", PAGE)
        self.assertEqual(channel.code, 303)
        self.assertEqual(channel.location, "/login")

    def test_create_shows_the_token_once_and_revoke_kills_it(self) -> None:
        self.sign_in_as()
        created = self.create()
        self.assertEqual(created.code, 200, created.text_body)
        match = _TOKEN_RE.search(created.text_body)
        assert match is not None, created.text_body
        token = match.group(1)
        self.assertEqual(created.header("Cache-Control"), "no-store")
        answer = self.introspect(token)
        self.assertTrue(answer["active"], answer)
        self.assertEqual(answer["username"], "alice")
        self.assertEqual(answer["exp"] - answer["iat"], 30 * 86_400)
        # The token has a device of its own.
        devices = [t for t in answer["scope"].split(" ") if t.startswith("urn:matrix:client:device:")]
        self.assertEqual(len(devices), 1, answer)
        # The page again: the token is listed, its value is not.
        page = self.browse("GET", PAGE)
        self.assertIn("my bot", page.text_body)
        self.assertNotIn(token, page.text_body)
        session_id = re.search(r'id="token-([0-9A-Z]{26})"', page.text_body).group(1)  # type: ignore[union-attr]
        # Revoking needs the CSRF token.
        refused = self.browse("POST", f"{PAGE}/{session_id}/revoke", form={})
        self.assertEqual(refused.code, 400)
        self.assertTrue(self.introspect(token)["active"])
        revoked = self.browse("POST", f"{PAGE}/{session_id}/revoke", form={"csrf": csrf_from(page)})
        self.assertEqual(revoked.code, 303, revoked)
        self.assertEqual(revoked.location, PAGE)
        self.assertEqual(self.introspect(token), {"active": False})
        self.assertIn("Revoked", self.browse("GET", PAGE).text_body)
        # Its device goes from the homeserver.
        jobs = self.get_success(
            self.db_pool.execute("t", "SELECT queue_name FROM queue_jobs WHERE queue_name = 'sync-devices'")
        )
        self.assertEqual(len(jobs), 1)
        again = self.browse("POST", f"{PAGE}/{session_id}/revoke", form={"csrf": csrf_from(page)})
        self.assertEqual(again.code, 404)

    def test_create_without_csrf_changes_nothing(self) -> None:
        self.sign_in_as()
        channel = self.browse("POST", PAGE, form={"name": "x", "scope": API, "expires_days": "30"})
        self.assertEqual(channel.code, 400)
        rows = self.get_success(self.db_pool.execute("t", "SELECT 1 FROM personal_sessions"))
        self.assertEqual(rows, [])

    def test_refused_forms(self) -> None:
        self.sign_in_as()
        for form, field in (
            ({"name": ""}, "name"),
            ({"name": "x" * 101}, "name"),
            ({"scope": []}, "scope"),
            ({"scope": ["urn:mas:admin"]}, "scope"),
            ({"scope": ["urn:synapse:admin:*"]}, "scope"),
            ({"expires_days": ""}, "expires_days"),
            ({"expires_days": "0"}, "expires_days"),
            ({"expires_days": "10000"}, "expires_days"),
        ):
            channel = self.create(**form)
            self.assertEqual(channel.code, 400, (form, channel.text_body[:300]))
            self.assertIn(f'id="error-{field}"', channel.text_body, form)
            self.assertIsNone(_TOKEN_RE.search(channel.text_body))
        rows = self.get_success(self.db_pool.execute("t", "SELECT 1 FROM personal_sessions"))
        self.assertEqual(rows, [])

    def test_admin_scopes_only_for_admins(self) -> None:
        self.sign_in_as()
        self.assertNotIn("urn:mas:admin", self.browse("GET", PAGE).text_body)
        self.jar.clear()
        self.sign_in_as("root", can_request_admin=True)
        page = self.browse("GET", PAGE)
        self.assertIn('value="urn:mas:admin"', page.text_body)
        created = self.create(scope=[API, "urn:mas:admin"])
        token = _TOKEN_RE.search(created.text_body).group(1)  # type: ignore[union-attr]
        self.assertIn("urn:mas:admin", self.introspect(token)["scope"].split(" "))

    def test_cannot_revoke_another_users_token(self) -> None:
        self.sign_in_as()
        created = self.create()
        page = self.browse("GET", PAGE)
        session_id = re.search(r'id="token-([0-9A-Z]{26})"', page.text_body).group(1)  # type: ignore[union-attr]
        token = _TOKEN_RE.search(created.text_body).group(1)  # type: ignore[union-attr]
        self.jar.clear()
        self.sign_in_as("bob")
        bob_page = self.browse("GET", PAGE)
        self.assertNotIn("my bot", bob_page.text_body)
        channel = self.browse("POST", f"{PAGE}/{session_id}/revoke", form={"csrf": csrf_from(bob_page)})
        self.assertEqual(channel.code, 404)
        self.assertTrue(self.introspect(token)["active"])

    def test_index_links_to_the_page(self) -> None:
        self.sign_in_as()
        self.assertIn(f'href="{PAGE}"', self.browse("GET", "/").text_body)
