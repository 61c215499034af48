# SPDX-License-Identifier: AGPL-3.0-only
"""Helpers for tests of users, passwords and logins."""

from __future__ import annotations

from typing import Any

from mas_twisted.handlers.passwords import PasswordManager
from mas_twisted.server import MasServer
from mas_twisted.types.users import User, UserEmail, UserPassword
from tests.server import FakeThreadPool


def use_threadless_password_manager(server: MasServer, reactor: Any) -> PasswordManager:
    """Make ``server``'s password manager hash on the test thread, when the fake reactor runs.

    The real one hashes on threads of its own, which a fake clock cannot wait for.
    """
    manager = PasswordManager(server, threadpool=FakeThreadPool(reactor))
    server._password_manager = manager  # type: ignore[attr-defined]
    return manager


def make_user(
    test: Any,
    username: str = "alice",
    password: str | None = "correct horse battery staple",
    *,
    emails: tuple[str, ...] = (),
    **changes: Any,
) -> User:
    """Create a user (with a password hashed by the current scheme and verified emails) through the stores."""
    server: MasServer = test.server
    tokens = server.get_token_generator()
    now = server.get_clock().time_msec()
    user = User(id=tokens.ulid(), username=username, created_at=now, **changes)
    hashed = None
    if password is not None:
        version, digest = test.get_success(server.get_password_manager().hash(password))
        hashed = UserPassword(
            id=tokens.ulid(), user_id=user.id, hashed_password=digest, version=version, created_at=now
        )
    addresses = [UserEmail(id=tokens.ulid(), user_id=user.id, email=e, created_at=now) for e in emails]
    test.get_success(server.get_stores().users.register_user(user, hashed, addresses))
    return user
