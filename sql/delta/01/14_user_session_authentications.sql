-- SPDX-License-Identifier: AGPL-3.0-only
-- How and when a browser session was authenticated (MAS's `user_session_authentications`):
-- with a password (`user_password_id`) or through an upstream provider
-- (`upstream_oauth_authorization_session_id`, filled in once upstream login exists).
CREATE TABLE user_session_authentications (
    user_session_authentication_id TEXT NOT NULL PRIMARY KEY,
    user_session_id TEXT NOT NULL REFERENCES user_sessions (user_session_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    user_password_id TEXT REFERENCES user_passwords (user_password_id) ON DELETE SET NULL,
    upstream_oauth_authorization_session_id TEXT
);

CREATE INDEX user_session_authentications_user_session_fk
    ON user_session_authentications (user_session_id, created_at);
CREATE INDEX user_session_authentications_user_password_fk
    ON user_session_authentications (user_password_id);
