# SPDX-License-Identifier: AGPL-3.0-only
"""Token introspection rules (RFC 7662, inventory §2.10), through :class:`IntrospectionHandler`."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from mas_twisted.handlers.introspection import (
    INACTIVE,
    IntrospectionHandler,
    IntrospectionResponse,
    normalized_scope_string,
    to_seconds,
)
from mas_twisted.oauth2.scope import Scope, normalize_scope
from mas_twisted.storage.introspection import INTROSPECTION_BATCH_MAX
from mas_twisted.types.oauth2 import RefreshToken
from mas_twisted.types.tokens import TokenType, base62_crc
from mas_twisted.util.batch import Batcher
from tests.handlers._base import (
    API,
    API_UNSTABLE,
    DEVICE,
    DEVICE_UNSTABLE,
    TTL_MS,
    TokenFixture,
    compat_token,
)
from tests.unittest import TEST_MATRIX_SECRET


class IntrospectionHandlerTestCase(TokenFixture):
    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        super().prepare(reactor, clock, server)
        self.handler = IntrospectionHandler(server)
        self.tracker = server.get_activity_tracker()

    def introspect(self, token: str, hint: str | None = None, **kwargs: Any) -> IntrospectionResponse:
        return self.get_success(self.handler.introspect(token, hint, **kwargs))

    def test_homeserver_secret(self) -> None:
        self.assertTrue(self.handler.is_homeserver(TEST_MATRIX_SECRET))
        self.assertFalse(self.handler.is_homeserver(TEST_MATRIX_SECRET + "x"))
        self.assertFalse(self.handler.is_homeserver(TEST_MATRIX_SECRET[:-1]))
        self.assertFalse(self.handler.is_homeserver(""))

    def test_active_access_token(self) -> None:
        self.advance_ms(700)  # created at …000.700 s: timestamps round to the nearest second
        session, access, _ = self.start_session(f"openid {API} {DEVICE}ABCDEFGHIJ")
        self.advance_ms(1000)
        reply = self.introspect(access.access_token)
        self.assertEqual(
            reply.to_json(),
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
                "exp": 1_700_000_301,
                "expires_in": 299,
                "iat": 1_700_000_001,
                "nbf": 1_700_000_001,
                "sub": self.user.id,
                "jti": access.id,
            },
        )
        # The matching hint changes nothing.
        self.assertEqual(self.introspect(access.access_token, "access_token"), reply)

    def test_unstable_api_scope_gains_the_stable_one(self) -> None:
        _, access, _ = self.start_session(f"{API_UNSTABLE} {DEVICE_UNSTABLE}XYZXYZXYZXYZ")
        reply = self.introspect(access.access_token)
        self.assertEqual(
            set((reply.scope or "").split(" ")),
            {API, API_UNSTABLE, DEVICE + "XYZXYZXYZXYZ", DEVICE_UNSTABLE + "XYZXYZXYZXYZ"},
        )

    def test_client_credentials_session_has_no_user(self) -> None:
        _, access, _ = self.start_session("urn:mas:admin", user=None, refresh=False)
        reply = self.introspect(access.access_token)
        self.assertTrue(reply.active)
        self.assertIsNone(reply.username)
        self.assertIsNone(reply.sub)
        self.assertEqual(reply.scope, "urn:mas:admin")
        self.assertNotIn("username", reply.to_json())

    def test_token_without_expiry(self) -> None:
        _, access, _ = self.start_session(ttl_ms=None)
        reply = self.introspect(access.access_token)
        self.assertTrue(reply.active)
        self.assertNotIn("exp", reply.to_json())
        self.assertNotIn("expires_in", reply.to_json())

    def test_active_refresh_token(self) -> None:
        session, _, refresh = self.start_session()
        assert refresh is not None
        self.advance_ms(5000)
        reply = self.introspect(refresh.refresh_token)
        self.assertEqual(
            reply.to_json(),
            {
                "active": True,
                "scope": f"openid {API} {API_UNSTABLE}",
                "client_id": self.client.id,
                "username": "alice",
                "token_type": "refresh_token",
                "iat": 1_700_000_000,
                "nbf": 1_700_000_000,
                "sub": self.user.id,
                "jti": refresh.id,
            },
        )
        self.assertTrue(self.introspect(refresh.refresh_token, "refresh_token").active)

    def test_wrong_or_unknown_hint_is_inactive(self) -> None:
        _, access, refresh = self.start_session()
        assert refresh is not None
        self.assertEqual(self.introspect(access.access_token, "refresh_token"), INACTIVE)
        self.assertEqual(self.introspect(refresh.refresh_token, "access_token"), INACTIVE)
        self.assertEqual(self.introspect(access.access_token, "pct"), INACTIVE)
        self.assertEqual(self.introspect(access.access_token, ""), INACTIVE)

    def test_expired_access_token(self) -> None:
        _, access, refresh = self.start_session()
        assert refresh is not None
        # Valid up to and including expires_at (MAS: expired when expires_at < now).
        self.advance_ms(TTL_MS)
        reply = self.introspect(access.access_token)
        self.assertTrue(reply.active)
        self.assertEqual(reply.expires_in, 0)
        self.advance_ms(1)
        self.assertEqual(self.introspect(access.access_token), INACTIVE)
        # The refresh token never expires.
        self.advance_ms(3600_000)
        self.assertTrue(self.introspect(refresh.refresh_token).active)

    def test_revoked_access_token(self) -> None:
        _, access, refresh = self.start_session()
        assert refresh is not None
        self.get_success(self.stores.access_tokens.revoke_access_token(access))
        self.assertEqual(self.introspect(access.access_token), INACTIVE)
        self.assertTrue(self.introspect(refresh.refresh_token).active)

    def test_consumed_and_revoked_refresh_tokens(self) -> None:
        session, _, refresh = self.start_session()
        assert refresh is not None
        successor = RefreshToken(
            id=self.tokens.ulid(),
            session_id=session.id,
            refresh_token=self.tokens.token(TokenType.REFRESH_TOKEN),
            created_at=self.now(),
        )
        self.get_success(self.stores.refresh_tokens.add_refresh_token(successor))
        self.get_success(self.stores.refresh_tokens.consume_refresh_token(refresh, successor.id))
        self.assertTrue(self.introspect(successor.refresh_token).active)
        self.assertEqual(self.introspect(refresh.refresh_token), INACTIVE)
        _, _, other = self.start_session()
        assert other is not None
        self.get_success(self.stores.refresh_tokens.revoke_refresh_token(other))
        self.assertEqual(self.introspect(other.refresh_token), INACTIVE)

    def test_finished_session(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(session))
        self.assertEqual(self.introspect(access.access_token), INACTIVE)
        self.assertEqual(self.introspect(refresh.refresh_token), INACTIVE)

    def test_locked_or_deactivated_user(self) -> None:
        _, access, refresh = self.start_session()
        assert refresh is not None
        locked = self.get_success(self.stores.users.lock_user(self.user, self.now()))
        self.assertEqual(self.introspect(access.access_token), INACTIVE)
        self.assertEqual(self.introspect(refresh.refresh_token), INACTIVE)
        unlocked = self.get_success(self.stores.users.unlock_user(locked))
        self.assertTrue(self.introspect(access.access_token).active)
        self.get_success(self.stores.users.deactivate_user(unlocked, self.now()))
        self.assertEqual(self.introspect(access.access_token), INACTIVE)
        self.assertEqual(self.introspect(refresh.refresh_token), INACTIVE)

    def test_unknown_and_malformed_tokens(self) -> None:
        for token in (
            "",
            "not a token",
            "mat_short_abcdef",
            self.tokens.token(TokenType.ACCESS_TOKEN),  # well-formed, never issued
            self.tokens.token(TokenType.REFRESH_TOKEN),
            "mat_" + "a" * 30 + "_000000",  # bad checksum
            "xyz_" + "a" * 30 + "_" + base62_crc("xyz_" + "a" * 30),  # unknown prefix
        ):
            with self.subTest(token=token):
                self.assertEqual(self.introspect(token), INACTIVE)

    def test_compat_and_personal_tokens_are_inactive(self) -> None:
        for token in (
            compat_token("mct"),
            compat_token("mcr"),
            compat_token("mpt"),
            "syt_YWxpY2U_abc",
            "syr_abc",
        ):
            with self.subTest(token=token):
                self.assertEqual(self.introspect(token), INACTIVE)
                self.assertEqual(self.introspect(token, supports_explicit_device_id=True), INACTIVE)

    def test_use_is_recorded_without_writing(self) -> None:
        session, access, refresh = self.start_session()
        assert refresh is not None
        self.advance_ms(2000)
        first_use = self.now()
        self.introspect(access.access_token)
        # Nothing written yet: the tracker holds the first use and the activity.
        self.assertIsNone(self.access(access.id).first_used_at)
        self.assertIsNone(self.session(session.id).last_active_at)
        self.assertEqual(self.tracker.first_used_at(access.id), first_use)
        self.advance_ms(500)
        self.introspect(refresh.refresh_token)
        self.get_success(self.tracker.flush())
        self.assertEqual(self.access(access.id).first_used_at, first_use)
        written = self.session(session.id)
        self.assertEqual(written.last_active_at, first_use + 500)
        self.assertIsNone(written.last_active_ip)  # the caller's address is not the user's

        # A later use keeps the first one.
        self.advance_ms(1000)
        self.introspect(access.access_token)
        self.get_success(self.tracker.flush())
        self.assertEqual(self.access(access.id).first_used_at, first_use)
        self.assertEqual(self.session(session.id).last_active_at, self.now())

    def test_inactive_tokens_record_nothing(self) -> None:
        session, access, _ = self.start_session()
        self.advance_ms(TTL_MS + 1)
        self.assertEqual(self.introspect(access.access_token), INACTIVE)
        self.introspect(access.access_token, "refresh_token")
        self.assertEqual(self.tracker.pending_sessions, 0)
        self.assertIsNone(self.tracker.first_used_at(access.id))


def test_to_seconds_rounds_half_away_from_zero() -> None:
    assert to_seconds(0) == 0
    assert to_seconds(1499) == 1
    assert to_seconds(1500) == 2
    assert to_seconds(-1499) == -1
    assert to_seconds(-1500) == -2
    assert to_seconds(1_700_000_000_499) == 1_700_000_000


def test_normalized_scope_string_is_normalize_scope() -> None:
    for text in (
        "openid",
        f"openid {API}",
        f"{API_UNSTABLE} {DEVICE_UNSTABLE}ABCDEFGHIJ",
        f"{API} {API_UNSTABLE} {DEVICE}ABCDEFGHIJ {DEVICE_UNSTABLE}ABCDEFGHIJ urn:synapse:admin:*",
        f"{DEVICE}x {DEVICE}y urn:mas:graphql:*",
    ):
        scope = Scope.parse(text)
        assert normalized_scope_string(scope) == str(normalize_scope(scope)), text


class BatchedLookupsTestCase(TokenFixture):
    def test_lookups_of_one_turn_share_a_query(self) -> None:
        store = self.stores.access_tokens
        calls: list[list[str]] = []
        real = store.lookup_access_tokens_for_introspection

        async def counting(tokens: Any) -> Any:
            calls.append(list(tokens))
            return await real(tokens)

        store.lookup_access_tokens_for_introspection = counting  # type: ignore[method-assign]
        lookups: Batcher[str, Any] = Batcher(self.clock, store.lookup_access_tokens_for_introspection)
        _, first, _ = self.start_session()
        _, second, _ = self.start_session()
        unknown = self.tokens.token(TokenType.ACCESS_TOKEN)
        pending = [
            lookups.lookup(t) for t in (first.access_token, second.access_token, first.access_token, unknown)
        ]
        self.reactor.advance(0)
        results = [self.successResultOf(d) for d in pending]
        self.assertEqual(len(calls), 1)
        self.assertEqual(sorted(calls[0]), sorted({first.access_token, second.access_token, unknown}))
        self.assertEqual([r.token.id if r else None for r in results], [first.id, second.id, first.id, None])
        # The next turn is a new batch.
        later = lookups.lookup(second.access_token)
        self.reactor.advance(0)
        self.assertEqual(self.successResultOf(later).token.id, second.id)  # type: ignore[union-attr]
        self.assertEqual(len(calls), 2)

    def test_lookups_wait_for_the_batch_in_flight(self) -> None:
        """Under load the batches grow: while one is out, the next waits and takes everything
        that arrived meanwhile (one round trip instead of one per turn)."""
        answers: list[tuple[list[str], defer.Deferred[Any]]] = []

        def slow(tokens: list[str]) -> defer.Deferred[Any]:
            d: defer.Deferred[Any] = defer.Deferred()
            answers.append((sorted(tokens), d))
            return d

        lookups: Batcher[str, Any] = Batcher(self.clock, slow)
        first = lookups.lookup("mat_a")
        self.reactor.advance(0)
        self.assertEqual([t for t, _ in answers], [["mat_a"]])
        later = [lookups.lookup(t) for t in ("mat_b", "mat_c")]
        self.reactor.advance(0)
        later.append(lookups.lookup("mat_d"))
        self.reactor.advance(0)
        self.assertEqual(len(answers), 1)  # still waiting for the first batch
        answers[0][1].callback({"mat_a": "A"})
        self.assertEqual(self.successResultOf(first), "A")
        self.reactor.advance(0)
        self.assertEqual([t for t, _ in answers], [["mat_a"], ["mat_b", "mat_c", "mat_d"]])
        answers[1][1].callback({"mat_c": "C"})
        self.assertEqual([self.successResultOf(d) for d in later], [None, "C", None])
        # A failed batch lets the next one go too.
        failing = lookups.lookup("mat_e")
        self.reactor.advance(0)
        after = lookups.lookup("mat_f")
        answers[2][1].errback(RuntimeError("database went away"))
        self.failureResultOf(failing, RuntimeError)
        self.reactor.advance(0)
        self.assertEqual([t for t, _ in answers][-1], ["mat_f"])
        answers[3][1].callback({})
        self.assertIsNone(self.successResultOf(after))

    def test_a_failed_batch_fails_every_lookup(self) -> None:
        store = self.stores.access_tokens

        async def failing(tokens: Any) -> Any:
            raise RuntimeError("database went away")

        store.lookup_access_tokens_for_introspection = failing  # type: ignore[method-assign]
        lookups: Batcher[str, Any] = Batcher(self.clock, store.lookup_access_tokens_for_introspection)
        pending = [lookups.lookup("mat_a"), lookups.lookup("mat_b"), lookups.lookup("mat_a")]
        self.reactor.advance(0)
        for d in pending:
            self.failureResultOf(d, RuntimeError)

    def test_many_tokens_in_one_batch(self) -> None:
        made = [self.start_session(refresh=False)[1] for _ in range(3)]
        tokens = [t.access_token for t in made] + [
            f"mat_{i:030d}_xxxxxx" for i in range(INTROSPECTION_BATCH_MAX)
        ]
        found = self.get_success(self.stores.access_tokens.lookup_access_tokens_for_introspection(tokens))
        self.assertEqual(sorted(found), sorted(t.access_token for t in made))
        for token in made:
            self.assertEqual(found[token.access_token].token, token)
            self.assertEqual(found[token.access_token].user.username, "alice")  # type: ignore[union-attr]
