# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/users``: the list with each filter, cursor pagination both ways and the three
``count`` modes, the single answers, and every change with the job it schedules."""

from __future__ import annotations

from typing import Any

from tests.api.admin._base import PREFIX, AdminApiTestCase
from tests.unittest import override_config


class UserListTestCase(AdminApiTestCase):
    def make_users(self, n: int) -> list[Any]:
        users = []
        for i in range(n):
            users.append(self.factory.user(f"user{i:02d}", password=None))
            self.reactor.advance(1)
        return users

    def names(self, body: dict[str, Any]) -> list[str]:
        return [item["attributes"]["username"] for item in body["data"]]

    def test_single_format(self) -> None:
        [user] = self.make_users(1)
        body = self.ok(self.api("GET", f"/users/{user.id}"))
        self.assertEqual(
            body,
            {
                "data": {
                    "type": "user",
                    "id": user.id,
                    "attributes": {
                        "username": "user00",
                        "created_at": "2023-11-14T22:13:20Z",
                        "locked_at": None,
                        "deactivated_at": None,
                        "admin": False,
                        "legacy_guest": False,
                    },
                    "links": {"self": f"{PREFIX}/users/{user.id}"},
                },
                "links": {"self": f"{PREFIX}/users/{user.id}"},
            },
        )
        by_name = self.ok(self.api("GET", "/users/by-username/user00"))
        self.assertEqual(by_name["data"], body["data"])
        self.assertEqual(by_name["links"], {"self": f"{PREFIX}/users/by-username/user00"})

    def test_not_found(self) -> None:
        self.assert_error(
            self.api("GET", "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            404,
            "User ID 01ARZ3NDEKTSV4RRFFQ69G5FAV not found",
        )
        self.assert_error(
            self.api("GET", "/users/by-username/nobody"), 404, 'User with username "nobody" not found'
        )
        self.assert_error(self.api("GET", "/users/not-a-ulid"), 400, "Invalid ULID in path")

    def test_forward_pages(self) -> None:
        users = self.make_users(5)
        first = self.ok(self.api("GET", "/users?page[first]=2"))
        self.assertEqual(first["meta"], {"count": 5})
        self.assertEqual(self.names(first), ["user00", "user01"])
        self.assertEqual(first["data"][1]["meta"], {"page": {"cursor": users[1].id}})
        self.assertEqual(
            first["links"],
            {
                "self": f"{PREFIX}/users?page[first]=2",
                "first": f"{PREFIX}/users?page[first]=2",
                "last": f"{PREFIX}/users?page[last]=2",
                "next": f"{PREFIX}/users?page[after]={users[1].id}&page[first]=2",
            },
        )
        seen = self.names(first)
        body = first
        while "next" in body["links"]:
            body = self.ok(self.api("GET", body["links"]["next"].removeprefix(PREFIX)))
            seen += self.names(body)
        self.assertEqual(seen, [f"user{i:02d}" for i in range(5)])
        self.assertEqual(self.names(body), ["user04"])

    def test_backward_pages(self) -> None:
        users = self.make_users(5)
        last = self.ok(self.api("GET", "/users?page[last]=2"))
        self.assertEqual(self.names(last), ["user03", "user04"])
        self.assertEqual(last["links"]["prev"], f"{PREFIX}/users?page[before]={users[3].id}&page[last]=2")
        self.assertNotIn("next", last["links"])
        seen = self.names(last)
        body = last
        while "prev" in body["links"]:
            body = self.ok(self.api("GET", body["links"]["prev"].removeprefix(PREFIX)))
            seen = self.names(body) + seen
        self.assertEqual(seen, [f"user{i:02d}" for i in range(5)])
        # Between two cursors.
        middle = self.ok(self.api("GET", f"/users?page[after]={users[0].id}&page[before]={users[4].id}"))
        self.assertEqual(self.names(middle), ["user01", "user02", "user03"])

    def test_default_page_size(self) -> None:
        self.make_users(12)
        body = self.ok(self.api("GET", "/users"))
        self.assertEqual(len(body["data"]), 10)
        self.assertEqual(body["meta"], {"count": 12})
        self.assertIn("next", body["links"])

    def test_count_modes(self) -> None:
        self.make_users(3)
        without = self.ok(self.api("GET", "/users?count=false"))
        self.assertNotIn("meta", without)
        self.assertEqual(len(without["data"]), 3)
        self.assertEqual(without["links"]["self"], f"{PREFIX}/users?count=false&page[first]=10")
        only = self.ok(self.api("GET", "/users?count=only&filter[search]=user0"))
        self.assertEqual(
            only, {"meta": {"count": 3}, "links": {"self": f"{PREFIX}/users?filter[search]=user0&count=only"}}
        )

    def test_bad_pagination(self) -> None:
        for query in ("page[first]=0", "page[first]=x", "page[last]=-1", "page[after]=nope", "count=maybe"):
            self.assert_error(self.api("GET", f"/users?{query}"), 400, "Invalid pagination parameters")
        self.assert_error(
            self.api("GET", "/users?page[first]=1&page[last]=1"),
            400,
            "Cannot specify both `page[first]` and `page[last]` parameters",
        )
        for query in ("filter[admin]=yes", "filter[status]=sleeping", "filter[active-oauth2-client]=x"):
            self.assert_error(self.api("GET", f"/users?{query}"), 400, "Invalid filter parameters")

    def test_filters(self) -> None:
        active, locked, gone, admin, guest = (
            self.factory.user(name, password=None) for name in ("active", "locked", "gone", "boss", "guest")
        )
        self.get_success(self.stores.users.lock_user(locked, self.factory.now()))
        self.get_success(
            self.stores.users.deactivate_user(self.get_success(self.stores.users.lock_user(gone, 1)), 2)
        )
        self.get_success(self.stores.users.set_can_request_admin(admin, True))
        self.get_success(self.stores.users.add_user(self.factory.build_user("guest2", is_guest=True)))
        client = self.factory.client()
        other = self.factory.client()
        self.factory.oauth2_session(client, user=active)
        self.factory.compat_session(guest)

        def names(query: str) -> list[str]:
            return sorted(self.names(self.ok(self.api("GET", f"/users?{query}"))))

        self.assertEqual(names("filter[admin]=true"), ["boss"])
        self.assertEqual(len(names("filter[admin]=false")), 5)
        self.assertEqual(names("filter[legacy-guest]=true"), ["guest2"])
        self.assertEqual(names("filter[search]=UES"), ["guest", "guest2"])
        self.assertEqual(names("filter[search]=%25"), [])
        self.assertEqual(names("filter[status]=active"), ["active", "boss", "guest", "guest2"])
        self.assertEqual(names("filter[status]=locked"), ["gone", "locked"])
        self.assertEqual(names("filter[status]=deactivated"), ["gone"])
        self.assertEqual(names(f"filter[active-oauth2-client]={client.id}"), ["active"])
        self.assertEqual(
            names(f"filter[active-oauth2-client]={other.id}&filter[active-oauth2-client]={client.id}"),
            ["active"],
        )
        self.assertEqual(names("filter[has-active-oauth2-session]=true"), ["active"])
        self.assertEqual(names("filter[has-active-compat-session]=true"), ["guest"])
        self.assertEqual(len(names("filter[has-active-compat-session]=false")), 5)
        self.assert_error(
            self.api("GET", "/users?filter[active-oauth2-client]=01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            404,
            "Client ID 01ARZ3NDEKTSV4RRFFQ69G5FAV not found",
        )
        # The filters are repeated in the links.
        body = self.ok(self.api("GET", "/users?filter[status]=active&page[first]=1"))
        self.assertEqual(body["links"]["next"].split("?")[1].split("&")[0], "filter[status]=active")


class UserChangesTestCase(AdminApiTestCase):
    def test_create(self) -> None:
        channel = self.api(
            "POST", "/users", {"username": "carol", "skip_homeserver_check": True, "displayname": "Carol"}
        )
        body = self.ok(channel, 201)
        user = self.get_success(self.stores.users.find_user_by_username("carol"))
        self.assertEqual(body["data"]["id"], user.id)
        self.assertEqual(body["links"]["self"], f"{PREFIX}/users/{user.id}")
        self.assertEqual(self.jobs("provision-user"), [{"user_id": user.id, "set_display_name": "Carol"}])
        self.assert_error(
            self.api("POST", "/users", {"username": "carol", "skip_homeserver_check": True}),
            409,
            "User already exists",
        )
        for bad in ("Bob!", "_carol", "", "a:b", "x" * 256):
            self.assert_error(
                self.api("POST", "/users", {"username": bad, "skip_homeserver_check": True}),
                400,
                "Username is not valid",
            )

    def test_bad_bodies(self) -> None:
        for content in (b"", b"{", b"[]", b'{"username": 3}', b'{"displayname": "x"}', b"\xff"):
            channel = self.api(
                "POST", "/users", content=content, headers=(("Content-Type", "application/json"),)
            )
            self.assert_error(channel, 400, "Invalid JSON body")
            self.assertEqual(len(channel.json_body["errors"]), 2, channel.json_body)

    def test_set_password(self) -> None:
        user = self.factory.user("dave", password=None)
        self.assert_error(
            self.api("POST", f"/users/{user.id}/set-password", {"password": "hunter2"}),
            400,
            "Password is too weak",
        )
        # The empty password is too weak too, not a server error (schemathesis found a 500).
        self.assert_error(
            self.api("POST", f"/users/{user.id}/set-password", {"password": ""}), 400, "Password is too weak"
        )
        channel = self.api(
            "POST", f"/users/{user.id}/set-password", {"password": "hunter2", "skip_password_check": True}
        )
        self.assertEqual(channel.code, 204, channel.body)
        self.assertEqual(channel.body, b"")
        strong = "correct horse battery staple 42"
        self.reactor.advance(1)
        self.assertEqual(self.api("POST", f"/users/{user.id}/set-password", {"password": strong}).code, 204)
        password = self.get_success(self.stores.user_passwords.get_active_user_password(user.id))
        manager = self.server.get_password_manager()
        self.assertTrue(self.get_success(manager.verify(password.version, strong, password.hashed_password)))

    @override_config({"passwords": {"enabled": False}})
    def test_set_password_disabled(self) -> None:
        user = self.factory.user("dave", password=None)
        self.assert_error(
            self.api("POST", f"/users/{user.id}/set-password", {"password": "x"}),
            403,
            "Password auth is disabled",
        )

    def test_lock_unlock(self) -> None:
        user = self.factory.user("erin", password=None)
        _, compat, _ = self.factory.compat_session(user)
        body = self.ok(self.api("POST", f"/users/{user.id}/lock"))
        self.assertEqual(body["data"]["attributes"]["locked_at"], "2023-11-14T22:13:20Z")
        self.assertEqual(body["links"]["self"], f"{PREFIX}/users/{user.id}/lock")
        self.assertEqual([job["user_id"] for job in self.jobs("provision-user")], [user.id])
        introspection = self.get_success(
            self.server.get_introspection_handler().introspect(compat.access_token)
        )
        self.assertFalse(introspection.active)
        body = self.ok(self.api("POST", f"/users/{user.id}/unlock"))
        self.assertIsNone(body["data"]["attributes"]["locked_at"])
        self.assertEqual(len(self.jobs("provision-user")), 2)
        self.assert_error(
            self.api("POST", "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/lock"),
            404,
            "User ID 01ARZ3NDEKTSV4RRFFQ69G5FAV not found",
        )

    def test_deactivate_reactivate(self) -> None:
        user = self.factory.user("frank", password=None)
        body = self.ok(self.api("POST", f"/users/{user.id}/deactivate"))
        self.assertEqual(body["data"]["attributes"]["deactivated_at"], "2023-11-14T22:13:20Z")
        other = self.factory.user("grace", password=None)
        self.ok(self.api("POST", f"/users/{other.id}/deactivate", {"skip_erase": True}))
        self.assertCountEqual(
            self.jobs("deactivate-user"),
            [{"user_id": user.id, "hs_erase": True}, {"user_id": other.id, "hs_erase": False}],
        )
        self.ok(self.api("POST", f"/users/{user.id}/reactivate"))
        self.assertEqual(self.jobs("reactivate-user"), [{"user_id": user.id}])

    def test_set_admin(self) -> None:
        user = self.factory.user("heidi", password=None)
        body = self.ok(self.api("POST", f"/users/{user.id}/set-admin", {"admin": True}))
        self.assertTrue(body["data"]["attributes"]["admin"])
        self.assertTrue(self.get_success(self.stores.users.get_user(user.id)).can_request_admin)
        self.ok(self.api("POST", f"/users/{user.id}/set-admin", {"admin": False}))
        self.assertFalse(self.get_success(self.stores.users.get_user(user.id)).can_request_admin)
        self.assert_error(
            self.api("POST", f"/users/{user.id}/set-admin", {"admin": "yes"}), 400, "Invalid JSON body"
        )
