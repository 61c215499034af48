# SPDX-License-Identifier: AGPL-3.0-only
"""Error reports to Sentry: ``telemetry.sentry`` (MAS's ``crates/cli/src/main.rs``, which
calls ``sentry::init`` with the DSN, ``environment``, ``sample_rate`` and
``traces_sample_rate`` and the release, and reports every ERROR event as a Sentry event).

Off unless ``dsn`` is set; nothing is imported then. When on, the SDK's logging
integration turns each ERROR log line into an event, with its exception when the line has
one: the unhandled failures that answer a 500 (``rest/_base.py``'s ``log_failure``), a job
that crashed (the worker's ``logger.exception``) and every other error the process logs.
``sample_rate`` defaults to 1.0 and ``traces_sample_rate`` to 0.0 (no Sentry transactions),
as MAS's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mas_twisted.api.errors import ConfigError

if TYPE_CHECKING:
    from mas_twisted.config.telemetry import SentryConfig

logger = logging.getLogger(__name__)

#: True once :func:`setup` initialised the SDK.
ENABLED: bool = False

_sdk: Any = None


def setup(config: SentryConfig, *, version: str, **options: Any) -> None:
    """``sentry_sdk.init`` with ``config`` when it has a DSN.

    Args:
        options: more ``sentry_sdk.init`` options (tests pass ``shutdown_timeout`` and
            ``default_integrations``-free settings when they need them).

    Raises:
        ConfigError: a DSN is set but the ``sentry`` extra is not installed, or the DSN is
            not one the SDK can parse.
    """
    global ENABLED, _sdk
    if not config.dsn:
        ENABLED = False
        return
    try:
        import sentry_sdk
        from sentry_sdk.integrations.logging import LoggingIntegration
        from sentry_sdk.utils import BadDsn
    except ImportError:
        raise ConfigError(
            "telemetry.sentry.dsn is set, but the Sentry SDK is not installed: pip install 'mas-twisted[sentry]'"
        ) from None
    try:
        sentry_sdk.init(
            dsn=config.dsn,
            environment=config.environment or "production",
            release=version,
            sample_rate=1.0 if config.sample_rate is None else config.sample_rate,
            traces_sample_rate=0.0 if config.traces_sample_rate is None else config.traces_sample_rate,
            # Named, not left to the SDK's defaults (which changed between 2.x and 3.x): every
            # ERROR line is an event, INFO and up are its breadcrumbs.
            integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
            **options,
        )
    except BadDsn as e:
        raise ConfigError(f"telemetry.sentry.dsn: {e}") from None
    _sdk = sentry_sdk
    ENABLED = True
    logger.info("Reporting errors to Sentry (environment %s)", config.environment or "production")


def shutdown(timeout: float = 5.0) -> None:
    """Send the events still queued (blocking: call it from a thread at shutdown)."""
    global ENABLED
    if _sdk is not None and ENABLED:
        ENABLED = False
        client = _sdk.get_client()
        client.close(timeout=timeout)
