# SPDX-License-Identifier: AGPL-3.0-only
"""Storage for the TOTP second factor and recovery codes (ours, issue 18): tables
``user_totp`` and ``user_recovery_codes``.

Every state change is one transaction:

- :meth:`MfaStore.start_enrolment` replaces an unconfirmed secret (refused while a confirmed
  one exists);
- :meth:`MfaStore.confirm_enrolment` confirms it with the step of the first code and writes
  the recovery codes, replacing any older ones;
- :meth:`MfaStore.complete_login` consumes a time step (``last_used_step < step``, a
  conditional UPDATE: two tabs posting the same code sign in once) or an unused recovery code
  (``used_at IS NULL``), and only then opens the browser session with its authentication;
- :meth:`MfaStore.disable` deletes the secret and the recovery codes together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mas_twisted.storage._base import SQLBaseStore
from mas_twisted.storage.database import DatabasePool, LoggingTransaction
from mas_twisted.storage.stores._common import select_model_txn
from mas_twisted.storage.stores.browser_sessions import (
    add_browser_session_authentication_txn,
    add_browser_session_txn,
)
from mas_twisted.types.mfa import UserRecoveryCode, UserTotp
from mas_twisted.types.users import BrowserSession, BrowserSessionAuthentication

logger = logging.getLogger(__name__)

TOTP = "user_totp"
RECOVERY_CODES = "user_recovery_codes"


def get_totp_txn(txn: LoggingTransaction, user_id: str) -> UserTotp | None:
    return select_model_txn(txn, TOTP, {"user_id": user_id}, UserTotp)


def use_totp_step_txn(txn: LoggingTransaction, user_id: str, step: int) -> bool:
    """Record ``step`` as used if it is later than the last one; whether it was."""
    txn.execute(
        f"UPDATE {TOTP} SET last_used_step = ? WHERE user_id = ? AND confirmed_at IS NOT NULL"
        " AND (last_used_step IS NULL OR last_used_step < ?)",
        (step, user_id, step),
    )
    return txn.rowcount == 1


def use_recovery_code_txn(txn: LoggingTransaction, user_id: str, code_hash: str, at: int) -> bool:
    """Mark the unused recovery code with ``code_hash`` used; whether there was one."""
    txn.execute(
        f"UPDATE {RECOVERY_CODES} SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        (at, user_id, code_hash),
    )
    return txn.rowcount == 1


def _replace_recovery_codes_txn(
    txn: LoggingTransaction, user_id: str, codes: Sequence[UserRecoveryCode]
) -> None:
    DatabasePool.simple_delete_txn(txn, RECOVERY_CODES, {"user_id": user_id})
    for code in codes:
        if code.user_id != user_id:
            raise ValueError("recovery codes must belong to the user")
        DatabasePool.simple_insert_txn(txn, RECOVERY_CODES, code.to_row())


class MfaStore(SQLBaseStore):
    async def get_totp(self, user_id: str) -> UserTotp | None:
        return await self.db_pool.runInteraction("get_user_totp", get_totp_txn, user_id)

    async def start_enrolment(self, totp: UserTotp) -> bool:
        """Store a new unconfirmed secret in place of any unconfirmed one; ``False`` (nothing
        written) when the user already has a confirmed one."""

        def _txn(txn: LoggingTransaction) -> bool:
            existing = get_totp_txn(txn, totp.user_id)
            if existing is not None:
                if existing.confirmed:
                    return False
                DatabasePool.simple_delete_txn(txn, TOTP, {"user_totp_id": existing.id})
            DatabasePool.simple_insert_txn(txn, TOTP, totp.to_row())
            return True

        return await self.db_pool.runInteraction("start_totp_enrolment", _txn)

    async def confirm_enrolment(
        self, totp_id: str, step: int, at: int, codes: Sequence[UserRecoveryCode]
    ) -> bool:
        """Confirm the unconfirmed secret ``totp_id`` (its first code was for ``step``) and
        store ``codes``; ``False`` (nothing written) if it is gone or already confirmed."""

        def _txn(txn: LoggingTransaction) -> bool:
            txn.execute(
                f"UPDATE {TOTP} SET confirmed_at = ?, last_used_step = ?"
                " WHERE user_totp_id = ? AND confirmed_at IS NULL",
                (at, step, totp_id),
            )
            if txn.rowcount != 1:
                return False
            txn.execute(f"SELECT user_id FROM {TOTP} WHERE user_totp_id = ?", (totp_id,))
            row = txn.fetchone()
            assert row is not None
            _replace_recovery_codes_txn(txn, row[0], codes)
            return True

        return await self.db_pool.runInteraction("confirm_totp_enrolment", _txn)

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Consume ``step`` for a check that opens no session (disabling, new recovery codes)."""
        return await self.db_pool.runInteraction("use_totp_step", use_totp_step_txn, user_id, step)

    async def replace_recovery_codes(
        self, user_id: str, step: int, codes: Sequence[UserRecoveryCode]
    ) -> bool:
        """Consume ``step`` and, if it was unused, replace the user's recovery codes."""

        def _txn(txn: LoggingTransaction) -> bool:
            if not use_totp_step_txn(txn, user_id, step):
                return False
            _replace_recovery_codes_txn(txn, user_id, codes)
            return True

        return await self.db_pool.runInteraction("replace_recovery_codes", _txn)

    async def count_unused_recovery_codes(self, user_id: str) -> int:
        def _txn(txn: LoggingTransaction) -> int:
            txn.execute(
                f"SELECT COUNT(*) FROM {RECOVERY_CODES} WHERE user_id = ? AND used_at IS NULL", (user_id,)
            )
            row = txn.fetchone()
            return int(row[0]) if row else 0

        return await self.db_pool.runInteraction("count_unused_recovery_codes", _txn)

    async def complete_login(
        self,
        session: BrowserSession,
        authentication: BrowserSessionAuthentication,
        *,
        step: int | None = None,
        recovery_code_hash: str | None = None,
    ) -> bool:
        """Consume the TOTP ``step`` or the recovery code, then open ``session``, in one
        transaction; ``False`` (nothing written) when the step was used already or the code
        is unknown or used."""
        if (step is None) == (recovery_code_hash is None):
            raise ValueError("exactly one of step and recovery_code_hash")
        user_id = session.user.id
        at = authentication.created_at

        def _txn(txn: LoggingTransaction) -> bool:
            if step is not None:
                ok = use_totp_step_txn(txn, user_id, step)
            else:
                assert recovery_code_hash is not None
                ok = use_recovery_code_txn(txn, user_id, recovery_code_hash, at)
            if not ok:
                return False
            add_browser_session_txn(txn, session)
            add_browser_session_authentication_txn(txn, authentication)
            return True

        return await self.db_pool.runInteraction("complete_second_factor_login", _txn)

    async def disable(self, user_id: str, step: int) -> bool:
        """Consume ``step``, then delete the secret and the recovery codes; ``False``
        (nothing deleted) when the step was used already."""

        def _txn(txn: LoggingTransaction) -> bool:
            if not use_totp_step_txn(txn, user_id, step):
                return False
            DatabasePool.simple_delete_txn(txn, RECOVERY_CODES, {"user_id": user_id})
            DatabasePool.simple_delete_txn(txn, TOTP, {"user_id": user_id})
            return True

        return await self.db_pool.runInteraction("disable_totp", _txn)
