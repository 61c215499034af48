# SPDX-License-Identifier: AGPL-3.0-only
"""``GET``/``POST /oauth2/userinfo`` (resource ``oauth``; OpenID Connect Core 1.0 §5.3, MAS's
``crates/handlers/src/oauth2/userinfo.rs``).

Request:  GET /oauth2/userinfo  Authorization: Bearer mat_...
          (or the token as ``access_token``: in the query of a GET, in the form body of a POST)
Response: 200 application/json {"sub": "01H...", "username": "alice"}
          200 application/jwt <JWS> when the client registered ``userinfo_signed_response_alg``
          401, empty body, ``WWW-Authenticate: Bearer ...``: no, bad or insufficient token
          400, empty body, ``WWW-Authenticate: Bearer error="invalid_request"``: an
              ``Authorization`` header that is not ``Bearer <token>``, a token both in the
              header and the parameters, a repeated ``access_token`` parameter, or anything
              the parsing boundary refuses (``rest/_parse.py``: NUL, invalid UTF-8, control
              characters; 413 for a body over the limit)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.userinfo import BearerTokenError, invalid_request
from mas_twisted.rest._base import (
    API_CORS,
    install_oauth2_error_handlers,
    json_response,
    text_response,
    with_length,
)
from mas_twisted.rest._parse import ParseError, read_form, read_header, read_query

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

JWT_CONTENT_TYPE = "application/jwt"


def _parameter_token(request: IRequest) -> str | None:
    """The ``access_token`` parameter: from the query of a GET, the form body of a POST."""
    if request.method in (b"GET", b"HEAD"):
        pairs = read_query(request)
    else:
        pairs = read_form(request) or []
    values = [value for name, value in pairs if name == "access_token"]
    if len(values) > 1:
        raise invalid_request("access_token parameter repeated")
    return values[0] if values else None


def _header_token(request: IRequest) -> str | None:
    header = read_header(request, b"Authorization")
    if header is None:
        return None
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        raise invalid_request("non-ASCII Authorization header") from None
    if len(text) <= 7 or text[:7].lower() != "bearer ":
        raise invalid_request("the Authorization header is not a Bearer token")
    token = text[7:].strip()
    if not token:
        raise invalid_request("empty Bearer token")
    return token


def presented_token(request: IRequest) -> str | None:
    """The access token of the request (RFC 6750 §2), or ``None``.

    Raises:
        BearerTokenError: 400 ``invalid_request`` (see the module docstring).
    """
    try:
        from_header = _header_token(request)
        from_parameter = _parameter_token(request)
    except ParseError as e:
        raise BearerTokenError(e.code, "invalid_request", debug=f"{e.part.value}: {e.reason.value}") from None
    if from_header is not None and from_parameter is not None:
        raise invalid_request("access token both in the header and the parameters")
    return from_header if from_header is not None else from_parameter


class UserinfoResource:
    """The OIDC UserInfo endpoint."""

    app = Klein()

    @app.handle_errors(BearerTokenError)
    def bearer_error(self, request: IRequest, failure: Failure) -> bytes:
        error = cast(BearerTokenError, failure.value)
        logger.info(
            "userinfo refused: %d %s%s", error.code, error.error, f" ({error.debug})" if error.debug else ""
        )
        request.setResponseCode(error.code)
        request.setHeader(b"WWW-Authenticate", error.challenge().encode("ascii"))
        return with_length(request, b"")

    install_oauth2_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._userinfo = server.get_userinfo_handler()

    @app.route(urls.OIDC_USERINFO, methods=["GET", "POST"])
    async def userinfo(self, request: IRequest) -> Any:
        reply = await self._userinfo.userinfo(
            presented_token(request), ip=getattr(request, "client_ip", None)
        )
        if reply.signed is not None:
            return text_response(request, 200, reply.signed, content_type=JWT_CONTENT_TYPE)
        return json_response(request, 200, reply.claims)
