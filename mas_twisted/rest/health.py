# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /health`` (resource ``health``; MAS's ``crates/handlers/src/health.rs``).

Request:  GET /health
Response: 200 ``ok`` (text/plain) once the database pool answered a ping
          (:meth:`~mas_twisted.storage.database.DatabasePool.ping`); when the database
          cannot answer, 500 with a generic plain-text body (MAS answers its
          ``InternalError`` 500 too) and the traceback in the log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import install_plain_error_handlers, text_response

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class HealthResource:
    """Liveness of the process and of its database connection."""

    app = Klein()
    install_plain_error_handlers(app)

    def __init__(self, server: MasServer):
        self._server = server

    @app.route(urls.HEALTH, methods=["GET"])
    async def health(self, request: IRequest) -> bytes:
        await self._server.get_db_pool().ping()
        return text_response(request, 200, "ok")
