# SPDX-License-Identifier: AGPL-3.0-only
"""``/api/admin/v1/oauth2-clients`` (MAS's ``admin/v1/oauth2_clients/``): the clients with
their attributes, every filter, pagination both ways, and a 404 for an unknown client."""

from __future__ import annotations

from typing import Any

from tests.api.admin._base import AdminApiTestCase

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
UNKNOWN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


class OAuth2ClientsTests(AdminApiTestCase):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.reactor.advance(1)
        self.web = self.factory.client(
            client_name="Element Web",
            client_uri="https://app.Element.io/",
            logo_uri="https://app.element.io/logo.png",
        )
        self.reactor.advance(1)
        self.tv = self.factory.client(grant_types=(DEVICE,), redirect_uris=(), client_name="TV app")
        self.reactor.advance(1)
        self.static = self.factory.client(
            is_static=True, client_name="Synapse admin", grant_types=("client_credentials",)
        )

    def ids(self, query: str = "") -> list[str]:
        return [item["id"] for item in self.ok(self.api("GET", f"/oauth2-clients{query}"))["data"]]

    def test_list_and_get(self) -> None:
        body = self.ok(self.api("GET", "/oauth2-clients"))
        every = [self.admin_client.id, self.web.id, self.tv.id, self.static.id]
        self.assertEqual([item["id"] for item in body["data"]], every)
        self.assertEqual(body["meta"]["count"], 4)
        web = body["data"][1]
        self.assertEqual(web["type"], "oauth2-client")
        self.assertEqual(
            web["attributes"],
            {
                "client_id": self.web.id,
                "client_name": "Element Web",
                "client_uri": "https://app.Element.io/",
                "logo_uri": "https://app.element.io/logo.png",
                "redirect_uris": list(self.web.redirect_uris),
                "grant_types": ["authorization_code", "refresh_token"],
                "is_static": False,
            },
        )
        del web["meta"]
        self.assertEqual(self.ok(self.api("GET", f"/oauth2-clients/{self.web.id}"))["data"], web)
        self.assert_error(
            self.api("GET", f"/oauth2-clients/{UNKNOWN}"), 404, f"OAuth 2.0 client ID {UNKNOWN} not found"
        )

        # Pages of two, forwards then backwards.
        first = self.ok(self.api("GET", "/oauth2-clients?page[first]=2"))
        self.assertEqual([item["id"] for item in first["data"]], every[:2])
        self.assertEqual(self.ids(first["links"]["next"][len("/api/admin/v1/oauth2-clients") :]), every[2:])
        last = self.ok(self.api("GET", "/oauth2-clients?page[last]=3"))
        self.assertEqual([item["id"] for item in last["data"]], every[1:])
        self.assertEqual(self.ids(last["links"]["prev"][len("/api/admin/v1/oauth2-clients") :]), every[:1])

    def test_filters(self) -> None:
        self.assertEqual(self.ids("?filter[client-kind]=static"), [self.static.id])
        self.assertEqual(
            self.ids("?filter[client-kind]=dynamic"), [self.admin_client.id, self.web.id, self.tv.id]
        )
        self.assertEqual(self.ids("?filter[client-name]=element%20WEB"), [self.web.id])
        self.assertEqual(self.ids("?filter[client-name]=A"), [self.tv.id, self.static.id])
        self.assertEqual(self.ids("?filter[client-uri]=element.io"), [self.web.id])
        self.assertEqual(self.ids("?filter[client-name]=%25"), [])
        self.assertEqual(self.ids(f"?filter[grant-type]={DEVICE}"), [self.tv.id])
        self.assertEqual(
            self.ids("?filter[grant-type]=client_credentials"), [self.admin_client.id, self.static.id]
        )
        self.assertEqual(self.ids("?filter[grant-type]=implicit"), [])

        # The admin token's session is an active session of the admin client.
        self.assertEqual(self.ids("?filter[has-active-sessions]=true"), [self.admin_client.id])
        self.assertEqual(
            self.ids("?filter[has-active-sessions]=false"), [self.web.id, self.tv.id, self.static.id]
        )
        self.assertEqual(
            self.ok(self.api("GET", "/oauth2-clients?filter[has-active-sessions]=false&count=only"))["meta"][
                "count"
            ],
            3,
        )
        for bad in ("filter[client-kind]=other", "filter[has-active-sessions]=yes"):
            self.assert_error(self.api("GET", f"/oauth2-clients?{bad}"), 400, "Invalid filter parameters")
