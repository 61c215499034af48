# SPDX-License-Identifier: AGPL-3.0-only
"""Registrations in progress, registration tokens and email codes (MAS's
``crates/data-model/src/users.rs``: ``UserRegistration``, ``UserRegistrationToken``,
``UserEmailAuthentication``, ``UserEmailAuthenticationCode``).

- :class:`UserRegistration`: what the password registration form collected, until the step
  loop completes it (``completed_at``) and the user exists.
- :class:`UserRegistrationToken`: a token an operator issued; valid while not revoked, not
  expired and used fewer times than its ``usage_limit`` (``None``: unlimited).
- :class:`UserEmailAuthentication`: "prove you hold this address", for a registration (or
  later a signed-in session); completed once a code matched.
- :class:`UserEmailAuthenticationCode`: one 6-digit code sent for an authentication.

Timestamps are milliseconds since the epoch.
"""

from __future__ import annotations

from typing import Any

import attrs

from mas_twisted.types.columns import INT, JSON, OPTIONAL_INT, Row, column, mapped


@mapped
@attrs.frozen
class UserRegistrationToken(Row):
    """One row of ``user_registration_tokens``."""

    id: str = attrs.field(metadata=column("user_registration_token_id"))
    token: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    usage_limit: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    times_used: int = attrs.field(default=0, metadata=column(codec=INT))
    last_used_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    expires_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    revoked_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))

    def is_valid(self, now_ms: int) -> bool:
        """Not revoked, not expired (``now >= expires_at``), and not used up (MAS's ``is_valid``)."""
        if self.revoked_at is not None:
            return False
        if self.expires_at is not None and now_ms >= self.expires_at:
            return False
        return self.usage_limit is None or self.times_used < self.usage_limit


@mapped
@attrs.frozen
class UserRegistration(Row):
    """One row of ``user_registrations``."""

    id: str = attrs.field(metadata=column("user_registration_id"))
    username: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    ip_address: str | None = None
    user_agent: str | None = None
    #: The post-auth action's query parameters (``{"kind": …, "id": …}``), as JSON.
    post_auth_action: Any = attrs.field(default=None, metadata=column(codec=JSON))
    display_name: str | None = None
    #: The terms of service the user accepted on the form (``branding.tos_uri`` then).
    terms_url: str | None = None
    email_authentication_id: str | None = None
    hashed_password: str | None = None
    hashed_password_version: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    user_registration_token_id: str | None = None
    upstream_oauth_authorization_session_id: str | None = None
    completed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))


@mapped
@attrs.frozen
class UserEmailAuthentication(Row):
    """One row of ``user_email_authentications``."""

    id: str = attrs.field(metadata=column("user_email_authentication_id"))
    email: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    user_session_id: str | None = None
    user_registration_id: str | None = None
    completed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))


@mapped
@attrs.frozen
class UserEmailAuthenticationCode(Row):
    """One row of ``user_email_authentication_codes``."""

    id: str = attrs.field(metadata=column("user_email_authentication_code_id"))
    user_email_authentication_id: str
    code: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    expires_at: int = attrs.field(metadata=column(codec=INT))
