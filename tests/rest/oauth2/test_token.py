# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/token``: every grant, every error path (status, code, nothing written).

Ports MAS's ``crates/handlers/src/oauth2/token.rs`` tests (``test_auth_code_grant``,
``test_refresh_token_grant``, ``test_double_refresh``, ``test_client_credentials``,
``test_device_code_grant``, ``test_unsupported_grant``, ``test_device_code_grant_disabled``)
and adds one test per error path of inventory §2.1 / STYLE.md §4.5.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from mas_twisted.api.errors import InvalidGrantError
from mas_twisted.handlers.id_token import token_hash
from mas_twisted.types.oauth2 import Pkce
from mas_twisted.types.tokens import TokenType
from tests.rest.oauth2._oauth_fixtures import (
    API_SCOPE,
    DEVICE_GRANT,
    REDIRECT_URI,
    OAuthTestCase,
    basic_auth,
    pkce_s256,
    verify,
)
from tests.unittest import TEST_PUBLIC_BASE, override_config

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B


class AuthorizationCodeGrantTestCase(OAuthTestCase):
    def exchange(self, client: Any, code: str, **extra: str) -> Any:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client.id,
        }
        form.update(extra)
        return self.token_request({k: v for k, v in form.items() if v is not None})

    def test_exchange(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        channel = self.exchange(client, grant.code)
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.header("Cache-Control"), "no-store")
        self.assertEqual(channel.header("Pragma"), "no-cache")
        self.assertEqual(channel.content_type, "application/json")
        body = channel.json_body
        self.assertEqual(
            list(body), ["access_token", "refresh_token", "id_token", "token_type", "expires_in", "scope"]
        )
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 300)
        self.assertEqual(body["scope"], f"openid {API_SCOPE}")
        self.assertIs(TokenType.check(body["access_token"]), TokenType.ACCESS_TOKEN)
        self.assertIs(TokenType.check(body["refresh_token"]), TokenType.REFRESH_TOKEN)
        self.assertEqual(len(body["access_token"]), 41)
        self.assertTrue(self.access_token_is_valid(body["access_token"]))

        # The session starts now, for alice, from her browser session.
        session = self.session_of(body["access_token"])
        self.assertEqual(
            (session.user_id, session.user_session_id, session.client_id),
            (self.user.id, self.browser_session.id, client.id),
        )
        self.assertEqual(session.created_at, self.now())
        token = self.get_success(self.stores.access_tokens.find_access_token_by_token(body["access_token"]))
        self.assertEqual(token.expires_at, self.now() + 300_000)
        exchanged = self.get_success(self.stores.authorization_grants.get_authorization_grant(grant.id))
        self.assertEqual((exchanged.exchanged_at, exchanged.oauth2_session_id), (self.now(), session.id))

        header, claims = verify(self.server, body["id_token"])
        self.assertEqual(header["alg"], "RS256")
        self.assertEqual(claims["sub"], self.user.id)
        self.assertEqual(claims["aud"], client.id)
        self.assertEqual(claims["iss"], TEST_PUBLIC_BASE)
        self.assertEqual(claims["nonce"], grant.nonce)
        self.assertEqual(claims["auth_time"], self.auth_time_ms // 1000)
        self.assertEqual(claims["at_hash"], token_hash("RS256", body["access_token"]))
        self.assertEqual(claims["c_hash"], token_hash("RS256", grant.code))
        self.assertEqual(claims["exp"] - claims["iat"], 3600)

    def test_without_openid_no_id_token(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client, scope=API_SCOPE)
        body = self.exchange(client, grant.code).json_body
        self.assertNotIn("id_token", body)
        self.assertEqual(body["scope"], API_SCOPE)

    def test_user_agent_recorded_on_the_session(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            form={"grant_type": "authorization_code", "code": grant.code, "client_id": client.id},
            headers=[("User-Agent", "Element X/1.0")],
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(self.session_of(channel.json_body["access_token"]).user_agent, "Element X/1.0")
        self.get_success(self.server.get_activity_tracker().flush())
        self.assertEqual(self.session_of(channel.json_body["access_token"]).last_active_at, self.now())

    @override_config({"experimental": {"access_token_ttl": 3600}})
    def test_access_token_ttl(self) -> None:
        client = self.add_client()
        body = self.exchange(client, self.add_grant(client).code).json_body
        self.assertEqual(body["expires_in"], 3600)
        self.advance_s(3599)
        self.assertTrue(self.access_token_is_valid(body["access_token"]))
        self.advance_s(2)
        self.assertFalse(self.access_token_is_valid(body["access_token"]))

    def test_reuse_within_and_after_20_seconds(self) -> None:
        # MAS's test_auth_code_grant.
        client = self.add_client()
        grant = self.add_grant(client)
        first = self.exchange(client, grant.code)
        self.assertEqual(first.code, 200, first.body)
        access_token = first.json_body["access_token"]

        before = self.snapshot()
        self.assert_oauth_error(self.exchange(client, grant.code), 400, "invalid_grant")
        self.assertTrue(self.access_token_is_valid(access_token))
        self.assertEqual(self.snapshot(), before)

        self.advance_s(20)
        self.assert_oauth_error(self.exchange(client, grant.code), 400, "invalid_grant")
        self.assertTrue(self.access_token_is_valid(access_token))

        self.advance_s(1)
        self.assert_oauth_error(self.exchange(client, grant.code), 400, "invalid_grant")
        # The session the first exchange created is ended (a stolen code's replay).
        self.assertFalse(self.access_token_is_valid(access_token))
        self.assertIsNotNone(self.session_of(access_token).finished_at)
        refresh = self.get_success(
            self.stores.refresh_tokens.find_refresh_token_by_token(first.json_body["refresh_token"])
        )
        self.assertTrue(refresh.is_revoked)

    def test_code_expires_10_minutes_after_consent(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        self.advance_s(600)
        ok = self.add_grant(client)
        self.assertEqual(self.exchange(client, ok.code).code, 200)  # consented just now
        self.advance_s(0.001)
        before = self.snapshot()
        self.assert_oauth_error(self.exchange(client, grant.code), 400, "invalid_grant")
        self.assertEqual(self.snapshot(), before)

    def test_exactly_10_minutes_is_still_fine(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        self.advance_s(600)
        self.assertEqual(self.exchange(client, grant.code).code, 200)

    def test_pending_cancelled_and_unknown_codes(self) -> None:
        client = self.add_client()
        pending = self.add_grant(client, fulfill=False)
        cancelled = self.add_grant(client, fulfill=False)
        self.get_success(self.stores.authorization_grants.cancel_authorization_grant(cancelled))
        before = self.snapshot()
        for code in (pending.code, cancelled.code, "thisisnotacode"):
            self.assert_oauth_error(self.exchange(client, code), 400, "invalid_grant")
        self.assertEqual(self.snapshot(), before)

    def test_code_of_another_client(self) -> None:
        client = self.add_client()
        other = self.add_client()
        grant = self.add_grant(client)
        before = self.snapshot()
        self.assert_oauth_error(self.exchange(other, grant.code), 401, "unauthorized_client")
        self.assertEqual(self.snapshot(), before)
        # The rightful client can still use it.
        self.assertEqual(self.exchange(client, grant.code).code, 200)

    def test_client_without_the_grant_type(self) -> None:
        client = self.add_client(grant_types=("refresh_token",))
        grant = self.add_grant(client)
        before = self.snapshot()
        self.assert_oauth_error(self.exchange(client, grant.code), 401, "unauthorized_client")
        self.assertEqual(self.snapshot(), before)

    def test_pkce_s256_and_plain(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client, pkce=Pkce("S256", pkce_s256(VERIFIER)))
        self.assertEqual(pkce_s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        self.assertEqual(self.exchange(client, grant.code, code_verifier=VERIFIER).code, 200)
        plain = self.add_grant(client, pkce=Pkce("plain", VERIFIER))
        self.assertEqual(self.exchange(client, plain.code, code_verifier=VERIFIER).code, 200)

    def test_pkce_errors(self) -> None:
        client = self.add_client()
        with_challenge = self.add_grant(client, pkce=Pkce("S256", pkce_s256(VERIFIER)))
        without_challenge = self.add_grant(client)
        before = self.snapshot()
        # A challenge without a verifier, or a verifier without a challenge: invalid_request.
        self.assert_oauth_error(self.exchange(client, with_challenge.code), 400, "invalid_request")
        self.assert_oauth_error(
            self.exchange(client, without_challenge.code, code_verifier=VERIFIER), 400, "invalid_request"
        )
        # A wrong or malformed verifier: invalid_grant.
        body = self.assert_oauth_error(
            self.exchange(client, with_challenge.code, code_verifier=VERIFIER[:-1] + "Y"),
            400,
            "invalid_grant",
        )
        self.assertEqual(body["error_description"], "PKCE verification failed: challenge verification failed")
        body = self.assert_oauth_error(
            self.exchange(client, with_challenge.code, code_verifier="short"), 400, "invalid_grant"
        )
        self.assertIn("at least 43 characters", body["error_description"])
        self.assertEqual(self.snapshot(), before)
        # The grant is still usable with the right verifier.
        self.assertEqual(self.exchange(client, with_challenge.code, code_verifier=VERIFIER).code, 200)

    def test_redirect_uri(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        before = self.snapshot()
        self.assert_oauth_error(
            self.exchange(client, grant.code, redirect_uri="https://app.example.com/other"),
            400,
            "invalid_grant",
        )
        self.assert_oauth_error(
            self.exchange(client, grant.code, redirect_uri="not a url"), 400, "invalid_request"
        )
        self.assertEqual(self.snapshot(), before)
        # Written differently but the same URL (normalised), or left out: fine.
        self.assertEqual(
            self.exchange(client, grant.code, redirect_uri="HTTPS://APP.example.com:443/callback").code, 200
        )
        other = self.add_grant(client)
        self.assertEqual(self.exchange(client, other.code, redirect_uri=None).code, 200)

    def test_browser_session_ended(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        self.get_success(
            self.stores.browser_sessions.finish_browser_session(self.browser_session, self.now())
        )
        before = self.snapshot()
        self.assert_oauth_error(self.exchange(client, grant.code), 400, "invalid_grant")
        self.assertEqual(self.snapshot(), before)

    def test_locked_user(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        self.get_success(self.stores.users.lock_user(self.user, self.now()))
        self.assert_oauth_error(self.exchange(client, grant.code), 400, "invalid_grant")

    def test_concurrent_exchanges_yield_one_token_pair(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        handler = self.server.get_token_handler()
        first = defer.ensureDeferred(handler.exchange_authorization_code(client, grant.code))
        second = defer.ensureDeferred(handler.exchange_authorization_code(client, grant.code))
        self.reactor.advance(0)
        self.reactor.advance(0)
        results = []
        for d in (first, second):
            outcome: list[Any] = []
            d.addBoth(outcome.append)
            self.reactor.advance(0)
            results.append(outcome[0])
        winners = [r for r in results if not hasattr(r, "check")]
        losers = [r for r in results if hasattr(r, "check")]
        self.assertEqual(len(winners), 1, results)
        self.assertEqual(len(losers), 1, results)
        self.assertTrue(losers[0].check(InvalidGrantError))
        # Both read the code before either wrote: the loser lost in the store's transaction.
        self.assertIn("concurrent", losers[0].value.debug)
        self.assertEqual(self.count("oauth2_sessions"), 1)
        self.assertEqual(self.count("oauth2_access_tokens"), 1)
        self.assertEqual(self.count("oauth2_refresh_tokens"), 1)


class TokenRequestErrorsTestCase(OAuthTestCase):
    """Malformed requests and client authentication failures, before any grant logic."""

    def test_unsupported_grant(self) -> None:
        # MAS's test_unsupported_grant: the client is authenticated first.
        client = self.add_client(auth_method="client_secret_post", secret="secret")
        form = {
            "grant_type": "password",
            "client_id": client.id,
            "client_secret": "secret",
            "username": "john",
            "password": "hunter2",
        }
        before = self.snapshot()
        self.assert_oauth_error(self.token_request(form), 400, "unsupported_grant_type")
        form["client_secret"] = "wrong"
        self.assert_oauth_error(self.token_request(form), 401, "invalid_client")
        for grant_type in ("implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", ""):
            self.assert_oauth_error(
                self.token_request(
                    {"grant_type": grant_type, "client_id": client.id, "client_secret": "secret"}
                ),
                400,
                "unsupported_grant_type",
            )
        self.assertEqual(self.snapshot(), before)

    def test_malformed_forms(self) -> None:
        client = self.add_client()
        grant = self.add_grant(client)
        before = self.snapshot()
        cases = [
            {"client_id": client.id},  # no grant_type
            {"grant_type": "authorization_code", "client_id": client.id},  # no code
            {"grant_type": "refresh_token", "client_id": client.id},  # no refresh_token
            {"grant_type": DEVICE_GRANT, "client_id": client.id},  # no device_code
            {"grant_type": "client_credentials", "client_id": client.id, "scope": ""},
            {"grant_type": "client_credentials", "client_id": client.id, "scope": "a  b"},
            {
                "grant_type": "refresh_token",
                "refresh_token": "x",
                "client_id": client.id,
                "scope": 'bad"scope',
            },
        ]
        for form in cases:
            self.assert_oauth_error(self.token_request(form), 400, "invalid_request")
        # A repeated parameter.
        repeated = [
            ("grant_type", "authorization_code"),
            ("code", grant.code),
            ("code", grant.code),
            ("client_id", client.id),
        ]
        self.assert_oauth_error(self.token_request(repeated), 400, "invalid_request")
        repeated_client = [
            ("grant_type", "authorization_code"),
            ("code", grant.code),
            ("client_id", client.id),
            ("client_id", client.id),
        ]
        self.assert_oauth_error(self.token_request(repeated_client), 400, "invalid_request")
        self.assertEqual(self.snapshot(), before)
        # Unknown parameters are ignored.
        ok = self.token_request(
            {"grant_type": "authorization_code", "code": grant.code, "client_id": client.id, "extra": "1"}
        )
        self.assertEqual(ok.code, 200, ok.body)

    def test_credentials_errors(self) -> None:
        client = self.add_client(auth_method="client_secret_basic", secret="secret")
        grant = self.add_grant(client)
        form = {"grant_type": "authorization_code", "code": grant.code}
        before = self.snapshot()
        # No credentials at all.
        body = self.assert_oauth_error(self.token_request(form), 400, "invalid_request")
        self.assertEqual(body["error_description"], "No credentials were presented")
        # An unreadable or foreign Authorization header.
        for header in ("Basic !!!", "Digest foo", "Basic " + "Zm9v"):
            self.assert_oauth_error(
                self.token_request(form, headers=[("Authorization", header)]), 400, "invalid_request"
            )
        # Basic and a client_secret in the form.
        self.assert_oauth_error(
            self.token_request(
                {**form, "client_secret": "secret"}, headers=[basic_auth(client.id, "secret")]
            ),
            400,
            "invalid_request",
        )
        # The form's client_id differs from Basic's: invalid_grant, as MAS.
        self.assert_oauth_error(
            self.token_request({**form, "client_id": "someone"}, headers=[basic_auth(client.id, "secret")]),
            400,
            "invalid_grant",
        )
        # Wrong secret: 401 with a Basic challenge.
        channel = self.token_request(form, headers=[basic_auth(client.id, "wrong")])
        self.assert_oauth_error(channel, 401, "invalid_client")
        self.assertEqual(channel.header("WWW-Authenticate"), 'Basic realm="mas"')
        # Unknown client, in the form: 401 without a challenge.
        channel = self.token_request({**form, "client_id": "01HUNKNOWNCLIENT000000000"})
        self.assert_oauth_error(channel, 401, "invalid_client")
        self.assertIsNone(channel.header("WWW-Authenticate"))
        # A client without token_endpoint_auth_method.
        unset = self.add_client(auth_method=None)
        self.assert_oauth_error(
            self.token_request({**form, "client_id": unset.id}), 401, "unauthorized_client"
        )
        self.assertEqual(self.snapshot()["oauth2_sessions"], before["oauth2_sessions"])
        self.assertEqual(
            self.snapshot()["oauth2_authorization_grants"], before["oauth2_authorization_grants"]
        )

    def test_body_not_a_form(self) -> None:
        client = self.add_client(auth_method="client_secret_basic", secret="secret")
        before = self.snapshot()
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            json={"grant_type": "client_credentials"},
            headers=[basic_auth(client.id, "secret")],
        )
        self.assert_oauth_error(channel, 400, "invalid_request")
        # Without the header, there are no credentials.
        channel = self.make_request(
            "POST", "/oauth2/token", json={"grant_type": "client_credentials", "client_id": client.id}
        )
        self.assert_oauth_error(channel, 400, "invalid_request")
        # Wrong credentials are still found out first.
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            json={"grant_type": "client_credentials"},
            headers=[basic_auth(client.id, "nope")],
        )
        self.assert_oauth_error(channel, 401, "invalid_client")
        self.assertEqual(self.snapshot(), before)

    def test_only_post(self) -> None:
        channel = self.make_request("GET", "/oauth2/token")
        self.assertEqual(channel.code, 405)
        self.assertEqual(channel.header("Allow"), "POST")

    def test_cors(self) -> None:
        channel = self.make_request(
            "OPTIONS",
            "/oauth2/token",
            headers=[("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")],
        )
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")


class RefreshTokenGrantTestCase(OAuthTestCase):
    def refresh(self, client: Any, refresh_token: str, **extra: str) -> Any:
        return self.token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client.id, **extra}
        )

    def test_refresh(self) -> None:
        # MAS's test_refresh_token_grant.
        client = self.add_client()
        session, access, refresh = self.start_session(client)
        self.assertTrue(self.access_token_is_valid(access.access_token))
        channel = self.refresh(client, refresh.refresh_token)
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.header("Cache-Control"), "no-store")
        body = channel.json_body
        self.assertEqual(list(body), ["access_token", "refresh_token", "token_type", "expires_in", "scope"])
        self.assertEqual(body["scope"], f"openid {API_SCOPE}")
        self.assertTrue(self.access_token_is_valid(body["access_token"]))
        self.assertFalse(self.access_token_is_valid(access.access_token))
        self.assertEqual(self.session_of(body["access_token"]).id, session.id)
        old = self.get_success(self.stores.refresh_tokens.get_refresh_token(refresh.id))
        self.assertTrue(old.is_consumed)

        # The new access token is used: the old refresh token is now a replay.
        self.use_access_token(body["access_token"])
        self.assert_oauth_error(self.refresh(client, refresh.refresh_token), 400, "invalid_grant")
        # The new one works.
        self.assertEqual(self.refresh(client, body["refresh_token"]).code, 200)

    def test_double_refresh(self) -> None:
        # MAS's test_double_refresh.
        client = self.add_client()
        _, access, refresh = self.start_session(client)
        token = refresh.refresh_token

        first = self.refresh(client, token)
        self.assertEqual(first.code, 200, first.body)
        second = self.refresh(client, token)
        self.assertEqual(second.code, 200, second.body)
        first, second = first.json_body, second.json_body
        self.assertNotEqual(first["access_token"], second["access_token"])
        self.assertNotEqual(first["refresh_token"], second["refresh_token"])
        self.assertFalse(self.access_token_is_valid(first["access_token"]))
        self.assertTrue(self.access_token_is_valid(second["access_token"]))
        # The lost successor's refresh token is revoked too.
        self.assert_oauth_error(self.refresh(client, first["refresh_token"]), 400, "invalid_grant")

        # Once the newest access token is used, the original token is a replay.
        self.use_access_token(second["access_token"])
        self.assert_oauth_error(self.refresh(client, token), 400, "invalid_grant")

        # A successor that was refreshed in turn is "used" too.
        fourth = self.refresh(client, second["refresh_token"])
        self.assertEqual(fourth.code, 200, fourth.body)
        fifth = self.refresh(client, fourth.json_body["refresh_token"])
        self.assertEqual(fifth.code, 200, fifth.body)
        self.assert_oauth_error(self.refresh(client, second["refresh_token"]), 400, "invalid_grant")

        # After cleanup removed the successor's (used) access token, MAS lets the refresh through.
        fifth_access = fifth.json_body["access_token"]
        self.use_access_token(fifth_access)
        token_row = self.get_success(self.stores.access_tokens.find_access_token_by_token(fifth_access))
        self.get_success(
            self.db_pool.execute(
                "drop_access_token",
                "DELETE FROM oauth2_access_tokens WHERE oauth2_access_token_id = ?",
                token_row.id,
            )
        )
        seventh = self.refresh(client, fourth.json_body["refresh_token"])
        self.assertEqual(seventh.code, 200, seventh.body)
        self.assert_oauth_error(self.refresh(client, fifth.json_body["refresh_token"]), 400, "invalid_grant")

    def test_errors_write_nothing(self) -> None:
        client = self.add_client()
        other = self.add_client()
        no_refresh = self.add_client(grant_types=("authorization_code",))
        _, _, refresh = self.start_session(client)
        finished, _, finished_refresh = self.start_session(client)
        self.get_success(self.stores.oauth2_sessions.finish_oauth2_session(finished))
        before = self.snapshot()
        self.assert_oauth_error(self.refresh(client, "mar_unknown"), 400, "invalid_grant")
        self.assert_oauth_error(self.refresh(other, refresh.refresh_token), 400, "invalid_grant")
        self.assert_oauth_error(self.refresh(client, finished_refresh.refresh_token), 400, "invalid_grant")
        self.assert_oauth_error(self.refresh(no_refresh, refresh.refresh_token), 401, "unauthorized_client")
        self.assertEqual(self.snapshot(), before)

    def test_revoked_refresh_token(self) -> None:
        client = self.add_client()
        _, _, refresh = self.start_session(client)
        self.get_success(self.stores.refresh_tokens.revoke_refresh_token(refresh))
        before = self.snapshot()
        self.assert_oauth_error(self.refresh(client, refresh.refresh_token), 400, "invalid_grant")
        self.assertEqual(self.snapshot(), before)

    def test_unflushed_first_use_counts(self) -> None:
        # Introspection records first uses in the activity tracker before they are written.
        client = self.add_client()
        _, _, refresh = self.start_session(client)
        first = self.refresh(client, refresh.refresh_token).json_body
        new_access = self.get_success(
            self.stores.access_tokens.find_access_token_by_token(first["access_token"])
        )
        self.server.get_activity_tracker().record_access_token_used(new_access.id, self.now())
        self.assertIsNone(new_access.first_used_at)
        self.assert_oauth_error(self.refresh(client, refresh.refresh_token), 400, "invalid_grant")

    def test_activity_recorded(self) -> None:
        client = self.add_client()
        session, _, refresh = self.start_session(client)
        self.advance_s(30)
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            form={
                "grant_type": "refresh_token",
                "refresh_token": refresh.refresh_token,
                "client_id": client.id,
            },
            client_ip="192.0.2.7",
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.get_success(self.server.get_activity_tracker().flush())
        stored = self.get_success(self.stores.oauth2_sessions.get_oauth2_session(session.id))
        self.assertEqual((stored.last_active_at, stored.last_active_ip), (self.now(), "192.0.2.7"))

    def test_scope_parameter_is_ignored(self) -> None:
        client = self.add_client()
        _, _, refresh = self.start_session(client)
        body = self.refresh(client, refresh.refresh_token, scope="openid").json_body
        self.assertEqual(body["scope"], f"openid {API_SCOPE}")

    def test_user_agent_recorded(self) -> None:
        client = self.add_client()
        session, _, refresh = self.start_session(client)
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            form={
                "grant_type": "refresh_token",
                "refresh_token": refresh.refresh_token,
                "client_id": client.id,
            },
            headers=[("User-Agent", "FluffyChat/2")],
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(self.session_of(channel.json_body["access_token"]).user_agent, "FluffyChat/2")


class ClientCredentialsGrantTestCase(OAuthTestCase):
    def grant(self, client: Any, scope: str | None = None) -> Any:
        form = {"grant_type": "client_credentials", "client_id": client.id, "client_secret": "secret"}
        if scope is not None:
            form["scope"] = scope
        return self.token_request(form)

    def test_client_credentials(self) -> None:
        # MAS's test_client_credentials (first half).
        client = self.add_client(
            auth_method="client_secret_post", secret="secret", grant_types=("client_credentials",)
        )
        channel = self.grant(client)
        self.assertEqual(channel.code, 200, channel.body)
        body = channel.json_body
        self.assertEqual(list(body), ["access_token", "token_type", "expires_in"])
        self.assertEqual(self.count("oauth2_refresh_tokens"), 0)
        session = self.session_of(body["access_token"])
        self.assertIsNone(session.user_id)
        self.assertIsNone(session.user_session_id)
        self.assertEqual(len(session.scope), 0)

        body = self.grant(client, "urn:mas:graphql:*").json_body
        self.assertEqual(body["scope"], "urn:mas:graphql:*")

    def test_admin_scope_needs_the_policy(self) -> None:
        client = self.add_client(
            auth_method="client_secret_post", secret="secret", grant_types=("client_credentials",)
        )
        before = self.snapshot()
        body = self.assert_oauth_error(self.grant(client, "urn:mas:admin"), 403, "invalid_scope")
        self.assertTrue(body["error_description"])
        for scope in (API_SCOPE, "urn:synapse:admin:*", "urn:matrix:client:device:ABCDEFGHIJ " + API_SCOPE):
            self.assert_oauth_error(self.grant(client, scope), 403, "invalid_scope")
        self.assertEqual(self.snapshot(), before)

    def test_client_without_the_grant_type(self) -> None:
        client = self.add_client(auth_method="client_secret_post", secret="secret")
        before = self.snapshot()
        self.assert_oauth_error(self.grant(client), 401, "unauthorized_client")
        self.assertEqual(self.snapshot(), before)


class AdminClientCredentialsTestCase(OAuthTestCase):
    ADMIN_CLIENT = "01HQW90Z35CMXFJWQPHC3BGZGQ"

    @override_config({"policy": {"data": {"admin_clients": [ADMIN_CLIENT]}}})
    def test_admin_client(self) -> None:
        # MAS's test_client_credentials (second half): listed in admin_clients.
        from mas_twisted.types.clients import OAuth2Client

        client = OAuth2Client(
            id=self.ADMIN_CLIENT,
            encrypted_client_secret=self.server.get_encrypter().encrypt_to_string("secret"),
            grant_type_client_credentials=True,
            token_endpoint_auth_method="client_secret_basic",
        )
        self.get_success(self.stores.oauth2_clients.add_oauth2_client(client))
        channel = self.token_request(
            {"grant_type": "client_credentials", "scope": "urn:mas:admin"},
            headers=[basic_auth(client.id, "secret")],
        )
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.json_body["scope"], "urn:mas:admin")
        self.assertNotIn("refresh_token", channel.json_body)


class DeviceCodeGrantTestCase(OAuthTestCase):
    def poll(self, client: Any, device_code: str) -> Any:
        return self.token_request(
            {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client.id}
        )

    def test_device_code_grant(self) -> None:
        # MAS's test_device_code_grant.
        client = self.add_client(grant_types=(DEVICE_GRANT, "refresh_token"))
        grant = self.add_device_grant(client)
        before = self.snapshot()
        self.assert_oauth_error(self.poll(client, grant.device_code), 403, "authorization_pending")
        self.assertEqual(self.snapshot(), before)

        self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser_session.id, "en")
        )
        channel = self.poll(client, grant.device_code)
        self.assertEqual(channel.code, 200, channel.body)
        self.assertEqual(channel.header("Cache-Control"), "no-store")
        body = channel.json_body
        self.assertTrue(self.access_token_is_valid(body["access_token"]))
        self.assertIn("refresh_token", body)
        self.assertEqual(body["scope"], f"openid {API_SCOPE}")
        _, claims = verify(self.server, body["id_token"])
        self.assertEqual(claims["sub"], self.user.id)
        self.assertEqual(claims["at_hash"], token_hash("RS256", body["access_token"]))
        self.assertNotIn("auth_time", claims)
        self.assertNotIn("nonce", claims)
        self.assertNotIn("c_hash", claims)
        session = self.session_of(body["access_token"])
        self.assertEqual((session.user_id, session.user_session_id), (self.user.id, self.browser_session.id))

        before = self.snapshot()
        self.assert_oauth_error(self.poll(client, grant.device_code), 400, "invalid_grant")
        self.assertEqual(self.snapshot(), before)

    def test_expired(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        grant = self.add_device_grant(client)
        self.assert_oauth_error(self.poll(client, grant.device_code), 403, "authorization_pending")
        self.advance_s(3600)
        before = self.snapshot()
        self.assert_oauth_error(self.poll(client, grant.device_code), 403, "expired_token")
        self.assertEqual(self.snapshot(), before)

    def test_rejected(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        grant = self.add_device_grant(client)
        self.get_success(
            self.stores.device_code_grants.reject_device_code_grant(grant, self.browser_session.id)
        )
        before = self.snapshot()
        self.assert_oauth_error(self.poll(client, grant.device_code), 403, "access_denied")
        self.assertEqual(self.snapshot(), before)

    def test_no_refresh_token_without_the_refresh_grant_and_no_scope_when_empty(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        grant = self.add_device_grant(client, scope="")
        self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser_session.id)
        )
        body = self.poll(client, grant.device_code).json_body
        self.assertEqual(list(body), ["access_token", "token_type", "expires_in"])
        self.assertEqual(self.count("oauth2_refresh_tokens"), 0)

    def test_errors(self) -> None:
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        other = self.add_client(grant_types=(DEVICE_GRANT,))
        not_allowed = self.add_client(grant_types=("authorization_code",))
        grant = self.add_device_grant(client)
        self.get_success(
            self.stores.device_code_grants.fulfill_device_code_grant(grant, self.browser_session.id)
        )
        before = self.snapshot()
        self.assert_oauth_error(self.poll(client, "nosuchdevicecode"), 400, "invalid_grant")
        self.assert_oauth_error(self.poll(other, grant.device_code), 400, "invalid_grant")
        self.assert_oauth_error(self.poll(not_allowed, grant.device_code), 401, "unauthorized_client")
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.poll(client, grant.device_code).code, 200)

    @override_config({"oauth": {"device_code_grant_enabled": False}})
    def test_disabled(self) -> None:
        # MAS's test_device_code_grant_disabled.
        client = self.add_client(grant_types=(DEVICE_GRANT,))
        before = self.snapshot()
        self.assert_oauth_error(self.poll(client, "fake-device-code"), 400, "unsupported_grant_type")
        self.assertEqual(self.snapshot(), before)
