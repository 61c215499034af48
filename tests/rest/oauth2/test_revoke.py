# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/revoke`` through the whole listener (MAS's ``revoke.rs`` tests), and every
error path: status, error code, nothing written."""

from __future__ import annotations

from typing import Any

from tests.handlers._base import TokenFixture, compat_token
from tests.rest.oauth2._oauth_fixtures import HOMESERVER, basic
from tests.server import FakeChannel

PATH = "/oauth2/revoke"


class RevokeResourceTestCase(TokenFixture):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.secret = "revoking-client-secret"
        encrypted = server.get_encrypter().encrypt_to_string(self.secret)
        self.confidential = self.add_client(
            token_endpoint_auth_method="client_secret_post", encrypted_client_secret=encrypted
        )
        self.basic_client = self.add_client(
            token_endpoint_auth_method="client_secret_basic", encrypted_client_secret=encrypted
        )
        self.no_method = self.add_client(token_endpoint_auth_method=None)

    def revoke(self, form: Any, headers: Any = (), **kwargs: Any) -> FakeChannel:
        return self.make_request("POST", PATH, form=form, headers=headers, **kwargs)

    def post_credentials(self) -> dict[str, str]:
        return {"client_id": self.confidential.id, "client_secret": self.secret}

    def is_active(self, token: str) -> bool:
        channel = self.make_request("POST", "/oauth2/introspect", form={"token": token}, headers=[HOMESERVER])
        self.assertEqual(channel.code, 200, channel.body)
        return bool(channel.json_body["active"])

    def assert_error(self, channel: FakeChannel, code: int, error: str) -> None:
        self.assertEqual(channel.code, code, channel.body)
        self.assertEqual(channel.json_body["error"], error, channel.json_body)

    def test_revoke_access_token(self) -> None:
        session, access, refresh = self.start_session(client=self.confidential)
        assert refresh is not None
        self.assertTrue(self.is_active(access.access_token))
        form = {"token": access.access_token, "token_type_hint": "access_token", **self.post_credentials()}
        channel = self.revoke(form)
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.body, b"")
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        self.assertFalse(self.is_active(access.access_token))
        self.assertFalse(self.is_active(refresh.refresh_token))
        self.assertIsNotNone(self.session(session.id).finished_at)
        # Revoking a second time does not fail.
        self.assertEqual(self.revoke(form).code, 200)

    def test_revoke_refresh_token_with_basic(self) -> None:
        session, access, refresh = self.start_session(client=self.basic_client)
        assert refresh is not None
        channel = self.revoke({"token": refresh.refresh_token}, [basic(self.basic_client.id, self.secret)])
        self.assertEqual((channel.code, channel.body), (200, b""))
        self.assertFalse(self.is_active(access.access_token))

    def test_public_client_revokes_its_own_token(self) -> None:
        session, access, _ = self.start_session()
        channel = self.revoke({"token": access.access_token, "client_id": self.client.id})
        self.assertEqual(channel.code, 200, channel.body)
        self.assertIsNotNone(self.session(session.id).finished_at)

    def test_tokens_it_cannot_revoke_answer_200(self) -> None:
        _, access, _ = self.start_session(client=self.confidential)
        before = self.table_snapshot()
        for token in ("nope", compat_token("mct"), compat_token("mcr"), access.access_token[:-1] + "x"):
            with self.subTest(token=token):
                channel = self.revoke({"token": token, **self.post_credentials()})
                self.assertEqual((channel.code, channel.body), (200, b""))
        self.assertEqual(self.table_snapshot(), before)

    def test_errors(self) -> None:
        _, access, _ = self.start_session(client=self.confidential)
        _, other_access, _ = self.start_session()  # the public fixture client's session
        before = self.table_snapshot()
        token = {"token": access.access_token}
        cases: list[tuple[FakeChannel, int, str]] = [
            # Wrong secret, unknown client, wrong method, a bearer credential.
            (
                self.revoke({**token, "client_id": self.confidential.id, "client_secret": "wrong"}),
                401,
                "invalid_client",
            ),
            (
                self.revoke({**token, "client_id": "01HNOSUCHCLIENT0000000000", "client_secret": "x"}),
                401,
                "invalid_client",
            ),
            (self.revoke(token, [basic(self.confidential.id, self.secret)]), 401, "invalid_client"),
            (self.revoke(token, [HOMESERVER]), 401, "invalid_client"),
            # No registered authentication method.
            (self.revoke({**token, "client_id": self.no_method.id}), 401, "unauthorized_client"),
            # Another client's session.
            (
                self.revoke({"token": other_access.access_token, **self.post_credentials()}),
                401,
                "unauthorized_client",
            ),
            # An unknown hint.
            (
                self.revoke({**token, "token_type_hint": "pct", **self.post_credentials()}),
                400,
                "unsupported_token_type",
            ),
            # Malformed requests.
            (self.revoke(self.post_credentials()), 400, "invalid_request"),
            (
                self.revoke([("token", "a"), ("token", "b"), *self.post_credentials().items()]),
                400,
                "invalid_request",
            ),
            (self.revoke(token), 400, "invalid_request"),
            (self.revoke(token, [("Authorization", "Digest x")]), 400, "invalid_request"),
            (
                self.make_request(
                    "POST",
                    PATH,
                    content="{}",
                    headers=[basic(self.basic_client.id, self.secret), ("Content-Type", "application/json")],
                ),
                400,
                "invalid_request",
            ),
        ]
        for channel, code, error in cases:
            with self.subTest(code=code, error=error, body=channel.body):
                self.assert_error(channel, code, error)
        self.assertEqual(self.table_snapshot(), before)
        self.assertTrue(self.is_active(access.access_token))
        self.assertTrue(self.is_active(other_access.access_token))

    def test_only_post(self) -> None:
        channel = self.make_request("GET", PATH)
        self.assertEqual(channel.code, 405)
