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
as ``application/json``; ``invalid_client_metadata`` for metadata of the wrong shape or
incoherent, or refused by the policy; ``invalid_redirect_uri`` for missing or unusable
redirect URIs.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.api.errors import InvalidClientMetadataError, InvalidRequestError, clean_description
from mas_twisted.rest._base import API_CORS, install_oauth2_error_handlers, json_response
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


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(request: IRequest) -> Any:
    """The request's JSON body, decoded strictly (no ``NaN``, no repeated keys).

    Raises:
        InvalidRequestError: not ``application/json``, or not JSON.
        InvalidClientMetadataError: an object repeats a key.
    """
    if not _is_json_content_type(request):
        raise InvalidRequestError(debug="registration body is not sent as application/json")
    request.content.seek(0)
    raw = request.content.read()
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey as e:
        raise InvalidClientMetadataError(clean_description(f"duplicate field {e}")) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequestError(debug=f"registration body is not JSON: {e}") from None


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
