# SPDX-License-Identifier: AGPL-3.0-only
"""The ``account`` section: what users may do with their own account.

MAS behaviour (``crates/config/src/sections/account.rs``): ten switches, each with MAS's
default. ``registration_token_required`` is the deprecated spelling of
``password_registration_token_required``; MAS reads both, and either one turns the
requirement on (see :attr:`AccountConfig.registration_token_needed`).
"""

from __future__ import annotations

from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader

#: (key, default) in MAS's order.
ACCOUNT_SWITCHES: tuple[tuple[str, bool], ...] = (
    ("email_change_allowed", True),
    ("displayname_change_allowed", True),
    ("password_registration_enabled", False),
    ("password_registration_email_required", True),
    ("password_change_allowed", True),
    ("password_recovery_enabled", False),
    ("password_registration_token_required", False),
    ("account_deactivation_allowed", True),
    ("login_with_email_allowed", False),
    ("registration_token_required", False),
)


class AccountConfig(Config):
    """``config.account``: self-service account features."""

    section = "account"

    email_change_allowed: bool
    displayname_change_allowed: bool
    password_registration_enabled: bool
    password_registration_email_required: bool
    password_change_allowed: bool
    password_recovery_enabled: bool
    password_registration_token_required: bool
    account_deactivation_allowed: bool
    login_with_email_allowed: bool
    registration_token_required: bool

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        for key, default in ACCOUNT_SWITCHES:
            setattr(self, key, r.bool(key, default))

    def to_dict(self) -> dict[str, bool]:
        """The switches that differ from MAS's defaults (MAS skips the others)."""
        return {key: getattr(self, key) for key, default in ACCOUNT_SWITCHES if getattr(self, key) != default}

    def is_default(self) -> bool:
        return not self.to_dict()

    @property
    def registration_token_needed(self) -> bool:
        """Whether password registrations must present a registration token."""
        return self.password_registration_token_required or self.registration_token_required

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# What users may do with their account (the values shown are the defaults).
account:
  # Let anyone register with a password (only when password login is enabled).
  password_registration_enabled: false
  # Registrations with a password must verify an email address.
  password_registration_email_required: true
  # Registrations with a password must present a registration token.
  password_registration_token_required: false
  # Let users reset a forgotten password by email.
  password_recovery_enabled: false
  password_change_allowed: true
  email_change_allowed: true
  displayname_change_allowed: true
  account_deactivation_allowed: true
  # Accept an email address instead of a username on the login form.
  login_with_email_allowed: false
"""
