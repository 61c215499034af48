-- SPDX-License-Identifier: AGPL-3.0-only
-- OAuth 2.0 sessions: what a client holds for a user (or for itself, client_credentials:
-- user_id NULL), started by a code or device-code exchange or a client_credentials grant,
-- valid until finished_at is set. MAS's table and column names (inventory §12). Portable
-- types: ids are ULID TEXT, timestamps BIGINT milliseconds since the epoch, scope_list is a
-- JSON array of scope tokens in TEXT, last_active_ip the address as text.
CREATE TABLE oauth2_sessions (
    oauth2_session_id TEXT NOT NULL PRIMARY KEY,
    oauth2_client_id TEXT NOT NULL REFERENCES oauth2_clients (oauth2_client_id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    -- The browser session the session was started from, if any.
    user_session_id TEXT REFERENCES user_sessions (user_session_id),
    scope_list TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    user_agent TEXT,
    last_active_at BIGINT,
    last_active_ip TEXT,
    human_name TEXT
);

CREATE INDEX oauth2_sessions_client_fk ON oauth2_sessions (oauth2_client_id);
CREATE INDEX oauth2_sessions_user_fk ON oauth2_sessions (user_id);
CREATE INDEX oauth2_sessions_user_session_fk ON oauth2_sessions (user_session_id);
-- A user's active sessions (session counts for consent, account pages).
CREATE INDEX oauth2_sessions_active_user_client_idx ON oauth2_sessions (user_id, oauth2_client_id)
    WHERE finished_at IS NULL;
-- Cleanup: finished sessions, and addresses of inactive sessions.
CREATE INDEX oauth2_sessions_finished_at_idx ON oauth2_sessions (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX oauth2_sessions_inactive_ips_idx ON oauth2_sessions (last_active_at)
    WHERE last_active_ip IS NOT NULL AND last_active_at IS NOT NULL;
