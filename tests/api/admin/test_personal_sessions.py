# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/personal-sessions`` (MAS's ``admin/v1/personal_sessions/``): creating a
session returns its ``mpt_`` token once; the token introspects active with the session's scope
until it is revoked, expires, is regenerated away or its user is locked; a personal token with
``urn:mas:admin`` calls the admin API itself, and every way it can be refused."""

from __future__ import annotations

from typing import Any

from mas_twisted.api.admin.spec import format_datetime
from mas_twisted.types.personal import hash_personal_token
from mas_twisted.types.tokens import TokenType
from tests.api.admin._base import ADMIN_SCOPE, AdminApiTestCase
from tests.unittest import TEST_MATRIX_SECRET

API = "urn:matrix:client:api:*"
API_UNSTABLE = "urn:matrix:org.matrix.msc2967.client:api:*"


class PersonalSessionsTestCase(AdminApiTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.alice = self.factory.user("alice")

    def create(self, actor_id: str | None = None, token: str = "", **body: Any) -> dict[str, Any]:
        payload = {"actor_user_id": actor_id or self.alice.id, "human_name": "bot", "scope": API, **body}
        return self.ok(self.api("POST", "/personal-sessions", payload, token=token), 201)

    def introspect(self, token: str) -> dict[str, Any]:
        channel = self.make_request(
            "POST",
            "/oauth2/introspect",
            form={"token": token},
            headers=[("Authorization", f"Bearer {TEST_MATRIX_SECRET}")],
        )
        self.assertEqual(channel.code, 200, channel.body)
        return channel.json_body

    # -- create, get ------------------------------------------------------------------------
    def test_create_returns_the_token_once(self) -> None:
        body = self.create(expires_in=3600)
        data = body["data"]
        self.assertEqual(data["type"], "personal-session")
        attributes = data["attributes"]
        token = attributes.pop("access_token")
        self.assertIs(TokenType.check(token), TokenType.PERSONAL_ACCESS_TOKEN)
        now = self.reactor.seconds()
        self.assertEqual(attributes["owner_client_id"], self.admin_client.id)
        self.assertIsNone(attributes["owner_user_id"])
        self.assertEqual(attributes["actor_user_id"], self.alice.id)
        self.assertEqual(attributes["human_name"], "bot")
        self.assertEqual(attributes["scope"], API)
        self.assertIsNone(attributes["revoked_at"])
        self.assertIsNotNone(attributes["expires_at"])
        self.assertEqual(body["links"]["self"], f"/api/admin/v1/personal-sessions/{data['id']}")
        # Reading it again never shows the token; the database holds only its hash.
        again = self.ok(self.api("GET", f"/personal-sessions/{data['id']}"))
        self.assertNotIn("access_token", again["data"]["attributes"])
        self.assertEqual(again["data"]["attributes"], attributes)
        rows = self.get_success(
            self.db_pool.execute("t", "SELECT access_token_sha256 FROM personal_access_tokens")
        )
        self.assertEqual([r[0] for r in rows], [hash_personal_token(token)])
        self.assertNotIn(token, repr(rows))
        # The token introspects active, as the actor, with the normalised scope.
        answer = self.introspect(token)
        self.assertTrue(answer["active"], answer)
        self.assertEqual(answer["username"], "alice")
        self.assertEqual(answer["sub"], self.alice.id)
        self.assertEqual(answer["client_id"], self.admin_client.id)
        self.assertEqual(set(answer["scope"].split(" ")), {API, API_UNSTABLE})
        self.assertEqual(answer["token_type"], "access_token")
        self.assertEqual(answer["exp"] - answer["iat"], 3600)
        self.assertNotIn("jti", answer)
        self.assertLessEqual(abs(answer["iat"] - now), 1)

    def test_user_owned_session_has_no_client_id(self) -> None:
        root = self.factory.user("root", can_request_admin=True)
        admin = self.admin_token(user=root, scope=f"openid {ADMIN_SCOPE}")
        attributes = self.create(token=admin)["data"]["attributes"]
        self.assertEqual(attributes["owner_user_id"], root.id)
        self.assertIsNone(attributes["owner_client_id"])
        self.assertIsNone(attributes["expires_at"])
        answer = self.introspect(attributes["access_token"])
        self.assertTrue(answer["active"])
        self.assertNotIn("client_id", answer)
        self.assertNotIn("exp", answer)
        # Locking the owner makes the token inactive, though the actor is fine.
        self.ok(self.api("POST", f"/users/{root.id}/lock"))
        self.assertEqual(self.introspect(attributes["access_token"]), {"active": False})

    def test_create_refusals(self) -> None:
        self.assert_error(
            self.api(
                "POST",
                "/personal-sessions",
                {"actor_user_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "human_name": "x", "scope": API},
            ),
            404,
            "User not found",
        )
        self.assert_error(
            self.api(
                "POST",
                "/personal-sessions",
                {"actor_user_id": self.alice.id, "human_name": "x", "scope": "bad\nscope"},
            ),
            400,
            "Invalid scope",
        )
        for body in (
            {"actor_user_id": self.alice.id, "human_name": "x"},
            {"actor_user_id": self.alice.id, "human_name": "x", "scope": API, "expires_in": -1},
            {"actor_user_id": self.alice.id, "human_name": "x", "scope": API, "expires_in": 2**32},
            {"actor_user_id": "nope", "human_name": "x", "scope": API},
        ):
            self.assert_error(self.api("POST", "/personal-sessions", body), 400, "Invalid JSON body")
        self.ok(self.api("POST", f"/users/{self.alice.id}/deactivate"))
        self.assert_error(
            self.api(
                "POST",
                "/personal-sessions",
                {"actor_user_id": self.alice.id, "human_name": "x", "scope": API},
            ),
            410,
            "User is not active",
        )
        self.assertEqual(self.get_success(self.db_pool.execute("t", "SELECT 1 FROM personal_sessions")), [])

    def test_get_unknown(self) -> None:
        self.assert_error(
            self.api("GET", "/personal-sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            404,
            "Personal session not found",
        )
        self.assert_error(self.api("GET", "/personal-sessions/nope"), 400, "Invalid ULID in path")

    # -- revoke, regenerate, expiry ---------------------------------------------------------
    def test_revoke(self) -> None:
        body = self.create()
        session_id, token = body["data"]["id"], body["data"]["attributes"]["access_token"]
        self.assertTrue(self.introspect(token)["active"])
        revoked = self.ok(self.api("POST", f"/personal-sessions/{session_id}/revoke"))
        self.assertIsNotNone(revoked["data"]["attributes"]["revoked_at"])
        self.assertIsNone(revoked["data"]["attributes"]["expires_at"])
        self.assertEqual(revoked["links"]["self"], f"/api/admin/v1/personal-sessions/{session_id}")
        self.assertEqual(self.introspect(token), {"active": False})
        self.assert_error(
            self.api("POST", f"/personal-sessions/{session_id}/revoke"),
            409,
            f"Personal session with ID {session_id} is already revoked",
        )
        self.assert_error(
            self.api("POST", "/personal-sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke"),
            404,
            "Personal session with ID 01ARZ3NDEKTSV4RRFFQ69G5FAV not found",
        )
        # A revoked session cannot be regenerated back to life.
        self.assert_error(
            self.api("POST", f"/personal-sessions/{session_id}/regenerate", {}), 422, "Session not valid"
        )

    def test_revoking_a_session_with_a_device_syncs_devices(self) -> None:
        body = self.create(scope=f"{API} urn:matrix:client:device:PERSONALDEV")
        self.assertEqual(self.jobs("sync-devices"), [])
        # sync-devices keeps the device of a valid personal session on the homeserver.
        devices = self.get_success(self.stores.users.active_device_ids(self.alice.id))
        self.assertEqual(devices, {"PERSONALDEV"})
        self.ok(self.api("POST", f"/personal-sessions/{body['data']['id']}/revoke"))
        self.assertEqual([job["user_id"] for job in self.jobs("sync-devices")], [self.alice.id])
        self.assertEqual(self.get_success(self.stores.users.active_device_ids(self.alice.id)), set())

    def test_regenerate(self) -> None:
        body = self.create()
        session_id, old = body["data"]["id"], body["data"]["attributes"]["access_token"]
        again = self.ok(
            self.api("POST", f"/personal-sessions/{session_id}/regenerate", {"expires_in": 60}), 201
        )
        new = again["data"]["attributes"]["access_token"]
        self.assertNotEqual(new, old)
        self.assertEqual(again["data"]["id"], session_id)
        self.assertEqual(self.introspect(old), {"active": False})
        self.assertTrue(self.introspect(new)["active"])
        listed = self.ok(self.api("GET", f"/personal-sessions/{session_id}"))
        self.assertEqual(
            listed["data"]["attributes"]["expires_at"], again["data"]["attributes"]["expires_at"]
        )
        # It expires: 60 s later it is inactive.
        self.reactor.advance(61)
        self.assertEqual(self.introspect(new), {"active": False})
        # Only the owner may regenerate: a user's admin token is another owner.
        root = self.factory.user("root", can_request_admin=True)
        other = self.admin_token(user=root, scope=ADMIN_SCOPE)
        self.assert_error(
            self.api("POST", f"/personal-sessions/{session_id}/regenerate", {}, token=other),
            403,
            "Session does not belong to you",
        )
        self.assert_error(
            self.api("POST", "/personal-sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV/regenerate", {}),
            404,
            "Session not found",
        )
        self.assert_error(
            self.api("POST", f"/personal-sessions/{session_id}/regenerate"), 400, "Invalid JSON body"
        )

    def test_locked_or_deactivated_actor_is_inactive(self) -> None:
        token = self.create()["data"]["attributes"]["access_token"]
        self.ok(self.api("POST", f"/users/{self.alice.id}/lock"))
        self.assertEqual(self.introspect(token), {"active": False})
        self.ok(self.api("POST", f"/users/{self.alice.id}/unlock"))
        self.assertTrue(self.introspect(token)["active"])

    def test_unknown_personal_token_is_inactive(self) -> None:
        unknown = self.server.get_token_generator().token(TokenType.PERSONAL_ACCESS_TOKEN)
        self.assertEqual(self.introspect(unknown), {"active": False})

    def test_activity_is_recorded(self) -> None:
        body = self.create()
        token, session_id = body["data"]["attributes"]["access_token"], body["data"]["id"]
        self.reactor.advance(5)
        self.introspect(token)
        self.get_success(self.server.get_activity_tracker().flush())
        attributes = self.ok(self.api("GET", f"/personal-sessions/{session_id}"))["data"]["attributes"]
        self.assertIsNotNone(attributes["last_active_at"])
        self.assertNotEqual(attributes["last_active_at"], attributes["created_at"])

    # -- the list ---------------------------------------------------------------------------
    def test_list_filters_and_pages(self) -> None:
        bob = self.factory.user("bob")
        root = self.factory.user("root", can_request_admin=True)
        by_root = self.admin_token(user=root, scope=ADMIN_SCOPE)
        first = self.create(expires_in=100)["data"]["id"]
        self.reactor.advance(1)
        second = self.create(bob.id, scope=f"openid {API}")["data"]["id"]
        self.reactor.advance(1)
        third = self.create(token=by_root, expires_in=10_000)["data"]["id"]
        self.reactor.advance(1)
        fourth = self.create(bob.id)["data"]["id"]
        self.ok(self.api("POST", f"/personal-sessions/{fourth}/revoke"))

        def ids(query: str) -> list[str]:
            return [item["id"] for item in self.ok(self.api("GET", f"/personal-sessions{query}"))["data"]]

        self.assertEqual(ids(""), [first, second, third, fourth])
        self.assertEqual(ids(f"?filter[actor_user]={bob.id}"), [second, fourth])
        self.assertEqual(ids(f"?filter[owner_user]={root.id}"), [third])
        self.assertEqual(ids(f"?filter[owner_client]={self.admin_client.id}"), [first, second, fourth])
        self.assertEqual(ids("?filter[status]=active"), [first, second, third])
        self.assertEqual(ids("?filter[status]=revoked"), [fourth])
        self.assertEqual(ids("?filter[scope]=openid"), [second])
        self.assertEqual(ids("?filter[expires]=true"), [first, third])
        # A revoked session has no current token, so no expiry (as MAS's LEFT JOIN gives).
        self.assertEqual(ids("?filter[expires]=false"), [second, fourth])
        soon = "2100-01-01T00:00:00Z"
        self.assertEqual(ids(f"?filter[expires_before]={soon}"), [first, third])
        between = format_datetime(self.clock.time_msec() + 5_000_000)
        self.assertEqual(ids(f"?filter[expires_after]={between}"), [third])
        self.assertEqual(ids(f"?filter[expires_before]={between}"), [first])
        # Pages both ways.
        page = self.ok(self.api("GET", "/personal-sessions?page[first]=2"))
        self.assertEqual([i["id"] for i in page["data"]], [first, second])
        self.assertEqual(page["meta"], {"count": 4})
        self.assertIn("next", page["links"])
        self.assertEqual(ids(f"?page[first]=2&page[after]={second}"), [third, fourth])
        back = self.ok(self.api("GET", "/personal-sessions?page[last]=3"))
        self.assertEqual([i["id"] for i in back["data"]], [second, third, fourth])
        self.assertIn("prev", back["links"])
        self.assertEqual(ids(f"?page[last]=2&page[before]={third}"), [first, second])
        only = self.ok(self.api("GET", "/personal-sessions?count=only&filter[status]=active"))
        self.assertEqual(
            only,
            {
                "meta": {"count": 3},
                "links": {"self": "/api/admin/v1/personal-sessions?filter[status]=active&count=only"},
            },
        )
        # Unknown referents and bad values.
        self.assert_error(
            self.api("GET", "/personal-sessions?filter[actor_user]=01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            404,
            "User ID 01ARZ3NDEKTSV4RRFFQ69G5FAV not found",
        )
        self.assert_error(
            self.api("GET", "/personal-sessions?filter[owner_client]=01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            404,
            "Client ID 01ARZ3NDEKTSV4RRFFQ69G5FAV not found",
        )
        self.assert_error(
            self.api("GET", "/personal-sessions?filter[status]=finished"), 400, "Invalid filter parameters"
        )
        self.assert_error(
            self.api("GET", "/personal-sessions?filter[expires]=maybe"), 400, "Invalid filter parameters"
        )

    # -- a personal token as the admin API's caller -------------------------------------------
    def admin_personal_token(self, **body: Any) -> tuple[str, str]:
        root = self.factory.user("root", can_request_admin=True)
        created = self.create(root.id, scope=ADMIN_SCOPE, **body)["data"]
        self.root = root
        return created["id"], created["attributes"]["access_token"]

    def test_personal_token_calls_the_admin_api(self) -> None:
        session_id, token = self.admin_personal_token()
        body = self.ok(self.api("GET", "/users", token=token))
        self.assertEqual(body["meta"], {"count": 2})
        # A session it creates is owned by its actor.
        created = self.create(token=token)["data"]["attributes"]
        self.assertEqual(created["owner_user_id"], self.root.id)
        self.ok(self.api("POST", f"/personal-sessions/{session_id}/revoke"))
        self.assert_error(self.api("GET", "/users", token=token), 401, "Access token revoked")

    def test_personal_token_without_the_scope(self) -> None:
        token = self.create(scope=API)["data"]["attributes"]["access_token"]
        self.assert_error(self.api("GET", "/users", token=token), 401, "Missing urn:mas:admin scope")

    def test_personal_token_expired_or_regenerated(self) -> None:
        session_id, token = self.admin_personal_token(expires_in=10)
        self.ok(self.api("GET", "/version", token=token))
        self.reactor.advance(11)
        self.assert_error(self.api("GET", "/version", token=token), 401, "Access token expired")
        again = self.ok(self.api("POST", f"/personal-sessions/{session_id}/regenerate", {}), 201)
        new = again["data"]["attributes"]["access_token"]
        self.ok(self.api("GET", "/version", token=new))
        self.assert_error(self.api("GET", "/version", token=token), 401, "Access token expired")

    def test_personal_token_of_a_deactivated_actor(self) -> None:
        _, token = self.admin_personal_token()
        # Locked but not deactivated: still an actor (MAS's ``is_valid_actor``) and the owner is
        # the admin client, so the call goes through.
        self.ok(self.api("POST", f"/users/{self.root.id}/lock"))
        self.ok(self.api("GET", "/version", token=token))
        self.get_success(self.stores.users.deactivate_user_everywhere(self.root.id, self.clock.time_msec()))
        self.assert_error(self.api("GET", "/version", token=token), 401, "Access token revoked")

    def test_personal_token_of_a_locked_owner(self) -> None:
        root = self.factory.user("root", can_request_admin=True)
        owner_token = self.admin_token(user=root, scope=ADMIN_SCOPE)
        token = self.create(root.id, token=owner_token, scope=ADMIN_SCOPE)["data"]["attributes"][
            "access_token"
        ]
        self.ok(self.api("GET", "/version", token=token))
        self.ok(self.api("POST", f"/users/{root.id}/lock"))
        self.assert_error(self.api("GET", "/version", token=token), 401, "User locked")

    def test_unknown_personal_token(self) -> None:
        unknown = self.server.get_token_generator().token(TokenType.PERSONAL_ACCESS_TOKEN)
        self.assert_error(self.api("GET", "/version", token=unknown), 401, "Unknown access token")
