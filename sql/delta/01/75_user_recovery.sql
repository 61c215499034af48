-- SPDX-License-Identifier: AGPL-3.0-only
-- Account recovery (MAS's `user_recovery_sessions` and `user_recovery_tickets`, with MAS's
-- column names; timestamps are epoch milliseconds and `ip_address` is TEXT). A session is
-- what one submission of the `/recover` form asked for (an address, whoever holds it); the
-- `send-account-recovery-email` job adds one ticket per user email row holding that address.
-- Consuming any ticket consumes its session, and with it every ticket of the session.
CREATE TABLE user_recovery_sessions (
    user_recovery_session_id TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    ip_address TEXT,
    locale TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT
);

CREATE TABLE user_recovery_tickets (
    user_recovery_ticket_id TEXT NOT NULL PRIMARY KEY,
    user_recovery_session_id TEXT NOT NULL
        REFERENCES user_recovery_sessions (user_recovery_session_id) ON DELETE CASCADE,
    user_email_id TEXT NOT NULL REFERENCES user_emails (user_email_id) ON DELETE CASCADE,
    ticket TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX user_recovery_tickets_session_fk ON user_recovery_tickets (user_recovery_session_id);
CREATE INDEX user_recovery_tickets_user_email_fk ON user_recovery_tickets (user_email_id);
CREATE UNIQUE INDEX user_recovery_tickets_ticket_idx ON user_recovery_tickets (ticket);
