# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for users (MAS's ``crates/storage-pg/src/user/mod.rs``).

Usernames are looked up case-insensitively (``LOWER(username)``). If several users differ
only by the case of their username (possible after a syn2mas import), the one with the
exact casing is returned, and none if no casing matches exactly, as MAS does.

State changes (``lock``, ``unlock``, ``deactivate``, ``reactivate``, ``set_can_request_admin``)
are single-row UPDATEs that raise :class:`~mas_twisted.api.errors.RowsAffectedError` when the
user is gone, and return the updated :class:`~mas_twisted.types.users.User`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores.user_emails import add_user_email_txn
from mas_twisted.storage.stores.user_passwords import add_user_password_txn
from mas_twisted.types.upstream import UpstreamOAuthLink
from mas_twisted.types.users import User, UserEmail, UserPassword

logger = logging.getLogger(__name__)

TABLE = "users"

#: More work for the same transaction (the jobs a change schedules).
Also = Callable[[LoggingTransaction], object] | None
_COLUMNS = ", ".join(User.COLUMNS)


def get_user_txn(txn: LoggingTransaction, user_id: str) -> User | None:
    row = DatabasePool.simple_select_one_txn(txn, TABLE, {"user_id": user_id}, User.COLUMNS, allow_none=True)
    return User.from_row(row) if row else None


def find_user_by_username_txn(txn: LoggingTransaction, username: str) -> User | None:
    txn.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE LOWER(username) = LOWER(?)", (username,))
    users = [User.from_row(row) for row in txn.fetchall()]
    if len(users) <= 1:
        return users[0] if users else None
    # Several casings of one name: only an exact match is an answer.
    for user in users:
        if user.username == username:
            return user
    return None


def user_exists_txn(txn: LoggingTransaction, username: str) -> bool:
    txn.execute(f"SELECT 1 FROM {TABLE} WHERE LOWER(username) = LOWER(?)", (username,))
    return txn.fetchone() is not None


def add_user_txn(txn: LoggingTransaction, user: User) -> None:
    DatabasePool.simple_insert_txn(txn, TABLE, user.to_row())


def _update_user_txn(txn: LoggingTransaction, user: User, values: dict[str, Any]) -> User:
    DatabasePool.simple_update_one_txn(txn, TABLE, {"user_id": user.id}, values)
    return attrs.evolve(user, **dict(values.items()))


def lock_user_txn(txn: LoggingTransaction, user_id: str, at: int) -> bool:
    """Lock the user at ``at`` unless they are locked already; whether this locked them."""
    txn.execute(f"UPDATE {TABLE} SET locked_at = ? WHERE user_id = ? AND locked_at IS NULL", (at, user_id))
    return txn.rowcount == 1


def unlock_user_txn(txn: LoggingTransaction, user_id: str) -> None:
    txn.execute(f"UPDATE {TABLE} SET locked_at = NULL WHERE user_id = ?", (user_id,))


def end_user_sessions_txn(txn: LoggingTransaction, user_id: str, at: int) -> tuple[int, int, int]:
    """Finish every valid compatibility, OAuth 2.0 and browser session of the user (their
    tokens revoked); how many of each."""
    from mas_twisted.storage.stores.browser_sessions import finish_browser_sessions_for_user_txn
    from mas_twisted.storage.stores.compat_sessions import finish_compat_sessions_for_user_txn
    from mas_twisted.storage.stores.oauth2_sessions import finish_oauth2_sessions_for_user_txn

    compat = finish_compat_sessions_for_user_txn(txn, user_id, at)
    oauth2 = finish_oauth2_sessions_for_user_txn(txn, user_id, at)
    browser = finish_browser_sessions_for_user_txn(txn, user_id, at)
    return compat, oauth2, browser


def count_user_sessions_txn(txn: LoggingTransaction, user_id: str) -> tuple[int, int, int]:
    """How many valid compatibility, OAuth 2.0 and browser sessions the user has."""
    from mas_twisted.storage.stores.browser_sessions import count_active_browser_sessions_txn
    from mas_twisted.storage.stores.compat_sessions import count_active_compat_sessions_txn
    from mas_twisted.storage.stores.oauth2_sessions import count_active_oauth2_sessions_for_user_txn

    return (
        count_active_compat_sessions_txn(txn, user_id),
        count_active_oauth2_sessions_for_user_txn(txn, user_id),
        count_active_browser_sessions_txn(txn, user_id),
    )


class UpstreamLinkExistsError(Exception):
    """``(provider_id, subject)`` already has a link."""


class UserStore(SQLBaseStore):
    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or ``None``."""
        return await self.db_pool.runInteraction("get_user", get_user_txn, user_id)

    async def find_user_by_username(self, username: str) -> User | None:
        """The user with this username (case-insensitive, exact casing preferred), or ``None``."""
        return await self.db_pool.runInteraction("find_user_by_username", find_user_by_username_txn, username)

    async def user_exists(self, username: str) -> bool:
        """Whether a user has this username, in any casing."""
        return await self.db_pool.runInteraction("user_exists", user_exists_txn, username)

    async def add_user(self, user: User) -> None:
        await self.db_pool.runInteraction("add_user", add_user_txn, user)

    async def register_user(
        self,
        user: User,
        password: UserPassword | None = None,
        emails: Sequence[UserEmail] = (),
        also: Callable[[LoggingTransaction], object] | None = None,
        links: Sequence[UpstreamOAuthLink] = (),
    ) -> None:
        """Insert a new user with its first password, verified emails and upstream links (each
        with ``user_id`` set), in one transaction.

        Raises:
            UpstreamLinkExistsError: a link's subject at its provider has a link already
                (nothing is written).
            IntegrityError (of the driver): the username is already taken.
        """

        def _register_user_txn(txn: LoggingTransaction) -> None:
            add_user_txn(txn, user)
            if password is not None:
                add_user_password_txn(txn, password)
            for email in emails:
                add_user_email_txn(txn, email)
            for link in links:
                txn.execute(
                    "SELECT 1 FROM upstream_oauth_links WHERE upstream_oauth_provider_id = ? AND subject = ?",
                    (link.provider_id, link.subject),
                )
                if txn.fetchone() is not None:
                    raise UpstreamLinkExistsError(link.provider_id, link.subject)
                DatabasePool.simple_insert_txn(txn, "upstream_oauth_links", link.to_row())
            if also is not None:
                also(txn)  # the provisioning job, in the same transaction

        await self.db_pool.runInteraction("register_user", _register_user_txn)

    async def lock_user(self, user: User, at: int) -> User:
        """Lock the user (they can no longer log in, and their tokens stop working)."""
        return await self.db_pool.runInteraction("lock_user", _update_user_txn, user, {"locked_at": at})

    async def unlock_user(self, user: User) -> User:
        return await self.db_pool.runInteraction("unlock_user", _update_user_txn, user, {"locked_at": None})

    async def deactivate_user(self, user: User, at: int) -> User:
        return await self.db_pool.runInteraction(
            "deactivate_user", _update_user_txn, user, {"deactivated_at": at}
        )

    async def reactivate_user(self, user: User) -> User:
        return await self.db_pool.runInteraction(
            "reactivate_user", _update_user_txn, user, {"deactivated_at": None}
        )

    async def set_can_request_admin(self, user: User, can_request_admin: bool) -> User:
        return await self.db_pool.runInteraction(
            "set_can_request_admin", _update_user_txn, user, {"can_request_admin": can_request_admin}
        )

    async def lock_user_unless_locked(self, user_id: str, at: int, also: Also = None) -> bool:
        """Lock the user at ``at`` unless they are locked already, in one transaction with
        ``also`` (the jobs that follow); whether this locked them."""

        def _lock_txn(txn: LoggingTransaction) -> bool:
            locked = lock_user_txn(txn, user_id, at)
            if also is not None:
                also(txn)
            return locked

        return await self.db_pool.runInteraction("lock_user_unless_locked", _lock_txn)

    async def unlock_user_by_id(self, user_id: str, also: Also = None) -> None:
        """Unlock the user, in one transaction with ``also``."""

        def _unlock_txn(txn: LoggingTransaction) -> None:
            if also is not None:
                also(txn)
            unlock_user_txn(txn, user_id)

        await self.db_pool.runInteraction("unlock_user_by_id", _unlock_txn)

    async def end_user_sessions(self, user_id: str, at: int, also: Also = None) -> tuple[int, int, int]:
        """:func:`end_user_sessions_txn` in one transaction with ``also``; how many
        compatibility, OAuth 2.0 and browser sessions ended."""

        def _end_txn(txn: LoggingTransaction) -> tuple[int, int, int]:
            ended = end_user_sessions_txn(txn, user_id, at)
            if also is not None:
                also(txn)
            return ended

        return await self.db_pool.runInteraction("end_user_sessions", _end_txn)

    async def count_user_sessions(self, user_id: str) -> tuple[int, int, int]:
        """How many valid compatibility, OAuth 2.0 and browser sessions the user has (one read)."""
        return await self.db_pool.runInteraction("count_user_sessions", count_user_sessions_txn, user_id)

    async def for_every_user(self, each: Callable[[LoggingTransaction, str], object]) -> int:
        """Call ``each(txn, user_id)`` for every user, by id, in one transaction; how many users."""

        def _every_txn(txn: LoggingTransaction) -> int:
            txn.execute(f"SELECT user_id FROM {TABLE} ORDER BY user_id", ())
            ids = [row[0] for row in txn.fetchall()]
            for user_id in ids:
                each(txn, user_id)
            return len(ids)

        return await self.db_pool.runInteraction("for_every_user", _every_txn)

    async def deactivate_user_everywhere(self, user_id: str, at: int) -> dict[str, int]:
        """:func:`deactivate_user_everywhere_txn` in a transaction of its own."""
        return await self.db_pool.runInteraction(
            "deactivate_user_everywhere", deactivate_user_everywhere_txn, user_id, at
        )

    async def active_device_ids(self, user_id: str) -> set[str]:
        """The devices of the user's valid OAuth 2.0 and compatibility sessions (one read), for
        ``sync-devices``."""
        return await self.db_pool.runInteraction("sync_devices_list", active_device_ids_txn, user_id)

    async def list_admin_usernames(self) -> list[str]:
        """The usernames of the users who may request admin access, sorted."""
        rows = await self.db_pool.execute(
            "list_admin_usernames", f"SELECT username FROM {TABLE} WHERE can_request_admin ORDER BY username"
        )
        return [row[0] for row in rows]


def deactivate_user_everywhere_txn(txn: LoggingTransaction, user_id: str, at: int) -> dict[str, int]:
    """Deactivate the user and end everything they had, in the caller's transaction (MAS's
    ``deactivate-user`` job, before it calls the homeserver): browser, OAuth 2.0 and
    compatibility sessions finished and personal sessions acting as them revoked (their tokens
    revoked), email addresses removed. What was ended, by kind.
    """
    from mas_twisted.storage.stores.browser_sessions import finish_browser_sessions_for_user_txn
    from mas_twisted.storage.stores.compat_sessions import finish_compat_sessions_for_user_txn
    from mas_twisted.storage.stores.oauth2_sessions import finish_oauth2_sessions_for_user_txn
    from mas_twisted.storage.stores.personal_sessions import revoke_personal_sessions_of_user_txn

    txn.execute(
        f"UPDATE {TABLE} SET deactivated_at = ? WHERE user_id = ? AND deactivated_at IS NULL", (at, user_id)
    )
    browser = finish_browser_sessions_for_user_txn(txn, user_id, at)
    oauth2 = finish_oauth2_sessions_for_user_txn(txn, user_id, at)
    compat = finish_compat_sessions_for_user_txn(txn, user_id, at)
    personal = revoke_personal_sessions_of_user_txn(txn, user_id, at)
    txn.execute("DELETE FROM user_emails WHERE user_id = ?", (user_id,))
    emails = txn.rowcount
    return {
        "browser_sessions": browser,
        "oauth2_sessions": oauth2,
        "compat_sessions": compat,
        "personal_sessions": personal,
        "emails": emails,
    }


def active_device_ids_txn(txn: LoggingTransaction, user_id: str) -> set[str]:
    """The devices of the user's valid OAuth 2.0 and personal sessions (device scopes) and
    compatibility sessions."""
    from mas_twisted.storage.stores.compat_sessions import active_compat_device_ids_for_user_txn
    from mas_twisted.storage.stores.oauth2_sessions import active_device_ids_for_user_txn
    from mas_twisted.storage.stores.personal_sessions import active_personal_device_ids_for_user_txn

    return (
        active_device_ids_for_user_txn(txn, user_id)
        | active_compat_device_ids_for_user_txn(txn, user_id)
        | active_personal_device_ids_for_user_txn(txn, user_id)
    )
