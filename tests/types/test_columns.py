# SPDX-License-Identifier: AGPL-3.0-only
"""The row mapper of :mod:`mas_twisted.types.columns`: the models' columns (whose order the
stores' ``SELECT``s and the introspection reader's row split rely on), and what
``from_row``/``to_row`` generate."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.columns import BOOL, INT, JSON, Codec, Row, column, mapped
from mas_twisted.types.compat import CompatAccessToken, CompatRefreshToken, CompatSession, CompatSsoLogin
from mas_twisted.types.oauth2 import (
    AccessToken,
    AuthorizationGrant,
    DeviceCodeGrant,
    OAuth2Session,
    Pkce,
    RefreshToken,
)
from mas_twisted.types.queue import QueueJob
from mas_twisted.types.upstream import UpstreamOAuthProvider
from mas_twisted.types.users import (
    BrowserSession,
    BrowserSessionAuthentication,
    User,
    UserEmail,
    UserPassword,
)

#: Each model's columns as the hand-written ``COLUMNS`` listed them (588e9ff).
EXPECTED_COLUMNS: dict[type, tuple[str, ...]] = {
    AuthorizationGrant: (
        "oauth2_authorization_grant_id",
        "oauth2_client_id",
        "redirect_uri",
        "scope",
        "created_at",
        "response_mode",
        "response_type_code",
        "authorization_code",
        "code_challenge_method",
        "code_challenge",
        "state",
        "nonce",
        "response_type_id_token",
        "login_hint",
        "locale",
        "raw_parameters",
        "fulfilled_at",
        "exchanged_at",
        "cancelled_at",
        "user_session_id",
        "oauth2_session_id",
    ),
    DeviceCodeGrant: (
        "oauth2_device_code_grant_id",
        "oauth2_client_id",
        "scope",
        "user_code",
        "device_code",
        "created_at",
        "expires_at",
        "ip_address",
        "user_agent",
        "locale",
        "fulfilled_at",
        "rejected_at",
        "exchanged_at",
        "user_session_id",
        "oauth2_session_id",
    ),
    OAuth2Session: (
        "oauth2_session_id",
        "oauth2_client_id",
        "scope_list",
        "created_at",
        "user_id",
        "user_session_id",
        "finished_at",
        "user_agent",
        "last_active_at",
        "last_active_ip",
        "human_name",
    ),
    AccessToken: (
        "oauth2_access_token_id",
        "oauth2_session_id",
        "access_token",
        "created_at",
        "expires_at",
        "revoked_at",
        "first_used_at",
    ),
    RefreshToken: (
        "oauth2_refresh_token_id",
        "oauth2_session_id",
        "refresh_token",
        "created_at",
        "oauth2_access_token_id",
        "consumed_at",
        "revoked_at",
        "next_oauth2_refresh_token_id",
    ),
    User: (
        "user_id",
        "username",
        "created_at",
        "locked_at",
        "deactivated_at",
        "can_request_admin",
        "is_guest",
    ),
    UserPassword: (
        "user_password_id",
        "user_id",
        "hashed_password",
        "version",
        "created_at",
        "upgraded_from_id",
    ),
    UserEmail: ("user_email_id", "user_id", "email", "created_at"),
    BrowserSession: (
        "user_session_id",
        "user_id",
        "created_at",
        "finished_at",
        "user_agent",
        "last_active_at",
        "last_active_ip",
    ),
    BrowserSessionAuthentication: (
        "user_session_authentication_id",
        "user_session_id",
        "created_at",
        "user_password_id",
        "upstream_oauth_authorization_session_id",
        # Added by sql/delta/01/90_user_totp.sql (issue 18).
        "second_factor",
    ),
    CompatSession: (
        "compat_session_id",
        "user_id",
        "device_id",
        "created_at",
        "user_session_id",
        "is_synapse_admin",
        "finished_at",
        "last_active_at",
        "last_active_ip",
        "user_agent",
        "human_name",
    ),
    CompatAccessToken: (
        "compat_access_token_id",
        "compat_session_id",
        "access_token",
        "created_at",
        "expires_at",
    ),
    CompatRefreshToken: (
        "compat_refresh_token_id",
        "compat_session_id",
        "compat_access_token_id",
        "refresh_token",
        "created_at",
        "consumed_at",
    ),
    CompatSsoLogin: (
        "compat_sso_login_id",
        "redirect_uri",
        "login_token",
        "created_at",
        "user_session_id",
        "compat_session_id",
        "fulfilled_at",
        "exchanged_at",
    ),
    OAuth2Client: (
        "oauth2_client_id",
        "encrypted_client_secret",
        "redirect_uris",
        "grant_type_authorization_code",
        "grant_type_refresh_token",
        "grant_type_client_credentials",
        "grant_type_device_code",
        "client_name",
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "jwks_uri",
        "jwks",
        "id_token_signed_response_alg",
        "userinfo_signed_response_alg",
        "token_endpoint_auth_method",
        "token_endpoint_auth_signing_alg",
        "initiate_login_uri",
        "application_type",
        "contacts",
        "post_logout_redirect_uris",
        "is_static",
        "metadata_digest",
        "created_at",
    ),
    QueueJob: (
        "queue_job_id",
        "queue_name",
        "status",
        "payload",
        "metadata",
        "attempt",
        "created_at",
        "scheduled_at",
        "started_at",
        "started_by",
        "completed_at",
        "failed_at",
        "failed_reason",
        "next_attempt_id",
        "schedule_name",
    ),
    UpstreamOAuthProvider: (
        "upstream_oauth_provider_id",
        "issuer",
        "human_name",
        "brand_name",
        "scope",
        "client_id",
        "encrypted_client_secret",
        "token_endpoint_signing_alg",
        "token_endpoint_auth_method",
        "id_token_signed_response_alg",
        "userinfo_signed_response_alg",
        "discovery_mode",
        "pkce_mode",
        "response_mode",
        "fetch_userinfo",
        "authorization_endpoint_override",
        "token_endpoint_override",
        "userinfo_endpoint_override",
        "jwks_uri_override",
        "claims_imports",
        "additional_parameters",
        "forward_login_hint",
        "on_backchannel_logout",
        "registration_token_required",
        "ui_order",
        "created_at",
        "disabled_at",
    ),
}


@pytest.mark.parametrize("model", list(EXPECTED_COLUMNS), ids=lambda m: m.__name__)
def test_columns_unchanged(model: type) -> None:
    assert EXPECTED_COLUMNS[model] == model.COLUMNS  # type: ignore[attr-defined]


def _pair_from_columns(low: Any, high: Any) -> tuple[int, int] | None:
    return None if low is None else (int(low), int(high))


def _pair_to_columns(pair: tuple[int, int] | None) -> tuple[int | None, int | None]:
    return (None, None) if pair is None else pair


@mapped
@attrs.frozen
class Thing(Row):
    id: str = attrs.field(metadata=column("thing_id"))
    count: int = attrs.field(metadata=column(codec=INT))
    range: tuple[int, int] | None = attrs.field(
        metadata=column("range_low", "range_high", codec=Codec(_pair_from_columns, _pair_to_columns))
    )
    enabled: bool = attrs.field(default=False, metadata=column(codec=BOOL))
    data: Any = attrs.field(default=None, metadata=column(codec=JSON))
    note: str | None = None


def test_mapped_columns_follow_the_fields() -> None:
    assert Thing.COLUMNS == ("thing_id", "count", "range_low", "range_high", "enabled", "data", "note")


def test_mapped_from_row_reads_through_the_codecs() -> None:
    thing = Thing.from_row(("t", "3", "1", "2", 1, '{"b":1,"a":[2]}', None))
    assert thing == Thing(id="t", count=3, range=(1, 2), enabled=True, data={"a": [2], "b": 1})
    assert type(thing.enabled) is bool
    assert Thing.from_row(("t", 0, None, None, 0, None, "n")) == Thing(id="t", count=0, range=None, note="n")


def test_mapped_to_row_writes_every_column_in_order() -> None:
    row = Thing(id="t", count=3, range=(1, 2), enabled=True, data={"b": 1, "a": 2}).to_row()
    assert list(row) == list(Thing.COLUMNS)
    assert row == {
        "thing_id": "t",
        "count": 3,
        "range_low": 1,
        "range_high": 2,
        "enabled": True,
        "data": '{"a":2,"b":1}',
        "note": None,
    }
    assert Thing.from_row([row[c] for c in Thing.COLUMNS]) == Thing(
        id="t", count=3, range=(1, 2), enabled=True, data={"a": 2, "b": 1}
    )


def test_mapped_from_row_wants_every_column() -> None:
    with pytest.raises(ValueError):
        Thing.from_row(("t", 3))


def test_mapped_without_to_row() -> None:
    @mapped(to_row=False)
    @attrs.frozen
    class ReadOnly(Row):
        id: str = attrs.field(metadata=column("read_only_id"))

    assert ReadOnly.COLUMNS == ("read_only_id",)
    assert ReadOnly.from_row(("x",)) == ReadOnly(id="x")
    assert not hasattr(ReadOnly, "to_row")


def test_a_field_over_several_columns_needs_a_codec() -> None:
    with pytest.raises(TypeError, match="needs a codec"):

        @mapped
        @attrs.frozen
        class Broken(Row):
            pair: Any = attrs.field(metadata=column("a", "b"))


def test_models_round_trip() -> None:
    grant = AuthorizationGrant(
        id="g",
        client_id="c",
        redirect_uri="https://client.example/cb",
        scope="openid email",
        created_at=1,
        response_mode="query",
        code="code",
        pkce=Pkce("S256", "challenge"),
        raw_parameters={"b": "1", "a": "2"},
    )
    row = grant.to_row()
    assert row["response_type_code"] is True
    assert (row["code_challenge_method"], row["code_challenge"]) == ("S256", "challenge")
    assert AuthorizationGrant.from_row([row[c] for c in AuthorizationGrant.COLUMNS]) == grant
    no_code = attrs.evolve(grant, code=None, pkce=None)
    row = no_code.to_row()
    assert (row["response_type_code"], row["authorization_code"], row["code_challenge"]) == (
        False,
        None,
        None,
    )
    assert AuthorizationGrant.from_row([row[c] for c in AuthorizationGrant.COLUMNS]) == no_code
