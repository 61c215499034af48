-- SPDX-License-Identifier: AGPL-3.0-only
-- The compatibility layer (inventory §3, §12): sessions of clients that log in with the
-- legacy Matrix API (m.login.password, m.login.token after compat SSO), their access tokens
-- (mct_, revoked by deleting them or by finishing the session), refresh tokens (mcr_,
-- consumed once), and the SSO logins that end in a loginToken. MAS's table and column names.
CREATE TABLE compat_sessions (
    compat_session_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id TEXT,
    -- The browser session an SSO login came from.
    user_session_id TEXT REFERENCES user_sessions (user_session_id),
    is_synapse_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    last_active_at BIGINT,
    last_active_ip TEXT,
    user_agent TEXT,
    human_name TEXT
);

CREATE INDEX compat_sessions_user_fk ON compat_sessions (user_id);
CREATE INDEX compat_sessions_user_session_fk ON compat_sessions (user_session_id);
CREATE INDEX compat_sessions_active_device_idx ON compat_sessions (user_id, device_id)
    WHERE finished_at IS NULL;
CREATE INDEX compat_sessions_finished_at_idx ON compat_sessions (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX compat_sessions_inactive_ips_idx ON compat_sessions (last_active_at)
    WHERE last_active_ip IS NOT NULL AND last_active_at IS NOT NULL;

CREATE TABLE compat_access_tokens (
    compat_access_token_id TEXT NOT NULL PRIMARY KEY,
    compat_session_id TEXT NOT NULL REFERENCES compat_sessions (compat_session_id) ON DELETE CASCADE,
    access_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);

CREATE UNIQUE INDEX compat_access_tokens_access_token_unique ON compat_access_tokens (access_token);
CREATE INDEX compat_access_tokens_session_fk ON compat_access_tokens (compat_session_id);

CREATE TABLE compat_refresh_tokens (
    compat_refresh_token_id TEXT NOT NULL PRIMARY KEY,
    compat_session_id TEXT NOT NULL REFERENCES compat_sessions (compat_session_id) ON DELETE CASCADE,
    compat_access_token_id TEXT NOT NULL REFERENCES compat_access_tokens (compat_access_token_id) ON DELETE CASCADE,
    refresh_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT
);

CREATE UNIQUE INDEX compat_refresh_tokens_refresh_token_unique ON compat_refresh_tokens (refresh_token);
CREATE INDEX compat_refresh_tokens_session_fk ON compat_refresh_tokens (compat_session_id);
CREATE INDEX compat_refresh_tokens_access_token_fk ON compat_refresh_tokens (compat_access_token_id);

CREATE TABLE compat_sso_logins (
    compat_sso_login_id TEXT NOT NULL PRIMARY KEY,
    redirect_uri TEXT NOT NULL,
    login_token TEXT NOT NULL,
    user_session_id TEXT REFERENCES user_sessions (user_session_id),
    compat_session_id TEXT REFERENCES compat_sessions (compat_session_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    fulfilled_at BIGINT,
    exchanged_at BIGINT
);

CREATE UNIQUE INDEX compat_sso_logins_login_token_unique ON compat_sso_logins (login_token);
CREATE INDEX compat_sso_logins_session_fk ON compat_sso_logins (compat_session_id);
CREATE INDEX compat_sso_logins_user_session_fk ON compat_sso_logins (user_session_id);
