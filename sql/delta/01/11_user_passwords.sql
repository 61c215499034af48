-- SPDX-License-Identifier: AGPL-3.0-only
-- Password hashes of users (MAS's `user_passwords`). A user's current password is their most
-- recent row; `version` names the `passwords.schemes` entry that made the hash, and
-- `upgraded_from_id` the row a login re-hashed with a newer scheme.
CREATE TABLE user_passwords (
    user_password_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    hashed_password TEXT NOT NULL,
    version INTEGER NOT NULL,
    upgraded_from_id TEXT REFERENCES user_passwords (user_password_id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX user_passwords_user_fk ON user_passwords (user_id, created_at);
