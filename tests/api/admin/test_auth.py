# SPDX-License-Identifier: AGPL-3.0-only
"""Who may call the admin API: MAS's status codes and titles for every refusal
(``admin/call_context.rs``)."""

from __future__ import annotations

from tests.api.admin._base import ADMIN_SCOPE, AdminApiTestCase


class AdminAuthTestCase(AdminApiTestCase):
    def test_client_token_with_the_admin_scope(self) -> None:
        body = self.ok(self.api("GET", "/users"))
        self.assertEqual(body["meta"], {"count": 0})

    def test_user_token_with_the_admin_scope(self) -> None:
        admin = self.factory.user("root", can_request_admin=True)
        token = self.admin_token(user=admin, scope=f"openid {ADMIN_SCOPE}")
        body = self.ok(self.api("GET", "/users", token=token))
        self.assertEqual([u["attributes"]["username"] for u in body["data"]], ["root"])

    def test_no_header(self) -> None:
        self.assert_error(self.api("GET", "/users", token=None), 400, "Missing authorization header")

    def test_not_bearer(self) -> None:
        channel = self.api("GET", "/users", token=None, headers=(("Authorization", "Basic Zm9vOmJhcg=="),))
        self.assert_error(channel, 400, "Invalid authorization header")

    def test_not_an_access_token(self) -> None:
        self.assert_error(self.api("GET", "/users", token="not-a-token"), 401, "Invalid type of access token")
        user = self.factory.user()
        _, compat, _ = self.factory.compat_session(user)
        self.assert_error(
            self.api("GET", "/users", token=compat.access_token), 401, "Invalid type of access token"
        )

    def test_unknown_token(self) -> None:
        unknown = self.server.get_token_generator().token(
            __import__("mas_twisted.types.tokens", fromlist=["TokenType"]).TokenType.ACCESS_TOKEN
        )
        self.assert_error(self.api("GET", "/users", token=unknown), 401, "Unknown access token")

    def test_without_the_scope(self) -> None:
        token = self.admin_token(scope="openid")
        self.assert_error(self.api("GET", "/users", token=token), 401, "Missing urn:mas:admin scope")

    def test_expired_token(self) -> None:
        token = self.admin_token(ttl_ms=1000)
        self.reactor.advance(2)
        self.assert_error(self.api("GET", "/users", token=token), 401, "Access token expired")

    def test_finished_session(self) -> None:
        access = self.get_success(self.stores.access_tokens.find_access_token_by_token(self.token))
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session_by_id(access.session_id))
        self.assert_error(self.api("GET", "/users"), 401, "Access token revoked")

    def test_locked_user(self) -> None:
        admin = self.factory.user("root", can_request_admin=True)
        token = self.admin_token(user=admin)
        self.ok(self.api("GET", "/version", token=token))
        self.ok(self.api("POST", f"/users/{admin.id}/lock"))
        self.assert_error(self.api("GET", "/version", token=token), 401, "User locked")

    def test_every_route_wants_a_token(self) -> None:
        from mas_twisted.api.admin.routes import ROUTES

        for route in ROUTES:
            path = route.path.replace("{id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV").replace("{username}", "alice")
            channel = self.make_request(route.method, path)
            self.assertEqual(channel.code, 400, (route.operation_id, channel.body))
            self.assertEqual(channel.json_body, {"errors": [{"title": "Missing authorization header"}]})
