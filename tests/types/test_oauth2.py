# SPDX-License-Identifier: AGPL-3.0-only
"""The OAuth 2.0 data model's state machines and row mapping (MAS ``data-model/src/oauth2``, ``tokens.rs``)."""

from __future__ import annotations

import pytest
from ulid import ULID

from mas_twisted.oauth2.scope import Scope
from mas_twisted.types.oauth2 import (
    AccessToken,
    AccessTokenIntrospection,
    AuthorizationGrant,
    DeviceCodeGrant,
    DeviceCodeGrantState,
    GrantStage,
    InvalidTransitionError,
    OAuth2Session,
    Pkce,
    RefreshToken,
    RefreshTokenState,
    TokenOwner,
    as_scope,
)
from mas_twisted.util.ulid import max_ulid_at

T0 = 1_700_000_000_000


def grant(**kwargs: object) -> AuthorizationGrant:
    values: dict[str, object] = {
        "id": "01HF7YAT3V0000000000000001",
        "client_id": "01HF7YAT3V00000000000000C1",
        "redirect_uri": "https://app.example.com/cb",
        "scope": "openid urn:matrix:client:api:*",
        "created_at": T0,
        "response_mode": "query",
        "code": "c" * 32,
    }
    values.update(kwargs)
    return AuthorizationGrant(**values)  # type: ignore[arg-type]


def device_grant(**kwargs: object) -> DeviceCodeGrant:
    values: dict[str, object] = {
        "id": "01HF7YAT3V0000000000000D01",
        "client_id": "01HF7YAT3V00000000000000C1",
        "scope": "openid",
        "user_code": "ABC123",
        "device_code": "d" * 32,
        "created_at": T0,
        "expires_at": T0 + 1_200_000,
    }
    values.update(kwargs)
    return DeviceCodeGrant(**values)  # type: ignore[arg-type]


# -- scope ----------------------------------------------------------------------------------
def test_scope_is_a_sorted_set_of_tokens() -> None:
    assert as_scope("openid  urn:matrix:client:api:* openid email").tokens == (
        "email",
        "openid",
        "urn:matrix:client:api:*",
    )
    assert as_scope(["b", "a", "b"]) == Scope(["a", "b"])
    assert as_scope(None) == Scope() and as_scope("") == Scope()
    scope = Scope(["openid"])
    assert as_scope(scope) is scope
    # Models accept any of these and keep a Scope.
    g = grant(scope=["urn:b", "openid"])
    assert isinstance(g.scope, Scope) and g.scope.has_openid
    assert g.scope_string == "openid urn:b"
    with pytest.raises(ValueError):
        as_scope(['bad"token'])


# -- authorization grants -------------------------------------------------------------------
def test_grant_lifecycle() -> None:
    pending = grant()
    assert pending.stage is GrantStage.PENDING and pending.is_pending

    fulfilled = pending.fulfill(T0 + 1000, "01BROWSER")
    assert fulfilled.stage is GrantStage.FULFILLED
    assert (fulfilled.fulfilled_at, fulfilled.user_session_id) == (T0 + 1000, "01BROWSER")
    # The original is untouched: transitions return new objects.
    assert pending.is_pending

    exchanged = fulfilled.exchange(at=T0 + 2000, session_id="01SESSION")
    assert exchanged.stage is GrantStage.EXCHANGED and exchanged.is_exchanged
    assert (exchanged.exchanged_at, exchanged.oauth2_session_id, exchanged.fulfilled_at) == (
        T0 + 2000,
        "01SESSION",
        T0 + 1000,
    )


@pytest.mark.parametrize(
    "transition",
    [
        lambda g: g.exchange(T0, "s"),  # pending cannot be exchanged
        lambda g: g.fulfill(T0, "b").fulfill(T0, "b"),  # fulfilled twice
        lambda g: g.fulfill(T0, "b").cancel(T0),  # only pending can be cancelled
        lambda g: g.fulfill(T0, "b").exchange(T0, "s").exchange(T0, "s"),  # exchanged twice
        lambda g: g.fulfill(T0, "b").exchange(T0, "s").cancel(T0),
        lambda g: g.cancel(T0).fulfill(T0, "b"),
        lambda g: g.cancel(T0).cancel(T0),
    ],
)
def test_grant_invalid_transitions(transition: object) -> None:
    with pytest.raises(InvalidTransitionError):
        transition(grant())  # type: ignore[operator]


def test_cancel_pending_grant() -> None:
    cancelled = grant().cancel(T0 + 5)
    assert cancelled.stage is GrantStage.CANCELLED and cancelled.cancelled_at == T0 + 5


def test_grant_rejects_inconsistent_state() -> None:
    with pytest.raises(ValueError):
        grant(fulfilled_at=T0)  # no browser session
    with pytest.raises(ValueError):
        grant(fulfilled_at=T0, user_session_id="b", exchanged_at=T0)  # no session
    with pytest.raises(ValueError):
        grant(code=None, pkce=Pkce("S256", "x"))


def test_grant_row_round_trip() -> None:
    original = grant(
        pkce=Pkce("S256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        state="xyz",
        nonce="n-0S6_WzA2Mj",
        response_type_id_token=True,
        login_hint="mxid:@alice:example.com",
        locale="fr",
        raw_parameters={"client_id": "c", "prompt": "consent"},
    ).fulfill(T0 + 1, "01BROWSER")
    row = original.to_row()
    assert row["scope"] == "openid urn:matrix:client:api:*"
    assert row["response_type_code"] is True
    assert row["code_challenge_method"] == "S256"
    assert row["raw_parameters"] == '{"client_id":"c","prompt":"consent"}'
    assert AuthorizationGrant.from_row([row[c] for c in AuthorizationGrant.COLUMNS]) == original

    id_token_only = grant(code=None, response_mode="fragment", response_type_id_token=True)
    row = id_token_only.to_row()
    assert row["response_type_code"] is False and row["authorization_code"] is None
    # SQLite hands booleans back as 0/1.
    values = [int(v) if isinstance(v, bool) else v for v in (row[c] for c in AuthorizationGrant.COLUMNS)]
    restored = AuthorizationGrant.from_row(values)
    assert restored == id_token_only and restored.response_type_id_token is True and restored.pkce is None


# -- device code grants ---------------------------------------------------------------------
def test_device_grant_lifecycle() -> None:
    pending = device_grant()
    assert pending.state is DeviceCodeGrantState.PENDING
    fulfilled = pending.fulfill(T0 + 10, "01BROWSER", locale="de")
    assert fulfilled.state is DeviceCodeGrantState.FULFILLED and fulfilled.locale == "de"
    exchanged = fulfilled.exchange(T0 + 20, "01SESSION")
    assert exchanged.state is DeviceCodeGrantState.EXCHANGED
    assert (exchanged.user_session_id, exchanged.oauth2_session_id, exchanged.fulfilled_at) == (
        "01BROWSER",
        "01SESSION",
        T0 + 10,
    )

    rejected = pending.reject(T0 + 10, "01BROWSER")
    assert rejected.state is DeviceCodeGrantState.REJECTED and rejected.is_rejected
    for transition in (
        lambda: rejected.fulfill(T0, "b"),
        lambda: rejected.exchange(T0, "s"),
        lambda: rejected.reject(T0, "b"),
        lambda: fulfilled.reject(T0, "b"),
        lambda: fulfilled.fulfill(T0, "b"),
        lambda: pending.exchange(T0, "s"),
        lambda: exchanged.exchange(T0, "s"),
    ):
        with pytest.raises(InvalidTransitionError):
            transition()


def test_device_grant_expiry_and_rows() -> None:
    g = device_grant(ip_address="192.0.2.1", user_agent="curl/8")
    assert not g.is_expired(g.expires_at)
    assert g.is_expired(g.expires_at + 1)
    row = g.to_row()
    assert DeviceCodeGrant.from_row([row[c] for c in DeviceCodeGrant.COLUMNS]) == g


# -- sessions and tokens --------------------------------------------------------------------
def test_session_finish_once() -> None:
    session = OAuth2Session(id="s", client_id="c", scope=["openid"], created_at=T0)
    assert session.is_valid and session.user_id is None
    finished = session.finish(T0 + 1)
    assert finished.is_finished and finished.finished_at == T0 + 1
    with pytest.raises(InvalidTransitionError):
        finished.finish(T0 + 2)
    row = finished.to_row()
    assert row["scope_list"] == '["openid"]'
    assert OAuth2Session.from_row([row[c] for c in OAuth2Session.COLUMNS]) == finished


def test_access_token_validity() -> None:
    token = AccessToken(id="a", session_id="s", access_token="mat_x", created_at=T0, expires_at=T0 + 300_000)
    assert token.is_valid(T0 + 300_000)  # MAS: expired only once expires_at < now
    assert not token.is_valid(T0 + 300_001) and token.is_expired(T0 + 300_001)
    revoked = token.revoke(T0 + 1)
    assert not revoked.is_valid(T0 + 2) and revoked.is_revoked
    with pytest.raises(InvalidTransitionError):
        revoked.revoke(T0 + 3)
    forever = AccessToken(id="b", session_id="s", access_token="mat_y", created_at=T0)
    assert forever.is_valid(T0 + 10**12)

    used = token.mark_used(T0 + 5)
    assert used.is_used and used.mark_used(T0 + 9).first_used_at == T0 + 5
    assert token.jti == "a"
    row = used.to_row()
    assert AccessToken.from_row([row[c] for c in AccessToken.COLUMNS]) == used


def test_refresh_token_states() -> None:
    token = RefreshToken(id="r1", session_id="s", refresh_token="mar_x", created_at=T0, access_token_id="a1")
    assert token.state is RefreshTokenState.VALID
    consumed = token.consume(T0 + 1, "r2")
    assert consumed.state is RefreshTokenState.CONSUMED and consumed.next_refresh_token_id == "r2"
    # A consumed token may be consumed again (double refresh), moving its successor.
    again = consumed.consume(T0 + 2, "r3")
    assert (again.consumed_at, again.next_refresh_token_id) == (T0 + 2, "r3")
    with pytest.raises(InvalidTransitionError):
        consumed.revoke(T0 + 3)
    revoked = token.revoke(T0 + 3)
    assert revoked.state is RefreshTokenState.REVOKED
    with pytest.raises(InvalidTransitionError):
        revoked.consume(T0 + 4, "r4")
    with pytest.raises(InvalidTransitionError):
        revoked.revoke(T0 + 4)
    row = again.to_row()
    assert RefreshToken.from_row([row[c] for c in RefreshToken.COLUMNS]) == again
    with pytest.raises(ValueError):
        RefreshToken(id="r", session_id="s", refresh_token="t", created_at=T0, consumed_at=T0, revoked_at=T0)


def test_introspection_activity_rule() -> None:
    session = OAuth2Session(id="s", client_id="c", scope="openid", created_at=T0, user_id="u")
    token = AccessToken(id="a", session_id="s", access_token="mat_x", created_at=T0, expires_at=T0 + 10)
    alice = TokenOwner(user_id="u", username="alice")
    assert AccessTokenIntrospection(token, session, alice).is_active(T0)
    assert not AccessTokenIntrospection(token, session, alice).is_active(T0 + 11)
    assert not AccessTokenIntrospection(token, session.finish(T0), alice).is_active(T0)
    assert not AccessTokenIntrospection(token, session, TokenOwner("u", "alice", locked_at=T0)).is_active(T0)
    assert not AccessTokenIntrospection(
        token, session, TokenOwner("u", "alice", deactivated_at=T0)
    ).is_active(T0)
    assert AccessTokenIntrospection(token, session, None).is_active(T0)


def test_max_ulid_at_bounds_ids_created_by_then() -> None:
    bound = max_ulid_at(T0)
    assert len(bound) == 26 and ULID.from_str(bound).milliseconds == T0
    assert str(ULID.from_timestamp(T0 / 1000)) <= bound
    assert str(ULID.from_timestamp((T0 + 1) / 1000)) > bound
    with pytest.raises(ValueError):
        max_ulid_at(-1)
