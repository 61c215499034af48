# SPDX-License-Identifier: AGPL-3.0-only
"""Account recovery (MAS's ``crates/data-model/src/users.rs``: ``UserRecoverySession`` and
``UserRecoveryTicket``).

- :class:`UserRecoverySession`: one submission of the ``/recover`` form, for an address
  (whoever holds it: the page never says whether anyone does); consumed once a new password
  was set through one of its tickets.
- :class:`UserRecoveryTicket`: the secret of one emailed link, for one user email row, valid
  10 minutes (MAS's hard-coded lifetime).

Timestamps are milliseconds since the epoch.
"""

from __future__ import annotations

import attrs

from mas_twisted.types.columns import INT, OPTIONAL_INT, Row, column, mapped

#: How long a ticket is valid (MAS: 10 minutes, hard-coded in ``add_ticket``).
RECOVERY_TICKET_TTL_MS = 10 * 60 * 1000


@mapped
@attrs.frozen
class UserRecoverySession(Row):
    """One row of ``user_recovery_sessions``."""

    id: str = attrs.field(metadata=column("user_recovery_session_id"))
    email: str
    user_agent: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    ip_address: str | None = None
    locale: str = "en"
    consumed_at: int | None = attrs.field(default=None, metadata=column(codec=OPTIONAL_INT))


@mapped
@attrs.frozen
class UserRecoveryTicket(Row):
    """One row of ``user_recovery_tickets``."""

    id: str = attrs.field(metadata=column("user_recovery_ticket_id"))
    user_recovery_session_id: str
    user_email_id: str
    ticket: str
    created_at: int = attrs.field(metadata=column(codec=INT))
    expires_at: int = attrs.field(metadata=column(codec=INT))

    def active(self, now_ms: int) -> bool:
        """Not expired yet (MAS's ``UserRecoveryTicket::active``: ``now < expires_at``)."""
        return now_ms < self.expires_at
