-- SPDX-License-Identifier: AGPL-3.0-only
-- Browser sessions (MAS's `user_sessions`): what the encrypted `session` cookie points at.
-- `last_active_ip` is TEXT here (PostgreSQL `inet` in MAS).
CREATE TABLE user_sessions (
    user_session_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    user_agent TEXT,
    last_active_at BIGINT,
    last_active_ip TEXT
);

CREATE INDEX user_sessions_user_fk ON user_sessions (user_id);
CREATE INDEX user_sessions_last_active_at_idx ON user_sessions (last_active_at);
