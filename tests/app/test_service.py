# SPDX-License-Identifier: AGPL-3.0-only
"""``twistd mas``'s service tree (``make_service``): start-up failures are one line and
status 1, ``--no-migrate`` still refuses a database it cannot run on (as MAS does), and a
listener that cannot bind stops the reactor and makes the exit status 1."""

from __future__ import annotations

import io
import logging
import os
import sys
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from twisted.application.service import MultiService
from twisted.python.failure import Failure
from twisted.trial import unittest

from mas_twisted.api.errors import DatabaseError
from mas_twisted.app import service
from mas_twisted.app.endpoints import ListenerBindError
from mas_twisted.storage.prepare_database import delta_files, prepare_database
from tests.app._helpers import root_config_tree
from tests.utils import EmptyDatabase, temp_dir


class _ServiceTestCase(unittest.TestCase):
    def setUp(self) -> None:
        # make_service routes logging into Twisted's log; put the test process's back after.
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        self.addCleanup(lambda: (setattr(root, "handlers", handlers), root.setLevel(level)))
        self.db = EmptyDatabase(temp_dir(self))
        self.addCleanup(self.db.cleanup)

    def write_config(self, **overrides: Any) -> str:
        raw = root_config_tree({"public_base": "https://auth.example.com/", "listeners": []})
        raw["database"] = self.db.config_section
        raw.update(overrides)
        path = Path(temp_dir(self)) / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    def start(self, config: str, **flags: bool) -> tuple[Any, str]:
        options = {"config": [config], "no-migrate": False, "no-sync": False, "no-worker": False}
        options.update({k.replace("_", "-"): v for k, v in flags.items()})
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            try:
                result: Any = service.make_service(options)
            except SystemExit as e:
                result = e
        return result, stderr.getvalue()

    def assert_one_line_failure(self, result: Any, stderr: str, *fragments: str) -> None:
        self.assertIsInstance(result, SystemExit)
        self.assertEqual(result.code, 1)
        self.assertEqual(len(stderr.splitlines()), 1, stderr)
        self.assertTrue(stderr.startswith("twistd mas: "), stderr)
        self.assertNotIn("Traceback", stderr)
        for fragment in fragments:
            self.assertIn(fragment, stderr)


class NoMigrateTestCase(_ServiceTestCase):
    def test_no_migrate_refuses_a_too_new_database(self) -> None:
        prepare_database(self.db.db_config)
        self.db.query("UPDATE schema_version SET compat_version = ?", (999,))
        result, stderr = self.start(self.write_config(), no_migrate=True)
        self.assert_one_line_failure(result, stderr, "schema version 999 or later")

    def test_no_migrate_refuses_pending_migrations_and_applies_none(self) -> None:
        result, stderr = self.start(self.write_config(), no_migrate=True)
        self.assert_one_line_failure(result, stderr, "has no schema yet", "mas-cli database migrate")
        prepare_database(self.db.db_config)
        last = delta_files(self.db.engine_name)[-1].file
        self.db.query("DELETE FROM applied_schema_deltas WHERE file = ?", (last,))
        result, stderr = self.start(self.write_config(), no_migrate=True)
        self.assert_one_line_failure(result, stderr, "pending migration", last)
        self.assertEqual(
            self.db.query("SELECT COUNT(*) FROM applied_schema_deltas WHERE file = ?", (last,)), [(0,)]
        )

    def test_no_migrate_starts_on_an_up_to_date_database(self) -> None:
        prepare_database(self.db.db_config)
        result, stderr = self.start(self.write_config(), no_migrate=True, no_sync=True)
        self.assertIsInstance(result, MultiService, stderr)

    def test_migrating_start_checks_the_schema_too(self) -> None:
        prepare_database(self.db.db_config)
        self.db.query("UPDATE schema_version SET compat_version = ?", (999,))
        result, stderr = self.start(self.write_config())
        self.assert_one_line_failure(result, stderr, "schema version 999 or later")


class StartFailureTestCase(_ServiceTestCase):
    def test_unreachable_database_is_one_line(self) -> None:
        config = self.write_config(database={"uri": "sqlite:////proc/mas.db"})
        for flags in ({}, {"no_migrate": True}):
            result, stderr = self.start(config, **flags)
            self.assert_one_line_failure(
                result, stderr, "SQLite database /proc/mas.db", "unable to open database file"
            )

    def test_unexpected_error_is_one_line_and_traceback_only_at_debug(self) -> None:
        config = self.write_config()
        with mock.patch(
            "mas_twisted.config.root.RootConfig.load", side_effect=RuntimeError("boom\nsecond line")
        ):
            result, stderr = self.start(config)
        self.assert_one_line_failure(result, stderr, "unexpected error while starting: RuntimeError: boom")

        with mock.patch.dict(os.environ, {"MAS_LOG_LEVEL": "debug"}):
            with mock.patch("mas_twisted.config.root.RootConfig.load", side_effect=RuntimeError("boom")):
                result, stderr = self.start(config)
        self.assertEqual(result.code, 1)
        self.assertIn("Traceback", stderr)
        self.assertTrue(
            stderr.splitlines()[-1].startswith("twistd mas: unexpected error while starting"), stderr
        )


class _FakeReactor:
    def __init__(self) -> None:
        self.stopped = 0

    def callWhenRunning(self, func: Any, *args: Any) -> None:
        func(*args)

    def stop(self) -> None:
        self.stopped += 1


class _FakeServer:
    def __init__(self, reactor: _FakeReactor):
        self._reactor = reactor

    def get_reactor(self) -> _FakeReactor:
        return self._reactor


class BindFailureTestCase(unittest.TestCase):
    def test_bind_failure_stops_the_reactor_and_sets_the_exit_status(self) -> None:
        reactor = _FakeReactor()
        status = service.ExitStatus(exit=lambda code: None, flush_logs=lambda: None)
        listener = mock.Mock()
        listener.name = "web"
        listener_service = service.ListenerService(_FakeServer(reactor), listener, status)
        stderr = io.StringIO()
        with (
            mock.patch.object(sys, "__stderr__", stderr),
            self.assertLogs("mas_twisted.app.service", "ERROR"),
        ):
            listener_service._bind_failed(
                Failure(
                    ListenerBindError("listener web: could not bind 127.0.0.1:8080: Address already in use")
                )
            )
        self.assertEqual(
            stderr.getvalue(),
            "twistd mas: could not start listener web: could not bind 127.0.0.1:8080: Address already in use\n",
        )
        self.assertEqual(reactor.stopped, 1)
        self.assertEqual(status.code, 1)

    def test_other_errors_name_the_listener(self) -> None:
        reactor = _FakeReactor()
        status = service.ExitStatus(exit=lambda code: None, flush_logs=lambda: None)
        listener = mock.Mock()
        listener.name = "internal"
        stderr = io.StringIO()
        with (
            mock.patch.object(sys, "__stderr__", stderr),
            self.assertLogs("mas_twisted.app.service", "ERROR"),
        ):
            service.ListenerService(_FakeServer(reactor), listener, status)._bind_failed(
                Failure(DatabaseError("database gone"))
            )
        self.assertEqual(stderr.getvalue(), "twistd mas: could not start listener internal: database gone\n")

    def test_exit_status_ends_the_process_only_after_a_failure(self) -> None:
        exits: list[int] = []
        flushes: list[bool] = []
        status = service.ExitStatus(exit=exits.append, flush_logs=lambda: flushes.append(True))
        status.at_exit()
        self.assertEqual((exits, flushes), ([], []))
        status.fail(1)
        status.at_exit()
        self.assertEqual((exits, flushes), ([1], [True]))
