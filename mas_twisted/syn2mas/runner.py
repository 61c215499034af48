# SPDX-License-Identifier: AGPL-3.0-only
"""One ``syn2mas check`` or ``syn2mas migrate [--dry-run]`` run, start to finish (MAS's
``crates/cli/src/commands/syn2mas.rs``).

Both bring our schema up to date, lock our database against a second run, and report the
checks (:mod:`mas_twisted.syn2mas.checks`) as ``ERROR``/``WARN`` lines; any error ends the run
with status 10. ``check`` then exits 11 if there were warnings, 0 if not. ``migrate`` goes on
with warnings (as MAS), syncs the configured upstream providers and writes everything in one
transaction (:mod:`mas_twisted.storage.syn2mas` says why that makes a killed run harmless);
``--dry-run`` rolls it back at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from mas_twisted.api.errors import DatabaseError
from mas_twisted.storage.database import LoggingTransaction, run_txn
from mas_twisted.storage.engines import create_engine
from mas_twisted.storage.engines._base import first_line
from mas_twisted.storage.syn2mas import (
    MigrationLock,
    delete_run_txn,
    finish_run_txn,
    finished_run_txn,
    first_non_empty_table_txn,
    forget_interrupted_runs_txn,
    interrupted_runs_txn,
    start_run_txn,
)
from mas_twisted.storage.synapse_reader import SynapseReader
from mas_twisted.syn2mas import checks
from mas_twisted.syn2mas.migrate import IdMinter, Mapper, MigrationStats, migrate_txn
from mas_twisted.syn2mas.synapse_config import SynapseConfig, SynapseDatabase, load_synapse_config

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig

logger = logging.getLogger(__name__)

EXIT_LOCKED = 1


@attrs.frozen
class Options:
    command: str  # "check" | "migrate"
    config_files: list[str]
    synapse_config_files: list[str]
    synapse_database_uri: str | None = None
    ignore_missing_auth_providers: bool = False
    dry_run: bool = False
    #: ``synapse_idp_id`` → our provider id, beside the configured ``synapse_idp_id``s (the
    #: seed's ``--upstreamProviderMapping``).
    provider_mapping: dict[str, str] = attrs.field(factory=dict)
    #: Run the checks of Synapse's side only (the seed's advisor without ``--masConfigFile``).
    without_mas_config: bool = False


def open_synapse(synapse: SynapseConfig, uri: str | None, *, lock: bool) -> SynapseReader:
    database = SynapseDatabase.from_uri(uri) if uri else synapse.database
    if database is None:
        raise DatabaseError("Synapse's configuration has no database section; pass --synapse-database-uri")
    logger.info("Reading the %s", database.describe())
    if database.kind == "postgres":
        assert database.dsn is not None
        return SynapseReader.open_postgres(database.dsn, lock=lock)
    assert database.path is not None
    return SynapseReader.open_sqlite(database.path)


def target_checks_txn(txn: LoggingTransaction) -> list[checks.Finding]:
    """Our database must be empty (MAS's ``mas_pre_migration_checks``)."""
    found = []
    finished = finished_run_txn(txn)
    if finished is not None:
        found.append(
            checks.Finding(
                checks.ERROR,
                f"This database already holds a completed migration (run {finished[0]}). Migrate into a"
                " new, empty database.",
            )
        )
        return found
    table = first_non_empty_table_txn(txn)
    if table is not None:
        found.append(
            checks.Finding(
                checks.ERROR,
                f"Our database is not empty: {table} has rows. Migrate into a new, empty database (drop"
                " and create it again, then run this again).",
            )
        )
    return found


def _print_findings(findings: list[checks.Finding], out: TextIO) -> None:
    for line in checks.render(findings):
        print(line, file=out)
    errors = sum(f.level == checks.ERROR for f in findings)
    warnings = len(findings) - errors
    if errors:
        print(f"{errors} error(s) prevent the migration; {warnings} warning(s).", file=out)
    elif warnings:
        print(f"No errors; {warnings} warning(s) to consider before migrating.", file=out)
    else:
        print("Check completed successfully with no errors or warnings.", file=out)
    out.flush()


def run(
    options: Options,
    *,
    out: TextIO,
    load_config: Callable[[list[str]], RootConfig] | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run ``options.command``; the exit status."""
    from mas_twisted.config.root import RootConfig

    synapse = load_synapse_config(options.synapse_config_files)
    if options.without_mas_config:
        # The seed's advisor without --masConfigFile: Synapse's side only.
        findings = checks.synapse_config_checks(synapse)
        with open_synapse(synapse, options.synapse_database_uri, lock=False) as reader:
            findings += checks.database_checks(
                synapse,
                None,
                reader,
                ignore_missing_auth_providers=options.ignore_missing_auth_providers,
                provider_mapping=options.provider_mapping,
            )
        _print_findings(findings, out)
        return checks.exit_status(findings, warnings_count=True)
    config = (load_config or RootConfig.load)(options.config_files)
    return _run_with_config(options, synapse, config, out, clock)


def _run_with_config(
    options: Options, synapse: SynapseConfig, config: RootConfig, out: TextIO, clock: Callable[[], float]
) -> int:
    from mas_twisted.storage.prepare_database import prepare_database

    migrating = options.command == "migrate"
    applied = prepare_database(config.database)
    if applied:
        logger.info("Applied %d migration(s) to the %s", len(applied), config.database.describe_target())

    engine = create_engine(config.database)
    lock = MigrationLock(engine)
    if not lock.acquire():
        print("ERROR Another syn2mas run holds the lock on this database; wait for it to end.", file=out)
        return EXIT_LOCKED
    try:
        conn = engine.connect()
        try:
            findings = checks.synapse_config_checks(synapse) + checks.mas_config_checks(synapse, config)
            findings += run_txn(conn, engine, "syn2mas_target_checks", target_checks_txn)
            with open_synapse(
                synapse, options.synapse_database_uri, lock=migrating and not options.dry_run
            ) as reader:
                findings += checks.database_checks(
                    synapse,
                    config,
                    reader,
                    ignore_missing_auth_providers=options.ignore_missing_auth_providers,
                    provider_mapping=options.provider_mapping,
                )
                findings += checks.running_synapse_checks(
                    synapse, reader, migrating=migrating and not options.dry_run
                )
                _print_findings(findings, out)
                status = checks.exit_status(findings, warnings_count=not migrating)
                if status or not migrating:
                    return status
                stats = _migrate(conn, engine, config, synapse, reader, options, clock)
        finally:
            conn.close()
    except engine.module.Error as e:
        raise DatabaseError(
            f"syn2mas failed on the {config.database.describe_target()}: {first_line(e)}"
        ) from None
    finally:
        lock.release()
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.migrated.items())) or "nothing"
    skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.skipped.items()))
    verb = "Dry run: would migrate" if options.dry_run else "Migrated"
    print(f"{verb} {summary}" + (f" (skipped {skipped})" if skipped else "") + ".", file=out)
    if options.dry_run:
        print("Dry run: everything written was rolled back.", file=out)
    return 0


def _migrate(
    conn: Any,
    engine: Any,
    config: RootConfig,
    synapse: SynapseConfig,
    reader: SynapseReader,
    options: Options,
    clock: Callable[[], float],
) -> MigrationStats:
    from mas_twisted.jose.encrypter import Encrypter
    from mas_twisted.storage.config_sync import config_sync_txn

    now_ms = int(clock() * 1000)
    ids = IdMinter()
    run_id = ids.ulid(now_ms, "run")

    def _begin_txn(txn: LoggingTransaction) -> None:
        for interrupted, started_at, dry_run in interrupted_runs_txn(txn):
            logger.warning(
                "An earlier syn2mas %s (%s, started at %s) was interrupted; the database rolled back"
                " everything it had written. Starting over.",
                "dry run" if dry_run else "run",
                interrupted,
                time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started_at / 1000)),
            )
        forget_interrupted_runs_txn(txn)
        start_run_txn(txn, run_id, now_ms, options.dry_run)

    run_txn(conn, engine, "syn2mas_start", _begin_txn, write=True)

    provider_ids = {p.synapse_idp_id: p.id for p in config.upstream_oauth2.providers if p.synapse_idp_id}
    provider_ids.update(options.provider_mapping)
    mapper = Mapper(
        server_name=synapse.server_name,
        now_ms=now_ms,
        ids=ids,
        provider_ids=provider_ids,
        ignore_missing_auth_providers=options.ignore_missing_auth_providers,
    )

    def _migrate_txn(txn: LoggingTransaction) -> MigrationStats:
        # The providers must exist for the links: sync them first, in the same transaction
        # (MAS runs a config sync before migrating, without pruning).
        config_sync_txn(
            txn,
            config,
            Encrypter(config.secrets.encryption_key),
            now_ms,
            prune=False,
            dry_run=options.dry_run,
        )
        stats = migrate_txn(txn, reader, mapper)
        finish_run_txn(txn, run_id, int(clock() * 1000))
        return stats

    started = time.monotonic()
    try:
        stats = run_txn(conn, engine, "syn2mas_migrate", _migrate_txn, write=True, rollback=options.dry_run)
    except BaseException:
        # Nothing migrated was committed; the run's row stays, marking the interruption, unless
        # we can still say so ourselves.
        try:
            run_txn(conn, engine, "syn2mas_abandon", lambda txn: delete_run_txn(txn, run_id), write=True)
        except Exception:
            pass
        raise
    if options.dry_run:
        run_txn(conn, engine, "syn2mas_dry_run_end", lambda txn: delete_run_txn(txn, run_id), write=True)
    logger.info(
        "syn2mas %s finished in %.1fs",
        "dry run" if options.dry_run else "migration",
        time.monotonic() - started,
    )
    return stats
