-- SPDX-License-Identifier: AGPL-3.0-only
-- Password registration (MAS's `user_registration_tokens`, `user_registrations`,
-- `user_email_authentications`, `user_email_authentication_codes` and `user_terms`, with
-- MAS's column names; timestamps are epoch milliseconds, `ip_address` is TEXT, and
-- `post_auth_action` is JSON text).
CREATE TABLE user_registration_tokens (
    user_registration_token_id TEXT NOT NULL PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    usage_limit INTEGER,
    times_used INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);

-- `email_authentication_id` points at `user_email_authentications`, which points back at the
-- registration: the registration row comes first, so this side has no foreign key (MAS's
-- `ON DELETE SET NULL` has nothing to do here: email authentications of a registration are
-- deleted with it).
CREATE TABLE user_registrations (
    user_registration_id TEXT NOT NULL PRIMARY KEY,
    ip_address TEXT,
    user_agent TEXT,
    post_auth_action TEXT,
    username TEXT NOT NULL,
    display_name TEXT,
    terms_url TEXT,
    email_authentication_id TEXT,
    hashed_password TEXT,
    hashed_password_version INTEGER,
    user_registration_token_id TEXT
        REFERENCES user_registration_tokens (user_registration_token_id) ON DELETE SET NULL,
    upstream_oauth_authorization_session_id TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);

CREATE INDEX user_registrations_token_fk ON user_registrations (user_registration_token_id);

CREATE TABLE user_email_authentications (
    user_email_authentication_id TEXT NOT NULL PRIMARY KEY,
    user_session_id TEXT REFERENCES user_sessions (user_session_id) ON DELETE SET NULL,
    user_registration_id TEXT REFERENCES user_registrations (user_registration_id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);

CREATE INDEX user_email_authentications_user_session_fk ON user_email_authentications (user_session_id);
CREATE INDEX user_email_authentications_user_registration_fk
    ON user_email_authentications (user_registration_id);

CREATE TABLE user_email_authentication_codes (
    user_email_authentication_code_id TEXT NOT NULL PRIMARY KEY,
    user_email_authentication_id TEXT NOT NULL
        REFERENCES user_email_authentications (user_email_authentication_id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT user_email_authentication_codes_auth_id_code_unique UNIQUE (user_email_authentication_id, code)
);

CREATE TABLE user_terms (
    user_terms_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    terms_url TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, terms_url)
);

CREATE INDEX user_terms_user_fk ON user_terms (user_id);
