-- SPDX-License-Identifier: AGPL-3.0-only
-- OAuth 2.0 refresh tokens (mar_…). A rotation consumes the token and records its
-- successor in next_oauth2_refresh_token_id. MAS's table and column names (inventory §12).
CREATE TABLE oauth2_refresh_tokens (
    oauth2_refresh_token_id TEXT NOT NULL PRIMARY KEY,
    oauth2_session_id TEXT NOT NULL REFERENCES oauth2_sessions (oauth2_session_id) ON DELETE CASCADE,
    -- The access token issued with this refresh token (cleaned up before it, hence SET NULL).
    oauth2_access_token_id TEXT REFERENCES oauth2_access_tokens (oauth2_access_token_id) ON DELETE SET NULL,
    refresh_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT,
    revoked_at BIGINT,
    next_oauth2_refresh_token_id TEXT
        REFERENCES oauth2_refresh_tokens (oauth2_refresh_token_id) ON DELETE SET NULL
);

CREATE UNIQUE INDEX oauth2_refresh_tokens_unique ON oauth2_refresh_tokens (refresh_token);
CREATE INDEX oauth2_refresh_tokens_session_fk ON oauth2_refresh_tokens (oauth2_session_id);
CREATE INDEX oauth2_refresh_tokens_access_token_fk ON oauth2_refresh_tokens (oauth2_access_token_id);
CREATE INDEX oauth2_refresh_tokens_next_refresh_token_fk ON oauth2_refresh_tokens (next_oauth2_refresh_token_id);
-- Cleanup of revoked and consumed tokens (after 1 h).
CREATE INDEX oauth_refresh_tokens_revoked_at_idx ON oauth2_refresh_tokens (revoked_at)
    WHERE revoked_at IS NOT NULL;
CREATE INDEX oauth_refresh_token_consumed_at_idx
    ON oauth2_refresh_tokens (consumed_at, next_oauth2_refresh_token_id, oauth2_refresh_token_id)
    WHERE consumed_at IS NOT NULL;
