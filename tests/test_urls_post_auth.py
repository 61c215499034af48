# SPDX-License-Identifier: AGPL-3.0-only
"""Post-authentication actions (MAS's ``PostAuthAction`` and its ``go_next``)."""

from __future__ import annotations

from types import SimpleNamespace

from mas_twisted.urls import PostAuthAction, UrlBuilder, go_next, login_url, post_auth_redirect

ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def url_builder(public_base: str = "https://auth.example.com/") -> UrlBuilder:
    return UrlBuilder(SimpleNamespace(public_base=public_base, issuer=public_base))  # type: ignore[arg-type]


def test_targets() -> None:
    assert post_auth_redirect("continue_authorization_grant", ID) == f"/consent/{ID}"
    assert post_auth_redirect("continue_device_code_grant", ID) == f"/device/{ID}"
    assert post_auth_redirect("continue_compat_sso_login", ID) == f"/complete-compat-sso/{ID}"
    assert post_auth_redirect("link_upstream", ID) == f"/upstream/link/{ID}"
    assert post_auth_redirect("change_password", None) == "/account/password/change"
    assert post_auth_redirect("manage_account", None) == "/account/"
    assert post_auth_redirect(None, None) == "/"


def test_under_a_prefix() -> None:
    builder = url_builder("https://example.com/auth/")
    assert (
        post_auth_redirect("continue_authorization_grant", ID, url_builder=builder) == f"/auth/consent/{ID}"
    )
    assert go_next(None, builder) == "/auth/"
    action = PostAuthAction.from_params({"kind": "continue_authorization_grant", "id": ID})
    assert login_url(builder, action) == f"/auth/login?kind=continue_authorization_grant&id={ID}"
    assert (
        login_url(builder, action, "mxid:@a:b")
        == f"/auth/login?kind=continue_authorization_grant&id={ID}&login_hint=mxid%3A%40a%3Ab"
    )
    assert login_url(builder) == "/auth/login"


def test_invalid_actions_are_dropped() -> None:
    assert PostAuthAction.from_params({}) is None
    assert PostAuthAction.from_params({"kind": "format_disk", "id": ID}) is None
    assert PostAuthAction.from_params({"kind": "continue_authorization_grant"}) is None
    assert PostAuthAction.from_params({"kind": "continue_authorization_grant", "id": "not-a-ulid"}) is None
    # A lower-case ULID is the same id.
    action = PostAuthAction.from_params({"kind": "continue_authorization_grant", "id": ID.lower()})
    assert action is not None and action.id == ID
    assert post_auth_redirect("continue_authorization_grant", "nope") == "/"


def test_manage_account_actions() -> None:
    action = PostAuthAction.from_params(
        {"kind": "manage_account", "action": "org.matrix.device_view", "device_id": "ABC DEF"}
    )
    assert action is not None
    assert action.path() == "/account/?action=org.matrix.device_view&device_id=ABC+DEF"
    assert action.to_params() == {
        "kind": "manage_account",
        "action": "org.matrix.device_view",
        "device_id": "ABC DEF",
    }
    profile = PostAuthAction.from_params(
        {"kind": "manage_account", "action": "org.matrix.profile", "device_id": "X"}
    )
    assert profile is not None and profile.path() == "/account/?action=org.matrix.profile"
    # An unknown action, or one missing its device, keeps only the account page.
    for params in ({"action": "delete_everything"}, {"action": "org.matrix.device_delete"}):
        plain = PostAuthAction.from_params({"kind": "manage_account", **params})
        assert plain == PostAuthAction(kind="manage_account")
        assert plain.path() == "/account/"


def test_round_trip_through_params() -> None:
    for action in (
        PostAuthAction(kind="continue_device_code_grant", id=ID),
        PostAuthAction(kind="change_password"),
        PostAuthAction(kind="manage_account", account_action="org.matrix.session_end", device_id="D"),
    ):
        assert PostAuthAction.from_params(action.to_params()) == action
        assert PostAuthAction.from_params({k: [v] for k, v in action.to_params().items()}) == action
