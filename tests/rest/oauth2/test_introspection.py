# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/introspect`` through the whole listener: the homeserver's shared secret,
client credentials, and every error path (status, error code, nothing written)."""

from __future__ import annotations

import gc
import json
import logging
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from mas_twisted.types.tokens import TokenType
from tests.app._helpers import CapturingHandler
from tests.handlers._base import (
    API,
    API_UNSTABLE,
    DEVICE,
    DEVICE_UNSTABLE,
    TokenFixture,
    compat_token,
)
from tests.rest.oauth2._oauth_fixtures import HOMESERVER, basic
from tests.server import FakeChannel, build_raw_request
from tests.unittest import TEST_MATRIX_SECRET

PATH = "/oauth2/introspect"
SYNAPSE_HEADERS = [HOMESERVER, ("X-MAS-Supports-Device-Id", "1"), ("Accept", "application/json")]
INACTIVE = b'{"active":false}'


class IntrospectionResourceTestCase(TokenFixture):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.tracker = server.get_activity_tracker()
        self.secret = "introspecting-client-secret"
        encrypted = server.get_encrypter().encrypt_to_string(self.secret)
        self.confidential = self.add_client(
            grant_type_authorization_code=False,
            grant_type_refresh_token=False,
            redirect_uris=(),
            token_endpoint_auth_method="client_secret_basic",
            encrypted_client_secret=encrypted,
        )
        self.post_client = self.add_client(
            redirect_uris=(),
            token_endpoint_auth_method="client_secret_post",
            encrypted_client_secret=encrypted,
        )

    def introspect(self, form: Any = None, headers: Any = (), **kwargs: Any) -> FakeChannel:
        return self.make_request("POST", PATH, form=form, headers=headers, **kwargs)

    def assert_error(
        self, channel: FakeChannel, code: int, error: str, description: str | None = None
    ) -> None:
        self.assertEqual(channel.code, code, channel.body)
        self.assertEqual(channel.content_type, "application/json")
        self.assertEqual(channel.json_body["error"], error, channel.json_body)
        if description is not None:
            self.assertEqual(channel.json_body["error_description"], description)

    def assert_nothing_recorded(self) -> None:
        self.assertEqual(self.tracker.pending_sessions, 0)
        self.assertEqual(self.tracker._first_used, {})

    # -- the homeserver ----------------------------------------------------------------------
    def test_synapse_request(self) -> None:
        session, access, _ = self.start_session(f"openid {API} {DEVICE}ABCDEFGHIJ")
        before = self.table_snapshot()
        self.advance_ms(10_000)
        channel = self.introspect(
            {"token": access.access_token, "token_type_hint": "access_token"}, SYNAPSE_HEADERS
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.content_type, "application/json")
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(
            channel.json_body,
            {
                "active": True,
                "scope": " ".join(
                    sorted(
                        ["openid", API, API_UNSTABLE, DEVICE + "ABCDEFGHIJ", DEVICE_UNSTABLE + "ABCDEFGHIJ"]
                    )
                ),
                "client_id": self.client.id,
                "username": "alice",
                "token_type": "access_token",
                "exp": 1_700_000_300,
                "expires_in": 290,
                "iat": 1_700_000_000,
                "nbf": 1_700_000_000,
                "sub": self.user.id,
                "jti": access.id,
            },
        )
        # Synapse's parser: expires_in is an integer, and the device is in the scope.
        self.assertIsInstance(channel.json_body["expires_in"], int)
        # Nothing written by the request itself; the tracker writes the use later.
        self.assertEqual(self.table_snapshot(), before)
        self.get_success(self.tracker.flush())
        self.assertEqual(self.access(access.id).first_used_at, self.now())
        self.assertEqual(self.session(session.id).last_active_at, self.now())

    def test_refresh_token_and_no_hint(self) -> None:
        _, _, refresh = self.start_session()
        assert refresh is not None
        channel = self.introspect({"token": refresh.refresh_token}, [HOMESERVER])
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.json_body["token_type"], "refresh_token")
        self.assertNotIn("exp", channel.json_body)

    def test_inactive_tokens_answer_200(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        _, expired, _ = self.start_session(ttl_ms=1000)
        self.advance_ms(1001)
        before = self.table_snapshot()
        for form in (
            {"token": expired.access_token},
            {"token": access.access_token, "token_type_hint": "refresh_token"},
            {"token": refresh.refresh_token, "token_type_hint": "access_token"},
            {"token": access.access_token, "token_type_hint": "something_else"},
            {"token": self.tokens.token(TokenType.ACCESS_TOKEN)},
            {"token": "not-a-token"},
            {"token": ""},
            {"token": compat_token("mct")},
            {"token": compat_token("mcr")},
            {"token": compat_token("mpt")},
        ):
            with self.subTest(form=form):
                channel = self.introspect(form, SYNAPSE_HEADERS)
                self.assertEqual(channel.code, 200, channel.body)
                self.assertEqual(channel.body, INACTIVE)
        self.assertEqual(self.table_snapshot(), before)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        self.assertEqual(self.introspect({"token": access.access_token}, [HOMESERVER]).body, INACTIVE)
        self.assert_nothing_recorded()

    def test_locked_user(self) -> None:
        _, access, _ = self.start_session()
        self.get_success(self.stores.users.lock_user(self.user, self.now()))
        channel = self.introspect({"token": access.access_token}, [HOMESERVER])
        self.assertEqual((channel.code, channel.body), (200, INACTIVE))
        self.assert_nothing_recorded()

    def test_wrong_shared_secret(self) -> None:
        _, access, _ = self.start_session()
        before = self.table_snapshot()
        for value in (f"Bearer {TEST_MATRIX_SECRET}x", "Bearer other", f"bearer {TEST_MATRIX_SECRET[:-1]}"):
            with self.subTest(value=value):
                channel = self.introspect({"token": access.access_token}, [("Authorization", value)])
                self.assert_error(channel, 401, "access_denied", "bearer token presented is invalid")
        self.assert_nothing_recorded()
        self.assertEqual(self.table_snapshot(), before)

    def test_scheme_is_case_insensitive(self) -> None:
        _, access, _ = self.start_session()
        channel = self.introspect(
            {"token": access.access_token}, [("Authorization", f"BEARER {TEST_MATRIX_SECRET}")]
        )
        self.assertTrue(channel.json_body["active"])

    def test_malformed_requests(self) -> None:
        _, access, _ = self.start_session()
        before = self.table_snapshot()
        cases = [
            # No token.
            ({"token_type_hint": "access_token"}, [HOMESERVER], "invalid_request"),
            # A repeated field.
            ([("token", access.access_token), ("token", "other")], [HOMESERVER], "invalid_request"),
            # Another authorization scheme.
            ({"token": access.access_token}, [("Authorization", "Token abc")], "invalid_request"),
            # No credentials at all.
            ({"token": access.access_token}, [], "invalid_request"),
            # A bearer token and client credentials together.
            (
                {"token": access.access_token, "client_id": self.confidential.id},
                [HOMESERVER],
                "invalid_request",
            ),
        ]
        for form, headers, error in cases:
            with self.subTest(form=form, headers=headers):
                self.assert_error(self.introspect(form, headers), 400, error)
        # Not a form: the caller is authenticated first, then the body is refused.
        body = json.dumps({"token": access.access_token})
        channel = self.make_request(
            "POST", PATH, content=body, headers=[HOMESERVER, ("Content-Type", "application/json")]
        )
        self.assert_error(channel, 400, "invalid_request")
        channel = self.make_request(
            "POST",
            PATH,
            content=body,
            headers=[("Authorization", "Bearer nope"), ("Content-Type", "application/json")],
        )
        self.assert_error(channel, 401, "access_denied")
        self.assert_nothing_recorded()
        self.assertEqual(self.table_snapshot(), before)

    def test_multipart_body_is_refused_as_oauth_error(self) -> None:
        # A multipart body, even a malformed one, is not a form: the endpoint's own 400,
        # not the web server's page (the listener does not parse bodies for the resources).
        _, access, _ = self.start_session()
        channel = self.make_request(
            "POST",
            PATH,
            content=f"token={access.access_token}",
            headers=[HOMESERVER, ("Content-Type", "multipart/form-data; boundary=nope")],
        )
        self.assert_error(channel, 400, "invalid_request")
        self.assert_nothing_recorded()

    def test_token_in_the_query_string_is_not_read(self) -> None:
        _, access, _ = self.start_session()
        channel = self.make_request(
            "POST",
            f"{PATH}?token={access.access_token}",
            form={"token_type_hint": "access_token"},
            headers=[HOMESERVER],
        )
        self.assert_error(channel, 400, "invalid_request")

    def test_other_methods(self) -> None:
        channel = self.make_request("GET", PATH, headers=[HOMESERVER])
        self.assertEqual(channel.code, 405)
        self.assertEqual(channel.header("Allow"), "POST")
        preflight = self.make_request(
            "OPTIONS",
            PATH,
            headers=[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")],
        )
        self.assertEqual(preflight.code, 200)
        self.assertEqual(preflight.header("Access-Control-Allow-Origin"), "*")

    # -- clients -------------------------------------------------------------------------------
    def test_confidential_client(self) -> None:
        _, access, _ = self.start_session()
        channel = self.introspect({"token": access.access_token}, [basic(self.confidential.id, self.secret)])
        self.assertEqual(channel.code, 200, channel.body)
        self.assertTrue(channel.json_body["active"])
        self.assertEqual(channel.json_body["client_id"], self.client.id)
        channel = self.introspect(
            {"token": access.access_token, "client_id": self.post_client.id, "client_secret": self.secret}
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertTrue(channel.json_body["active"])

    def test_client_errors(self) -> None:
        _, access, _ = self.start_session()
        before = self.table_snapshot()
        token = {"token": access.access_token}
        # A wrong secret.
        channel = self.introspect(token, [basic(self.confidential.id, "wrong")])
        self.assert_error(channel, 401, "invalid_client")
        self.assertIsNotNone(channel.header("WWW-Authenticate"))
        # An unknown client.
        self.assert_error(
            self.introspect(token, [basic("01HUNKNOWNCLIENT000000000", "x")]), 401, "invalid_client"
        )
        # The wrong method (registered for Basic, sent in the form).
        form = {**token, "client_id": self.confidential.id, "client_secret": self.secret}
        self.assert_error(self.introspect(form), 401, "invalid_client")
        # A public client may not introspect.
        self.assert_error(self.introspect({**token, "client_id": self.client.id}), 401, "access_denied")
        # A client that authenticates but sends no form.
        channel = self.make_request(
            "POST",
            PATH,
            content="{}",
            headers=[basic(self.confidential.id, self.secret), ("Content-Type", "application/json")],
        )
        self.assert_error(channel, 400, "invalid_request")
        self.assert_nothing_recorded()
        self.assertEqual(self.table_snapshot(), before)

    # -- the client goes away --------------------------------------------------------------------
    def send_and_leave(self, form: Any, headers: Any) -> bytes:
        """Send a request, lose the connection before the answer, let the answer come: what was sent."""
        channel = self.listener_site().buildProtocol(IPv4Address("TCP", "127.0.0.1", 49152))
        assert channel is not None
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(
            build_raw_request("POST", PATH, host=self._public_host(), form=form, headers=headers)
        )
        channel.connectionLost(Failure(ConnectionDone()))
        with CapturingHandler("mas_twisted") as log:
            self.reactor.advance(0)
            self.reactor.advance(1)
        gc.collect()  # an unhandled failure in a Deferred is logged when it is collected
        self.assertEqual([r.getMessage() for r in log.records if r.levelno >= logging.WARNING], [])
        return transport.value()

    def test_homeserver_gone_before_the_answer(self) -> None:
        _, access, _ = self.start_session()
        sent = self.send_and_leave({"token": access.access_token}, [HOMESERVER])
        self.assertEqual(sent, b"")
        self.assertEqual(self.flushLoggedErrors(), [])
        # The token was read and its use recorded; only the answer was dropped.
        self.assertEqual(self.tracker.pending_sessions, 1)

    def test_client_gone_before_the_answer(self) -> None:
        _, access, _ = self.start_session()
        sent = self.send_and_leave({"token": access.access_token}, [basic(self.confidential.id, self.secret)])
        self.assertEqual(sent, b"")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(self.tracker.pending_sessions, 1)
        # Nor is a failure answered to a client that left.
        sent = self.send_and_leave({"token": access.access_token}, [basic(self.confidential.id, "wrong")])
        self.assertEqual(sent, b"")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_one_handler_per_process(self) -> None:
        from mas_twisted.rest.oauth2.introspection import IntrospectionResource

        first, second = IntrospectionResource(self.server), IntrospectionResource(self.server)
        self.assertIs(first._handler, second._handler)
        self.assertIs(first._handler, self.server.get_introspection_handler())
