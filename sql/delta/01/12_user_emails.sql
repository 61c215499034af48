-- SPDX-License-Identifier: AGPL-3.0-only
-- Verified email addresses of users (MAS's `user_emails`: only verified addresses land here,
-- and there is no "primary" flag). Lookups by address are case-insensitive.
CREATE TABLE user_emails (
    user_email_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX user_emails_user_fk ON user_emails (user_id);
CREATE INDEX user_emails_lower_email_idx ON user_emails (LOWER(email));
