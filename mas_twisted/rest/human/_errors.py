# SPDX-License-Identifier: AGPL-3.0-only
"""HTML error pages for the human routes (MAS's ``recover_error`` layer of ``human_router`` and
its ``fallback``, ``crates/handlers/src/lib.rs``).

- :func:`install_html_error_handlers` is called right after ``app = Klein()`` in a human
  resource class whose instances have a ``templates`` attribute. It renders Werkzeug's
  routing answers (405 with ``Allow``, the 308 of a missing trailing slash),
  a request refused at the parsing boundary (:mod:`mas_twisted.rest._parse`: 400, or 413 for
  a body over the limit, with what was wrong as the details),
  :class:`~mas_twisted.api.errors.PageError` (``pages/404.html`` for
  :class:`~mas_twisted.api.errors.NotFoundError`, else ``pages/error.html`` with the error's
  status, message and details), and anything else as a logged 500 error page that never
  shows the traceback.
- :func:`render_error_page` and :func:`render_not_found_page` render those pages on any
  request; the listener's fallback for unknown paths can use the latter.

If a page template itself fails (a broken override), a plain-text answer is sent instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException

from mas_twisted.api.errors import NotFoundError, PageError
from mas_twisted.rest._base import html_response, log_failure, log_parse_error, text_response
from mas_twisted.rest._parse import ParseError, install_path_converters
from mas_twisted.rest.human._forms import frame_protect
from mas_twisted.templating import ErrorContext, NotFoundContext

if TYPE_CHECKING:
    from mas_twisted.templating import Templates

logger = logging.getLogger(__name__)

_REASONS = {
    400: "The request was not valid.",
    403: "You are not allowed to do this.",
    404: "There is nothing at this address.",
    405: "This page cannot be used this way.",
    413: "The request is too large.",
    429: "Too many requests. Wait a moment, then try again.",
    500: "Something went wrong on our side.",
}

#: Headers of an interrupted answer that must not leak onto the error page.
_STALE_HEADERS = (b"Content-Type", b"Content-Encoding", b"Content-Length", b"Cache-Control", b"Location")


def render_error_page(
    templates: Templates,
    request: IRequest,
    code: int,
    description: str | None = None,
    details: str | None = None,
    error_code: str | None = None,
) -> bytes:
    """``pages/error.html`` with status ``code``."""
    ctx = ErrorContext(code=error_code, description=description or _REASONS.get(code), details=details)
    try:
        body = templates.render_error(ctx)
    except Exception:
        logger.exception("Could not render the error page")
        frame_protect(request)
        return text_response(request, code, f"{ctx.description or 'Error'}\n")
    return html_response(request, body, code)


def render_not_found_page(templates: Templates, request: IRequest) -> bytes:
    """``pages/404.html`` for this request, with status 404."""
    uri = request.uri.decode("utf-8", "replace")
    ctx = NotFoundContext(
        method=request.method.decode("ascii", "replace"),
        version=(getattr(request, "clientproto", None) or b"HTTP/1.1").decode("ascii", "replace"),
        uri=uri,
    )
    try:
        body = templates.render_not_found(ctx)
    except Exception:
        logger.exception("Could not render the 404 page")
        frame_protect(request)
        return text_response(request, 404, "Not Found\n")
    return html_response(request, body, 404)


def _clear(request: IRequest) -> None:
    for name in _STALE_HEADERS:
        request.responseHeaders.removeHeader(name)


def install_html_error_handlers(app: Klein) -> None:
    """Routing answers, page errors and a catch-all 500, all as HTML pages."""
    install_path_converters(app)

    def routing_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        error = cast(HTTPException, failure.value)
        code = error.code or 500
        valid_methods = getattr(error, "valid_methods", None)
        if valid_methods:
            request.setHeader(b"Allow", ", ".join(sorted(set(valid_methods))).encode("ascii"))
        new_url = getattr(error, "new_url", None)
        if new_url:
            parts = urlsplit(new_url)
            location = parts.path + (f"?{parts.query}" if parts.query else "")
            request.setHeader(b"Location", location.encode("utf-8"))
        if code == 404:
            return render_not_found_page(self.templates, request)
        return render_error_page(self.templates, request, code)

    def page_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        error = cast(PageError, failure.value)
        logger.info(
            "%s %s: %d %s%s",
            request.method.decode("ascii", "replace"),
            request.path.decode("utf-8", "replace"),
            error.code,
            error.msg,
            f" ({error.debug})" if error.debug else "",
        )
        _clear(request)
        if isinstance(error, NotFoundError):
            return render_not_found_page(self.templates, request)
        return render_error_page(
            self.templates, request, error.code, error.msg, getattr(error, "details", None)
        )

    def parse_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        error = cast(ParseError, failure.value)
        log_parse_error(request, error)
        _clear(request)
        return render_error_page(self.templates, request, error.code, details=error.message)

    def internal_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        log_failure(request, failure)
        _clear(request)
        return render_error_page(self.templates, request, 500)

    app.handle_errors(ParseError)(parse_error)
    app.handle_errors(HTTPException)(routing_error)
    app.handle_errors(PageError)(page_error)
    app.handle_errors(Exception)(internal_error)
