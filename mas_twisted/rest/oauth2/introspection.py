# SPDX-License-Identifier: AGPL-3.0-only
"""``POST /oauth2/introspect`` (resource ``oauth``; RFC 7662, MAS's
``crates/handlers/src/oauth2/introspection.rs``, inventory §2.10).

Request (what Synapse sends, synapse-integration.md §2b):
          POST /oauth2/introspect
          Content-Type: application/x-www-form-urlencoded
          Authorization: Bearer <matrix.secret>
          X-MAS-Supports-Device-Id: 1

          token=mat_...&token_type_hint=access_token
Response: 200 {"active": true, "scope": "urn:matrix:client:api:* ...", "client_id": "01J...",
               "username": "alice", "token_type": "access_token", "exp": 1700000300,
               "expires_in": 300, "iat": 1700000000, "nbf": 1700000000, "sub": "01J...", "jti": "01J..."}
          200 {"active": false} for anything that is not an active token.

A confidential client may introspect too, authenticating as it does at the token endpoint.
Errors, as MAS answers them:

- 401 ``access_denied``: a ``Bearer`` credential that is not the homeserver's secret, or a
  public client (``token_endpoint_auth_method`` ``none``, or none registered);
- 401 ``invalid_client``: an unknown client, or credentials that do not check out;
- 400 ``invalid_request``: an ``Authorization`` header of another scheme than Basic or
  Bearer, no or conflicting credentials, a body that is not a form (checked after the
  caller is authenticated, as in MAS), or a form without ``token`` or with a field
  repeated. (MAS answers the last two with a 500: its form extractor reports them as an
  internal error. A malformed request is the client's error, so it is a 400 here.)

This is the hottest path of the service, so it is a plain ``twisted.web`` leaf resource
rather than a Klein route (Klein's routing and rendering cost about a third of the throughput,
feasibility.md §6), and the homeserver's requests take the shortest way: the Bearer secret
is compared before anything else, the handler answers with a Deferred (no coroutine), reads
the token with one query shared by the requests that arrive together, writes nothing, and
the response is written directly. A listener mounts it as an exact-path leaf
(``app/listeners.py``): it declares the paths it serves (``exact_paths``) and, as
``twisted.web`` resources do, its methods (``allowedMethods``); the listener answers a
CORS preflight and a 405 for it and calls ``render_POST``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mas_twisted import urls
from mas_twisted.api.errors import AccessDeniedError, InvalidRequestError, OAuth2Error
from mas_twisted.rest._base import (
    API_CORS,
    json_response,
    log_failure,
    oauth2_parse_error,
    render_oauth2_error,
)
from mas_twisted.rest._parse import ParseError
from mas_twisted.rest.oauth2._common import (
    CLIENT_AUTH_FIELDS,
    client_authorization,
    read_form_request,
    require_field,
)

if TYPE_CHECKING:
    from mas_twisted.handlers.introspection import IntrospectionResponse
    from mas_twisted.oauth2.credentials import Credentials
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

_JSON = [b"application/json"]


# -- writing an asynchronous answer -------------------------------------------------------------
def _client_gone(failure: Failure) -> None:
    """The errback of ``request.notifyFinish()``: the connection was lost before the answer."""


def track_client(request: Any) -> defer.Deferred[None]:
    """``request.notifyFinish()``, made safe to leave unobserved.

    Until the response is finished, the Deferred has fired (``.called``) exactly when the client
    went away: an asynchronous answer checks that before writing (a ``finish()`` after the
    connection was lost raises).
    """
    finished: defer.Deferred[None] = request.notifyFinish()
    finished.addErrback(_client_gone)
    return finished


def write_json(request: Any, finished: defer.Deferred[None], code: int, body: bytes) -> None:
    """Finish an asynchronously answered request with a JSON body (unless the client left)."""
    if finished.called:
        return
    request.setResponseCode(code)
    set_header = request.responseHeaders.setRawHeaders
    set_header(b"content-type", _JSON)
    set_header(b"content-length", [str(len(body)).encode("ascii")])
    request.write(body)
    request.finish()


def _answer_failure(failure: Failure, request: Any, finished: defer.Deferred[None]) -> None:
    if isinstance(failure.value, OAuth2Error):
        body = render_oauth2_error(request, failure.value)
    else:
        log_failure(request, failure)
        if finished.called or request.finished:
            return
        for name in (b"Content-Type", b"Content-Length", b"WWW-Authenticate"):
            request.responseHeaders.removeHeader(name)
        body = json_response(
            request, 500, {"error": "server_error", "error_description": "Internal server error"}
        )
    if not finished.called:
        request.write(body)
        request.finish()


# -- the endpoint ---------------------------------------------------------------------------------
class IntrospectionResource(Resource):
    """``POST /oauth2/introspect``: token introspection for the homeserver and confidential clients."""

    isLeaf = True
    #: Mounted by a listener as an exact-path leaf (see the module docstring).
    exact_paths: ClassVar[tuple[str, ...]] = (urls.OAUTH2_INTROSPECTION,)
    allowedMethods = (b"POST",)
    cors = API_CORS

    def __init__(self, server: MasServer):
        super().__init__()
        self._handler = server.get_introspection_handler()
        self._client_auth = server.get_client_authenticator()

    def render_POST(self, request: Any) -> Any:
        try:
            parsed = read_form_request(request, ("token", "token_type_hint"))
            form = parsed.form
            token = hint = None
            if form is not None:
                token = require_field(form, "token")
                hint = form.get("token_type_hint")
            authorization = parsed.authorization
            if (
                authorization is not None
                and authorization[:7].lower() == b"bearer "
                and (form is None or CLIENT_AUTH_FIELDS.isdisjoint(form))
            ):
                # The homeserver: the only check is its shared secret, in constant time.
                if not self._handler.is_homeserver(authorization[7:].lstrip(b" ").decode("utf-8", "replace")):
                    raise AccessDeniedError("bearer token presented is invalid", code=401)
                if token is None:
                    raise InvalidRequestError()
                finished = track_client(request)
                d = self._handler.introspect(
                    token, hint, supports_explicit_device_id=_supports_device_id(request)
                )
                d.addCallbacks(
                    _write_reply,
                    _answer_failure,
                    callbackArgs=(request, finished),
                    errbackArgs=(request, finished),
                )
                return NOT_DONE_YET
            credentials = client_authorization(parsed).credentials
        except OAuth2Error as e:
            return render_oauth2_error(request, e)
        except ParseError as e:
            return render_oauth2_error(request, oauth2_parse_error(e))
        finished = track_client(request)
        answer = defer.ensureDeferred(self._answer_client(request, finished, credentials, token, hint))
        answer.addErrback(_answer_failure, request, finished)
        return NOT_DONE_YET

    async def _answer_client(
        self,
        request: Any,
        finished: defer.Deferred[None],
        credentials: Credentials,
        token: str | None,
        hint: str | None,
    ) -> None:
        # Only confidential clients may introspect (a public one: 401 access_denied).
        await self._client_auth.authenticate(
            credentials, endpoint=urls.OAUTH2_INTROSPECTION, require_confidential=True
        )
        if token is None:
            raise InvalidRequestError()
        reply = await self._handler.introspect(
            token, hint, supports_explicit_device_id=_supports_device_id(request)
        )
        _write_reply(reply, request, finished)


def _supports_device_id(request: Any) -> bool:
    """The caller sent ``X-MAS-Supports-Device-Id: 1`` (Synapse does)."""
    return request.requestHeaders.getRawHeaders(b"x-mas-supports-device-id") == [b"1"]


_INACTIVE_BODY = b'{"active":false}'
#: ``json.dumps`` with these arguments builds an encoder per call; this one is built once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _write_reply(reply: IntrospectionResponse, request: Any, finished: defer.Deferred[None]) -> None:
    if reply.active:
        body = _ENCODER.encode(reply.to_json()).encode("utf-8")
    else:
        body = _INACTIVE_BODY
    write_json(request, finished, 200, body)
