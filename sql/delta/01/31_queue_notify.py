# SPDX-License-Identifier: AGPL-3.0-only
"""PostgreSQL only: wake the workers when a job becomes available (MAS's
``queue_job_notify`` trigger): ``pg_notify('queue_available', '{"queue": name}')`` on every
insert of, or update to, an ``available`` job. Notifications with the same payload in one
transaction are coalesced by PostgreSQL. SQLite workers poll instead."""


def run_upgrade(txn, engine):  # type: ignore[no-untyped-def]
    if engine.name != "postgres":
        return
    txn.execute(
        """
        CREATE OR REPLACE FUNCTION queue_job_notify() RETURNS TRIGGER AS $$
        BEGIN
            IF NEW.status = 'available' THEN
                PERFORM pg_notify('queue_available', json_build_object('queue', NEW.queue_name)::text);
            END IF;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    txn.execute(
        """
        CREATE TRIGGER queue_job_notify_trigger
            AFTER INSERT OR UPDATE OF status ON queue_jobs
            FOR EACH ROW EXECUTE PROCEDURE queue_job_notify()
        """
    )
