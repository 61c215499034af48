# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /oauth2/keys.json``: the public signing keys (resource ``oauth``; RFC 7517 §5,
MAS's ``crates/handlers/src/oauth2/keys.rs``).

Request:  GET /oauth2/keys.json
Response: 200 application/json {"keys": [{"kty": "RSA", "kid": "...", "use": "sig", "alg": "RS256", "n": ..., "e": ...}, ...]}
          with ``Access-Control-Allow-Origin: *`` (MAS's API CORS layer). No private members.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.rest._base import API_CORS, install_json_error_handlers, json_response

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


class KeysResource:
    """The JWKS that clients (and Synapse) verify ID tokens and signed responses with."""

    app = Klein()
    install_json_error_handlers(app)
    cors = API_CORS

    def __init__(self, server: MasServer):
        self._server = server

    @app.route(urls.OAUTH2_KEYS, methods=["GET"])
    def keys(self, request: IRequest) -> bytes:
        jwks: Any = self._server.get_keystore().public_jwks()
        if isinstance(jwks, (str, bytes)):
            jwks = json.loads(jwks)
        return json_response(request, 200, jwks)
