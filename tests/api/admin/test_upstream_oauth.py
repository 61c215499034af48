# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/upstream-oauth-links`` and ``/upstream-oauth-providers`` (MAS's
``admin/v1/upstream_oauth_links/`` and ``upstream_oauth_providers/``): lists with their
filters and pagination both ways, creating a link (or giving an unowned one to a user),
conflicts, deleting a link (the authorization sessions that used it are marked unlinked)."""

from __future__ import annotations

from typing import Any

from mas_twisted.types.upstream import (
    UpstreamOAuthAuthorizationSession,
    UpstreamOAuthLink,
    UpstreamOAuthProviderParams,
)
from tests.api.admin._base import AdminApiTestCase

PROVIDER_A = "01J0000000000000000000PRVA"
PROVIDER_B = "01J0000000000000000000PRVB"
UNKNOWN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


class UpstreamOAuthAdminTests(AdminApiTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.add_provider(PROVIDER_A, "Acme", disabled=False)
        self.add_provider(PROVIDER_B, "Example", disabled=True)
        self.alice = self.factory.user("alice", password=None)
        self.bob = self.factory.user("bob", password=None)

    def add_provider(self, provider_id: str, name: str, *, disabled: bool) -> None:
        params = UpstreamOAuthProviderParams(
            issuer=f"https://{name.lower()}.example.org/",
            human_name=name,
            brand_name="github" if name == "Acme" else None,
            scope="openid",
            token_endpoint_auth_method="none",
            token_endpoint_signing_alg=None,
            id_token_signed_response_alg="RS256",
            fetch_userinfo=False,
            userinfo_signed_response_alg=None,
            client_id="mas",
            encrypted_client_secret=None,
            claims_imports={},
            authorization_endpoint_override=None,
            token_endpoint_override=None,
            userinfo_endpoint_override=None,
            jwks_uri_override=None,
            discovery_mode="oidc",
            pkce_mode="auto",
            response_mode=None,
            additional_authorization_parameters=(),
            forward_login_hint=False,
            ui_order=0,
            on_backchannel_logout="do_nothing",
            registration_token_required=name == "Example",
        )
        providers = self.stores.upstream_oauth_providers
        self.get_success(providers.upsert_upstream_oauth_provider(provider_id, params))
        if disabled:
            self.get_success(providers.disable_upstream_oauth_provider(provider_id))

    def add_link(self, body: dict[str, Any], code: int = 201) -> dict[str, Any]:
        return self.ok(self.api("POST", "/upstream-oauth-links", body), code)["data"]

    def list_ids(self, query: str) -> tuple[list[str], dict[str, Any]]:
        body = self.ok(self.api("GET", f"/upstream-oauth-links{query}"))
        return [item["id"] for item in body.get("data", [])], body

    def test_add_get_and_delete(self) -> None:
        data = self.add_link(
            {
                "user_id": self.alice.id,
                "provider_id": PROVIDER_A,
                "subject": "sub-1",
                "human_account_name": "alice@acme",
            }
        )
        self.assertEqual(data["type"], "upstream-oauth-link")
        self.assertEqual(
            {k: v for k, v in data["attributes"].items() if k != "created_at"},
            {
                "provider_id": PROVIDER_A,
                "subject": "sub-1",
                "user_id": self.alice.id,
                "human_account_name": "alice@acme",
            },
        )
        self.assertEqual(self.ok(self.api("GET", f"/upstream-oauth-links/{data['id']}"))["data"], data)
        # The login flow finds the same link.
        link = self.get_success(self.stores.upstream_oauth_sessions.find_link(PROVIDER_A, "sub-1"))
        self.assertEqual((link.id, link.user_id), (data["id"], self.alice.id))

        # Someone else's subject: a conflict, nothing changes.
        self.assert_error(
            self.api(
                "POST",
                "/upstream-oauth-links",
                {"user_id": self.bob.id, "provider_id": PROVIDER_A, "subject": "sub-1"},
            ),
            409,
            f"Upstream Oauth 2.0 Provider ID {PROVIDER_A} with subject sub-1 is already linked to a user",
        )
        self.assertEqual(self.ok(self.api("GET", f"/upstream-oauth-links/{data['id']}"))["data"], data)

        # An authorization session that used the link is marked unlinked when it goes.
        session = UpstreamOAuthAuthorizationSession(
            id=self.server.get_token_generator().ulid(),
            provider_id=PROVIDER_A,
            state="state-1",
            created_at=self.clock.time_msec(),
            link_id=data["id"],
        )
        self.get_success(self.stores.upstream_oauth_sessions.add_authorization_session(session))
        self.reactor.advance(5)
        channel = self.api("DELETE", f"/upstream-oauth-links/{data['id']}")
        self.assertEqual(channel.code, 204, channel.body)
        self.assertEqual(channel.body, b"")
        after = self.get_success(self.stores.upstream_oauth_sessions.get_authorization_session(session.id))
        self.assertIsNone(after.link_id)
        self.assertEqual(after.unlinked_at, self.clock.time_msec())
        missing = f"Upstream OAuth 2.0 Link ID {data['id']} not found"
        self.assert_error(self.api("GET", f"/upstream-oauth-links/{data['id']}"), 404, missing)
        self.assert_error(self.api("DELETE", f"/upstream-oauth-links/{data['id']}"), 404, missing)

        # The subject is free again.
        self.add_link({"user_id": self.bob.id, "provider_id": PROVIDER_A, "subject": "sub-1"})

    def test_an_unowned_link_is_given_to_the_user(self) -> None:
        link = UpstreamOAuthLink(
            id=self.server.get_token_generator().ulid(),
            provider_id=PROVIDER_A,
            subject="orphan",
            created_at=self.clock.time_msec(),
            human_account_name="kept",
        )
        self.get_success(self.db_pool.simple_insert("upstream_oauth_links", link.to_row()))
        data = self.add_link(
            {
                "user_id": self.bob.id,
                "provider_id": PROVIDER_A,
                "subject": "orphan",
                "human_account_name": "new",
            },
            200,
        )
        self.assertEqual(data["id"], link.id)
        self.assertEqual(data["attributes"]["user_id"], self.bob.id)
        self.assertEqual(data["attributes"]["human_account_name"], "kept")

    def test_add_refusals(self) -> None:
        base = {"user_id": self.alice.id, "provider_id": PROVIDER_A, "subject": "s"}
        self.assert_error(
            self.api("POST", "/upstream-oauth-links", {**base, "user_id": UNKNOWN}),
            404,
            f"User ID {UNKNOWN} not found",
        )
        self.assert_error(
            self.api("POST", "/upstream-oauth-links", {**base, "provider_id": UNKNOWN}),
            404,
            f"Upstream OAuth 2.0 Provider ID {UNKNOWN} not found",
        )
        for body in (
            {**base, "user_id": "nope"},
            {"user_id": self.alice.id, "provider_id": PROVIDER_A},
            {**base, "subject": 1},
        ):
            self.assert_error(self.api("POST", "/upstream-oauth-links", body), 400, "Invalid JSON body")
        self.assert_error(
            self.api("POST", "/upstream-oauth-links", base, token=None), 400, "Missing authorization header"
        )
        self.assertEqual(self.list_ids("")[0], [])

    def test_list_filters_and_pages(self) -> None:
        ids = []
        for i in range(5):
            self.reactor.advance(1)
            user = self.alice if i % 2 == 0 else self.bob
            provider = PROVIDER_A if i < 3 else PROVIDER_B
            ids.append(
                self.add_link(
                    {
                        "user_id": user.id,
                        "provider_id": provider,
                        "subject": f"s{i}",
                        "human_account_name": f"User{i}@Acme",
                    }
                )["id"]
            )
        all_ids, body = self.list_ids("")
        self.assertEqual(all_ids, ids)
        self.assertEqual(body["meta"]["count"], 5)
        self.assertEqual(self.list_ids(f"?filter[user]={self.alice.id}")[0], [ids[0], ids[2], ids[4]])
        self.assertEqual(self.list_ids(f"?filter[provider]={PROVIDER_B}")[0], ids[3:])
        self.assertEqual(self.list_ids("?filter[subject]=s1")[0], [ids[1]])
        self.assertEqual(self.list_ids("?filter[subject]=s")[0], [])
        self.assertEqual(self.list_ids("?filter[human-account-name]=user3@")[0], [ids[3]])
        self.assertEqual(
            self.list_ids(f"?filter[user]={self.bob.id}&filter[provider]={PROVIDER_A}")[0], [ids[1]]
        )

        # Two by two forwards, then backwards, following the links.
        first, body = self.list_ids("?page[first]=2")
        self.assertEqual(first, ids[:2])
        self.assertNotIn("prev", body["links"])
        second, body = self.list_ids(body["links"]["next"][len("/api/admin/v1/upstream-oauth-links") :])
        self.assertEqual(second, ids[2:4])
        last, body = self.list_ids("?page[last]=2")
        self.assertEqual(last, ids[3:])
        before, body = self.list_ids(body["links"]["prev"][len("/api/admin/v1/upstream-oauth-links") :])
        self.assertEqual(before, ids[1:3])
        self.assertEqual(
            self.ok(self.api("GET", "/upstream-oauth-links?count=only")),
            {"meta": {"count": 5}, "links": {"self": "/api/admin/v1/upstream-oauth-links?count=only"}},
        )

        self.assert_error(
            self.api("GET", f"/upstream-oauth-links?filter[user]={UNKNOWN}"),
            404,
            f"User ID {UNKNOWN} not found",
        )
        self.assert_error(
            self.api("GET", f"/upstream-oauth-links?filter[provider]={UNKNOWN}"),
            404,
            f"Provider ID {UNKNOWN} not found",
        )
        self.assert_error(
            self.api("GET", "/upstream-oauth-links?filter[user]=x"), 400, "Invalid filter parameters"
        )

    def test_providers(self) -> None:
        body = self.ok(self.api("GET", "/upstream-oauth-providers"))
        self.assertEqual([item["id"] for item in body["data"]], [PROVIDER_A, PROVIDER_B])
        self.assertEqual(body["meta"]["count"], 2)
        acme = body["data"][0]
        self.assertEqual(acme["type"], "upstream-oauth-provider")
        self.assertEqual(
            {k: v for k, v in acme["attributes"].items() if k != "created_at"},
            {
                "issuer": "https://acme.example.org/",
                "human_name": "Acme",
                "brand_name": "github",
                "disabled_at": None,
                "registration_token_required": False,
            },
        )
        self.assertIsNotNone(body["data"][1]["attributes"]["disabled_at"])
        self.assertTrue(body["data"][1]["attributes"]["registration_token_required"])
        enabled = self.ok(self.api("GET", "/upstream-oauth-providers?filter[enabled]=true"))
        self.assertEqual([item["id"] for item in enabled["data"]], [PROVIDER_A])
        disabled = self.ok(self.api("GET", "/upstream-oauth-providers?filter[enabled]=false"))
        self.assertEqual([item["id"] for item in disabled["data"]], [PROVIDER_B])
        del acme["meta"]  # the page cursor is on list items only
        self.assertEqual(self.ok(self.api("GET", f"/upstream-oauth-providers/{PROVIDER_A}"))["data"], acme)
        self.assert_error(self.api("GET", f"/upstream-oauth-providers/{UNKNOWN}"), 404, "Provider not found")
        self.assert_error(
            self.api("GET", "/upstream-oauth-providers?filter[enabled]=yes"), 400, "Invalid filter parameters"
        )
