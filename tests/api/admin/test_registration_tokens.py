# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/user-registration-tokens`` (MAS's ``admin/v1/user_registration_tokens/``):
create (given or random), get, PUT (absent leaves a value, null removes it), revoke/unrevoke,
and the list's ``used``/``revoked``/``expired``/``valid`` filters with pagination."""

from __future__ import annotations

from mas_twisted.api.admin.spec import format_datetime
from tests.api.admin._base import AdminApiTestCase


class RegistrationTokensTestCase(AdminApiTestCase):
    def add(self, **body: object) -> dict:  # type: ignore[type-arg]
        return self.ok(self.api("POST", "/user-registration-tokens", body), 201)["data"]

    def test_create_get_update(self) -> None:
        later = format_datetime(self.clock.time_msec() + 3_600_000)
        data = self.add(token="letmein", usage_limit=2, expires_at=later)
        self.assertEqual(data["type"], "user-registration_token")
        attributes = data["attributes"]
        self.assertEqual(attributes["token"], "letmein")
        self.assertEqual(attributes["usage_limit"], 2)
        self.assertEqual(attributes["expires_at"], later)
        self.assertTrue(attributes["valid"])
        self.assertEqual(attributes["times_used"], 0)
        got = self.ok(self.api("GET", f"/user-registration-tokens/{data['id']}"))
        self.assertEqual(got["data"]["attributes"], attributes)
        # The registration form accepts it: it is the same row.
        stored = self.get_success(self.stores.user_registrations.find_registration_token("letmein"))
        self.assertEqual(stored.id, data["id"])
        # PUT: an absent member stays, null removes.
        updated = self.ok(self.api("PUT", f"/user-registration-tokens/{data['id']}", {"usage_limit": None}))
        self.assertIsNone(updated["data"]["attributes"]["usage_limit"])
        self.assertEqual(updated["data"]["attributes"]["expires_at"], later)
        updated = self.ok(
            self.api("PUT", f"/user-registration-tokens/{data['id']}", {"expires_at": None, "usage_limit": 5})
        )
        self.assertIsNone(updated["data"]["attributes"]["expires_at"])
        self.assertEqual(updated["data"]["attributes"]["usage_limit"], 5)
        # Random token, taken token, bad bodies, unknown ids.
        random = self.add()["attributes"]["token"]
        self.assertEqual(len(random), 12)
        self.assertTrue(random.isalnum())
        self.assert_error(
            self.api("POST", "/user-registration-tokens", {"token": "letmein"}),
            409,
            "A registration token with the same token already exists",
        )
        for body in ({"usage_limit": -1}, {"expires_at": "tomorrow"}, {"token": 5}):
            self.assert_error(self.api("POST", "/user-registration-tokens", body), 400, "Invalid JSON body")
        missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        title = f"Registration token with ID {missing} not found"
        self.assert_error(self.api("GET", f"/user-registration-tokens/{missing}"), 404, title)
        self.assert_error(self.api("PUT", f"/user-registration-tokens/{missing}", {}), 404, title)
        self.assert_error(self.api("POST", f"/user-registration-tokens/{missing}/revoke"), 404, title)

    def test_revoke_and_unrevoke(self) -> None:
        token_id = self.add(token="abc")["id"]
        revoked = self.ok(self.api("POST", f"/user-registration-tokens/{token_id}/revoke"))
        self.assertIsNotNone(revoked["data"]["attributes"]["revoked_at"])
        self.assertFalse(revoked["data"]["attributes"]["valid"])
        self.assertEqual(
            revoked["links"]["self"], f"/api/admin/v1/user-registration-tokens/{token_id}/revoke"
        )
        self.assert_error(
            self.api("POST", f"/user-registration-tokens/{token_id}/revoke"),
            400,
            f"Registration token with ID {token_id} is already revoked",
        )
        back = self.ok(self.api("POST", f"/user-registration-tokens/{token_id}/unrevoke"))
        self.assertIsNone(back["data"]["attributes"]["revoked_at"])
        self.assertTrue(back["data"]["attributes"]["valid"])
        self.assert_error(
            self.api("POST", f"/user-registration-tokens/{token_id}/unrevoke"),
            400,
            f"Registration token with ID {token_id} is not revoked",
        )

    def test_list_filters(self) -> None:
        now = self.clock.time_msec()
        fresh = self.add(token="fresh")["id"]
        self.reactor.advance(1)
        expiring = self.add(token="expiring", expires_at=format_datetime(now + 10_000))["id"]
        self.reactor.advance(1)
        used_up = self.add(token="usedup", usage_limit=1)["id"]
        self.get_success(
            self.stores.user_registrations.db_pool.execute(
                "t",
                "UPDATE user_registration_tokens SET times_used = 1 WHERE user_registration_token_id = ?",
                used_up,
            )
        )
        self.reactor.advance(1)
        revoked = self.add(token="revoked")["id"]
        self.ok(self.api("POST", f"/user-registration-tokens/{revoked}/revoke"))
        self.reactor.advance(20)

        def ids(query: str) -> list[str]:
            return [i["id"] for i in self.ok(self.api("GET", f"/user-registration-tokens{query}"))["data"]]

        self.assertEqual(ids(""), [fresh, expiring, used_up, revoked])
        self.assertEqual(ids("?filter[used]=true"), [used_up])
        self.assertEqual(ids("?filter[used]=false"), [fresh, expiring, revoked])
        self.assertEqual(ids("?filter[revoked]=true"), [revoked])
        self.assertEqual(ids("?filter[expired]=true"), [expiring])
        self.assertEqual(ids("?filter[expired]=false"), [fresh, used_up, revoked])
        self.assertEqual(ids("?filter[valid]=true"), [fresh])
        self.assertEqual(ids("?filter[valid]=false"), [expiring, used_up, revoked])
        listed = self.ok(self.api("GET", "/user-registration-tokens?filter[valid]=false"))
        self.assertEqual([i["attributes"]["valid"] for i in listed["data"]], [False, False, False])
        page = self.ok(self.api("GET", "/user-registration-tokens?page[first]=2"))
        self.assertEqual([i["id"] for i in page["data"]], [fresh, expiring])
        self.assertIn("next", page["links"])
        self.assertEqual(ids(f"?page[last]=2&page[before]={revoked}"), [expiring, used_up])
        self.assert_error(
            self.api("GET", "/user-registration-tokens?filter[valid]=yes"), 400, "Invalid filter parameters"
        )

    def test_dates_before_the_year_1000_keep_four_digits(self) -> None:
        # Found by schemathesis' stateful phase: glibc's strftime("%Y") gave "409-08-13T…".
        data = self.add(expires_at="0409-08-13T16:09:38.493Z")
        self.assertEqual(data["attributes"]["expires_at"], "0409-08-13T16:09:38.493Z")
        self.assertFalse(data["attributes"]["valid"])
