# SPDX-License-Identifier: AGPL-3.0-only
"""One access-log line per HTTP response (MAS's ``http.server.response`` event,
``docs/reference/request-log.md``).

The line is logged on ``mas_twisted.access.<listener name>`` at INFO for 1xx-3xx, WARNING
for 4xx and ERROR for 5xx, as MAS does::

    GET-12 203.0.113.7 "GET /oauth2/keys.json HTTP/1.1" 200 1419 "curl/8.5.0" [elapsed: 1.3ms]

The path never includes the query string, which may carry codes or tokens.
"""

from __future__ import annotations

import logging

import attr


def access_logger(listener_name: str) -> logging.Logger:
    return logging.getLogger(f"mas_twisted.access.{listener_name}")


def level_for_status(status: int) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@attr.s(frozen=True, slots=True, auto_attribs=True)
class AccessRecord:
    """What one response is logged with."""

    request_id: str
    client_ip: str | None
    method: str
    path: str
    protocol: str
    status: int
    sent_bytes: int
    user_agent: str | None
    elapsed_ms: float

    def format(self) -> str:
        request_line = _quote(f"{self.method} {self.path} {self.protocol}")
        user_agent = _quote(self.user_agent) if self.user_agent is not None else '"-"'
        return (
            f"{self.request_id} {self.client_ip or '-'} {request_line} {self.status} {self.sent_bytes} "
            f"{user_agent} [elapsed: {self.elapsed_ms:.1f}ms]"
        )


def log_access(logger: logging.Logger, record: AccessRecord) -> None:
    level = level_for_status(record.status)
    if not logger.isEnabledFor(level):
        return  # not even formatted: this runs for every response
    logger.log(
        level,
        "%s",
        record.format(),
        extra={
            "request_id": record.request_id,
            "client_address": record.client_ip,
            "http_method": record.method,
            "http_path": record.path,
            "http_protocol": record.protocol,
            "http_status": record.status,
            "sent_bytes": record.sent_bytes,
            "user_agent": record.user_agent,
            "elapsed_ms": round(record.elapsed_ms, 3),
        },
    )
