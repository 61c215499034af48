# SPDX-License-Identifier: AGPL-3.0-only
"""What every Klein resource shares: response helpers, CORS, error handlers, the 404 page.

- :func:`json_response` / :func:`text_response` write a status and ``Content-Type`` and
  return the body (Klein does not serialise dicts).
- :class:`CorsPolicy`: MAS puts ``tower_http``'s ``CorsLayer`` (any origin, any method) on
  its discovery, OAuth, compat, GraphQL and admin routers (``crates/handlers/src/lib.rs``).
  A resource class opts in with a ``cors = DISCOVERY_CORS`` class attribute; the listener
  then adds ``Access-Control-Allow-Origin: *`` to every response of its paths and answers
  CORS preflight requests for them.
- Error handler installers, called right after ``app = Klein()`` at class-definition time.
  Each first renders Werkzeug's own routing answers (405 with ``Allow``, the 308 of a
  missing trailing slash) and ends with a catch-all that logs the traceback at ERROR and
  answers a generic 500 that never contains it. Klein tries handlers in declaration order,
  so a more specific handler must be declared *before* the installer is called (or go in an
  installer of its own, like :func:`install_oauth2_error_handlers`, STYLE.md §5.4).
- :func:`install_oauth2_error_handlers`: an :class:`~mas_twisted.api.errors.OAuth2Error`
  raised by a route becomes its RFC 6749 §5.2 JSON body with the error's HTTP status and
  headers (``WWW-Authenticate`` for ``invalid_client`` after Basic); then the routing
  answers and the JSON 500 of :func:`install_json_error_handlers`. ``debug`` is logged,
  never sent.
- :func:`render_not_found`: the listener's fallback for paths no resource serves (MAS's
  ``fallback``), an HTML page for browsers and plain text otherwise.
- :func:`html_response`: every HTML page the service serves goes out through it, with its
  security headers (:func:`set_html_security_headers`): a ``Content-Security-Policy`` without
  ``'unsafe-inline'`` (the templates have no inline script, style or event handler; the
  form-post page's submit script is ``res/assets/form_post.js``), ``frame-ancestors 'none'``
  and ``X-Frame-Options: DENY`` (older browsers), ``X-Content-Type-Options: nosniff`` and
  ``Referrer-Policy: no-referrer``. ``no-referrer`` because our page URLs carry what no
  other site should see (an authorization request's ``state`` and ``login_hint``, a device
  code, a grant's id) and nothing here reads ``Referer``; a form POST then sends
  ``Origin: null``, which nothing here checks either.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import attr
from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException

from mas_twisted.api.errors import InvalidRequestError, OAuth2Error, clean_description
from mas_twisted.rest._parse import ParseError, Part, install_path_converters

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


def json_response(
    request: IRequest,
    code: int,
    body: Any,
    *,
    content_type: str = JSON_CONTENT_TYPE,
    no_store: bool = False,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Set the status and ``Content-Type`` and return ``body`` as compact UTF-8 JSON.

    ``no_store`` adds ``Cache-Control: no-store`` (token responses, RFC 6749 §5.1).
    """
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", content_type.encode("ascii"))
    if no_store:
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Pragma", b"no-cache")
    for name, value in headers:
        request.setHeader(name.encode("ascii"), value.encode("utf-8"))
    return with_length(request, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def text_response(request: IRequest, code: int, text: str, *, content_type: str = TEXT_CONTENT_TYPE) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", content_type.encode("ascii"))
    return with_length(request, text.encode("utf-8"))


#: Where the forms of a page may be submitted by default: this service. A form's
#: submission is checked against ``form-action`` along its redirects too (Chromium, Firefox),
#: so a page whose form ends at a client's redirect URI names that target as well.
FORM_ACTION_SELF = "'self'"


def content_security_policy(
    form_action: Sequence[str] = (FORM_ACTION_SELF,),
    frame_src: Sequence[str] = (),
    third_party: Sequence[str] = (),
) -> str:
    """The ``Content-Security-Policy`` of an HTML page: scripts, styles, fonts and images from
    this origin only (``data:`` images too), no plugins, never framed, no ``<base>``.

    ``frame_src``: exactly the sources the page may frame (the plan page), when given.
    ``third_party``: origins a page's widget comes from (a CAPTCHA provider), allowed for
    scripts, styles, frames and connections on that page only."""
    extra = "".join(" " + origin for origin in third_party)
    directives = [
        "default-src 'self'" + extra,
        "script-src 'self'" + extra,
        "style-src 'self'" + extra,
        "img-src 'self' data:",
        "object-src 'none'",
        "form-action " + " ".join(form_action),
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    if frame_src:
        directives.append("frame-src " + " ".join((*frame_src, *third_party)))
    return "; ".join(directives)


def form_action_source(uri: str) -> str:
    """The CSP source expression that allows submitting to ``uri``: its origin for http(s)
    (``https://client.example.com``), its scheme for a native app's private-use URI
    scheme (``com.example.app:``, RFC 8252 §7.1)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        return f"{scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    return f"{scheme}:"


def set_html_security_headers(
    request: IRequest,
    form_action: Sequence[str] = (FORM_ACTION_SELF,),
    frame_src: Sequence[str] = (),
    third_party: Sequence[str] = (),
) -> None:
    """The headers every HTML page carries (see the module docstring)."""
    request.setHeader(
        b"Content-Security-Policy",
        content_security_policy(form_action, frame_src, third_party).encode("utf-8"),
    )
    request.setHeader(b"X-Frame-Options", b"DENY")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Referrer-Policy", b"no-referrer")


def html_response(
    request: IRequest,
    body: str,
    code: int = 200,
    *,
    form_action: Sequence[str] = (FORM_ACTION_SELF,),
    frame_src: Sequence[str] = (),
    third_party: Sequence[str] = (),
) -> bytes:
    """An HTML page with status ``code`` and the security headers of every page;
    ``form_action`` lists where its forms may go (this service unless told otherwise),
    ``frame_src`` the only sources it may frame (when given), ``third_party`` the origins its
    widget loads from (see :func:`content_security_policy`)."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", HTML_CONTENT_TYPE.encode("ascii"))
    set_html_security_headers(request, form_action, frame_src, third_party)
    return with_length(request, body.encode("utf-8"))


def with_length(request: IRequest, body: bytes) -> bytes:
    """Announce the length of a body sent in one piece (no chunked encoding)."""
    request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
    return body


# -- CORS -------------------------------------------------------------------------------------


@attr.s(frozen=True, slots=True, auto_attribs=True)
class CorsPolicy:
    """Any origin and any method, with the request headers a browser may send.

    ``max_age`` is how long a browser may cache a preflight answer (``None``: no header).
    """

    allow_headers: tuple[str, ...]
    max_age: int | None = None

    def apply(self, request: IRequest) -> None:
        """The headers every response of a CORS-enabled path carries."""
        request.setHeader(b"Access-Control-Allow-Origin", b"*")
        request.responseHeaders.addRawHeader(
            b"Vary", b"origin, access-control-request-method, access-control-request-headers"
        )

    @staticmethod
    def is_preflight(request: IRequest) -> bool:
        return (
            request.method == b"OPTIONS" and request.getHeader(b"Access-Control-Request-Method") is not None
        )

    def preflight(self, request: IRequest) -> bytes:
        """Answer a preflight request (``OPTIONS`` with ``Access-Control-Request-Method``)."""
        self.apply(request)
        request.setResponseCode(200)
        request.setHeader(b"Access-Control-Allow-Methods", b"*")
        request.setHeader(b"Access-Control-Allow-Headers", ",".join(self.allow_headers).encode("ascii"))
        if self.max_age is not None:
            request.setHeader(b"Access-Control-Max-Age", str(self.max_age).encode("ascii"))
        request.setHeader(b"Content-Length", b"0")
        return b""


_BASE_CORS_HEADERS = ("authorization", "accept", "accept-language", "content-language", "content-type")

#: MAS's ``discovery_router`` CORS layer (preflight cached one hour).
DISCOVERY_CORS = CorsPolicy(allow_headers=_BASE_CORS_HEADERS, max_age=3600)
#: MAS's ``api_router`` and ``compat_router`` CORS layers (also allow ``x-requested-with``).
API_CORS = CorsPolicy(allow_headers=_BASE_CORS_HEADERS + ("x-requested-with",), max_age=3600)


# -- errors -----------------------------------------------------------------------------------


def log_failure(request: IRequest, failure: Failure) -> None:
    """Log an unexpected failure with its traceback, naming the request (not its query)."""
    method = request.method.decode("ascii", "replace")
    path = request.path.decode("utf-8", "replace")
    logger.error(
        "Unhandled error while handling %s %s",
        method,
        path,
        exc_info=(failure.type, failure.value, failure.getTracebackObject()),  # type: ignore[arg-type]
    )


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _render_http_exception(request: IRequest, error: HTTPException) -> bytes:
    """Werkzeug's routing answers: 405 with ``Allow``, 308 with ``Location``.

    ``Allow`` is written in a fixed order (Werkzeug keeps methods in a set), and a redirect
    keeps only the path and query: the absolute URL Werkzeug builds names the socket this
    listener is bound to, not the public address a reverse proxy exposes.
    """
    code = error.code or 500
    request.setResponseCode(code)
    valid_methods = getattr(error, "valid_methods", None)
    if valid_methods:
        methods = sorted(
            set(valid_methods), key=lambda m: (_METHOD_ORDER.index(m) if m in _METHOD_ORDER else 99, m)
        )
        request.setHeader(b"Allow", ", ".join(methods).encode("ascii"))
    new_url = getattr(error, "new_url", None)
    if new_url:
        parts = urlsplit(new_url)
        location = parts.path + (f"?{parts.query}" if parts.query else "")
        request.setHeader(b"Location", location.encode("utf-8"))
    request.setHeader(b"Content-Type", TEXT_CONTENT_TYPE.encode("ascii"))
    return with_length(request, (error.name or "Error").encode("utf-8"))


def log_parse_error(request: IRequest, error: ParseError) -> None:
    """One INFO line for a request refused at the parsing boundary (``rest/_parse.py``)."""
    logger.info(
        "%s %s: %d refused at parsing (%s, %s)",
        request.method.decode("ascii", "replace"),
        request.path.decode("utf-8", "replace"),
        error.code,
        error.part.value,
        error.reason.value,
    )


def _install(
    app: Klein,
    render_500: Callable[[IRequest], bytes],
    render_parse_error: Callable[[IRequest, ParseError], bytes],
) -> None:
    install_path_converters(app)

    def parse_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        return render_parse_error(request, cast(ParseError, failure.value))

    def routing_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        return _render_http_exception(request, cast(HTTPException, failure.value))

    def internal_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        log_failure(request, failure)
        # Headers set for the failed answer (Content-Type, caching) must not leak onto the 500.
        for name in (b"Content-Type", b"Content-Encoding", b"Content-Length", b"Cache-Control", b"Location"):
            request.responseHeaders.removeHeader(name)
        return render_500(request)

    app.handle_errors(ParseError)(parse_error)
    app.handle_errors(HTTPException)(routing_error)
    app.handle_errors(Exception)(internal_error)


def _plain_parse_error(request: IRequest, error: ParseError) -> bytes:
    log_parse_error(request, error)
    if error.part is Part.QUERY:
        # axum's ``Query`` rejection
        return text_response(request, error.code, f"Failed to deserialize query string: {error.message}")
    return text_response(request, error.code, error.message)


def install_plain_error_handlers(app: Klein) -> None:
    """Requests refused at parsing, routing answers, then a ``text/plain`` 500 (MAS's
    ``InternalError`` is plain text too)."""
    _install(app, lambda request: text_response(request, 500, "Internal Server Error"), _plain_parse_error)


def oauth2_parse_error(error: ParseError) -> InvalidRequestError:
    """A request refused at parsing as OAuth 2.0 sees it: ``invalid_request`` (RFC 6749 §5.2),
    with status 413 for a body over the limit."""
    return InvalidRequestError(
        clean_description(error.message), code=error.code, debug=f"{error.part.value}: {error.reason.value}"
    )


def install_json_error_handlers(app: Klein) -> None:
    """Requests refused at parsing (``invalid_request``), routing answers, then a JSON 500 in
    the OAuth 2.0 error shape (RFC 6749 §5.2)."""
    _install(
        app,
        lambda request: json_response(
            request, 500, {"error": "server_error", "error_description": "Internal server error"}
        ),
        lambda request, error: render_oauth2_error(request, oauth2_parse_error(error)),
    )


def render_oauth2_error(request: IRequest, error: OAuth2Error) -> bytes:
    """Answer ``error`` as JSON (RFC 6749 §5.2), logging what only operators should see."""
    logger.log(
        logging.ERROR if error.code >= 500 else logging.INFO,
        "%s %s: %d %s%s",
        request.method.decode("ascii", "replace"),
        request.path.decode("utf-8", "replace"),
        error.code,
        error.error,
        f" ({error.debug})" if error.debug else "",
    )
    for name in (b"Cache-Control", b"Pragma", b"Content-Length"):
        request.responseHeaders.removeHeader(name)
    return json_response(request, error.code, error.to_json(), headers=error.headers())


def install_oauth2_error_handlers(app: Klein) -> None:
    """OAuth 2.0 errors as JSON, then routing answers and a JSON 500 (STYLE.md §5.4)."""

    def oauth2_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        return render_oauth2_error(request, cast(OAuth2Error, failure.value))

    app.handle_errors(OAuth2Error)(oauth2_error)
    install_json_error_handlers(app)


# -- the fallback -----------------------------------------------------------------------------


def wants_html(request: IRequest) -> bool:
    """Whether the client's ``Accept`` names ``text/html`` (a browser)."""
    accept = (request.getHeader(b"Accept") or b"").lower()
    return b"text/html" in accept


def render_not_found(request: IRequest) -> bytes:
    """The 404 of a path no mounted resource serves (MAS's ``fallback``, ``pages/404.html``)."""
    method = request.method.decode("ascii", "replace")
    path = request.path.decode("utf-8", "replace")
    if wants_html(request):
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Page not found</title></head>'
            "<body><h1>Page not found</h1>"
            f"<p>The page you were looking for does not exist: <code>{html.escape(method)} "
            f"{html.escape(path)}</code></p></body></html>\n"
        )
        return html_response(request, page, 404)
    return text_response(request, 404, f"Not Found: {method} {path}\n")
