# SPDX-License-Identifier: AGPL-3.0-only
"""The ``Accept-Language`` header of the request being handled.

The listener's request sets :data:`accept_language` next to the request id
(:mod:`mas_twisted.logging.context`); ``contextvars`` follow the request across ``await``, so
whatever renders a page or schedules an email while handling it can negotiate the language
without the request object being passed down (:mod:`mas_twisted.templating.i18n`).
"""

from __future__ import annotations

from contextvars import ContextVar

#: ``None`` outside a request (start-up, background jobs) or when the header is absent.
accept_language: ContextVar[str | None] = ContextVar("mas_accept_language", default=None)
