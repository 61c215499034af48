# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for password registrations, registration tokens and email codes (MAS's
``crates/storage-pg/src/user/registration.rs``, ``registration_token.rs``, the email
authentications of ``user/email.rs`` and ``user/terms.rs``).

Every state change another request may race with is a conditional UPDATE with a rowcount
check: an email authentication completes once (``completed_at IS NULL``), a registration
completes once, and using a registration token counts it only while it is still valid (not
revoked, not expired, under its usage limit), so two registrations cannot share its last use.
:meth:`UserRegistrationStore.complete_registration` writes the user and everything that comes
with it in one transaction, and rolls all of it back when any of those checks fails.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores._common import cleanup_by_id_txn
from mas_twisted.storage.stores.browser_sessions import (
    add_browser_session_authentication_txn,
    add_browser_session_txn,
)
from mas_twisted.storage.stores.user_emails import add_user_email_txn
from mas_twisted.storage.stores.user_passwords import add_user_password_txn
from mas_twisted.storage.stores.users import add_user_txn, user_exists_txn
from mas_twisted.types.registrations import (
    UserEmailAuthentication,
    UserEmailAuthenticationCode,
    UserRegistration,
    UserRegistrationToken,
)
from mas_twisted.types.users import (
    BrowserSession,
    BrowserSessionAuthentication,
    User,
    UserEmail,
    UserPassword,
)

logger = logging.getLogger(__name__)

REGISTRATIONS = "user_registrations"
TOKENS = "user_registration_tokens"
AUTHENTICATIONS = "user_email_authentications"
CODES = "user_email_authentication_codes"
TERMS = "user_terms"

Also = Callable[[LoggingTransaction], object] | None


class CompletionOutcome(str, enum.Enum):
    """How :meth:`UserRegistrationStore.complete_registration` ended."""

    COMPLETED = "completed"
    #: Another request completed the registration first.
    ALREADY_COMPLETED = "already_completed"
    #: The username was taken meanwhile.
    USERNAME_TAKEN = "username_taken"
    #: The registration token stopped being valid meanwhile (used up, expired, revoked).
    TOKEN_INVALID = "token_invalid"


# -- registration tokens -------------------------------------------------------------------


def get_registration_token_txn(txn: LoggingTransaction, token_id: str) -> UserRegistrationToken | None:
    row = DatabasePool.simple_select_one_txn(
        txn, TOKENS, {"user_registration_token_id": token_id}, UserRegistrationToken.COLUMNS, allow_none=True
    )
    return UserRegistrationToken.from_row(row) if row else None


def use_registration_token_txn(txn: LoggingTransaction, token_id: str, now: int) -> bool:
    """Count one use of the token if it is still valid at ``now``; whether it was."""
    txn.execute(
        f"UPDATE {TOKENS} SET times_used = times_used + 1, last_used_at = ?"
        " WHERE user_registration_token_id = ? AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > ?)"
        " AND (usage_limit IS NULL OR times_used < usage_limit)",
        (now, token_id, now),
    )
    return txn.rowcount == 1


# -- email authentications ----------------------------------------------------------------


def add_email_authentication_txn(txn: LoggingTransaction, authentication: UserEmailAuthentication) -> None:
    DatabasePool.simple_insert_txn(txn, AUTHENTICATIONS, authentication.to_row())


def add_email_authentication_code_txn(txn: LoggingTransaction, code: UserEmailAuthenticationCode) -> None:
    DatabasePool.simple_insert_txn(txn, CODES, code.to_row())


def get_email_authentication_txn(
    txn: LoggingTransaction, authentication_id: str
) -> UserEmailAuthentication | None:
    row = DatabasePool.simple_select_one_txn(
        txn,
        AUTHENTICATIONS,
        {"user_email_authentication_id": authentication_id},
        UserEmailAuthentication.COLUMNS,
        allow_none=True,
    )
    return UserEmailAuthentication.from_row(row) if row else None


def email_in_use_txn(txn: LoggingTransaction, email: str) -> bool:
    txn.execute("SELECT 1 FROM user_emails WHERE LOWER(email) = LOWER(?) LIMIT 1", (email,))
    return txn.fetchone() is not None


# -- registrations ------------------------------------------------------------------------


def get_registration_txn(txn: LoggingTransaction, registration_id: str) -> UserRegistration | None:
    row = DatabasePool.simple_select_one_txn(
        txn,
        REGISTRATIONS,
        {"user_registration_id": registration_id},
        UserRegistration.COLUMNS,
        allow_none=True,
    )
    return UserRegistration.from_row(row) if row else None


def _update_open_registration_txn(
    txn: LoggingTransaction, registration_id: str, values: dict[str, Any]
) -> bool:
    sets = ", ".join(f"{name} = ?" for name in values)
    txn.execute(
        f"UPDATE {REGISTRATIONS} SET {sets} WHERE user_registration_id = ? AND completed_at IS NULL",
        [*values.values(), registration_id],
    )
    return txn.rowcount == 1


class UserRegistrationStore(SQLBaseStore):
    # -- registration tokens ---------------------------------------------------------------
    async def add_registration_token(self, token: UserRegistrationToken) -> None:
        """Raises the driver's IntegrityError when the token string exists already."""
        await self.db_pool.simple_insert(TOKENS, token.to_row(), desc="add_registration_token")

    async def get_registration_token(self, token_id: str) -> UserRegistrationToken | None:
        return await self.db_pool.runInteraction(
            "get_registration_token", get_registration_token_txn, token_id
        )

    async def find_registration_token(self, token: str) -> UserRegistrationToken | None:
        """The token with exactly this string (tokens are case-sensitive), or ``None``."""
        row = await self.db_pool.simple_select_one(
            TOKENS,
            {"token": token},
            UserRegistrationToken.COLUMNS,
            allow_none=True,
            desc="find_registration_token",
        )
        return UserRegistrationToken.from_row(row) if row else None

    async def revoke_registration_token(self, token_id: str, at: int) -> bool:
        """Revoke the token unless it is revoked already; whether this revoked it."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                f"UPDATE {TOKENS} SET revoked_at = ? WHERE user_registration_token_id = ? AND revoked_at IS NULL",
                (at, token_id),
            )
            return txn.rowcount == 1

        return await self.db_pool.runInteraction("revoke_registration_token", _txn)

    async def unrevoke_registration_token(self, token_id: str) -> bool:
        """Clear the token's revocation if it is revoked; whether this did."""
        rows = await self.db_pool.runInteraction(
            "unrevoke_registration_token",
            lambda txn: (
                txn.execute(
                    f"UPDATE {TOKENS} SET revoked_at = NULL"
                    " WHERE user_registration_token_id = ? AND revoked_at IS NOT NULL",
                    (token_id,),
                ),
                txn.rowcount,
            )[1],
        )
        return rows == 1

    async def add_registration_token_unless_taken(self, token: UserRegistrationToken) -> bool:
        """Store the token unless one with the same string exists; whether it was stored."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(f"SELECT 1 FROM {TOKENS} WHERE token = ?", (token.token,))
            if txn.fetchone() is not None:
                return False
            DatabasePool.simple_insert_txn(txn, TOKENS, token.to_row())
            return True

        return await self.db_pool.runInteraction("add_registration_token_unless_taken", _txn)

    async def update_registration_token(self, token_id: str, changes: dict[str, int | None]) -> bool:
        """Set ``expires_at`` and/or ``usage_limit`` (``None``: remove); whether the token exists."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(f"SELECT 1 FROM {TOKENS} WHERE user_registration_token_id = ?", (token_id,))
            if txn.fetchone() is None:
                return False
            for column in ("expires_at", "usage_limit"):
                if column in changes:
                    txn.execute(
                        f"UPDATE {TOKENS} SET {column} = ? WHERE user_registration_token_id = ?",
                        (changes[column], token_id),
                    )
            return True

        return await self.db_pool.runInteraction("update_registration_token", _txn)

    # -- registrations ---------------------------------------------------------------------
    async def get_registration(self, registration_id: str) -> UserRegistration | None:
        return await self.db_pool.runInteraction("get_registration", get_registration_txn, registration_id)

    async def add_registration(
        self,
        registration: UserRegistration,
        authentication: UserEmailAuthentication | None = None,
        code: UserEmailAuthenticationCode | None = None,
        also: Also = None,
    ) -> None:
        """Insert a registration, with its email authentication and first code, and ``also``
        (the email carrying the code), in one transaction."""

        def _txn(txn: LoggingTransaction) -> None:
            row = registration.to_row()
            row["email_authentication_id"] = None
            DatabasePool.simple_insert_txn(txn, REGISTRATIONS, row)
            if authentication is not None:
                add_email_authentication_txn(txn, authentication)
                txn.execute(
                    f"UPDATE {REGISTRATIONS} SET email_authentication_id = ? WHERE user_registration_id = ?",
                    (authentication.id, registration.id),
                )
            if code is not None:
                add_email_authentication_code_txn(txn, code)
            if also is not None:
                also(txn)

        await self.db_pool.runInteraction("add_registration", _txn)

    async def set_registration_token(self, registration_id: str, token_id: str) -> bool:
        """Attach a token to an open registration; ``False`` once it is completed."""
        return await self.db_pool.runInteraction(
            "set_registration_token",
            _update_open_registration_txn,
            registration_id,
            {"user_registration_token_id": token_id},
        )

    async def set_display_name(self, registration_id: str, display_name: str) -> bool:
        """Set the display name of an open registration; ``False`` once it is completed."""
        return await self.db_pool.runInteraction(
            "set_registration_display_name",
            _update_open_registration_txn,
            registration_id,
            {"display_name": display_name},
        )

    async def complete_registration(
        self,
        registration: UserRegistration,
        *,
        user: User,
        session: BrowserSession,
        authentication: BrowserSessionAuthentication | None,
        password: UserPassword | None,
        emails: Sequence[UserEmail],
        terms_id: str | None,
        token_id: str | None,
        now: int,
        also: Also = None,
    ) -> CompletionOutcome:
        """Complete the registration and create what it stands for, all in one transaction:
        the user, their browser session (authenticated by the password), email, password,
        accepted terms, one use of the registration token, and ``also`` (the provisioning
        job). Nothing is written unless the outcome is ``COMPLETED``."""

        class _Abort(Exception):
            def __init__(self, outcome: CompletionOutcome):
                self.outcome = outcome

        def _txn(txn: LoggingTransaction) -> None:
            txn.execute(
                f"UPDATE {REGISTRATIONS} SET completed_at = ? WHERE user_registration_id = ? AND completed_at IS NULL",
                (now, registration.id),
            )
            if txn.rowcount != 1:
                raise _Abort(CompletionOutcome.ALREADY_COMPLETED)
            if user_exists_txn(txn, user.username):
                raise _Abort(CompletionOutcome.USERNAME_TAKEN)
            if token_id is not None and not use_registration_token_txn(txn, token_id, now):
                raise _Abort(CompletionOutcome.TOKEN_INVALID)
            add_user_txn(txn, user)
            add_browser_session_txn(txn, session)
            if password is not None:
                add_user_password_txn(txn, password)
            if authentication is not None:
                add_browser_session_authentication_txn(txn, authentication)
            for email in emails:
                add_user_email_txn(txn, email)
            if terms_id is not None and registration.terms_url is not None:
                DatabasePool.simple_insert_txn(
                    txn,
                    TERMS,
                    {
                        "user_terms_id": terms_id,
                        "user_id": user.id,
                        "terms_url": registration.terms_url,
                        "created_at": now,
                    },
                )
            if also is not None:
                also(txn)

        try:
            await self.db_pool.runInteraction("complete_registration", _txn)
        except _Abort as e:
            return e.outcome
        return CompletionOutcome.COMPLETED

    async def cleanup_registrations(
        self, since: str | None, until: str, limit: int
    ) -> tuple[int, str | None]:
        """Delete up to ``limit`` registrations with ``since < id <= until`` (their email
        authentications and codes go with them); ``(count, last id)``."""
        return await self.db_pool.runInteraction(
            "cleanup_user_registrations",
            cleanup_by_id_txn,
            REGISTRATIONS,
            "user_registration_id",
            since,
            until,
            limit,
        )

    # -- email authentications -------------------------------------------------------------
    async def get_email_authentication(self, authentication_id: str) -> UserEmailAuthentication | None:
        return await self.db_pool.runInteraction(
            "get_email_authentication", get_email_authentication_txn, authentication_id
        )

    async def add_email_authentication_code(
        self, code: UserEmailAuthenticationCode, also: Also = None
    ) -> None:
        """Insert a new code and ``also`` (the email carrying it) in one transaction.

        Raises the driver's IntegrityError when the authentication already has this code.
        """

        def _txn(txn: LoggingTransaction) -> None:
            add_email_authentication_code_txn(txn, code)
            if also is not None:
                also(txn)

        await self.db_pool.runInteraction("add_email_authentication_code", _txn)

    async def find_email_authentication_code(
        self, authentication_id: str, code: str
    ) -> UserEmailAuthenticationCode | None:
        row = await self.db_pool.simple_select_one(
            CODES,
            {"user_email_authentication_id": authentication_id, "code": code},
            UserEmailAuthenticationCode.COLUMNS,
            allow_none=True,
            desc="find_email_authentication_code",
        )
        return UserEmailAuthenticationCode.from_row(row) if row else None

    async def complete_email_authentication(self, authentication_id: str, at: int) -> bool:
        """Mark the authentication completed unless it is already; whether this completed it."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                f"UPDATE {AUTHENTICATIONS} SET completed_at = ?"
                " WHERE user_email_authentication_id = ? AND completed_at IS NULL",
                (at, authentication_id),
            )
            return txn.rowcount == 1

        return await self.db_pool.runInteraction("complete_email_authentication", _txn)

    async def email_in_use(self, email: str) -> bool:
        """Whether any user has this verified address (ignoring case)."""
        return await self.db_pool.runInteraction("email_in_use", email_in_use_txn, email)
