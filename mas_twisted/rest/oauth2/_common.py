# SPDX-License-Identifier: AGPL-3.0-only
"""What the Klein resources of the OAuth 2.0 API share: form parsing and client credentials
(their error answers are :func:`~mas_twisted.rest._base.install_oauth2_error_handlers`).

- :func:`read_form_request`: the ``Authorization`` header and the form body as MAS's form
  extractor reads them (``crates/axum-utils/src/client_authorization.rs``): an
  ``Authorization`` header with a scheme other than Basic or Bearer is refused first; a body
  that is not ``application/x-www-form-urlencoded`` is *no form* (the credentials may still
  come from the header); a known field given twice is ``invalid_request``; unknown fields
  are ignored. Only the body is read, never the query string.
- :func:`client_authorization`: the request's client credentials
  (:func:`~mas_twisted.oauth2.credentials.extract_credentials`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

import attrs
from twisted.web.iweb import IRequest

from mas_twisted.api.errors import InvalidRequestError
from mas_twisted.oauth2.credentials import ClientAuthorization, extract_credentials
from mas_twisted.policy import Requester

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"
#: The form fields of client authentication (RFC 6749 §2.3.1, RFC 7523 §2.2).
CLIENT_AUTH_FIELDS = frozenset({"client_id", "client_secret", "client_assertion_type", "client_assertion"})


@attrs.frozen
class FormRequest:
    """The ``Authorization`` header and body fields of a request (one value each).

    ``form`` is ``None`` when the body is not a form.
    """

    authorization: bytes | None
    form: Mapping[str, str] | None

    def field(self, name: str) -> str | None:
        return self.form.get(name) if self.form is not None else None


def _content_type(request: IRequest) -> bytes:
    value = request.getHeader(b"Content-Type") or b""
    return value.split(b";", 1)[0].strip().lower()


def read_form_request(request: IRequest, fields: Iterable[str]) -> FormRequest:
    """Read the ``Authorization`` header and the form body of ``request``.

    Args:
        fields: the endpoint's own fields besides :data:`CLIENT_AUTH_FIELDS`; none of
            them may be repeated.

    Raises:
        InvalidRequestError: an ``Authorization`` header of another scheme than Basic or
            Bearer, or a repeated field.
    """
    authorization = request.getHeader(b"Authorization")
    if authorization is not None:
        scheme = authorization[:7].lower()
        if not (scheme.startswith(b"basic ") or scheme == b"bearer "):
            raise InvalidRequestError("Invalid Authorization header")
    if _content_type(request) != FORM_CONTENT_TYPE or request.content is None:
        return FormRequest(authorization, None)
    request.content.seek(0)
    body = request.content.read()
    known = CLIENT_AUTH_FIELDS.union(fields)
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, errors="replace"):
        if name in form and name in known:
            raise InvalidRequestError(f"Parameter {name} is repeated", debug=f"form field {name!r} repeated")
        form.setdefault(name, value)
    return FormRequest(authorization, form)


def require_field(form: Mapping[str, str], name: str) -> str:
    """A required form field.

    Raises:
        InvalidRequestError: it is missing.
    """
    value = form.get(name)
    if value is None:
        raise InvalidRequestError(f"Missing parameter {name}")
    return value


def client_authorization(form_request: FormRequest) -> ClientAuthorization:
    """The client credentials the request presented (RFC 6749 §2.3, RFC 7523 §2.2).

    Raises:
        InvalidRequestError, InvalidGrantError: malformed, conflicting or missing credentials.
    """
    return extract_credentials(form_request.authorization, form_request.form or {})


def user_agent(request: IRequest) -> str | None:
    """The ``User-Agent`` header, if any."""
    value = request.getHeader(b"User-Agent")
    return value.decode("utf-8", "replace") if value is not None else None


def requester(request: IRequest) -> Requester:
    """Who made the request, for the policies: client address and user agent."""
    return Requester(ip_address=getattr(request, "client_ip", None), user_agent=user_agent(request))
