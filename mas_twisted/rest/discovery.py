# SPDX-License-Identifier: AGPL-3.0-only
"""OpenID Provider metadata and WebFinger (resource ``discovery``; MAS's
``crates/handlers/src/oauth2/discovery.rs`` and ``webfinger.rs``).

Request:  GET /.well-known/openid-configuration
Response: 200 application/json, OpenID Connect Discovery 1.0 §3 / RFC 8414 §2 metadata:
          {"issuer": "https://auth.example.com/", "authorization_endpoint": ".../authorize",
           "token_endpoint": ".../oauth2/token", "jwks_uri": ".../oauth2/keys.json", ...,
           "account_management_uri": ".../account/" (".../" until the account pages are
           mounted), "account_management_actions_supported": [...] (with the account pages)}

Request:  GET /.well-known/webfinger?resource=acct:alice@example.com&rel=http://openid.net/specs/connect/1.0/issuer
Response: 200 application/jrd+json (RFC 7033 §4.4):
          {"subject": "acct:alice@example.com",
           "links": [{"rel": "http://openid.net/specs/connect/1.0/issuer", "href": "https://auth.example.com/"}]}
          The issuer link is only present when that ``rel`` is asked for; without
          ``resource`` the answer is 400, as it is for a query the parsing boundary refuses
          (``rest/_parse.py``: invalid UTF-8, NUL).

Both carry ``Access-Control-Allow-Origin: *`` (MAS's discovery CORS layer).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.oauth2.credentials import AUTH_METHODS, SIGNING_ALGORITHMS
from mas_twisted.rest._base import DISCOVERY_CORS, install_plain_error_handlers, json_response, text_response
from mas_twisted.rest._parse import all_values, read_query

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

OIDC_ISSUER_REL = "http://openid.net/specs/connect/1.0/issuer"


#: The ID token claims this service issues (inventory §2.7).
CLAIMS_SUPPORTED = ("iss", "sub", "aud", "iat", "exp", "nonce", "auth_time", "at_hash", "c_hash")
#: MSC4191 account management actions the account pages handle: the stable names, then the
#: unstable ones clients still send.
ACCOUNT_MANAGEMENT_ACTIONS = (
    "org.matrix.profile",
    "org.matrix.devices_list",
    "org.matrix.device_view",
    "org.matrix.device_delete",
    "org.matrix.cross_signing_reset",
    "org.matrix.sessions_list",
    "org.matrix.session_view",
    "org.matrix.session_end",
)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def build_discovery_document(server: MasServer) -> dict[str, Any]:
    """The provider metadata (inventory §2.9), in MAS's field order.

    Every endpoint is an absolute URL under ``http.public_base``; the issuer is
    ``http.issuer``. The device authorization endpoint and grant are advertised only with
    ``oauth.device_code_grant_enabled``, ``prompt=create`` only when password registration
    is possible (``passwords.enabled``, ``account.password_registration_enabled`` and the
    registration page mounted). ``account_management_uri`` is the account page, or the index
    page while no account page is mounted (then without ``account_management_actions_supported``).
    The ID token and userinfo signing algorithms are those the configured keys can sign with.
    There is no GraphQL API in this service (STYLE.md §5.12), so MAS's
    ``org.matrix.matrix-authentication-service.graphql_endpoint`` is not advertised. The
    end-session endpoint (OpenID Connect RP-Initiated Logout, which MAS does not have) is
    advertised when the ``human`` resource serving it is mounted.
    """
    config = server.config
    url_builder = server.get_url_builder()
    signing_algs = list(server.get_keystore().signing_algorithms())
    device_code_enabled = bool(config.oauth.device_code_grant_enabled)
    features = server.get_site_features()

    grant_types = ["authorization_code", "refresh_token", "client_credentials"]
    if device_code_enabled:
        grant_types.append(DEVICE_CODE_GRANT)
    prompt_values = ["login"]
    if features.password_registration:
        prompt_values.append("create")

    document: dict[str, Any] = {
        "issuer": url_builder.oidc_issuer(),
        "authorization_endpoint": url_builder.absolute(urls.OAUTH2_AUTHORIZATION),
        "token_endpoint": url_builder.absolute(urls.OAUTH2_TOKEN),
        "jwks_uri": url_builder.jwks_uri(),
        "registration_endpoint": url_builder.absolute(urls.OAUTH2_REGISTRATION),
        "scopes_supported": ["openid", "email"],
        "response_types_supported": ["code", "id_token", "code id_token"],
        "response_modes_supported": ["form_post", "query", "fragment"],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "revocation_endpoint": url_builder.absolute(urls.OAUTH2_REVOCATION),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "introspection_endpoint": url_builder.absolute(urls.OAUTH2_INTROSPECTION),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "code_challenge_methods_supported": ["plain", "S256"],
        "userinfo_endpoint": url_builder.absolute(urls.OIDC_USERINFO),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "userinfo_signing_alg_values_supported": list(signing_algs),
        "display_values_supported": ["page"],
        "claim_types_supported": ["normal"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": prompt_values,
    }
    if device_code_enabled:
        document["device_authorization_endpoint"] = url_builder.absolute(urls.OAUTH2_DEVICE_AUTHORIZATION)
    # OpenID Connect RP-Initiated Logout 1.0 (ours), once a listener serves it.
    if server.get_mounted_routes().serves(urls.OIDC_END_SESSION):
        document["end_session_endpoint"] = url_builder.absolute(urls.OIDC_END_SESSION)
    # MSC4191: where users manage their account. Synapse refuses metadata without it (its
    # ServerMetadata requires the field, and /auth_metadata, /.well-known/matrix/client and
    # the cross-signing reset fallback then answer 500), so it is always there: the account
    # pages once they are mounted, the index page (who is signed in, sign out) until then, and
    # the actions only with the pages that carry them out.
    if features.account_management:
        document["account_management_uri"] = url_builder.account_management_uri()
        document["account_management_actions_supported"] = list(ACCOUNT_MANAGEMENT_ACTIONS)
    else:
        document["account_management_uri"] = url_builder.absolute(urls.INDEX)
    return document


class DiscoveryResource:
    """``/.well-known/openid-configuration`` and ``/.well-known/webfinger``."""

    app = Klein()
    install_plain_error_handlers(app)
    cors = DISCOVERY_CORS

    def __init__(self, server: MasServer):
        self._server = server

    @app.route(urls.OIDC_CONFIGURATION, methods=["GET"])
    def openid_configuration(self, request: IRequest) -> bytes:
        return json_response(request, 200, build_discovery_document(self._server))

    @app.route(urls.WEBFINGER, methods=["GET"])
    def webfinger(self, request: IRequest) -> bytes:
        query = all_values(read_query(request))
        resources = query.get("resource") or []
        if not resources:
            return text_response(request, 400, "Failed to deserialize query string: missing field `resource`")
        subject = resources[0]
        rels = query.get("rel") or []
        links = []
        if OIDC_ISSUER_REL in rels:
            links.append({"rel": OIDC_ISSUER_REL, "href": self._server.get_url_builder().oidc_issuer()})
        return json_response(
            request, 200, {"subject": subject, "links": links}, content_type="application/jrd+json"
        )
