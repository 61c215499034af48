-- SPDX-License-Identifier: AGPL-3.0-only
-- Personal sessions and their personal access tokens (mpt_…): a long-lived session acting as
-- actor_user_id, owned either by a user or by an OAuth 2.0 client (the admin API caller that
-- created it), whose token can be regenerated while the session keeps its id. MAS's table and
-- column names (inventory §12). Portable types as elsewhere: ids ULID TEXT, timestamps BIGINT
-- milliseconds, scope_list a JSON array in TEXT. The token is stored as its SHA-256, written as
-- 64 lower-case hex digits (MAS: 32 raw bytes in BYTEA), so that a read of the database does not
-- give working tokens.
CREATE TABLE personal_sessions (
    personal_session_id TEXT NOT NULL PRIMARY KEY,
    owner_user_id TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    owner_oauth2_client_id TEXT REFERENCES oauth2_clients (oauth2_client_id) ON DELETE CASCADE,
    actor_user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    human_name TEXT NOT NULL,
    scope_list TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_active_at BIGINT,
    last_active_ip TEXT,
    -- There must be exactly one owner.
    CONSTRAINT personal_sessions_exactly_one_owner
        CHECK ((owner_user_id IS NULL) <> (owner_oauth2_client_id IS NULL))
);

CREATE INDEX personal_sessions_owner_user_fk ON personal_sessions (owner_user_id)
    WHERE owner_user_id IS NOT NULL;
CREATE INDEX personal_sessions_owner_client_fk ON personal_sessions (owner_oauth2_client_id)
    WHERE owner_oauth2_client_id IS NOT NULL;
CREATE INDEX personal_sessions_actor_user_fk ON personal_sessions (actor_user_id);

CREATE TABLE personal_access_tokens (
    personal_access_token_id TEXT NOT NULL PRIMARY KEY,
    personal_session_id TEXT NOT NULL
        REFERENCES personal_sessions (personal_session_id) ON DELETE CASCADE,
    access_token_sha256 TEXT NOT NULL CHECK (length(access_token_sha256) = 64),
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE UNIQUE INDEX personal_access_tokens_sha256_unique ON personal_access_tokens (access_token_sha256);
-- At most one token of a session is not revoked.
CREATE UNIQUE INDEX personal_access_tokens_one_active ON personal_access_tokens (personal_session_id)
    WHERE revoked_at IS NULL;
-- Cleanup of revoked and expired tokens.
CREATE INDEX personal_access_tokens_revoked_at_idx ON personal_access_tokens (revoked_at)
    WHERE revoked_at IS NOT NULL;
CREATE INDEX personal_access_tokens_expires_at_idx ON personal_access_tokens (expires_at)
    WHERE expires_at IS NOT NULL;
