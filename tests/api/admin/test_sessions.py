# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/{user,compat,oauth2}-sessions``: lists with their filters, get, and finish
(a compatibility or OAuth 2.0 session's tokens die at once and ``sync-devices`` is scheduled)."""

from __future__ import annotations

from typing import Any

from tests.api.admin._base import PREFIX, AdminApiTestCase

MISSING = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


class SessionsTestCase(AdminApiTestCase):
    def ids(self, path: str) -> list[str]:
        return [item["id"] for item in self.ok(self.api("GET", path))["data"]]

    def active(self, token: str) -> bool:
        return self.get_success(self.server.get_introspection_handler().introspect(token)).active

    def test_user_sessions(self) -> None:
        alice = self.factory.user("alice", password=None)
        bob = self.factory.user("bob", password=None)
        first = self.factory.browser_session(alice)
        self.reactor.advance(60)
        second = self.factory.browser_session(alice)
        theirs = self.factory.browser_session(bob)
        self.assertEqual(self.ids(f"/user-sessions?filter[user]={alice.id}"), [first.id, second.id])
        body = self.ok(self.api("GET", f"/user-sessions/{first.id}"))
        self.assertEqual(body["data"]["type"], "user-session")
        self.assertEqual(
            body["data"]["attributes"],
            {
                "created_at": "2023-11-14T22:13:20Z",
                "finished_at": None,
                "user_id": alice.id,
                "user_agent": None,
                "last_active_at": None,
                "last_active_ip": None,
            },
        )
        finished = self.ok(self.api("POST", f"/user-sessions/{first.id}/finish"))
        self.assertEqual(finished["data"]["attributes"]["finished_at"], "2023-11-14T22:14:20Z")
        self.assertEqual(finished["links"]["self"], f"{PREFIX}/user-sessions/{first.id}/finish")
        self.assert_error(
            self.api("POST", f"/user-sessions/{first.id}/finish"),
            400,
            f"User session with ID {first.id} is already finished",
        )
        self.assertEqual(self.ids("/user-sessions?filter[status]=finished"), [first.id])
        self.assertEqual(self.ids("/user-sessions?filter[status]=active"), [second.id, theirs.id])
        self.assertEqual(self.ids("/user-sessions?filter[created-before]=2023-11-14T22:13:21Z"), [first.id])
        self.assertEqual(
            self.ids("/user-sessions?filter[created-after]=2023-11-14T22:13:21%2B00:00"),
            [second.id, theirs.id],
        )
        self.assert_error(
            self.api("GET", "/user-sessions?filter[created-after]=yesterday"),
            400,
            "Invalid filter parameters",
        )
        self.assert_error(
            self.api("GET", f"/user-sessions/{MISSING}"), 404, f"User session with ID {MISSING} not found"
        )

    def test_compat_sessions(self) -> None:
        alice = self.factory.user("alice", password=None)
        bob = self.factory.user("bob", password=None)
        session, access, _ = self.factory.compat_session(alice, device_id="AAAA")
        other, _, _ = self.factory.compat_session(bob, device_id="BBBB")
        self.assertEqual(self.ids(f"/compat-sessions?filter[user]={alice.id}"), [session.id])
        body = self.ok(self.api("GET", f"/compat-sessions/{session.id}"))
        self.assertEqual(body["data"]["type"], "compat-session")
        self.assertEqual(body["data"]["attributes"]["device_id"], "AAAA")
        self.assertTrue(self.active(access.access_token))

        finished = self.ok(self.api("POST", f"/compat-sessions/{session.id}/finish"))
        self.assertIsNotNone(finished["data"]["attributes"]["finished_at"])
        self.assertFalse(self.active(access.access_token))
        self.assertEqual([job["user_id"] for job in self.jobs("sync-devices")], [alice.id])
        self.assert_error(
            self.api("POST", f"/compat-sessions/{session.id}/finish"),
            400,
            f"Compatibility session with ID {session.id} is already finished",
        )
        self.assertEqual(self.ids("/compat-sessions?filter[status]=active"), [other.id])
        self.assertEqual(self.ids("/compat-sessions?filter[status]=finished"), [session.id])
        self.assert_error(
            self.api("GET", f"/compat-sessions?filter[user]={MISSING}"), 404, f"User ID {MISSING} not found"
        )
        self.assert_error(
            self.api("GET", f"/compat-sessions?filter[user-session]={MISSING}"),
            404,
            f"User session ID {MISSING} not found",
        )
        self.assert_error(
            self.api("POST", f"/compat-sessions/{MISSING}/finish"),
            404,
            f"Compatibility session with ID {MISSING} not found",
        )

    def test_oauth2_sessions(self) -> None:
        alice = self.factory.user("alice", password=None)
        browser = self.factory.browser_session(alice)
        static = self.factory.client(is_static=True)
        dynamic = self.factory.client()
        mine, access, _ = self.factory.oauth2_session(
            dynamic, user=alice, browser_session=browser, scope="openid urn:matrix:client:device:AAAA"
        )
        theirs, _, _ = self.factory.oauth2_session(static, user=None, scope="urn:synapse:admin:*")
        admin_session = self.get_success(
            self.stores.access_tokens.find_access_token_by_token(self.token)
        ).session_id

        def ids(query: str) -> list[str]:
            return sorted(self.ids(f"/oauth2-sessions?{query}"))

        self.assertEqual(ids(f"filter[user]={alice.id}"), [mine.id])
        self.assertEqual(ids(f"filter[client]={static.id}"), [theirs.id])
        self.assertEqual(
            ids(f"filter[client]={static.id}&filter[client]={dynamic.id}"), sorted([mine.id, theirs.id])
        )
        self.assertEqual(ids("filter[client-kind]=static"), [theirs.id])
        self.assertEqual(ids("filter[client-kind]=dynamic"), sorted([mine.id, admin_session]))
        self.assertEqual(ids(f"filter[user-session]={browser.id}"), [mine.id])
        self.assertEqual(ids("filter[scope]=openid"), [mine.id])
        self.assertEqual(ids("filter[scope]=openid&filter[scope]=urn:matrix:client:device:AAAA"), [mine.id])
        self.assertEqual(ids("filter[scope]=urn:mas:admin"), [admin_session])
        self.assert_error(
            self.api("GET", "/oauth2-sessions?filter[scope]=a%20b"),
            400,
            'Invalid scope "a b" in filter parameters',
        )
        self.assert_error(
            self.api("GET", f"/oauth2-sessions?filter[client]={MISSING}"),
            404,
            f"Client ID {MISSING} not found",
        )

        body = self.ok(self.api("GET", f"/oauth2-sessions/{mine.id}"))
        self.assertEqual(body["data"]["type"], "oauth2-session")
        attributes: dict[str, Any] = body["data"]["attributes"]
        self.assertEqual(attributes["client_id"], dynamic.id)
        self.assertEqual(attributes["user_session_id"], browser.id)
        self.assertEqual(attributes["scope"], "openid urn:matrix:client:device:AAAA")
        self.assertTrue(self.active(access.access_token))
        self.ok(self.api("POST", f"/oauth2-sessions/{mine.id}/finish"))
        self.assertFalse(self.active(access.access_token))
        self.assertEqual([job["user_id"] for job in self.jobs("sync-devices")], [alice.id])
        self.assertEqual(ids("filter[status]=finished"), [mine.id])
        self.assert_error(
            self.api("POST", f"/oauth2-sessions/{mine.id}/finish"),
            400,
            f"OAuth 2.0 session with ID {mine.id} is already finished",
        )
        # A client's own session: finished, no device to sync.
        self.ok(self.api("POST", f"/oauth2-sessions/{theirs.id}/finish"))
        self.assertEqual(len(self.jobs("sync-devices")), 1)


class ServerInfoTestCase(AdminApiTestCase):
    def test_site_config_and_version(self) -> None:
        config = self.ok(self.api("GET", "/site-config"))
        self.assertEqual(config["server_name"], "example.com")
        self.assertTrue(config["password_login_enabled"])
        self.assertFalse(config["captcha_enabled"])
        self.assertEqual(config["minimum_password_complexity"], 3)
        self.assertEqual(set(self.ok(self.api("GET", "/version"))), {"version"})
