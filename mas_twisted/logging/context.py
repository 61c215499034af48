# SPDX-License-Identifier: AGPL-3.0-only
"""The request id of the request being handled, for log lines (MAS's ``LogContext`` tag).

MAS tags each request ``<METHOD>-<counter>`` (``POST-71``; ``docs/reference/request-log.md``)
and every line logged while handling it carries the tag. Here the listener's request sets
:data:`request_id` before rendering; ``contextvars`` follow the request across ``await``
(Twisted runs coroutines in a copy of the context they started in), and
:class:`RequestIdFilter` copies the value onto each :class:`logging.LogRecord`.
"""

from __future__ import annotations

import itertools
import logging
from contextvars import ContextVar

#: ``"-"`` outside a request (start-up, background jobs).
NO_REQUEST = "-"

request_id: ContextVar[str] = ContextVar("mas_request_id", default=NO_REQUEST)

_counter = itertools.count(1)


def new_request_id(method: str) -> str:
    """``GET-1``, ``POST-2``…: the method and a counter unique in this process."""
    return f"{method}-{next(_counter)}"


def current_request_id() -> str:
    return request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (use ``%(request_id)s`` in a format) unless already set.

    Attach it to a *handler* (``handler.addFilter(RequestIdFilter())``) so that records from
    every logger get the attribute before they are formatted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True
