# SPDX-License-Identifier: AGPL-3.0-only
"""The ``experimental`` section: token lifetimes and opt-in features.

MAS behaviour (``crates/config/src/sections/experimental.rs``): ``access_token_ttl`` and
``compat_token_ttl`` in seconds (default 300, documented range 60–86400);
``inactive_session_expiration`` {``ttl`` in seconds (600–7776000, required),
``expire_compat_sessions``, ``expire_oauth_sessions``, ``expire_user_sessions`` (all default
true)} finishes sessions idle for longer than ``ttl``; ``plan_management_iframe_uri`` is
passed through to the account page untouched; ``session_limit`` {``soft_limit``,
``hard_limit`` (positive, hard ≥ soft), ``max_session_threshold`` (optional, positive),
``dangerous_hard_limit_eviction`` (default false; needs hard_limit ≥ 2)} caps the number of
sessions per user.

``mfa`` is ours (MAS 1.22 has no second factor; issue 18): {``enabled`` (default false) shows
the account page's "Two-factor" tab and asks users who enrolled for a TOTP code after their
password; ``totp_issuer`` (default: the homeserver name) is the issuer an authenticator app
shows; ``require`` (``none``, ``admins`` or ``all``; default ``none``) is read and kept for
later work and enforces nothing yet; ``allow_compat_password_login`` (default false) lets
users with a second factor keep using ``m.login.password`` on the compatibility ``/login``,
which otherwise refuses them (M_FORBIDDEN) because it cannot ask for the code}.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from mas_twisted.api.errors import format_path
from mas_twisted.config._base import Config, JsonDict, Reader

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_TTL = 300
TOKEN_TTL_MIN = 60
TOKEN_TTL_MAX = 86400
INACTIVE_TTL_MIN = 600
INACTIVE_TTL_MAX = 7_776_000
_U64_MAX = 2**64 - 1


def _documented_range(r: Reader, key: str, value: int, low: int, high: int) -> int:
    """MAS documents these ranges in its schema but does not enforce them when loading, so a
    value outside them still loads (an operator's config must load unchanged); we warn."""
    if not low <= value <= high:
        logger.warning(
            "%s is %d, outside the documented range %d-%d", format_path(r.at(key)), value, low, high
        )
    return value


@attrs.frozen
class InactiveSessionExpiration:
    """``experimental.inactive_session_expiration``."""

    ttl: int
    expire_compat_sessions: bool = True
    expire_oauth_sessions: bool = True
    expire_user_sessions: bool = True

    @classmethod
    def parse(cls, r: Reader) -> InactiveSessionExpiration:
        return cls(
            ttl=_documented_range(
                r, "ttl", r.int("ttl", required=True, min=0), INACTIVE_TTL_MIN, INACTIVE_TTL_MAX
            ),
            expire_compat_sessions=r.bool("expire_compat_sessions", True),
            expire_oauth_sessions=r.bool("expire_oauth_sessions", True),
            expire_user_sessions=r.bool("expire_user_sessions", True),
        )


@attrs.frozen
class SessionLimit:
    """``experimental.session_limit``."""

    soft_limit: int
    hard_limit: int
    max_session_threshold: int | None = None
    dangerous_hard_limit_eviction: bool = False

    @classmethod
    def parse(cls, r: Reader) -> SessionLimit:
        limit = cls(
            soft_limit=r.int("soft_limit", required=True, min=1, max=_U64_MAX),
            hard_limit=r.int("hard_limit", required=True, min=1, max=_U64_MAX),
            max_session_threshold=r.int("max_session_threshold", None, min=1, max=_U64_MAX),
            dangerous_hard_limit_eviction=r.bool("dangerous_hard_limit_eviction", False),
        )
        if limit.hard_limit < limit.soft_limit:
            raise r.error(
                "hard_limit",
                f"must be greater than or equal to soft_limit ({limit.soft_limit}), got {limit.hard_limit}",
            )
        if limit.dangerous_hard_limit_eviction and limit.hard_limit < 2:
            raise r.error(
                "hard_limit",
                f"must be at least 2 when dangerous_hard_limit_eviction is true, got {limit.hard_limit}",
            )
        return limit


MFA_REQUIRE_CHOICES = ("none", "admins", "all")


@attrs.frozen
class MfaConfig:
    """``experimental.mfa``."""

    enabled: bool = False
    #: The issuer shown by authenticator apps; ``None`` means the homeserver's name.
    totp_issuer: str | None = None
    #: Who must enrol (not enforced yet: read so that configs can say it).
    require: str = "none"
    allow_compat_password_login: bool = False

    @classmethod
    def parse(cls, r: Reader) -> MfaConfig:
        return cls(
            enabled=r.bool("enabled", False),
            totp_issuer=r.str("totp_issuer", None, allow_empty=False),
            require=r.enum("require", MFA_REQUIRE_CHOICES, "none"),
            allow_compat_password_login=r.bool("allow_compat_password_login", False),
        )


class ExperimentalConfig(Config):
    """``config.experimental``."""

    section = "experimental"

    #: Lifetime of OAuth 2.0 access tokens, in seconds.
    access_token_ttl: int
    #: Lifetime of compatibility (``/_matrix/client/*/login``) access tokens, in seconds.
    compat_token_ttl: int
    inactive_session_expiration: InactiveSessionExpiration | None
    plan_management_iframe_uri: str | None
    session_limit: SessionLimit | None
    #: The TOTP second factor (ours; off unless configured).
    mfa: MfaConfig

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.access_token_ttl = _documented_range(
            r,
            "access_token_ttl",
            r.int("access_token_ttl", DEFAULT_TOKEN_TTL, min=0),
            TOKEN_TTL_MIN,
            TOKEN_TTL_MAX,
        )
        self.compat_token_ttl = _documented_range(
            r,
            "compat_token_ttl",
            r.int("compat_token_ttl", DEFAULT_TOKEN_TTL, min=0),
            TOKEN_TTL_MIN,
            TOKEN_TTL_MAX,
        )
        self.inactive_session_expiration = (
            InactiveSessionExpiration.parse(r.child("inactive_session_expiration"))
            if r.has("inactive_session_expiration")
            else None
        )
        self.plan_management_iframe_uri = r.str("plan_management_iframe_uri")
        self.session_limit = SessionLimit.parse(r.child("session_limit")) if r.has("session_limit") else None
        self.mfa = MfaConfig.parse(r.child("mfa")) if r.has("mfa") else MfaConfig()

    def to_dict(self) -> dict[str, Any]:
        """What differs from MAS's defaults (MAS skips default lifetimes and unset features)."""
        out: dict[str, Any] = {}
        if self.access_token_ttl != DEFAULT_TOKEN_TTL:
            out["access_token_ttl"] = self.access_token_ttl
        if self.compat_token_ttl != DEFAULT_TOKEN_TTL:
            out["compat_token_ttl"] = self.compat_token_ttl
        if self.inactive_session_expiration is not None:
            out["inactive_session_expiration"] = attrs.asdict(self.inactive_session_expiration)
        if self.plan_management_iframe_uri is not None:
            out["plan_management_iframe_uri"] = self.plan_management_iframe_uri
        if self.session_limit is not None:
            # MAS prints max_session_threshold even when unset (as null).
            out["session_limit"] = attrs.asdict(self.session_limit)
        if self.mfa != MfaConfig():
            out["mfa"] = {k: v for k, v in attrs.asdict(self.mfa).items() if v is not None}
        return out

    def is_default(self) -> bool:
        return not self.to_dict()

    @property
    def access_token_ttl_ms(self) -> int:
        return self.access_token_ttl * 1000

    @property
    def compat_token_ttl_ms(self) -> int:
        return self.compat_token_ttl * 1000

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Settings that may change between releases.
#experimental:
#  # Lifetime of access tokens, in seconds (60 to 86400).
#  access_token_ttl: 300
#  compat_token_ttl: 300
#  # Finish sessions nobody used for `ttl` seconds (600 to 7776000).
#  inactive_session_expiration:
#    ttl: 2592000
#    expire_compat_sessions: true
#    expire_oauth_sessions: true
#    expire_user_sessions: true
#  # A TOTP second factor (ours, not in MAS): users enrol on the account page's
#  # "Two-factor" tab and are then asked for a code after their password.
#  mfa:
#    enabled: false
#    # The issuer authenticator apps show (default: the homeserver's name).
#    #totp_issuer: example.com
#    # Who must enrol: none, admins or all (read, not enforced yet).
#    require: none
#    # Let enrolled users keep using m.login.password on the compatibility /login.
#    allow_compat_password_login: false
"""
