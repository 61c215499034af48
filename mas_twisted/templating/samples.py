# SPDX-License-Identifier: AGPL-3.0-only
"""Sample contexts: representative contexts of every page, which ``mas-cli templates check``
and the template tests render (MAS's ``TemplateContext::sample``).

:data:`SAMPLES` maps each page context class of :data:`~mas_twisted.templating.context.PAGE_CONTEXTS`
to a function ``(now_ms, rng) -> [context, ...]``. The samples are drawn from ``rng`` and
stamped around ``now_ms``, so a seeded ``rng`` and a fixed time give the same renders on every
run (``templates check --stabilise``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mas_twisted.policy.model import Violation
from mas_twisted.templating.context import (
    ACCOUNT_NAV,
    AccountConnectedAccountsContext,
    AccountCrossSigningResetContext,
    AccountDeactivateContext,
    AccountEmailInUseContext,
    AccountEmailVerifyContext,
    AccountInactiveContext,
    AccountPasswordContext,
    AccountPlanContext,
    AccountProfileContext,
    AccountSessionContext,
    AccountSessionsContext,
    AccountTwoFactorContext,
    CaptchaContext,
    CompatLoginPolicyViolationContext,
    CompatSsoContext,
    ConnectedAccountRow,
    ConsentContext,
    DeviceConsentContext,
    DeviceLinkContext,
    EndSessionContext,
    ErrorContext,
    FormPostContext,
    IndexContext,
    LoginContext,
    LoginSecondFactorContext,
    MatrixUser,
    NotFoundContext,
    PageContext,
    PasswordRegisterContext,
    PersonalTokenRow,
    PersonalTokensContext,
    PolicyViolationContext,
    PostAuthContext,
    ProviderLink,
    RecoveryConsumedContext,
    RecoveryDisabledContext,
    RecoveryExpiredContext,
    RecoveryFinishContext,
    RecoveryProgressContext,
    RecoveryStartContext,
    RegisterContext,
    RegisterStepsDisplayNameContext,
    RegisterStepsEmailInUseContext,
    RegisterStepsRegistrationTokenContext,
    RegisterStepsVerifyEmailContext,
    UpstreamImportContext,
    UpstreamLinkMismatchContext,
    UpstreamRegisterContext,
    UpstreamSuggestLinkContext,
)
from mas_twisted.templating.forms import FormState
from mas_twisted.types.account import AccountProfile, AccountSession, SessionKind
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.compat import CompatSsoLogin
from mas_twisted.types.oauth2 import AuthorizationGrant, DeviceCodeGrant
from mas_twisted.types.users import BrowserSession, User, UserEmail
from mas_twisted.urls import PostAuthAction
from mas_twisted.util.ulid import make_ulid


def sample_ulid(now_ms: int, rng: random.Random) -> str:
    """A ULID for sample data: ``now_ms`` and 80 bits from ``rng``."""
    return make_ulid(now_ms, rng.getrandbits(80).to_bytes(10, "big"))


def _sample_user(now_ms: int, rng: random.Random, **changes: Any) -> User:
    return User(id=sample_ulid(now_ms, rng), username="alice", created_at=now_ms - 86_400_000, **changes)


def _sample_session(now_ms: int, rng: random.Random, user: User | None = None) -> BrowserSession:
    return BrowserSession(
        id=sample_ulid(now_ms, rng),
        user=user or _sample_user(now_ms, rng),
        created_at=now_ms - 3_600_000,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        last_active_at=now_ms,
        last_active_ip="203.0.113.7",
    )


def _sample_client(now_ms: int, rng: random.Random, *, named: bool = True) -> OAuth2Client:
    return OAuth2Client(
        id=sample_ulid(now_ms, rng),
        redirect_uris=("https://client.example.org/callback",),
        grant_type_authorization_code=True,
        grant_type_refresh_token=True,
        client_name="Example Chat" if named else None,
        client_uri="https://client.example.org/" if named else None,
        policy_uri="https://client.example.org/privacy" if named else None,
        tos_uri="https://client.example.org/terms" if named else None,
        token_endpoint_auth_method="none",
        application_type="web",
    )


_SAMPLE_CSRF = "sample-csrf-token-0123456789abcdefghijklmnopq"
_SAMPLE_SCOPE = (
    "openid urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ"
)


def login_samples(now_ms: int, rng: random.Random) -> list[LoginContext]:
    grant_action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
    return [
        LoginContext(csrf_token=_SAMPLE_CSRF),
        LoginContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState(values={"username": "alice"}).with_form_error("invalid_credentials"),
            next=PostAuthContext(action=grant_action, client_name="Example Chat"),
            providers=(
                ProviderLink(id=sample_ulid(now_ms, rng), name="Example SSO", brand_name="github"),
                ProviderLink(id=sample_ulid(now_ms, rng), name="sso.example.org"),
            ),
        ),
        LoginContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState()
            .with_field_error("username", "required")
            .with_field_error("password", "required"),
        ),
        LoginContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState(values={"username": "alice"}).with_form_error("rate_limit_exceeded"),
        ),
    ]


def consent_samples(now_ms: int, rng: random.Random) -> list[ConsentContext]:
    out: list[ConsentContext] = []
    for named, scope in ((True, _SAMPLE_SCOPE), (False, "openid urn:synapse:admin:* urn:mas:admin")):
        session = _sample_session(now_ms, rng)
        client = _sample_client(now_ms, rng, named=named)
        grant = AuthorizationGrant(
            id=sample_ulid(now_ms, rng),
            client_id=client.id,
            redirect_uri=client.redirect_uris[0],
            scope=scope,
            created_at=now_ms,
            response_mode="query",
            state="xyz",
        )
        out.append(
            ConsentContext(
                csrf_token=_SAMPLE_CSRF,
                session=session,
                client=client,
                grant=grant,
                action=PostAuthAction(kind="continue_authorization_grant", id=grant.id),
                matrix_user=MatrixUser.for_user(session.user, "example.com", "Alice" if named else None),
            )
        )
    return out


def policy_violation_samples(now_ms: int, rng: random.Random) -> list[PolicyViolationContext]:
    client = _sample_client(now_ms, rng)
    return [
        PolicyViolationContext(
            csrf_token=_SAMPLE_CSRF,
            session=_sample_session(now_ms, rng),
            client=client,
            violations=(
                Violation(msg="This client may not request administrator scopes", code="admin-scope"),
                Violation(msg="You have too many active sessions", code="too-many-sessions"),
            ),
            action=PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng)),
        )
    ]


def compat_sso_samples(now_ms: int, rng: random.Random) -> list[CompatSsoContext]:
    out: list[CompatSsoContext] = []
    for redirect_uri, display_name in (
        ("https://app.example.org/login/callback?state=1", "Alice"),
        ("io.element.app:/callback", None),
    ):
        session = _sample_session(now_ms, rng)
        login = CompatSsoLogin(
            id=sample_ulid(now_ms, rng),
            redirect_uri=redirect_uri,
            login_token="".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32)),
            created_at=now_ms,
        )
        out.append(
            CompatSsoContext(
                csrf_token=_SAMPLE_CSRF,
                session=session,
                login=login,
                action=PostAuthAction(kind="continue_compat_sso_login", id=login.id),
                matrix_user=MatrixUser.for_user(session.user, "example.com", display_name),
            )
        )
    return out


def compat_login_policy_violation_samples(
    now_ms: int, rng: random.Random
) -> list[CompatLoginPolicyViolationContext]:
    action = PostAuthAction(kind="continue_compat_sso_login", id=sample_ulid(now_ms, rng))
    return [
        CompatLoginPolicyViolationContext(
            csrf_token=_SAMPLE_CSRF,
            session=_sample_session(now_ms, rng),
            violations=(
                Violation(
                    msg="user has too many active sessions (soft limit)",
                    code="too-many-sessions",
                    need_to_remove=2,
                ),
            ),
            action=action,
        ),
        CompatLoginPolicyViolationContext(
            csrf_token=_SAMPLE_CSRF,
            session=_sample_session(now_ms, rng),
            violations=(Violation(msg="Requester [ip: 203.0.113.7] isn't allowed to do this action"),),
            action=action,
        ),
    ]


def device_link_samples(now_ms: int, rng: random.Random) -> list[DeviceLinkContext]:
    return [
        DeviceLinkContext(csrf_token=_SAMPLE_CSRF),
        DeviceLinkContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState(values={"code": "ABCDEF"}).with_field_error("code", "invalid"),
        ),
    ]


def device_consent_samples(now_ms: int, rng: random.Random) -> list[DeviceConsentContext]:
    out: list[DeviceConsentContext] = []
    decisions: tuple[dict[str, Any], ...] = ({}, {"rejected_at": now_ms}, {"fulfilled_at": now_ms})
    for changes in decisions:
        session = _sample_session(now_ms, rng)
        client = _sample_client(now_ms, rng)
        grant = DeviceCodeGrant(
            id=sample_ulid(now_ms, rng),
            client_id=client.id,
            scope=_SAMPLE_SCOPE,
            user_code="ABCDEF",
            device_code="sample-device-code",
            created_at=now_ms,
            expires_at=now_ms + 1_200_000,
            ip_address="198.51.100.4",
            user_agent="ExampleChat/1.0 (Android 14)",
            user_session_id=session.id if changes else None,
            **changes,
        )
        out.append(
            DeviceConsentContext(
                csrf_token=_SAMPLE_CSRF,
                session=session,
                client=client,
                grant=grant,
                action=PostAuthAction(kind="continue_device_code_grant", id=grant.id),
                matrix_user=MatrixUser.for_user(session.user, "example.com"),
            )
        )
    return out


def error_samples(now_ms: int, rng: random.Random) -> list[ErrorContext]:
    return [
        ErrorContext(),
        ErrorContext(
            code="invalid_request", description="The redirect_uri is not registered for this client."
        ),
        ErrorContext(description="CSRF token mismatch", details="The form was opened in another window."),
    ]


def not_found_samples(now_ms: int, rng: random.Random) -> list[NotFoundContext]:
    return [NotFoundContext(method="GET", version="HTTP/1.1", uri="/nowhere?x=<b>1</b>")]


def form_post_samples(now_ms: int, rng: random.Random) -> list[FormPostContext]:
    return [
        FormPostContext(
            redirect_uri="https://client.example.org/callback",
            params={"code": "abc123", "state": 'x"y<z'},
        ),
        FormPostContext(
            redirect_uri="https://client.example.org/callback",
            params={"error": "access_denied", "error_description": "The user denied the request."},
        ),
    ]


def account_inactive_samples(now_ms: int, rng: random.Random) -> list[AccountInactiveContext]:
    action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
    return [
        AccountInactiveContext(csrf_token=_SAMPLE_CSRF, user=_sample_user(now_ms, rng, locked_at=now_ms)),
        AccountInactiveContext(
            csrf_token=_SAMPLE_CSRF,
            user=_sample_user(now_ms, rng, deactivated_at=now_ms),
            post_logout_action=action,
        ),
        AccountInactiveContext(
            csrf_token=_SAMPLE_CSRF, user=_sample_user(now_ms, rng), post_logout_action=action
        ),
    ]


def index_samples(now_ms: int, rng: random.Random) -> list[IndexContext]:
    discovery = "https://auth.example.com/.well-known/openid-configuration"
    return [
        IndexContext(csrf_token=_SAMPLE_CSRF, discovery_url=discovery),
        IndexContext(
            csrf_token=_SAMPLE_CSRF, discovery_url=discovery, current_session=_sample_session(now_ms, rng)
        ),
    ]


def personal_tokens_samples(now_ms: int, rng: random.Random) -> list[PersonalTokensContext]:
    session = _sample_session(now_ms, rng)
    choices = (("urn:matrix:client:api:*", "Use your account on the homeserver"),)
    rows = (
        PersonalTokenRow(
            id=sample_ulid(now_ms, rng),
            human_name="Backup bot",
            scope="urn:matrix:client:api:*",
            created_at="2026-01-02 03:04 UTC",
            expires_at="2026-02-01 03:04 UTC",
            revoked_at=None,
            last_active_at="2026-01-03 10:00 UTC",
        ),
        PersonalTokenRow(
            id=sample_ulid(now_ms, rng),
            human_name="Old script",
            scope="urn:matrix:client:api:*",
            created_at="2025-01-02 03:04 UTC",
            expires_at=None,
            revoked_at="2025-06-01 00:00 UTC",
            last_active_at=None,
        ),
    )
    return [
        PersonalTokensContext(
            csrf_token=_SAMPLE_CSRF, current_session=session, scope_choices=choices, expiry_days=(1, 30)
        ),
        PersonalTokensContext(
            csrf_token=_SAMPLE_CSRF,
            current_session=session,
            tokens=rows,
            scope_choices=choices,
            expiry_days=(1, 30),
            form=FormState(values={"name": ""}).with_field_error("name", "required"),
        ),
        PersonalTokensContext(
            csrf_token=_SAMPLE_CSRF,
            current_session=session,
            tokens=rows[:1],
            scope_choices=choices,
            expiry_days=(1, 30),
            created_token="mpt_FM44zJN5qePGMLvvMXC4Ds1A3lCWc6_bJ9Wj1",
            created_name="Backup bot",
        ),
    ]


def register_samples(now_ms: int, rng: random.Random) -> list[RegisterContext]:
    action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
    provider = ProviderLink(id=sample_ulid(now_ms, rng), name="Example SSO", brand_name="google")
    return [
        RegisterContext(csrf_token=_SAMPLE_CSRF),
        RegisterContext(
            csrf_token=_SAMPLE_CSRF,
            providers=[provider],
            next=PostAuthContext(action=action, client_name="Element"),
        ),
    ]


def password_register_samples(now_ms: int, rng: random.Random) -> list[PasswordRegisterContext]:
    refused = (
        FormState.from_form({"username": "alice", "email": "alice@example.com"})
        .with_field_error("username", "exists")
        .with_field_error("email", "email domain is banned")
        .with_field_error("password", "password_too_weak")
        .with_field_error("password_confirm", "password_mismatch")
        .with_field_error("accept_terms", "required")
        .with_form_error("rate_limit_exceeded")
    )
    action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
    return [
        PasswordRegisterContext(csrf_token=_SAMPLE_CSRF),
        PasswordRegisterContext(
            csrf_token=_SAMPLE_CSRF,
            form=refused,
            next=PostAuthContext(action=action, client_name="Element"),
            captcha=CaptchaContext(
                service="hcaptcha",
                site_key="10000000-ffff-ffff-ffff-000000000001",
                script_url="https://js.hcaptcha.com/1/api.js",
                widget_class="h-captcha",
            ),
        ),
        PasswordRegisterContext(csrf_token=_SAMPLE_CSRF, email_required=False),
    ]


def registration_token_samples(
    now_ms: int, rng: random.Random
) -> list[RegisterStepsRegistrationTokenContext]:
    return [
        RegisterStepsRegistrationTokenContext(csrf_token=_SAMPLE_CSRF),
        RegisterStepsRegistrationTokenContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState.from_form({"token": "abc"}).with_field_error("token", "invalid"),
        ),
    ]


def verify_email_samples(now_ms: int, rng: random.Random) -> list[RegisterStepsVerifyEmailContext]:
    return [
        RegisterStepsVerifyEmailContext(csrf_token=_SAMPLE_CSRF, email="alice@example.com"),
        RegisterStepsVerifyEmailContext(
            csrf_token=_SAMPLE_CSRF,
            email="alice@example.com",
            form=FormState.from_form({"code": "123456"}).with_field_error("code", "code_expired"),
            resent=True,
        ),
    ]


def email_in_use_samples(now_ms: int, rng: random.Random) -> list[RegisterStepsEmailInUseContext]:
    action = PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng))
    return [
        RegisterStepsEmailInUseContext(email="alice@example.com"),
        RegisterStepsEmailInUseContext(email="alice@example.com", action=action),
    ]


def display_name_samples(now_ms: int, rng: random.Random) -> list[RegisterStepsDisplayNameContext]:
    return [
        RegisterStepsDisplayNameContext(csrf_token=_SAMPLE_CSRF),
        RegisterStepsDisplayNameContext(
            csrf_token=_SAMPLE_CSRF, form=FormState().with_field_error("display_name", "invalid")
        ),
    ]


def _sample_sessions(now_ms: int, rng: random.Random) -> list[AccountSession]:
    return [
        AccountSession(
            kind=SessionKind.BROWSER,
            id=sample_ulid(now_ms, rng),
            name="Firefox for Linux",
            created_at=now_ms - 3_600_000,
            device_description="Firefox for Linux",
            last_active_at=now_ms - 60_000,
            last_active_ip="198.51.100.7",
            is_current=True,
        ),
        AccountSession(
            kind=SessionKind.OAUTH2,
            id=sample_ulid(now_ms, rng),
            name="Element on iPhone",
            created_at=now_ms - 7_200_000,
            device_id="ABCDEFGHIJ",
            client_name="Element",
            client_id=sample_ulid(now_ms, rng),
            device_description="iPhone",
            last_active_at=now_ms - 120_000,
            last_active_ip="2001:db8::1",
            scope="openid urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ",
        ),
        AccountSession(
            kind=SessionKind.COMPAT,
            id=sample_ulid(now_ms, rng),
            name="Legacy login on Unknown device",
            created_at=now_ms - 86_400_000,
            device_id="KLMNOPQRST",
            client_name="Legacy login",
        ),
        AccountSession(
            kind=SessionKind.PERSONAL,
            id=sample_ulid(now_ms, rng),
            name="Backup bot",
            created_at=now_ms - 172_800_000,
            device_id="UVWXYZABCD",
            client_name="Personal access token",
            scope="urn:matrix:client:api:* urn:matrix:client:device:UVWXYZABCD",
            expires_at=now_ms + 86_400_000,
        ),
    ]


def account_profile_samples(now_ms: int, rng: random.Random) -> list[AccountProfileContext]:
    user = _sample_user(now_ms, rng)
    email = UserEmail(
        id=sample_ulid(now_ms, rng), user_id=user.id, email="alice@example.com", created_at=now_ms
    )
    return [
        AccountProfileContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            profile=AccountProfile(mxid="@alice:example.com", display_name="Alice", avatar_url="mxc://x/y"),
            emails=[email],
            displayname_change_allowed=True,
            account_deactivation_allowed=True,
            saved=True,
            email_change_allowed=True,
            email_required=False,
            email_notice="added",
        ),
        AccountProfileContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            profile=AccountProfile(mxid="@alice:example.com"),
            emails=[email],
            email_change_allowed=True,
            email_form=FormState.from_form({"email": "bad"}).with_field_error("email", "invalid"),
            email_notice="email_required",
        ),
        AccountProfileContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV[:2],
            profile=AccountProfile(mxid="@alice:example.com", reachable=False),
            form=FormState().with_form_error("homeserver_unavailable"),
        ),
    ]


def account_email_verify_samples(now_ms: int, rng: random.Random) -> list[AccountEmailVerifyContext]:
    user = _sample_user(now_ms, rng)
    return [
        AccountEmailVerifyContext(
            csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, email="new@example.com"
        ),
        AccountEmailVerifyContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            email="new@example.com",
            form=FormState().with_field_error("code", "invalid"),
            resent=True,
        ),
    ]


def account_email_in_use_samples(now_ms: int, rng: random.Random) -> list[AccountEmailInUseContext]:
    user = _sample_user(now_ms, rng)
    return [
        AccountEmailInUseContext(
            csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, email="taken@example.com"
        )
    ]


def account_sessions_samples(now_ms: int, rng: random.Random) -> list[AccountSessionsContext]:
    user = _sample_user(now_ms, rng)
    sessions = _sample_sessions(now_ms, rng)
    return [
        AccountSessionsContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, sessions=sessions),
        AccountSessionsContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            sessions=sessions[:1],
            browsers_only=True,
            signed_out=2,
        ),
    ]


def account_session_samples(now_ms: int, rng: random.Random) -> list[AccountSessionContext]:
    user = _sample_user(now_ms, rng)
    sessions = _sample_sessions(now_ms, rng)
    return [
        AccountSessionContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            session=s,
            action_path=f"/account/sessions/{s.id}",
        )
        for s in sessions
    ] + [
        AccountSessionContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            session=sessions[1],
            action_path="/account/devices/ABCDEFGHIJ",
            confirm_end=True,
            form=FormState().with_field_error("name", "required"),
        )
    ]


def account_password_samples(now_ms: int, rng: random.Random) -> list[AccountPasswordContext]:
    user = _sample_user(now_ms, rng)
    return [
        AccountPasswordContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV),
        AccountPasswordContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            form=FormState().with_field_error("current_password", "wrong_password"),
        ),
        AccountPasswordContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, changed=True),
    ]


_SAMPLE_QR = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="29" height="29" class="segno">'
    '<path stroke="#000" d="M4 4.5h7m1 0h1"/></svg>'
)


def account_two_factor_samples(now_ms: int, rng: random.Random) -> list[AccountTwoFactorContext]:
    user = _sample_user(now_ms, rng)
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    uri = f"otpauth://totp/example.com:{user.username}?secret={secret}&issuer=example.com"
    codes = [f"{rng.randrange(10**5):05d}-{rng.randrange(10**5):05d}" for _ in range(10)]
    base: dict[str, Any] = {"csrf_token": _SAMPLE_CSRF, "user": user, "nav": ACCOUNT_NAV}
    return [
        AccountTwoFactorContext(**base),
        AccountTwoFactorContext(**base, removed=True),
        AccountTwoFactorContext(**base, secret=secret, otpauth_uri=uri, qr_svg=_SAMPLE_QR),
        AccountTwoFactorContext(
            **base,
            secret=secret,
            otpauth_uri=uri,
            qr_svg=_SAMPLE_QR,
            form=FormState().with_field_error("code", "invalid_code"),
        ),
        AccountTwoFactorContext(**base, enrolled=True, unused_recovery_codes=10, recovery_codes=codes),
        AccountTwoFactorContext(
            **base,
            enrolled=True,
            unused_recovery_codes=3,
            form=FormState().with_field_error("password", "wrong_password"),
        ),
        AccountTwoFactorContext(
            **base, enrolled=True, form=FormState().with_form_error("rate_limit_exceeded")
        ),
    ]


def login_second_factor_samples(now_ms: int, rng: random.Random) -> list[LoginSecondFactorContext]:
    return [
        LoginSecondFactorContext(csrf_token=_SAMPLE_CSRF, username="alice"),
        LoginSecondFactorContext(
            csrf_token=_SAMPLE_CSRF,
            username="alice",
            form=FormState().with_field_error("code", "invalid_code"),
            next=PostAuthContext(
                action=PostAuthAction(kind="continue_authorization_grant", id=sample_ulid(now_ms, rng)),
                client_name="Element",
            ),
        ),
        LoginSecondFactorContext(
            csrf_token=_SAMPLE_CSRF, username="alice", form=FormState().with_form_error("rate_limit_exceeded")
        ),
    ]


def account_cross_signing_samples(now_ms: int, rng: random.Random) -> list[AccountCrossSigningResetContext]:
    user = _sample_user(now_ms, rng)
    return [
        AccountCrossSigningResetContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, outcome=outcome)
        for outcome in (None, "allowed", "failed")
    ]


def account_deactivate_samples(now_ms: int, rng: random.Random) -> list[AccountDeactivateContext]:
    user = _sample_user(now_ms, rng)
    return [
        AccountDeactivateContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV),
        AccountDeactivateContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            form=FormState().with_field_error("password", "wrong_password"),
        ),
        AccountDeactivateContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, has_password=False),
    ]


def account_plan_samples(now_ms: int, rng: random.Random) -> list[AccountPlanContext]:
    user = _sample_user(now_ms, rng)
    return [
        AccountPlanContext(
            csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, iframe_uri="https://billing.example.com/plan"
        )
    ]


def account_connected_accounts_samples(
    now_ms: int, rng: random.Random
) -> list[AccountConnectedAccountsContext]:
    user = _sample_user(now_ms, rng)
    linked = ConnectedAccountRow(
        link_id=sample_ulid(now_ms, rng),
        provider=ProviderLink(id=sample_ulid(now_ms, rng), name="Example SSO", brand_name="github"),
        account_name="alice@sso.example.org",
        linked_at=now_ms - 86_400_000,
    )
    pruned = ConnectedAccountRow(
        link_id=sample_ulid(now_ms, rng), provider=None, account_name=None, linked_at=now_ms - 172_800_000
    )
    other = ProviderLink(id=sample_ulid(now_ms, rng), name="sso.example.com")
    return [
        AccountConnectedAccountsContext(csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV),
        AccountConnectedAccountsContext(
            csrf_token=_SAMPLE_CSRF, user=user, nav=ACCOUNT_NAV, links=[linked, pruned], available=[other]
        ),
        AccountConnectedAccountsContext(
            csrf_token=_SAMPLE_CSRF,
            user=user,
            nav=ACCOUNT_NAV,
            links=[linked],
            unlinked="sso.example.com",
            last_way_in=True,
        ),
    ]


def recovery_start_samples(now_ms: int, rng: random.Random) -> list[RecoveryStartContext]:
    return [
        RecoveryStartContext(csrf_token=_SAMPLE_CSRF),
        RecoveryStartContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState.from_form({"email": "not an address"}).with_field_error("email", "invalid"),
        ),
        RecoveryStartContext(
            csrf_token=_SAMPLE_CSRF,
            form=FormState.from_form({"email": "alice@example.com"}).with_form_error("rate_limit_exceeded"),
        ),
    ]


def recovery_progress_samples(now_ms: int, rng: random.Random) -> list[RecoveryProgressContext]:
    session_id = sample_ulid(now_ms, rng)
    return [
        RecoveryProgressContext(csrf_token=_SAMPLE_CSRF, session_id=session_id, email="alice@example.com"),
        RecoveryProgressContext(
            csrf_token=_SAMPLE_CSRF, session_id=session_id, email="alice@example.com", resent=True
        ),
        RecoveryProgressContext(
            csrf_token=_SAMPLE_CSRF, session_id=session_id, email="alice@example.com", resend_failed=True
        ),
    ]


def recovery_finish_samples(now_ms: int, rng: random.Random) -> list[RecoveryFinishContext]:
    ticket = "a" * 32
    return [
        RecoveryFinishContext(csrf_token=_SAMPLE_CSRF, ticket=ticket, username="alice"),
        RecoveryFinishContext(
            csrf_token=_SAMPLE_CSRF,
            ticket=ticket,
            username="alice",
            form=FormState()
            .with_field_error("new_password", "password_too_weak")
            .with_field_error("new_password_confirm", "password_mismatch"),
        ),
        RecoveryFinishContext(csrf_token=_SAMPLE_CSRF, ticket=ticket, username="alice", done=True),
    ]


def recovery_expired_samples(now_ms: int, rng: random.Random) -> list[RecoveryExpiredContext]:
    return [
        RecoveryExpiredContext(csrf_token=_SAMPLE_CSRF, ticket="a" * 32),
        RecoveryExpiredContext(csrf_token=_SAMPLE_CSRF, ticket="a" * 32, resend_failed=True),
    ]


def recovery_consumed_samples(now_ms: int, rng: random.Random) -> list[RecoveryConsumedContext]:
    return [RecoveryConsumedContext()]


def recovery_disabled_samples(now_ms: int, rng: random.Random) -> list[RecoveryDisabledContext]:
    return [RecoveryDisabledContext()]


def end_session_samples(now_ms: int, rng: random.Random) -> list[EndSessionContext]:
    session = _sample_session(now_ms, rng)
    params = {
        "client_id": sample_ulid(now_ms, rng),
        "post_logout_redirect_uri": "https://app.example.com/bye",
    }
    return [
        EndSessionContext(csrf_token=_SAMPLE_CSRF, session=session, client_name="Example App", params=params),
        EndSessionContext(csrf_token=_SAMPLE_CSRF, session=session),
        EndSessionContext(csrf_token=_SAMPLE_CSRF),
    ]


_SAMPLE_PROVIDER = ProviderLink(id="01HQW90Z35CMXFJWQPHC3BGZGQ", name="Example IdP", brand_name="google")
_ALICE = MatrixUser(mxid="@alice:example.com", display_name="Alice")
_BOB = MatrixUser(mxid="@bob:example.com")


def upstream_register_samples(now_ms: int, rng: random.Random) -> list[UpstreamRegisterContext]:
    return [
        UpstreamRegisterContext(
            csrf_token=_SAMPLE_CSRF, provider=_SAMPLE_PROVIDER, server_name="example.com"
        ),
        UpstreamRegisterContext(
            csrf_token=_SAMPLE_CSRF,
            provider=_SAMPLE_PROVIDER,
            localpart=UpstreamImportContext(value="alice", forced=False),
            displayname=UpstreamImportContext(value="Alice", forced=False),
            email=UpstreamImportContext(value="alice@example.com", forced=True),
            form=FormState.from_form({"username": "alice"}).with_field_error("username", "exists"),
            server_name="example.com",
        ),
        UpstreamRegisterContext(
            csrf_token=_SAMPLE_CSRF,
            provider=_SAMPLE_PROVIDER,
            localpart=UpstreamImportContext(value="alice", forced=True),
            server_name="example.com",
            token_required=True,
            form=FormState().with_field_error("token", "invalid"),
        ),
    ]


def upstream_link_mismatch_samples(now_ms: int, rng: random.Random) -> list[UpstreamLinkMismatchContext]:
    return [UpstreamLinkMismatchContext(provider=_SAMPLE_PROVIDER, linked_user=_BOB, current_user=_ALICE)]


def upstream_suggest_link_samples(now_ms: int, rng: random.Random) -> list[UpstreamSuggestLinkContext]:
    return [
        UpstreamSuggestLinkContext(csrf_token=_SAMPLE_CSRF, provider=_SAMPLE_PROVIDER, current_user=_ALICE)
    ]


#: The samples of each page context (``Templates.check_render`` draws them in the order of
#: ``PAGE_CONTEXTS``, so a seeded ``rng`` gives the same samples every time).
SAMPLES: Mapping[type[PageContext], Callable[[int, random.Random], Sequence[PageContext]]] = {
    IndexContext: index_samples,
    PersonalTokensContext: personal_tokens_samples,
    LoginContext: login_samples,
    ConsentContext: consent_samples,
    PolicyViolationContext: policy_violation_samples,
    CompatSsoContext: compat_sso_samples,
    CompatLoginPolicyViolationContext: compat_login_policy_violation_samples,
    DeviceLinkContext: device_link_samples,
    DeviceConsentContext: device_consent_samples,
    AccountInactiveContext: account_inactive_samples,
    ErrorContext: error_samples,
    NotFoundContext: not_found_samples,
    FormPostContext: form_post_samples,
    RegisterContext: register_samples,
    PasswordRegisterContext: password_register_samples,
    RegisterStepsRegistrationTokenContext: registration_token_samples,
    RegisterStepsVerifyEmailContext: verify_email_samples,
    RegisterStepsEmailInUseContext: email_in_use_samples,
    RegisterStepsDisplayNameContext: display_name_samples,
    AccountProfileContext: account_profile_samples,
    AccountEmailVerifyContext: account_email_verify_samples,
    AccountEmailInUseContext: account_email_in_use_samples,
    AccountSessionsContext: account_sessions_samples,
    AccountSessionContext: account_session_samples,
    AccountPasswordContext: account_password_samples,
    AccountTwoFactorContext: account_two_factor_samples,
    LoginSecondFactorContext: login_second_factor_samples,
    AccountCrossSigningResetContext: account_cross_signing_samples,
    AccountDeactivateContext: account_deactivate_samples,
    AccountPlanContext: account_plan_samples,
    AccountConnectedAccountsContext: account_connected_accounts_samples,
    RecoveryStartContext: recovery_start_samples,
    RecoveryProgressContext: recovery_progress_samples,
    RecoveryFinishContext: recovery_finish_samples,
    RecoveryExpiredContext: recovery_expired_samples,
    RecoveryConsumedContext: recovery_consumed_samples,
    RecoveryDisabledContext: recovery_disabled_samples,
    EndSessionContext: end_session_samples,
    UpstreamRegisterContext: upstream_register_samples,
    UpstreamLinkMismatchContext: upstream_link_mismatch_samples,
    UpstreamSuggestLinkContext: upstream_suggest_link_samples,
}
