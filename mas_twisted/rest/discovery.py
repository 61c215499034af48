# SPDX-License-Identifier: AGPL-3.0-only
"""OpenID Provider metadata and WebFinger (resource ``discovery``; MAS's
``crates/handlers/src/oauth2/discovery.rs`` and ``webfinger.rs``).

Request:  GET /.well-known/openid-configuration
Response: 200 application/json, OpenID Connect Discovery 1.0 §3 / RFC 8414 §2 metadata:
          {"issuer": "https://auth.example.com/", "jwks_uri": ".../oauth2/keys.json", ...}

Request:  GET /.well-known/webfinger?resource=acct:alice@example.com&rel=http://openid.net/specs/connect/1.0/issuer
Response: 200 application/jrd+json (RFC 7033 §4.4):
          {"subject": "acct:alice@example.com",
           "links": [{"rel": "http://openid.net/specs/connect/1.0/issuer", "href": "https://auth.example.com/"}]}
          The issuer link is only present when that ``rel`` is asked for; without
          ``resource`` the answer is 400.

Both carry ``Access-Control-Allow-Origin: *`` (MAS's discovery CORS layer).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted.rest import urls
from mas_twisted.rest._base import DISCOVERY_CORS, install_plain_error_handlers, json_response, text_response

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

OIDC_ISSUER_REL = "http://openid.net/specs/connect/1.0/issuer"


def build_discovery_document(server: "MasServer") -> dict[str, Any]:
    """The provider metadata, in MAS's field order.

    Only what the service already serves is advertised; each endpoint adds its fields
    here when it lands (authorization/token/registration endpoints, response and grant
    types, client authentication methods, PKCE methods, userinfo, ...; inventory §2.9).
    """
    url_builder = server.get_url_builder()
    signing_algs = list(server.get_keystore().signing_algorithms())
    return {
        "issuer": url_builder.oidc_issuer(),
        "jwks_uri": url_builder.jwks_uri(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
    }


class DiscoveryResource:
    """``/.well-known/openid-configuration`` and ``/.well-known/webfinger``."""

    app = Klein()
    install_plain_error_handlers(app)
    cors = DISCOVERY_CORS

    def __init__(self, server: "MasServer"):
        self._server = server

    @app.route(urls.OIDC_CONFIGURATION, methods=["GET"])
    def openid_configuration(self, request: IRequest) -> bytes:
        return json_response(request, 200, build_discovery_document(self._server))

    @app.route(urls.WEBFINGER, methods=["GET"])
    def webfinger(self, request: IRequest) -> bytes:
        resources = request.args.get(b"resource") or []
        if not resources:
            return text_response(request, 400, "Failed to deserialize query string: missing field `resource`")
        subject = resources[0].decode("utf-8", "replace")
        rels = [rel.decode("utf-8", "replace") for rel in request.args.get(b"rel") or []]
        links = []
        if OIDC_ISSUER_REL in rels:
            links.append({"rel": OIDC_ISSUER_REL, "href": self._server.get_url_builder().oidc_issuer()})
        return json_response(request, 200, {"subject": subject, "links": links}, content_type="application/jrd+json")
