# SPDX-License-Identifier: AGPL-3.0-only
"""The one parsing boundary of every resource: request bodies, forms, query strings, JSON and
path segments are decoded here, and only here (issue 11).

What comes out is plain ``str`` and JSON values that the rest of the service can store and
compare without a second thought; what cannot be made into that is refused with one exception,
:class:`ParseError`, whose :attr:`~ParseError.reason` says why. The error installers of
``rest/_base.py``, ``rest/compat/_base.py`` and ``rest/human/_errors.py`` turn it into each
protocol's own answer: OAuth 2.0 ``invalid_request`` (RFC 6749 §5.2), Matrix ``M_NOT_JSON`` /
``M_BAD_JSON`` / ``M_INVALID_PARAM`` / ``M_TOO_LARGE``, the HTML 400 page, 413 for a body over
its limit.

Refused, whatever the endpoint:

- a NUL in a route's placeholder (``/consent/<grant_id>``): the route does not match (404);
- a body longer than the resource's limit (:data:`DEFAULT_BODY_LIMIT` unless the resource
  passes its own): by its ``Content-Length`` and by its actual length (Twisted has already
  buffered it in ``request.content``) -> 413. MAS relies on axum's default of 2 MB for its
  ``Json`` and ``Form`` extractors; our forms and JSON documents are a few hundred bytes, so
  the default here is far lower, and dynamic registration (``software_statement``, ``jwks``)
  declares a larger one;
- text that is not UTF-8: a form or query value after percent-decoding, a JSON document;
  Python's strict decoder also refuses UTF-8-encoded surrogates (CESU-8);
- NUL (U+0000) anywhere in a decoded value, a name or a JSON key (no text column of either
  engine can hold it, and no protocol value needs it);
- lone surrogates (JSON ``"\\ud800"``), which no UTF-8 text can carry;
- JSON nested deeper than :data:`MAX_JSON_DEPTH` levels, found by a scan of the brackets
  outside strings *before* ``json.loads`` (whose C scanner recurses once per level), so no
  ``RecursionError`` can happen; ``NaN``, ``Infinity`` and numbers out of a double's range
  (serde_json refuses them too); a repeated key in an object (serde's "duplicate field");
- a parameter given twice where one is meant (RFC 6749 §3.1: "Request and response
  parameters MUST NOT be included more than once"; serde_urlencoded's "duplicate field" in
  MAS's ``Form`` and ``Query`` extractors): the caller names those parameters; others may
  repeat and are ignored or kept as lists.
"""

from __future__ import annotations

import enum
import itertools
import json
import re
from collections.abc import Collection, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from klein import Klein
from twisted.web.iweb import IRequest
from werkzeug.routing import PathConverter, UnicodeConverter, ValidationError

#: The body limit of a resource that does not declare its own (forms and small JSON documents).
DEFAULT_BODY_LIMIT = 64 * 1024
#: How deeply JSON arrays and objects may nest (the deepest document any endpoint reads has
#: three levels; serde_json's own limit is 128).
MAX_JSON_DEPTH = 32
#: How many ``name=value`` pairs a form or query may have.
MAX_FIELDS = 1000

FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"


class Reason(enum.Enum):
    """Why a request was refused at the boundary."""

    TOO_LARGE = "too_large"  #: the body is over the resource's limit (413)
    NOT_UTF8 = "not_utf8"  #: text that is not UTF-8
    NUL = "nul"  #: a NUL character in a decoded value
    SURROGATE = "surrogate"  #: a lone surrogate in a JSON string
    TOO_DEEP = "too_deep"  #: JSON nested deeper than :data:`MAX_JSON_DEPTH`
    NOT_JSON = "not_json"  #: a JSON syntax error, ``NaN``/``Infinity``, a number out of range
    DUPLICATE = "duplicate"  #: a parameter or JSON key given twice where one is meant
    TOO_MANY = "too_many"  #: more than :data:`MAX_FIELDS` form or query fields
    BAD_HEADER = "bad_header"  #: a control character in a header the service reads


class Part(enum.Enum):
    """Which part of the request was refused (the installers answer by it)."""

    BODY = "body"  #: the body as a whole (its length)
    FORM = "form"  #: a form body's fields
    QUERY = "query"  #: the query string's parameters
    JSON = "json"  #: a JSON body
    PATH = "path"  #: a placeholder of the route
    HEADER = "header"  #: a request header


class ParseError(Exception):
    """A request the boundary refuses.

    ``part`` says where; ``message`` is safe to show a client (it never repeats the offending value); ``name`` is
    the parameter or JSON key concerned, if any; ``code`` is 413 for :attr:`Reason.TOO_LARGE`,
    400 otherwise.
    """

    def __init__(self, reason: Reason, message: str, *, part: Part, name: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.part = part
        self.name = name

    @property
    def code(self) -> int:
        return 413 if self.reason is Reason.TOO_LARGE else 400

    @property
    def is_syntax(self) -> bool:
        """Whether the document itself is unreadable (as opposed to a readable document with a
        refused value, a repeated key or too much of it)."""
        return self.reason in (Reason.NOT_UTF8, Reason.SURROGATE, Reason.TOO_DEEP, Reason.NOT_JSON)

    def __repr__(self) -> str:
        return f"ParseError({self.reason.value}, {self.part.value}, {self.message!r})"


# -- text -------------------------------------------------------------------------------------

_REFUSED_CHARS = re.compile("[\x00\ud800-\udfff]")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _quoted(name: str) -> str:
    """How a message names a parameter the client chose: as is when it is a plain identifier
    (``client_id``), else not at all (messages must not repeat arbitrary client text)."""
    return name if _PLAIN_NAME.fullmatch(name) else "a parameter"


def check_text(value: str, part: Part, where: str | None = None) -> str:
    """``value`` if it has no NUL and no lone surrogate; ``where`` names it in the message.

    Raises:
        ParseError: :attr:`Reason.NUL` or :attr:`Reason.SURROGATE`.
    """
    found = _REFUSED_CHARS.search(value)
    if found is None:
        return value
    suffix = f" in {where}" if where else ""
    if found.group() == "\x00":
        raise ParseError(Reason.NUL, f"NUL character{suffix}", part=part, name=where)
    raise ParseError(Reason.SURROGATE, f"Lone surrogate{suffix}", part=part, name=where)


def decode_text(raw: bytes, part: Part, where: str | None = None) -> str:
    """Strict UTF-8, then :func:`check_text`.

    Raises:
        ParseError: :attr:`Reason.NOT_UTF8`, :attr:`Reason.NUL`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        suffix = f" in {where}" if where else ""
        raise ParseError(Reason.NOT_UTF8, f"Invalid UTF-8{suffix}", part=part, name=where) from None
    return check_text(text, part, where)


class _TextConverter(UnicodeConverter):
    """A route placeholder (``/consent/<grant_id>``) that matches no NUL: the route then does
    not match, and the resource answers its 404."""

    def to_python(self, value: str) -> str:
        if _REFUSED_CHARS.search(value):
            raise ValidationError()
        return value


class _PathConverter(PathConverter):
    """``<path:...>`` as :class:`_TextConverter`."""

    def to_python(self, value: str) -> str:
        if _REFUSED_CHARS.search(value):
            raise ValidationError()
        return value


def install_path_converters(app: Klein) -> None:
    """Make the placeholders of ``app``'s routes refuse NUL (Twisted has percent-decoded the
    path, Klein has decoded it as UTF-8 or answered 400). Called by every error installer,
    before the resource's routes are declared (a rule takes its converters when added)."""
    app.url_map.converters.update(default=_TextConverter, string=_TextConverter, path=_PathConverter)


_HEADER_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def read_header(request: IRequest, name: bytes) -> bytes | None:
    """A request header's value, refused if it carries a control character (HTAB aside).

    Twisted passes NUL and other control bytes on in header values; no value the service
    reads (``Authorization`` above all) has any.

    Raises:
        ParseError: :attr:`Reason.BAD_HEADER`.
    """
    value = request.getHeader(name)
    if value is not None and _HEADER_CONTROL.search(value):
        header = name.decode("ascii")
        raise ParseError(Reason.BAD_HEADER, f"Invalid {header} header", part=Part.HEADER, name=header)
    return value


# -- bodies -----------------------------------------------------------------------------------


def content_type(request: IRequest) -> bytes:
    """The ``Content-Type`` essence (no parameters), lower case; ``b""`` without one."""
    value = request.getHeader(b"Content-Type") or b""
    return value.split(b";", 1)[0].strip().lower()


def is_form(request: IRequest) -> bool:
    return content_type(request) == FORM_CONTENT_TYPE


def read_body(request: IRequest, limit: int = DEFAULT_BODY_LIMIT) -> bytes:
    """The body, at most ``limit`` bytes long.

    Raises:
        ParseError: :attr:`Reason.TOO_LARGE`, by the ``Content-Length`` header or the length
            of what was received.
    """
    too_large = ParseError(Reason.TOO_LARGE, f"The request body is larger than {limit} bytes", part=Part.BODY)
    declared = request.getHeader(b"Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large
    if getattr(request, "body_too_large", False):
        # The listener stopped keeping a body longer than any resource takes.
        raise too_large
    content = request.content
    if content is None:
        return b""
    content.seek(0, 2)
    if content.tell() > limit:
        raise too_large
    content.seek(0)
    return content.read()


# -- forms and query strings ------------------------------------------------------------------


def parse_pairs(raw: bytes, part: Part, *, single: Collection[str] = ()) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a form body or query string, in order, decoded.

    ``+`` is a space and percent-escapes are decoded to bytes, which must then be UTF-8
    (WHATWG ``application/x-www-form-urlencoded`` parsing, without its replacement of
    invalid sequences). A name in ``single`` may appear once only.

    Raises:
        ParseError: invalid UTF-8, NUL, a repeated ``single`` name, more than
            :data:`MAX_FIELDS` pairs.
    """
    if raw.count(b"&") >= MAX_FIELDS:
        raise ParseError(Reason.TOO_MANY, f"More than {MAX_FIELDS} parameters", part=part)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for field in raw.split(b"&"):
        if not field:
            continue
        raw_name, _, raw_value = field.partition(b"=")
        name = decode_text(unquote_to_bytes(raw_name.replace(b"+", b" ")), part, "a parameter name")
        value = decode_text(unquote_to_bytes(raw_value.replace(b"+", b" ")), part, _quoted(name))
        if name in single:
            if name in seen:
                raise ParseError(Reason.DUPLICATE, f"Parameter {name} is repeated", part=part, name=name)
            seen.add(name)
        pairs.append((name, value))
    return pairs


def read_form(
    request: IRequest, *, single: Collection[str] = (), limit: int = DEFAULT_BODY_LIMIT
) -> list[tuple[str, str]] | None:
    """The fields of an ``application/x-www-form-urlencoded`` body; ``None`` for any other
    content type (whose body is then not read)."""
    if not is_form(request):
        return None
    return parse_pairs(read_body(request, limit), Part.FORM, single=single)


def read_query(request: IRequest, *, single: Collection[str] = ()) -> list[tuple[str, str]]:
    """The parameters of the query string only (never the body's: Twisted's ``request.args``
    merges the two)."""
    return parse_pairs(urlsplit(request.uri).query, Part.QUERY, single=single)


def first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each name's first value."""
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def all_values(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Each name's values, in order."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


# -- JSON -------------------------------------------------------------------------------------

# A JSON string (its escapes included), to blank out before counting brackets.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of ``raw`` nest (brackets inside strings ignored),
    without recursion. An unbalanced document still gets a number; the parser refuses it."""
    brackets = _JSON_STRING.sub(b'""', raw).translate(None, _NOT_A_BRACKET)
    if not brackets:
        return 0
    return max(itertools.accumulate(_DEPTH_STEP[b] for b in brackets))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    pass


def _check_strings(value: Any) -> None:
    """Every string of a decoded document (keys included) through :func:`check_text`,
    iteratively."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item, Part.JSON, "a JSON string")
        elif isinstance(item, dict):
            for key, member in item.items():
                check_text(key, Part.JSON, "a JSON key")
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)


def parse_json(raw: bytes) -> Any:
    """A JSON document (RFC 8259) read as strictly as serde_json reads it, and with no NUL.

    Raises:
        ParseError: :attr:`Reason.NOT_UTF8`, :attr:`Reason.TOO_DEEP`, :attr:`Reason.NOT_JSON`,
            :attr:`Reason.DUPLICATE` (``name`` is the key), :attr:`Reason.NUL`,
            :attr:`Reason.SURROGATE`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(Reason.NOT_UTF8, "The JSON document is not UTF-8", part=Part.JSON) from None
    openings = raw.count(b"[") + raw.count(b"{")  # an upper bound of the depth, cheaply
    if openings > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise ParseError(
            Reason.TOO_DEEP, f"The JSON document nests deeper than {MAX_JSON_DEPTH} levels", part=Part.JSON
        )
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except _DuplicateKey as e:
        key = str(e)
        raise ParseError(
            Reason.DUPLICATE, f"duplicate field `{_quoted(key)}`", part=Part.JSON, name=key
        ) from None
    except (ValueError, RecursionError) as e:
        raise ParseError(
            Reason.NOT_JSON, f"The body is not a JSON document: {_clean(str(e))}", part=Part.JSON
        ) from None
    _check_strings(value)
    return value


def _clean(text: str) -> str:
    """A parser message without the characters a client's document might have put in it."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


def read_json(request: IRequest, *, limit: int = DEFAULT_BODY_LIMIT) -> Any:
    """The body as a JSON document (the content type is the caller's to check)."""
    return parse_json(read_body(request, limit))
