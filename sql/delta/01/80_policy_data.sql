-- SPDX-License-Identifier: AGPL-3.0-only
-- Dynamic policy data set through the admin API (`POST /api/admin/v1/policy-data`), merged over
-- the configuration's `policy.data` when the policies evaluate. MAS's table and columns
-- (inventory §12): every update is a new row, the latest (highest id) is the one in force, and
-- the daily `prune-stale-policy-data` job keeps the last ten. Portable types as elsewhere: the id
-- ULID TEXT, created_at BIGINT milliseconds, data a JSON value in TEXT.
CREATE TABLE policy_data (
    policy_data_id TEXT NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
