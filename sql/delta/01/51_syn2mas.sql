-- SPDX-License-Identifier: AGPL-3.0-only
-- What syn2mas brings over from Synapse beside MAS's usual tables (inventory §13).
--
-- Third-party identifiers other than email addresses (phone numbers, mostly), which MAS does
-- not support but keeps (MAS's `user_unsupported_third_party_ids`).
CREATE TABLE user_unsupported_third_party_ids (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, medium, address)
);

-- One row per `syn2mas migrate` run (ours; MAS marks a run by its renamed tables). A run
-- inserts its row and commits it before writing anything else; everything else is written in
-- one transaction that also sets `finished_at` (a dry run rolls it back and deletes its row).
-- So a row left with `finished_at` NULL is a run that was interrupted, whose writes the
-- database rolled back.
CREATE TABLE syn2mas_runs (
    syn2mas_run_id TEXT NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    dry_run BOOLEAN NOT NULL DEFAULT FALSE
);
