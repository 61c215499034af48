-- SPDX-License-Identifier: AGPL-3.0-only
-- Users of the service (MAS's `users`, inventory §12). The username is the Matrix localpart;
-- lookups are case-insensitive (LOWER(username)), and the exact casing wins when several rows
-- differ only by case. Ids are ULID TEXT, timestamps BIGINT milliseconds since the epoch.
CREATE TABLE users (
    user_id TEXT NOT NULL PRIMARY KEY,
    username TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- A locked user cannot log in and their tokens are inactive.
    locked_at BIGINT,
    -- A deactivated user is also deactivated on the homeserver.
    deactivated_at BIGINT,
    can_request_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT users_username_unique UNIQUE (username)
);

CREATE INDEX users_lower_username_idx ON users (LOWER(username));
