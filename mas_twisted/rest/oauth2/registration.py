# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/registration`` (resource ``oauth``; RFC 7591 §3, MAS's
``crates/handlers/src/oauth2/registration.rs``).

Request:  POST /oauth2/registration  Content-Type: application/json
          {"client_name": "My App", "client_uri": "https://app.example.com/",
           "redirect_uris": ["https://app.example.com/callback"], "token_endpoint_auth_method": "none",
           "response_types": ["code"], "grant_types": ["authorization_code", "refresh_token"]}
Response: 201 {"client_id": "01H...", "client_id_issued_at": 1700000000,
               "redirect_uris": [...], "grant_types": [...], "token_endpoint_auth_method": "none",
               "client_name": "My App", "client_uri": "https://app.example.com/"}
          (plus ``client_secret`` for the secret-based authentication methods)
Errors (400, RFC 7591 §3.2.2): ``invalid_request`` for a body that is not JSON or not sent
as ``application/json``, or that the parsing boundary refuses (``rest/_parse.py``: nested
too deep, a NUL character; 413 beyond :data:`BODY_LIMIT`); ``invalid_client_metadata`` for metadata of the wrong shape or
incoherent, or refused by the policy; ``invalid_redirect_uri`` for missing or unusable
redirect URIs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import InvalidClientMetadataError, InvalidRequestError, clean_description
from mas_twisted.rest._base import API_CORS, install_oauth2_error_handlers, json_response
from mas_twisted.rest._parse import ParseError, Reason, read_json
from mas_twisted.rest.oauth2._common import requester

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


def _is_json_content_type(request: IRequest) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters ignored."""
    value = (request.getHeader(b"Content-Type") or b"").split(b";", 1)[0].strip().lower()
    if not value.startswith(b"application/"):
        return False
    subtype = value[len(b"application/") :]
    return subtype == b"json" or subtype.endswith(b"+json")


#: Registration bodies may carry a ``software_statement`` and an inline ``jwks``: larger than
#: the default limit of the parsing boundary, still far below axum's 2 MB.
BODY_LIMIT = 256 * 1024


def parse_json_body(request: IRequest) -> Any:
    """The request's JSON body, decoded strictly (no ``NaN``, no repeated keys).

    Raises:
        InvalidRequestError: not ``application/json``.
        InvalidClientMetadataError: an object repeats a key.
        ParseError: anything else the parsing boundary refuses (``invalid_request``).
    """
    if not _is_json_content_type(request):
        raise InvalidRequestError(debug="registration body is not sent as application/json")
    try:
        return read_json(request, limit=BODY_LIMIT)
    except ParseError as e:
        if e.reason is Reason.DUPLICATE and e.name is not None:
            raise InvalidClientMetadataError(clean_description(f"duplicate field {e.name}")) from None
        raise


class RegistrationResource:
    """The dynamic client registration endpoint."""

    app = Klein()
    install_oauth2_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._registration = server.get_registration_handler()

    @app.route(urls.OAUTH2_REGISTRATION, methods=["POST"])
    async def register(self, request: IRequest) -> bytes:
        body = parse_json_body(request)
        reply = await self._registration.register(body, requester=requester(request))
        return json_response(request, 201, reply.to_json())
