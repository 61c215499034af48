# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /logout``, ``/logout/all`` and ``/refresh`` through the whole listener (MAS's
``compat/{logout,logout_all,refresh}.rs``): happy paths, and every error path with its status,
errcode and nothing written."""

from __future__ import annotations

from typing import Any

from tests.handlers._base import compat_token
from tests.rest.compat._compat_fixtures import CompatTestCase
from tests.server import FakeChannel

LOGOUT = "/_matrix/client/v3/logout"
LOGOUT_ALL = "/_matrix/client/v3/logout/all"
REFRESH = "/_matrix/client/v3/refresh"


class LogoutTestCase(CompatTestCase):
    def test_logout(self) -> None:
        session, access, _ = self.start_session()
        other, other_access, _ = self.start_session(device_id="OTHERDEV01")
        channel = self.post(LOGOUT, token=access.access_token)
        self.assertEqual((channel.code, channel.json_body), (200, {}), channel.body)
        self.assertIsNotNone(self.compat_session(session.id).finished_at)
        self.assertIsNone(self.compat_session(other.id).finished_at)
        self.assertFalse(self.introspect(access.access_token)["active"])
        self.assertTrue(self.introspect(other_access.access_token)["active"])
        self.assertEqual(len(self.jobs()), 1)
        # A second logout with the same token: the token is no longer valid.
        before = self.snapshot()
        self.assert_matrix_error(
            self.post(LOGOUT, token=access.access_token), 401, "M_UNKNOWN_TOKEN", "Invalid access token"
        )
        self.assertEqual(self.snapshot(), before)

    def test_logout_after_login(self) -> None:
        token = self.password_login().json_body["access_token"]
        self.assertEqual(
            self.post(LOGOUT, {}, token=token, headers=[("Content-Type", "application/json")]).code, 200
        )
        self.assertFalse(self.introspect(token)["active"])

    def test_errors(self) -> None:
        _, expired, _ = self.start_session(device_id="EXPIREDDEV", ttl_ms=1000)
        oauth_like = compat_token("mat")
        self.reactor.advance(2)
        before = self.snapshot()
        cases: list[tuple[list[tuple[str, str]], int, str | None]] = [
            ([], 401, "M_MISSING_TOKEN"),
            ([("Authorization", "Bearer nope")], 401, "M_UNKNOWN_TOKEN"),
            ([("Authorization", f"Bearer {compat_token('mct')}")], 401, "M_UNKNOWN_TOKEN"),
            ([("Authorization", f"Bearer {compat_token('mcr')}")], 401, "M_UNKNOWN_TOKEN"),
            ([("Authorization", f"Bearer {oauth_like}")], 401, "M_UNKNOWN_TOKEN"),
            ([("Authorization", f"Bearer {expired.access_token}")], 401, "M_UNKNOWN_TOKEN"),
            ([("Authorization", "Basic YWxpY2U6cGFzcw==")], 400, None),
        ]
        for path in (LOGOUT, LOGOUT_ALL):
            for headers, code, errcode in cases:
                with self.subTest(path=path, headers=headers):
                    channel = self.make_request("POST", path, headers=headers)
                    if errcode is None:
                        self.assertEqual(
                            (channel.code, channel.text_body), (code, "invalid HTTP header (authorization)")
                        )
                    else:
                        self.assert_matrix_error(channel, code, errcode)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(
            self.make_request("POST", LOGOUT).json_body,
            {"errcode": "M_MISSING_TOKEN", "error": "Missing access token"},
        )


class LogoutAllTestCase(CompatTestCase):
    def test_logout_all(self) -> None:
        sessions = [self.start_session(device_id=f"DEVICE000{i}")[0] for i in range(3)]
        _, access, _ = self.start_session(device_id="CALLERDEV1")
        channel = self.post(LOGOUT_ALL, {"io.element.only_compat_is_fine": True}, token=access.access_token)
        self.assertEqual((channel.code, channel.json_body), (200, {}), channel.body)
        for session in sessions:
            self.assertIsNotNone(self.compat_session(session.id).finished_at)
        self.assertFalse(self.introspect(access.access_token)["active"])
        self.assertEqual(len(self.jobs()), 1)

    def test_oauth_sessions_are_kept(self) -> None:
        from mas_twisted.types.oauth2 import OAuth2Session

        client_id = self.tokens.ulid()
        from mas_twisted.types.clients import OAuth2Client

        self.get_success(
            self.stores.oauth2_clients.add_oauth2_client(OAuth2Client(id=client_id, redirect_uris=()))
        )
        oauth = OAuth2Session(
            id=self.tokens.ulid(),
            client_id=client_id,
            scope="urn:matrix:client:api:*",
            created_at=self.now(),
            user_id=self.alice.id,
        )
        self.get_success(self.stores.oauth2_sessions.add_oauth2_session(oauth))
        _, access, _ = self.start_session()
        channel = self.post(LOGOUT_ALL, {"io.element.only_compat_is_fine": True}, token=access.access_token)
        self.assertEqual(channel.code, 200, channel.body)
        session = self.get_success(self.stores.oauth2_sessions.get_oauth2_session(oauth.id))
        self.assertIsNone(session.finished_at)

    def test_without_the_flag(self) -> None:
        session, access, _ = self.start_session()
        before = self.snapshot()
        expected = {
            "errcode": "M_UNRECOGNIZED",
            "error": "The /logout/all endpoint is not supported by this deployment",
        }
        for body in (None, {}, {"io.element.only_compat_is_fine": False}):
            with self.subTest(body=body):
                channel = self.post(LOGOUT_ALL, body, token=access.access_token)
                self.assertEqual((channel.code, channel.json_body), (404, expected))
        self.assertEqual(self.snapshot(), before)

    def test_bad_bodies_come_first(self) -> None:
        before = self.snapshot()
        channel = self.make_request(
            "POST", LOGOUT_ALL, content=b"{", headers=[("Content-Type", "application/json")]
        )
        self.assert_matrix_error(channel, 400, "M_NOT_JSON", "Body is not a valid JSON document")
        channel = self.make_request("POST", LOGOUT_ALL, json={"io.element.only_compat_is_fine": "yes"})
        self.assert_matrix_error(channel, 400, "M_BAD_JSON", "JSON fields are not valid")
        channel = self.make_request(
            "POST", LOGOUT_ALL, content=b"x", headers=[("Content-Type", "text/plain")]
        )
        self.assert_matrix_error(
            channel, 400, "M_NOT_JSON", "Invalid Content-Type header: expected application/json"
        )
        self.assertEqual(self.snapshot(), before)

    def test_locked_user(self) -> None:
        _, access, _ = self.start_session()
        self.get_success(self.stores.users.lock_user(self.alice, self.now()))
        before = self.snapshot()
        channel = self.post(LOGOUT_ALL, {"io.element.only_compat_is_fine": True}, token=access.access_token)
        self.assert_matrix_error(channel, 401, "M_UNKNOWN_TOKEN", "Invalid access token")
        self.assertEqual(self.snapshot(), before)


class RefreshTestCase(CompatTestCase):
    def refresh(self, token: Any) -> FakeChannel:
        return self.post(REFRESH, {"refresh_token": token})

    def test_refresh(self) -> None:
        login = self.password_login(refresh_token=True).json_body
        self.reactor.advance(10)
        channel = self.refresh(login["refresh_token"])
        self.assertEqual(channel.code, 200, channel.body)
        body = channel.json_body
        self.assertEqual(set(body), {"access_token", "refresh_token", "expires_in_ms"})
        self.assertEqual(body["expires_in_ms"], 300_000)
        self.assertNotEqual(body["access_token"], login["access_token"])
        # The old access token expires; the new pair works; same device.
        self.assertFalse(self.introspect(login["access_token"])["active"])
        self.assertFalse(self.introspect(login["refresh_token"])["active"])
        reply = self.introspect(body["access_token"])
        self.assertEqual((reply["active"], reply["device_id"]), (True, login["device_id"]))
        self.assertTrue(self.introspect(body["refresh_token"])["active"])
        # Used once.
        before = self.snapshot()
        self.assert_matrix_error(
            self.refresh(login["refresh_token"]), 401, "M_UNKNOWN_TOKEN", "Invalid refresh token"
        )
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.refresh(body["refresh_token"]).code, 200)

    def test_errors(self) -> None:
        finished, _, finished_refresh = self.start_session(device_id="FINISHED01", refresh=True)
        self.get_success(self.stores.compat_sessions.finish_compat_session(finished.id))
        _, access, _ = self.start_session(device_id="ACCESSONLY")
        before = self.snapshot()
        for token in (
            "nope",
            compat_token("mcr"),
            compat_token("mar"),
            access.access_token,
            finished_refresh.refresh_token,
        ):
            with self.subTest(token=token):
                self.assert_matrix_error(self.refresh(token), 401, "M_UNKNOWN_TOKEN", "Invalid refresh token")
        self.assertEqual(self.snapshot(), before)

    def test_bodies_as_axum_reads_them(self) -> None:
        before = self.snapshot()
        channel = self.make_request("POST", REFRESH, content=b'{"refresh_token": "x"}')
        self.assertEqual(channel.code, 415)
        self.assertEqual(channel.text_body, "Expected request with `Content-Type: application/json`")
        channel = self.make_request(
            "POST", REFRESH, content=b"{", headers=[("Content-Type", "application/json")]
        )
        self.assertEqual(channel.code, 400)
        self.assertTrue(channel.text_body.startswith("Failed to parse the request body as JSON"))
        for body in ({}, {"refresh_token": 1}, []):
            with self.subTest(body=body):
                channel = self.make_request("POST", REFRESH, json=body)
                self.assertEqual(channel.code, 422)
                self.assertTrue(
                    channel.text_body.startswith("Failed to deserialize the JSON body into the target type")
                )
        self.assertEqual(self.snapshot(), before)
