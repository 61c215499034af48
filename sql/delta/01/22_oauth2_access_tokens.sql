-- SPDX-License-Identifier: AGPL-3.0-only
-- OAuth 2.0 access tokens (mat_…). Introspection finds a token by its text through the
-- unique index; first_used_at is set on the first introspection (MAS's double-refresh
-- tolerance reads it). MAS's table and column names (inventory §12).
CREATE TABLE oauth2_access_tokens (
    oauth2_access_token_id TEXT NOT NULL PRIMARY KEY,
    oauth2_session_id TEXT NOT NULL REFERENCES oauth2_sessions (oauth2_session_id) ON DELETE CASCADE,
    access_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    first_used_at BIGINT
);

CREATE UNIQUE INDEX oauth2_access_tokens_unique ON oauth2_access_tokens (access_token);
CREATE INDEX oauth2_access_tokens_session_fk ON oauth2_access_tokens (oauth2_session_id);
-- Cleanup of revoked (after 1 h) and expired (after 30 days) tokens.
CREATE INDEX oauth_access_tokens_revoked_at_idx ON oauth2_access_tokens (revoked_at)
    WHERE revoked_at IS NOT NULL;
CREATE INDEX oauth_access_tokens_expires_at_idx ON oauth2_access_tokens (expires_at)
    WHERE expires_at IS NOT NULL;
