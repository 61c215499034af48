# SPDX-License-Identifier: AGPL-3.0-only
"""``MAS_LOG_FORMAT=json``: each record is one parseable JSON object carrying the access
line's fields (MAS's ``docs/reference/request-log.md``)."""

from __future__ import annotations

import json
import logging

import pytest

from mas_twisted.logging.access import AccessRecord, log_access
from mas_twisted.logging.context import RequestIdFilter
from mas_twisted.logging.json_format import JsonFormatter, log_format_from_env


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.addFilter(RequestIdFilter())
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collected() -> _Collect:
    handler = _Collect()
    logger = logging.getLogger("mas_twisted.access.test_json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_access_record_as_json(collected: _Collect) -> None:
    record = AccessRecord(
        request_id="GET-7",
        client_ip="203.0.113.7",
        method="GET",
        path="/oauth2/keys.json",
        protocol="HTTP/1.1",
        status=404,
        sent_bytes=1419,
        user_agent='curl "8"\n',
        elapsed_ms=1.25,
    )
    log_access(logging.getLogger("mas_twisted.access.test_json"), record)
    [line] = collected.lines
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "mas_twisted.access.test_json"
    assert entry["request_id"] == "GET-7"
    assert entry["client_address"] == "203.0.113.7"
    assert entry["http_method"] == "GET"
    assert entry["http_path"] == "/oauth2/keys.json"
    assert entry["http_status"] == 404
    assert entry["sent_bytes"] == 1419
    assert entry["user_agent"] == 'curl "8"\n'
    assert entry["elapsed_ms"] == 1.25
    assert entry["message"] == record.format()


def test_plain_records_and_exceptions(collected: _Collect) -> None:
    logger = logging.getLogger("mas_twisted.access.test_json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed %s", "job")
    entry = json.loads(collected.lines[0])
    assert entry["message"] == "failed job"
    assert entry["request_id"] == "-"
    assert "RuntimeError: boom" in entry["exception"]


def test_log_format_from_env() -> None:
    assert log_format_from_env(None) == "text"
    assert log_format_from_env("JSON") == "json"
    with pytest.raises(ValueError, match="MAS_LOG_FORMAT"):
        log_format_from_env("xml")
