# SPDX-License-Identifier: AGPL-3.0-only
"""Schema deltas: applied once, in order, per engine, recorded; a too-new database is refused."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr
from pathlib import Path

from twisted.trial import unittest

from mas_twisted.api.errors import DatabaseError
from mas_twisted.cli.main import main as cli_main
from mas_twisted.storage.engines import BaseEngine, create_engine
from mas_twisted.storage.prepare_database import (
    check_schema,
    check_schema_on_connection,
    delta_files,
    prepare_database,
    prepare_database_on_connection,
)
from mas_twisted.storage.schema import SCHEMA_COMPAT_VERSION, SCHEMA_VERSION
from mas_twisted.util.paths import data_dir
from tests.utils import EmptyDatabase, make_db_config, temp_dir


class PrepareDatabaseTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.db = EmptyDatabase(temp_dir(self))
        self.addCleanup(self.db.cleanup)

    def write_deltas(self, files: dict[str, str]) -> Path:
        root = Path(temp_dir(self))
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root

    def prepare_with(self, root: Path, **kwargs: int) -> list[str]:
        engine = create_engine(self.db.db_config)
        conn = engine.connect()
        try:
            return prepare_database_on_connection(conn, engine, delta_dir=root, **kwargs)
        finally:
            conn.close()

    def test_fresh_database_gets_every_delta_once(self) -> None:
        applied = prepare_database(self.db.db_config)
        expected = [d.file for d in delta_files(self.db.engine_name)]
        self.assertEqual(applied, expected)
        self.assertIn("01/01_oauth2_clients.sql", applied)
        self.assertIn("01/02_upstream_oauth_providers.sql", applied)

        self.assertEqual(prepare_database(self.db.db_config), [])

        recorded = self.db.query("SELECT version, file FROM applied_schema_deltas ORDER BY file")
        self.assertEqual(
            [(int(v), f) for v, f in recorded], [(int(f.split("/")[0]), f) for f in sorted(expected)]
        )
        self.assertEqual(
            self.db.query("SELECT version, compat_version FROM schema_version"),
            [(SCHEMA_VERSION, SCHEMA_COMPAT_VERSION)],
        )
        # The tables exist with MAS's names.
        self.assertEqual(self.db.query("SELECT COUNT(*) FROM oauth2_clients"), [(0,)])
        self.assertEqual(self.db.query("SELECT COUNT(*) FROM upstream_oauth_providers"), [(0,)])

    def test_engine_specific_python_and_future_deltas(self) -> None:
        root = self.write_deltas(
            {
                "01/01_a.sql": "-- a comment line\nCREATE TABLE a (\n    x TEXT\n);\n\nCREATE INDEX a_x ON a (x);\n",
                "01/02_b.sql.postgres": "CREATE TABLE b_postgres (x TEXT);\n",
                "01/02_b.sql.sqlite": "CREATE TABLE b_sqlite (x TEXT);\n",
                "01/03_c.py": (
                    "def run_upgrade(txn, engine):\n"
                    "    txn.execute('INSERT INTO a (x) VALUES (?)', (engine.name,))\n"
                ),
                "01/README.md": "not a delta\n",
                "02/01_future.sql": "CREATE TABLE future (x TEXT);\n",
            }
        )
        engine = self.db.engine_name
        applied = self.prepare_with(root, schema_version=1, compat_version=1)
        self.assertEqual(applied, ["01/01_a.sql", f"01/02_b.sql.{engine}", "01/03_c.py"])
        self.assertEqual(self.db.query("SELECT x FROM a"), [(engine,)])
        self.assertEqual(self.db.query(f"SELECT COUNT(*) FROM b_{engine}"), [(0,)])
        # Folder 02 is beyond schema version 1: not applied yet.
        with self.assertRaises(Exception):
            self.db.query("SELECT COUNT(*) FROM future")

        self.assertEqual(self.prepare_with(root, schema_version=2, compat_version=1), ["02/01_future.sql"])
        self.assertEqual(self.db.query("SELECT COUNT(*) FROM future"), [(0,)])
        self.assertEqual(self.db.query("SELECT version, compat_version FROM schema_version"), [(2, 1)])

    def test_failing_delta_is_rolled_back_and_not_recorded(self) -> None:
        root = self.write_deltas(
            {
                "01/01_ok.sql": "CREATE TABLE ok (x TEXT);\n",
                "01/02_bad.sql": "CREATE TABLE half (x TEXT);\nINSERT INTO no_such_table (x) VALUES ('1');\n",
            }
        )
        with self.assertRaises(DatabaseError) as cm:
            self.prepare_with(root)
        message = str(cm.exception)
        self.assertIn("01/02_bad.sql", message)
        self.assertNotIn("\n", message)
        # The failed file left nothing behind; the one before it stays applied.
        with self.assertRaises(Exception):
            self.db.query("SELECT COUNT(*) FROM half")
        self.assertEqual(self.db.query("SELECT file FROM applied_schema_deltas"), [("01/01_ok.sql",)])

        (root / "01" / "02_bad.sql").write_text("CREATE TABLE half (x TEXT);\n")
        self.assertEqual(self.prepare_with(root), ["01/02_bad.sql"])

    def test_too_new_database_is_refused(self) -> None:
        prepare_database(self.db.db_config)
        self.db.query(
            "UPDATE schema_version SET version = ?, compat_version = ?",
            (SCHEMA_VERSION + 2, SCHEMA_VERSION + 1),
        )
        with self.assertRaises(DatabaseError) as cm:
            prepare_database(self.db.db_config)
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertIn(f"schema version {SCHEMA_VERSION + 1} or later", message)
        self.assertIn(f"this is schema version {SCHEMA_VERSION}", message)

    def test_newer_but_compatible_database_is_accepted_and_not_downgraded(self) -> None:
        prepare_database(self.db.db_config)
        self.db.query(
            "UPDATE schema_version SET version = ?, compat_version = ?", (SCHEMA_VERSION + 3, SCHEMA_VERSION)
        )
        self.assertEqual(prepare_database(self.db.db_config), [])
        self.assertEqual(
            self.db.query("SELECT version, compat_version FROM schema_version"),
            [(SCHEMA_VERSION + 3, SCHEMA_VERSION)],
        )

    def test_cli_migrate(self) -> None:
        config = Path(temp_dir(self)) / "config.yaml"
        # Only the database section: ``database migrate`` reads nothing else.
        lines = ["database:"] + [f"  {k}: {v}" for k, v in self.db.config_section.items()]
        config.write_text("\n".join(lines) + "\n")
        self.assertEqual(cli_main(["database", "migrate", "-c", str(config)]), 0)
        self.assertEqual(self.db.query("SELECT COUNT(*) FROM oauth2_clients"), [(0,)])
        self.assertEqual(cli_main(["-c", str(config), "database", "migrate"]), 0)

        self.db.query("UPDATE schema_version SET compat_version = ?", (SCHEMA_VERSION + 1,))
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            self.assertEqual(cli_main(["database", "migrate", "-c", str(config)]), 1)
        self.assertRegex(stderr.getvalue(), r"^mas-cli: the database schema \(version \d+\) needs code .*\n$")


class CheckSchemaTestCase(unittest.TestCase):
    """``check_schema``: what ``--no-migrate`` relies on; it never changes the database."""

    def setUp(self) -> None:
        self.db = EmptyDatabase(temp_dir(self))
        self.addCleanup(self.db.cleanup)

    def check_error(self) -> str:
        with self.assertRaises(DatabaseError) as cm:
            check_schema(self.db.db_config)
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        return message

    def test_up_to_date_database_passes(self) -> None:
        prepare_database(self.db.db_config)
        check_schema(self.db.db_config)

    def test_empty_database_is_refused_and_left_empty(self) -> None:
        message = self.check_error()
        self.assertIn("has no schema yet", message)
        self.assertIn("mas-cli database migrate", message)
        # Nothing was created, not even the bookkeeping tables.
        self.assertEqual(
            prepare_database(self.db.db_config), [d.file for d in delta_files(self.db.engine_name)]
        )

    def test_pending_delta_is_refused_and_not_applied(self) -> None:
        prepare_database(self.db.db_config)
        missing = delta_files(self.db.engine_name)[-1].file
        self.db.query("DELETE FROM applied_schema_deltas WHERE file = ?", (missing,))
        message = self.check_error()
        self.assertIn("1 pending migration(s)", message)
        self.assertIn(missing, message)
        self.assertIn("without --no-migrate", message)
        self.assertEqual(
            self.db.query("SELECT COUNT(*) FROM applied_schema_deltas WHERE file = ?", (missing,)), [(0,)]
        )

    def test_too_new_database_is_refused(self) -> None:
        prepare_database(self.db.db_config)
        self.db.query("UPDATE schema_version SET version = ?, compat_version = ?", (999, 999))
        message = self.check_error()
        self.assertIn("schema version 999 or later", message)

    def test_newer_but_compatible_database_passes(self) -> None:
        prepare_database(self.db.db_config)
        # A newer release applied a file this code does not know, keeping compatibility.
        self.db.query("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        self.db.query(
            "INSERT INTO applied_schema_deltas (version, file, applied_at) VALUES (?, ?, ?)",
            (SCHEMA_VERSION + 1, f"{SCHEMA_VERSION + 1:02d}/01_future.sql", 0),
        )
        check_schema(self.db.db_config)

    def test_check_on_a_connection_with_its_own_deltas(self) -> None:
        root = Path(temp_dir(self))
        (root / "01").mkdir()
        (root / "01" / "01_a.sql").write_text("CREATE TABLE a (x TEXT);\n")
        engine = create_engine(self.db.db_config)
        conn = engine.connect()
        self.addCleanup(conn.close)
        prepare_database_on_connection(conn, engine, delta_dir=root, schema_version=1, compat_version=1)
        check_schema_on_connection(conn, engine, delta_dir=root, schema_version=1)
        (root / "01" / "02_b.sql").write_text("CREATE TABLE b (x TEXT);\n")
        with self.assertRaises(DatabaseError) as cm:
            check_schema_on_connection(conn, engine, delta_dir=root, schema_version=1)
        self.assertIn("01/02_b.sql", str(cm.exception))


class DatabaseErrorsTestCase(unittest.TestCase):
    """Driver errors become one-line DatabaseErrors naming the database, never tracebacks."""

    def test_unopenable_sqlite_file(self) -> None:
        db_config = make_db_config({"uri": "sqlite:////proc/mas.db"})
        for func in (prepare_database, check_schema):
            with self.assertRaises(DatabaseError) as cm:
                func(db_config)
            message = str(cm.exception)
            self.assertNotIn("\n", message)
            self.assertIn("SQLite database /proc/mas.db", message)
            self.assertIn("unable to open database file", message)

    def test_bookkeeping_failure(self) -> None:
        # The bookkeeping transactions, not only the deltas, map driver errors (on any
        # engine; a read-only SQLite connection makes one happen).
        directory = temp_dir(self)
        path = f"{directory}/mas.db"
        db_config = make_db_config({"uri": "sqlite:///" + path})
        create_engine(db_config).connect().close()  # creates the (empty) file
        engine = create_engine(db_config)
        conn = engine.connect()
        self.addCleanup(conn.close)
        conn.execute("PRAGMA query_only = ON")
        with self.assertRaises(DatabaseError) as cm:
            prepare_database_on_connection(conn, engine)
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertTrue(
            message.startswith(f"could not prepare the schema of the SQLite database {path}: "), message
        )

    def test_cli_migrate_prints_one_line(self) -> None:
        config = Path(temp_dir(self)) / "config.yaml"
        config.write_text("database:\n  uri: sqlite:////proc/mas.db\n")
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            self.assertEqual(cli_main(["database", "migrate", "-c", str(config)]), 1)
        self.assertRegex(
            stderr.getvalue(), r"^mas-cli: could not connect to the SQLite database /proc/mas.db: .*\n$"
        )


class DeltaFilesTestCase(unittest.TestCase):
    def test_shipped_deltas_fit_the_schema_version(self) -> None:
        root = data_dir("sql") / "delta"
        folders = sorted(int(p.name) for p in root.iterdir() if p.is_dir())
        self.assertEqual(folders[-1], SCHEMA_VERSION, "bump SCHEMA_VERSION when adding a delta folder")
        pattern = re.compile(r"^\d{2}_[a-z0-9_]+\.(sql|sql\.postgres|sql\.sqlite|py)$")
        for folder in root.iterdir():
            for path in folder.iterdir():
                if path.name == "__pycache__":
                    continue
                self.assertRegex(path.name, pattern, f"unexpected file {path}")

    def test_engine_filter(self) -> None:
        sqlite_files = [d.file for d in delta_files("sqlite")]
        postgres_files = [d.file for d in delta_files("postgres")]
        self.assertFalse([f for f in sqlite_files if f.endswith(".postgres")])
        self.assertFalse([f for f in postgres_files if f.endswith(".sqlite")])

    def test_splitter(self) -> None:
        script = (
            "-- header\n"
            "CREATE TABLE t (\n"
            "    a TEXT, -- trailing comments stay with the statement\n"
            "    b TEXT\n"
            ");\n"
            "\n"
            "  -- indented comment\n"
            "INSERT INTO t (a) VALUES ('x');\n"
            "CREATE INDEX t_a ON t (a)"
        )
        self.assertEqual(
            list(BaseEngine.split_statements(script)),
            [
                "CREATE TABLE t (\n    a TEXT, -- trailing comments stay with the statement\n    b TEXT\n)",
                "INSERT INTO t (a) VALUES ('x')",
                "CREATE INDEX t_a ON t (a)",
            ],
        )
