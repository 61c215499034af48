# SPDX-License-Identifier: AGPL-3.0-only
"""The service ``twistd mas`` runs (MAS's ``mas-cli server``, ``crates/cli/src/commands/server.rs``).

Start-up order, as in MAS and Synapse: load and validate the configuration, apply pending
database migrations (with ``--no-migrate``, only check that none is pending and that the
schema is not newer than this code, as MAS refuses to start otherwise), sync the static
clients and upstream providers (unless ``--no-sync``), then bind every ``http.listeners[]``
entry. Anything that goes wrong before the reactor runs is one line on stderr and exit
status 1 (with ``MAS_LOG_LEVEL=debug`` an unexpected error's traceback follows it).

A listener that cannot bind prints one line naming it and stops the reactor, so that
twistd shuts down in order (other listeners closed, pidfile removed, logs flushed); the
process then exits with status 1 (:class:`ExitStatus`).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, cast

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from mas_twisted import __version__
from mas_twisted.api.errors import ConfigError, MasError
from mas_twisted.storage.engines._base import first_line
from mas_twisted.util.reactor import IMasReactor

logger = logging.getLogger(__name__)


class TwistedLogHandler(logging.Handler):
    """Sends stdlib ``logging`` records to Twisted's log, so that twistd's log file (or
    stdout with ``-n``) has the service's lines next to Twisted's own."""

    _LEVELS = {
        logging.DEBUG: LogLevel.debug,
        logging.INFO: LogLevel.info,
        logging.WARNING: LogLevel.warn,
        logging.ERROR: LogLevel.error,
        logging.CRITICAL: LogLevel.critical,
    }

    def __init__(self) -> None:
        super().__init__()
        self._log = Logger(namespace="mas")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # pragma: no cover - a broken format string must not kill the service
            text = str(record.msg)
        level = self._LEVELS.get(record.levelno, LogLevel.info)
        self._log.emit(level, "{text}", text=text, log_namespace=record.name)


def setup_logging() -> None:
    """Route the service's logging into twistd's log. ``MAS_LOG_LEVEL`` (or ``RUST_LOG``, as
    MAS reads it) picks the level; the default is INFO. ``MAS_LOG_FORMAT=json`` writes each
    record as one JSON object (:mod:`mas_twisted.logging.json_format`)."""
    from mas_twisted.logging.json_format import JsonFormatter, log_format_from_env

    level_name = (os.environ.get("MAS_LOG_LEVEL") or os.environ.get("RUST_LOG") or "info").upper()
    level = getattr(logging, level_name, None)
    if not isinstance(level, int):
        level = logging.INFO if level_name != "TRACE" else logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, TwistedLogHandler):
            root.removeHandler(handler)
    from mas_twisted.logging.context import RequestIdFilter

    handler = TwistedLogHandler()
    handler.addFilter(RequestIdFilter())
    try:
        json_lines = log_format_from_env(os.environ.get("MAS_LOG_FORMAT")) == "json"
    except ValueError as e:
        raise _fail_start(str(e))
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def _fail_start(message: str) -> SystemExit:
    """One line on the real stderr, then exit 1 (no traceback: the operator reads this)."""
    sys.stderr.write(f"twistd mas: {message}\n")
    sys.stderr.flush()
    return SystemExit(1)


def _fail_unexpected(error: BaseException, doing: str) -> SystemExit:
    """An error nobody anticipated: still one line, with the traceback only at DEBUG.

    Twisted's log is not running yet during ``makeService``, so the traceback is written to
    stderr directly when DEBUG is on (it is logged too, for a log handler set up earlier).
    """
    logger.debug("Unexpected error while %s", doing, exc_info=error)
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    detail = f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__
    return _fail_start(
        f"unexpected error while {doing}: {detail} (set MAS_LOG_LEVEL=debug for the traceback)"
    )


class ExitStatus:
    """The status the process exits with once twistd has shut down (0 unless :meth:`fail`).

    twistd always exits 0 after its reactor stops. :meth:`install`, called before anything
    registers other exit handlers, adds an ``atexit`` handler; because handlers run last
    registered first, it runs after twistd removed its pidfile and after every later
    handler, and then ends the process with the recorded status, flushing logging first.
    """

    def __init__(
        self, exit: Callable[[int], Any] = os._exit, flush_logs: Callable[[], Any] = logging.shutdown
    ):
        self.code = 0
        self._installed = False
        self._exit = exit
        self._flush_logs = flush_logs

    def install(self) -> None:
        if not self._installed:
            atexit.register(self.at_exit)
            self._installed = True

    def fail(self, code: int = 1) -> None:
        self.code = code

    def at_exit(self) -> None:
        if self.code == 0:
            return
        self._flush_logs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        self._exit(self.code)


#: The process's exit status, set by a listener that cannot bind.
exit_status = ExitStatus()


class ListenerService(Service):
    """Binds one ``http.listeners[]`` entry when the service starts, unbinds it on stop."""

    def __init__(self, server: Any, listener: Any, status: ExitStatus | None = None):
        self._server = server
        self._listener = listener
        self._exit_status = status if status is not None else exit_status
        self._ports: list[Any] = []
        self.name = f"listener-{listener.name}"

    def startService(self) -> None:
        super().startService()
        from mas_twisted.app.endpoints import listen_http
        from mas_twisted.app.listeners import build_listener_site

        site = build_listener_site(self._server, self._listener)
        d = defer.ensureDeferred(listen_http(self._server.get_reactor(), self._listener, site))
        d.addCallbacks(self._listening, self._bind_failed)

    def _listening(self, ports: list[Any]) -> None:
        self._ports = list(ports)
        for port in self._ports:
            logger.info("Listener %s is listening on %s", self._listener.name, _describe_port(port))

    def _bind_failed(self, failure: Failure) -> None:
        # Synapse's start-up rule: a service that cannot bind must not limp on. Stopping
        # the reactor (rather than exiting here) lets twistd close the other listeners,
        # remove its pidfile and flush its log; ``exit_status`` makes the exit non-zero.
        from mas_twisted.app.endpoints import ListenerBindError

        error = failure.value
        if isinstance(error, ListenerBindError):
            message = error.msg  # already names the listener and the bind
        else:
            detail = error.msg if isinstance(error, MasError) else failure.getErrorMessage()
            message = f"listener {self._listener.name}: {detail}"
            logger.debug("Listener %s failed to start", self._listener.name, exc_info=failure.value)
        logger.error("Could not start %s", message)
        # twistd has replaced sys.stderr with its log by now; the operator's terminal (or the
        # service manager's journal) gets the line on the process's own stderr.
        stderr = sys.__stderr__ or sys.stderr
        stderr.write(f"twistd mas: could not start {message}\n")
        stderr.flush()
        self._exit_status.fail(1)
        reactor = self._server.get_reactor()
        reactor.callWhenRunning(_stop_reactor, reactor)

    def stopService(self) -> defer.Deferred:
        super().stopService()
        ports, self._ports = self._ports, []
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports], consumeErrors=True)


def _stop_reactor(reactor: Any) -> None:
    from twisted.internet.error import ReactorNotRunning

    try:
        reactor.stop()
    except ReactorNotRunning:
        pass


class ActivityFlushService(Service):
    """Runs the activity tracker's periodic flush while the service runs; flushes on stop."""

    name = "activity-tracker"

    def __init__(self, server: Any):
        self._server = server

    def startService(self) -> None:
        super().startService()
        self._server.get_activity_tracker().start()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        return self._server.get_activity_tracker().stop()


class PolicyDataService(Service):
    """Loads the latest dynamic policy data when the service starts and every minute after
    (``handlers/policy_data.py``), so that data set through another process's admin API
    reaches this one."""

    name = "policy-data"

    def __init__(self, server: Any):
        self._server = server

    def startService(self) -> None:
        super().startService()
        self._server.get_policy_data_handler().start()

    def stopService(self) -> None:
        super().stopService()
        self._server.get_policy_data_handler().stop()


class ReactorLagService(Service):
    """Measures the reactor's lag while the service runs (``mas_reactor_tick_lag_seconds``,
    :class:`mas_twisted.metrics.ReactorLagMonitor`)."""

    name = "reactor-lag"

    def __init__(self, server: Any):
        self._server = server

    def startService(self) -> None:
        super().startService()
        from mas_twisted import metrics

        metrics.start_reactor_lag_monitor(self._server.get_reactor())

    def stopService(self) -> None:
        super().stopService()
        from mas_twisted import metrics

        metrics.stop_reactor_lag_monitor()


class HomeserverConnectionService(Service):
    """Closes the pooled HTTP connections to the homeserver when the service stops (after the
    worker and the listeners, which may still be using them: it is the first child, so it
    stops last)."""

    name = "homeserver-connection"

    def __init__(self, server: Any):
        self._server = server

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        connection = getattr(self._server, "_homeserver_connection", None)
        if connection is None or not hasattr(connection, "close"):
            return defer.succeed(None)
        d = defer.ensureDeferred(connection.close())
        d.addErrback(
            lambda f: logger.debug("Closing the homeserver connection failed: %s", f.getErrorMessage())
        )
        return d


def _describe_port(port: Any) -> str:
    try:
        host = port.getHost()
    except Exception:
        return repr(port)
    if hasattr(host, "port"):
        return f"{host.host}:{host.port}"
    return str(getattr(host, "name", host))


def make_service(options: Mapping[str, Any]) -> MultiService:
    """Build the service tree for ``twistd mas`` (``options`` from the plugin's ``Options``).

    Raises:
        SystemExit: with status 1, after one line on stderr, when the service cannot start.
    """
    setup_logging()
    exit_status.install()
    try:
        return _make_service(options)
    except ConfigError as e:
        raise _fail_start(str(e))
    except MasError as e:
        raise _fail_start(e.msg)
    except Exception as e:
        raise _fail_unexpected(e, "starting")


def _make_service(options: Mapping[str, Any]) -> MultiService:
    from twisted.internet import reactor

    from mas_twisted.config.root import RootConfig
    from mas_twisted.server import MasServer

    config = RootConfig.load(options.get("config") or None)
    logger.info("Starting mas-twisted %s (configuration: %s)", __version__, ", ".join(config.paths))
    from mas_twisted.metrics import metrics_exporter_supported

    if (refused := metrics_exporter_supported(config)) is not None:
        raise ConfigError(refused)
    if options.get("migrate"):
        logger.warning("--migrate is deprecated: migrating is the default; use --no-migrate to skip it")

    worker_only = bool(options.get("worker-only"))
    if worker_only and options.get("no-worker"):
        raise ConfigError("--worker-only and --no-worker cannot be used together")
    if options.get("no-migrate") or worker_only:
        from mas_twisted.storage.prepare_database import check_schema

        # As MAS does: without migrating, refuse a database with pending migrations.
        check_schema(config.database)
    else:
        from mas_twisted.storage.prepare_database import prepare_database

        applied = prepare_database(config.database)
        if applied:
            logger.info("Applied %d database migration(s)", len(applied))
    if options.get("no-sync") or worker_only:
        logger.info("Skipping configuration sync")
    else:
        from mas_twisted.storage.config_sync import run_config_sync

        run_config_sync(config, prune=False, dry_run=False)

    from mas_twisted.telemetry import TelemetryService, setup_telemetry

    setup_telemetry(config.telemetry, version=__version__)
    server = MasServer(config, cast(IMasReactor, reactor), version_string=f"mas-twisted/{__version__}")
    # Build the keys now: a key that cannot be used should stop the start, not the first request.
    server.get_keystore()

    root = MultiService()
    TelemetryService().setServiceParent(root)
    HomeserverConnectionService(server).setServiceParent(root)
    ReactorLagService(server).setServiceParent(root)
    if worker_only:
        # ``mas-cli worker``: the queue worker alone (MAS's ``worker`` command).
        from mas_twisted.queue.worker import QueueWorkerService

        QueueWorkerService(server).setServiceParent(root)
        root.server = server  # type: ignore[attr-defined]
        return root
    ActivityFlushService(server).setServiceParent(root)
    PolicyDataService(server).setServiceParent(root)
    for listener in config.http.listeners:
        ListenerService(server, listener).setServiceParent(root)
    if options.get("no-worker"):
        logger.info("Not running a queue worker (--no-worker)")
    else:
        from mas_twisted.queue.worker import QueueWorkerService

        QueueWorkerService(server).setServiceParent(root)
    root.server = server  # type: ignore[attr-defined]
    return root
