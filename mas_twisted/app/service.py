# SPDX-License-Identifier: AGPL-3.0-only
"""The service ``twistd mas`` runs (MAS's ``mas-cli server``, ``crates/cli/src/commands/server.rs``).

Start-up order, as in MAS and Synapse: load and validate the configuration, apply pending
database migrations (unless ``--no-migrate``), sync the static clients and upstream
providers (unless ``--no-sync``), then bind every ``http.listeners[]`` entry once the
reactor runs. Anything that goes wrong before the reactor runs is one line on stderr and
exit status 1; a listener that cannot bind stops the process with status 1 too.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Mapping

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from mas_twisted import __version__
from mas_twisted.api.errors import ConfigError, MasError

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
    MAS reads it) picks the level; the default is INFO."""
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
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def _fail_start(message: str) -> "SystemExit":
    """One line on the real stderr, then exit 1 (no traceback: the operator reads this)."""
    sys.stderr.write(f"twistd mas: {message}\n")
    sys.stderr.flush()
    return SystemExit(1)


class ListenerService(Service):
    """Binds one ``http.listeners[]`` entry when the service starts, unbinds it on stop."""

    def __init__(self, server: Any, listener: Any):
        self._server = server
        self._listener = listener
        self._ports: list[Any] = []
        self.name = f"listener-{listener.name}"

    def startService(self) -> None:  # noqa: N802 - Twisted's interface
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
        # Synapse's start-up rule: a service that cannot bind must not limp on.
        message = failure.getErrorMessage() if failure.check(MasError) is None else failure.value.msg
        logger.error("Could not start listener %s: %s", self._listener.name, message)
        sys.stderr.write(f"twistd mas: could not start listener {self._listener.name}: {message}\n")
        sys.stderr.flush()
        os._exit(1)

    def stopService(self) -> defer.Deferred:  # noqa: N802
        super().stopService()
        ports, self._ports = self._ports, []
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports], consumeErrors=True)


def _describe_port(port: Any) -> str:
    try:
        host = port.getHost()
    except Exception:
        return repr(port)
    if hasattr(host, "port"):
        return f"{host.host}:{host.port}"
    return str(getattr(host, "name", host))


def make_service(options: Mapping[str, Any]) -> MultiService:
    """Build the service tree for ``twistd mas`` (``options`` from the plugin's ``Options``)."""
    from twisted.internet import reactor

    from mas_twisted.config.root import RootConfig
    from mas_twisted.server import MasServer

    setup_logging()
    try:
        config = RootConfig.load(options.get("config") or None)
    except ConfigError as e:
        raise _fail_start(str(e))

    logger.info("Starting mas-twisted %s (configuration: %s)", __version__, ", ".join(config.paths))

    try:
        if not options.get("no-migrate"):
            from mas_twisted.storage.prepare_database import prepare_database

            applied = prepare_database(config.database)
            if applied:
                logger.info("Applied %d database migration(s)", len(applied))
        if not options.get("no-sync"):
            from mas_twisted.storage.config_sync import run_config_sync

            run_config_sync(config, prune=False, dry_run=False)
    except ConfigError as e:
        raise _fail_start(str(e))
    except MasError as e:
        raise _fail_start(e.msg)

    server = MasServer(config, reactor, version_string=f"mas-twisted/{__version__}")
    # Build the keys now: a key that cannot be used should stop the start, not the first request.
    server.get_keystore()

    root = MultiService()
    for listener in config.http.listeners:
        ListenerService(server, listener).setServiceParent(root)
    root.server = server  # type: ignore[attr-defined]
    return root
