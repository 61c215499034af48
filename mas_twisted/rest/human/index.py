# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /``: the home page (MAS's ``crates/handlers/src/views/index.rs``).

Request:  GET /
Response: 200 page saying who is signed in (with a sign-out form) or offering to sign in;
          the locked, deactivated or logged-out page when the session cookie names such a
          session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import html_response
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._session import load_session_or_fallback
from mas_twisted.templating import IndexContext

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class IndexResource:
    """The home page."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()

    @app.route(urls.INDEX, methods=["GET"])
    async def index(self, request: IRequest) -> bytes:
        loaded = await load_session_or_fallback(self.server, request)
        if loaded.fallback is not None:
            return loaded.fallback
        ctx = IndexContext(
            csrf_token=self._cookies.csrf_token(request),
            discovery_url=self._url_builder.oidc_discovery(),
            current_session=loaded.session,
        )
        return html_response(request, self.templates.render_index(ctx))
