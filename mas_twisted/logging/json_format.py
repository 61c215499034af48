# SPDX-License-Identifier: AGPL-3.0-only
"""JSON lines for the service's log (``MAS_LOG_FORMAT=json``), beside the text format.

MAS's request log (``docs/reference/request-log.md``) is a ``tracing`` event with fields;
here each record becomes one JSON object with the level, the logger, the request id, the
message and, for the access lines of :mod:`mas_twisted.logging.access`, the same fields
the text line carries (method, path, status, bytes, user agent, elapsed). Under twistd the
object follows twistd's timestamp prefix on the line.
"""

from __future__ import annotations

import json
import logging

#: ``extra=`` keys copied into the object when a record has them.
EXTRA_FIELDS = (
    "request_id",
    "client_address",
    "http_method",
    "http_path",
    "http_protocol",
    "http_status",
    "sent_bytes",
    "user_agent",
    "elapsed_ms",
)


def log_format_from_env(value: str | None) -> str:
    """``text`` (the default) or ``json``; anything else is refused with one line."""
    fmt = (value or "text").strip().lower()
    if fmt not in ("text", "json"):
        raise ValueError(f"MAS_LOG_FORMAT must be 'text' or 'json', not {value!r}")
    return fmt


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
