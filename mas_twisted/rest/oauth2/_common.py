# SPDX-License-Identifier: AGPL-3.0-only
"""What the Klein resources of the OAuth 2.0 API share: form parsing and client credentials
(their error answers are :func:`~mas_twisted.rest._base.install_oauth2_error_handlers`).

- :func:`read_form_request`: the ``Authorization`` header and the form body as MAS's form
  extractor reads them (``crates/axum-utils/src/client_authorization.rs``): an
  ``Authorization`` header with a scheme other than Basic or Bearer is refused first; a body
  that is not ``application/x-www-form-urlencoded`` is *no form* (the credentials may still
  come from the header); a known field given twice is ``invalid_request``; unknown fields
  are ignored. Only the body is read, never the query string. The body and the header go
  through the parsing boundary (:mod:`mas_twisted.rest._parse`): invalid UTF-8, NUL, control
  characters in the header and bodies over the limit are ``invalid_request`` (413 for the
  last), so the handlers only ever see clean text.
- :func:`client_authorization`: the request's client credentials
  (:func:`~mas_twisted.oauth2.credentials.extract_credentials`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import attrs
from twisted.web.iweb import IRequest

from mas_twisted.api.errors import InvalidRequestError
from mas_twisted.oauth2.credentials import ClientAuthorization, extract_credentials
from mas_twisted.policy import Requester
from mas_twisted.rest._parse import Part, check_text, first_values, read_form, read_header

logger = logging.getLogger(__name__)

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


def read_form_request(request: IRequest, fields: Iterable[str]) -> FormRequest:
    """Read the ``Authorization`` header and the form body of ``request``.

    Args:
        fields: the endpoint's own fields besides :data:`CLIENT_AUTH_FIELDS`; none of
            them may be repeated.

    Raises:
        InvalidRequestError: an ``Authorization`` header of another scheme than Basic or
            Bearer.
        ParseError: a repeated field, or anything else the parsing boundary refuses
            (answered as ``invalid_request`` by the OAuth 2.0 error handlers).
    """
    authorization = read_header(request, b"Authorization")
    if authorization is not None:
        scheme = authorization[:7].lower()
        if not (scheme.startswith(b"basic ") or scheme == b"bearer "):
            raise InvalidRequestError("Invalid Authorization header")
    pairs = read_form(request, single=CLIENT_AUTH_FIELDS.union(fields))
    return FormRequest(authorization, first_values(pairs) if pairs is not None else None)


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
        ParseError: a NUL or lone surrogate in the credentials once decoded (a ``Basic``
            header's base64 and percent-encoding, a client assertion's JSON claims).
    """
    authorization = extract_credentials(form_request.authorization, form_request.form or {})
    credentials = authorization.credentials
    for name in ("client_id", "client_secret", "bearer_token"):
        value = getattr(credentials, name)
        if value is not None:
            check_text(value, Part.HEADER, name)
    return authorization


def user_agent(request: IRequest) -> str | None:
    """The ``User-Agent`` header, if any."""
    value = request.getHeader(b"User-Agent")
    return value.decode("utf-8", "replace") if value is not None else None


def requester(request: IRequest) -> Requester:
    """Who made the request, for the policies: client address and user agent."""
    return Requester(ip_address=getattr(request, "client_ip", None), user_agent=user_agent(request))
