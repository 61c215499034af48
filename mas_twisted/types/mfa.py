# SPDX-License-Identifier: AGPL-3.0-only
"""The TOTP second factor (ours, issue 18: MAS 1.22 has none).

- :class:`UserTotp`: a user's TOTP secret (encrypted with ``secrets.encryption`` in
  :attr:`UserTotp.secret`), confirmed once the user typed a first code, and the RFC 6238 time
  step of the last accepted code (a code is accepted once).
- :class:`UserRecoveryCode`: one single-use recovery code, stored as its SHA-256.

Timestamps are milliseconds since the epoch.
"""

from __future__ import annotations

import attrs

from mas_twisted.types.columns import INT, OPTIONAL_INT, Row, column, mapped

#: ``user_session_authentications.second_factor`` values.
SECOND_FACTOR_TOTP = "totp"
SECOND_FACTOR_RECOVERY_CODE = "recovery_code"


@mapped
@attrs.frozen
class UserTotp(Row):
    """One row of ``user_totp``."""

    id: str = attrs.field(metadata=column("user_totp_id"))
    user_id: str
    #: The base32 secret, encrypted (:meth:`mas_twisted.jose.encrypter.Encrypter.encrypt_to_string`).
    secret: str = attrs.field(repr=False)
    created_at: int = attrs.field(metadata=column(codec=INT))
    confirmed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
    last_used_step: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


@mapped
@attrs.frozen
class UserRecoveryCode(Row):
    """One row of ``user_recovery_codes``."""

    id: str = attrs.field(metadata=column("user_recovery_code_id"))
    user_id: str
    code_hash: str = attrs.field(repr=False)
    created_at: int = attrs.field(metadata=column(codec=INT))
    used_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))
