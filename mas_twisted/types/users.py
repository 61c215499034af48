# SPDX-License-Identifier: AGPL-3.0-only
"""Users, their passwords and emails, and browser sessions (MAS's ``crates/data-model/src/users.rs``).

- :class:`User`: ``is_valid`` is "neither locked nor deactivated"; a user's OIDC ``sub`` is
  their ULID.
- :class:`UserPassword`: one hash of a user's password; the most recent one is current.
- :class:`UserEmail`: a verified address (MAS keeps only verified addresses).
- :class:`BrowserSession`: what the ``session`` cookie points at, with its user; ``active``
  means "not finished, and its user is valid".
- :class:`BrowserSessionAuthentication`: one authentication of a browser session (a password
  check, or later an upstream login).

Every class is a frozen ``attrs`` class whose ``COLUMNS`` list the table's columns in the
order ``from_row`` reads them; timestamps are milliseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs


@attrs.frozen
class User:
    """One row of ``users``."""

    id: str
    #: The Matrix localpart.
    username: str
    created_at: int
    locked_at: int | None = None
    deactivated_at: int | None = None
    can_request_admin: bool = False
    is_guest: bool = False

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "user_id",
        "username",
        "created_at",
        "locked_at",
        "deactivated_at",
        "can_request_admin",
        "is_guest",
    )

    @property
    def sub(self) -> str:
        """The OIDC subject identifier: the user's ULID (as MAS)."""
        return self.id

    @property
    def is_valid(self) -> bool:
        """Neither locked nor deactivated: the user may log in and their tokens work."""
        return self.locked_at is None and self.deactivated_at is None

    @property
    def is_valid_actor(self) -> bool:
        """Not deactivated (a locked user may still act in an administrator-made session)."""
        return self.deactivated_at is None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> User:
        user_id, username, created_at, locked_at, deactivated_at, can_request_admin, is_guest = row
        return cls(
            id=user_id,
            username=username,
            created_at=int(created_at),
            locked_at=locked_at,
            deactivated_at=deactivated_at,
            # SQLite returns booleans as 0/1.
            can_request_admin=bool(can_request_admin),
            is_guest=bool(is_guest),
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "user_id": self.id,
            "username": self.username,
            "created_at": self.created_at,
            "locked_at": self.locked_at,
            "deactivated_at": self.deactivated_at,
            "can_request_admin": self.can_request_admin,
            "is_guest": self.is_guest,
        }


@attrs.frozen
class UserPassword:
    """One row of ``user_passwords``: a hash made by the scheme ``version``."""

    id: str
    user_id: str
    hashed_password: str
    version: int
    created_at: int
    #: The row this one replaced when a login re-hashed the password with a newer scheme.
    upgraded_from_id: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "user_password_id",
        "user_id",
        "hashed_password",
        "version",
        "created_at",
        "upgraded_from_id",
    )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> UserPassword:
        password_id, user_id, hashed_password, version, created_at, upgraded_from_id = row
        return cls(
            id=password_id,
            user_id=user_id,
            hashed_password=hashed_password,
            version=int(version),
            created_at=int(created_at),
            upgraded_from_id=upgraded_from_id,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "user_password_id": self.id,
            "user_id": self.user_id,
            "hashed_password": self.hashed_password,
            "version": self.version,
            "created_at": self.created_at,
            "upgraded_from_id": self.upgraded_from_id,
        }


@attrs.frozen
class UserEmail:
    """One row of ``user_emails``: a verified address of a user."""

    id: str
    user_id: str
    email: str
    created_at: int

    COLUMNS: ClassVar[tuple[str, ...]] = ("user_email_id", "user_id", "email", "created_at")

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> UserEmail:
        email_id, user_id, email, created_at = row
        return cls(id=email_id, user_id=user_id, email=email, created_at=int(created_at))

    def to_row(self) -> dict[str, Any]:
        return {
            "user_email_id": self.id,
            "user_id": self.user_id,
            "email": self.email,
            "created_at": self.created_at,
        }


@attrs.frozen
class BrowserSession:
    """One row of ``user_sessions``, with its user."""

    id: str
    user: User
    created_at: int
    finished_at: int | None = None
    user_agent: str | None = None
    last_active_at: int | None = None
    last_active_ip: str | None = None

    #: The columns of ``user_sessions`` (the user's come from :attr:`User.COLUMNS`).
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "user_session_id",
        "user_id",
        "created_at",
        "finished_at",
        "user_agent",
        "last_active_at",
        "last_active_ip",
    )

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def active(self) -> bool:
        """Not finished, and its user is neither locked nor deactivated."""
        return self.finished_at is None and self.user.is_valid

    @classmethod
    def from_row(cls, row: Sequence[Any], user: User) -> BrowserSession:
        session_id, user_id, created_at, finished_at, user_agent, last_active_at, last_active_ip = row
        if user_id != user.id:
            raise ValueError(f"browser session {session_id} belongs to {user_id}, not {user.id}")
        return cls(
            id=session_id,
            user=user,
            created_at=int(created_at),
            finished_at=finished_at,
            user_agent=user_agent,
            last_active_at=last_active_at,
            last_active_ip=last_active_ip,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "user_session_id": self.id,
            "user_id": self.user.id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "user_agent": self.user_agent,
            "last_active_at": self.last_active_at,
            "last_active_ip": self.last_active_ip,
        }


@attrs.frozen
class BrowserSessionAuthentication:
    """One row of ``user_session_authentications``."""

    id: str
    user_session_id: str
    created_at: int
    #: Set for a password login: the password that was checked.
    user_password_id: str | None = None
    #: Set for a login through an upstream provider.
    upstream_oauth_authorization_session_id: str | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "user_session_authentication_id",
        "user_session_id",
        "created_at",
        "user_password_id",
        "upstream_oauth_authorization_session_id",
    )

    @property
    def method(self) -> str:
        """``"password"``, ``"upstream_oauth2"`` or ``"unknown"`` (MAS's ``AuthenticationMethod``)."""
        if self.user_password_id is not None:
            return "password"
        if self.upstream_oauth_authorization_session_id is not None:
            return "upstream_oauth2"
        return "unknown"

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> BrowserSessionAuthentication:
        auth_id, session_id, created_at, password_id, upstream_id = row
        return cls(
            id=auth_id,
            user_session_id=session_id,
            created_at=int(created_at),
            user_password_id=password_id,
            upstream_oauth_authorization_session_id=upstream_id,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "user_session_authentication_id": self.id,
            "user_session_id": self.user_session_id,
            "created_at": self.created_at,
            "user_password_id": self.user_password_id,
            "upstream_oauth_authorization_session_id": self.upstream_oauth_authorization_session_id,
        }
