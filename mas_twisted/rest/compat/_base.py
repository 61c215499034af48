# SPDX-License-Identifier: AGPL-3.0-only
"""What the compatibility resources share: Matrix errors, JSON bodies, ``Bearer`` tokens.

- :func:`install_matrix_error_handlers`: a :class:`~mas_twisted.api.errors.MatrixError`
  becomes ``{"errcode", "error", ...}`` with its status; an unexpected failure a 500
  ``M_UNKNOWN``; a :class:`PlainTextError` (what axum's own extractors answer in MAS) plain
  text.
- Requests refused at the parsing boundary (:mod:`mas_twisted.rest._parse`) answer as Matrix
  errors: a body over the limit 413 ``M_TOO_LARGE``; a JSON body serde_json could not read
  (not UTF-8, a lone surrogate, nested too deep, ``NaN``) 400 ``M_NOT_JSON``; a repeated key
  400 ``M_BAD_JSON``; a NUL character, in the body or the query, 400 ``M_INVALID_PARAM``.
- :func:`read_matrix_json`: MAS's ``MatrixJsonBody``. A ``Content-Type`` is optional, but if
  present must be JSON (``application/json`` or ``*/*+json``): else 400 ``M_NOT_JSON``
  "Invalid Content-Type header: expected application/json". A body that is not JSON is 400
  ``M_NOT_JSON`` "Body is not a valid JSON document"; JSON of the wrong shape (checked by the
  caller with :class:`Fields`) 400 ``M_BAD_JSON`` "JSON fields are not valid"
  (:class:`~mas_twisted.api.errors.BadJsonError`).
- :func:`read_axum_json`: axum's ``Json`` extractor (used by MAS's ``/refresh``): 415 without
  a JSON ``Content-Type``, 400 for a syntax error, 422 for the wrong shape (a repeated key, a
  NUL), 413 for a body over the limit, all plain text.
- :func:`bearer_token`: the ``Authorization: Bearer`` credential, ``None`` when there is no
  ``Authorization`` header; another scheme is 400 "invalid HTTP header (authorization)"
  (``axum-extra``'s ``TypedHeader`` rejection).
"""

from __future__ import annotations

from typing import Any, cast

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from mas_twisted.api.errors import BadJsonError, InvalidParamError, MasError, MatrixError, NotJsonError
from mas_twisted.rest._base import _install, json_response, log_parse_error, text_response
from mas_twisted.rest._parse import ParseError, Part, Reason, parse_json, read_body

NOT_JSON_CONTENT_TYPE = "Invalid Content-Type header: expected application/json"
NOT_JSON_BODY = "Body is not a valid JSON document"
TOO_LARGE_BODY = "Request body too large"


class PlainTextError(MasError):
    """An error answered as plain text (MAS's axum extractor rejections)."""


class _DataError(ValueError):
    """The JSON parsed, but its shape is wrong (serde's "data" errors)."""


def render_matrix_error(request: IRequest, error: MatrixError) -> bytes:
    for name in (b"Cache-Control", b"Pragma", b"Content-Length"):
        request.responseHeaders.removeHeader(name)
    return json_response(request, error.code, error.to_json())


def install_matrix_error_handlers(app: Klein) -> None:
    """Matrix errors as JSON, plain-text extractor errors, routing answers, a JSON 500."""
    import logging

    logger = logging.getLogger(__name__)

    def matrix_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        error = cast(MatrixError, failure.value)
        logger.log(
            logging.ERROR if error.code >= 500 else logging.INFO,
            "%s %s: %d %s%s",
            request.method.decode("ascii", "replace"),
            request.path.decode("utf-8", "replace"),
            error.code,
            error.errcode,
            f" ({error.debug})" if error.debug else "",
        )
        return render_matrix_error(request, error)

    def plain_error(self: Any, request: IRequest, failure: Failure) -> bytes:
        error = cast(PlainTextError, failure.value)
        return text_response(request, error.code, error.msg)

    def parse_error(request: IRequest, error: ParseError) -> bytes:
        log_parse_error(request, error)
        return render_matrix_error(request, matrix_parse_error(error))

    app.handle_errors(MatrixError)(matrix_error)
    app.handle_errors(PlainTextError)(plain_error)
    _install(
        app,
        lambda request: json_response(
            request, 500, {"errcode": "M_UNKNOWN", "error": "Internal server error"}
        ),
        parse_error,
    )


def matrix_parse_error(error: ParseError) -> MatrixError:
    """A request refused at parsing as the Matrix API answers it (see the module docstring)."""
    if error.reason is Reason.TOO_LARGE:
        return MatrixError(413, TOO_LARGE_BODY, "M_TOO_LARGE")
    if error.part is Part.JSON and error.is_syntax:
        return NotJsonError(NOT_JSON_BODY)
    if error.part is Part.JSON and error.reason is Reason.DUPLICATE:
        return BadJsonError()
    return InvalidParamError(error.message, debug=f"{error.part.value}: {error.reason.value}")


# -- bodies ---------------------------------------------------------------------------------------


def _is_json_content_type(value: bytes) -> bool:
    try:
        essence = value.decode("ascii").split(";", 1)[0].strip().lower()
    except UnicodeDecodeError:
        return False
    kind, slash, subtype = essence.partition("/")
    if not slash or not kind or not subtype or any(c.isspace() for c in essence):
        return False
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def read_matrix_json(request: IRequest, *, optional: bool = False) -> Any:
    """The JSON body (MAS's ``MatrixJsonBody``); ``None`` when ``optional``, there is no
    ``Content-Type`` and the body is empty (its ``Option<MatrixJsonBody>``)."""
    content_type = request.getHeader(b"Content-Type")
    if content_type is not None and not _is_json_content_type(content_type):
        raise NotJsonError(NOT_JSON_CONTENT_TYPE)
    body = read_body(request)
    if optional and content_type is None and not body:
        return None
    return parse_json(body)


def read_axum_json(request: IRequest) -> Any:
    """The JSON body as axum's ``Json`` extractor reads it (see the module docstring)."""
    content_type = request.getHeader(b"Content-Type")
    if content_type is None or not _is_json_content_type(content_type):
        raise PlainTextError("Expected request with `Content-Type: application/json`", code=415)
    try:
        return parse_json(read_body(request))
    except ParseError as e:
        if e.reason is Reason.TOO_LARGE:
            raise PlainTextError(
                "Failed to buffer the request body: length limit exceeded", code=413
            ) from None
        if e.is_syntax:
            raise PlainTextError(f"Failed to parse the request body as JSON: {e.message}", code=400) from None
        raise PlainTextError(
            f"Failed to deserialize the JSON body into the target type: {e.message}", code=422
        ) from None


class Fields:
    """Typed reads of a JSON object's members, with serde's rules: a missing member or
    ``null`` is ``None`` for optional fields; any other wrong type is a data error
    (:class:`ValueError`)."""

    def __init__(self, value: Any):
        if not isinstance(value, dict):
            raise _DataError("expected an object")
        self._value = value

    def has(self, name: str) -> bool:
        return name in self._value

    def raw(self, name: str) -> Any:
        return self._value.get(name)

    def opt_str(self, name: str) -> str | None:
        value = self._value.get(name)
        if value is not None and not isinstance(value, str):
            raise _DataError(f"{name}: expected a string")
        return value

    def req_str(self, name: str) -> str:
        value = self._value.get(name)
        if not isinstance(value, str):
            raise _DataError(f"missing or invalid field `{name}`")
        return value

    def bool_default(self, name: str, default: bool = False) -> bool:
        if name not in self._value:
            return default
        value = self._value[name]
        if not isinstance(value, bool):
            raise _DataError(f"{name}: expected a boolean")
        return value


DataError = _DataError


# -- the Authorization header ---------------------------------------------------------------------


def bearer_token(request: IRequest) -> str | None:
    """The ``Bearer`` token, or ``None`` without an ``Authorization`` header.

    Raises:
        PlainTextError: 400 for another scheme or an unreadable value.
    """
    value = request.getHeader(b"Authorization")
    if value is None:
        return None
    scheme = b"bearer"
    if (
        len(value) > len(scheme) + 1
        and value[: len(scheme)].lower() == scheme
        and value[len(scheme) : len(scheme) + 1] == b" "
        and all(0x20 <= b < 0x7F or b == 0x09 for b in value)
    ):
        return value[len(scheme) + 1 :].decode("ascii")
    raise PlainTextError("invalid HTTP header (authorization)", code=400)
