-- SPDX-License-Identifier: AGPL-3.0-only
-- A TOTP second factor (ours, issue 18; MAS 1.22 has none). One row per user: the secret is
-- encrypted with `secrets.encryption` (never stored in clear); `confirmed_at` is NULL while
-- the user has not yet typed a first code; `last_used_step` is the RFC 6238 time step of the
-- last accepted code, so that a code is accepted once (a replay in the same step is refused).
CREATE TABLE user_totp (
    user_totp_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_used_step BIGINT
);

CREATE UNIQUE INDEX user_totp_user_idx ON user_totp (user_id);

-- Single-use recovery codes, hashed (SHA-256 of a random code: high entropy, so no slow hash).
CREATE TABLE user_recovery_codes (
    user_recovery_code_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE INDEX user_recovery_codes_user_fk ON user_recovery_codes (user_id);
CREATE UNIQUE INDEX user_recovery_codes_hash_idx ON user_recovery_codes (user_id, code_hash);

-- Which second factor, if any, completed a browser session's authentication:
-- 'totp' or 'recovery_code' (NULL: none was asked).
ALTER TABLE user_session_authentications ADD COLUMN second_factor TEXT;
