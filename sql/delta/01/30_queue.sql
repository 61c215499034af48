-- SPDX-License-Identifier: AGPL-3.0-only
-- The job queue (inventory §9; MAS's queue_* migrations of 2024-10 and 2024-11): workers
-- with heartbeats, a single leader holding a lease, jobs with their attempts, and the cron
-- schedules the leader enqueues. Times are milliseconds since the epoch, ids ULIDs, JSON
-- as text, as in the rest of the schema.
CREATE TABLE queue_workers (
    queue_worker_id TEXT NOT NULL PRIMARY KEY,
    registered_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    shutdown_at BIGINT
);

-- At most one row: the worker holding the leader lease until expires_at.
CREATE TABLE queue_leader (
    active BOOLEAN NOT NULL DEFAULT TRUE UNIQUE,
    elected_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    queue_worker_id TEXT NOT NULL REFERENCES queue_workers (queue_worker_id),
    CONSTRAINT queue_leader_active CHECK (active)
);

CREATE TABLE queue_schedules (
    schedule_name TEXT NOT NULL PRIMARY KEY,
    -- When the schedule's job last became due (NULL: never scheduled).
    last_scheduled_at BIGINT,
    -- That job, while it exists (the queue cleanup clears the reference).
    last_scheduled_job_id TEXT
);

CREATE TABLE queue_jobs (
    queue_job_id TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'available',
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    started_by TEXT REFERENCES queue_workers (queue_worker_id),
    completed_at BIGINT,
    queue_name TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    failed_at BIGINT,
    failed_reason TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_attempt_id TEXT REFERENCES queue_jobs (queue_job_id) ON DELETE SET NULL,
    scheduled_at BIGINT,
    schedule_name TEXT REFERENCES queue_schedules (schedule_name),
    CONSTRAINT queue_jobs_status_check
        CHECK (status IN ('available', 'running', 'completed', 'failed', 'scheduled', 'lost'))
);

CREATE INDEX idx_queue_jobs_status_queue_job_id ON queue_jobs (status, queue_name, queue_job_id);
CREATE INDEX queue_jobs_scheduled_at_idx ON queue_jobs (scheduled_at) WHERE status = 'scheduled';
CREATE INDEX idx_queue_jobs_started_by ON queue_jobs (started_by);
CREATE INDEX idx_queue_jobs_next_attempt ON queue_jobs (next_attempt_id);
CREATE INDEX idx_queue_jobs_schedule_name ON queue_jobs (schedule_name);

-- Short leases on a name, held across a job's calls to the homeserver (the per-user lock
-- under which sync-devices reads the devices and sends them). MAS holds a row lock on the
-- user for this; a lease does not keep a database connection busy while waiting on HTTP.
CREATE TABLE queue_locks (
    lock_name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
