# SPDX-License-Identifier: AGPL-3.0-only
"""The declarative route layer of the admin API: one :class:`Route` per operation gives the
Klein route (``api/admin/resource.py``), the parsing and validation of its path and query
parameters and its JSON body, and its entry in the OpenAPI 3.1 document served at
``/api/spec.json`` (:func:`openapi_document`; MAS builds its document with ``aide`` from the
same handlers, ``crates/handlers/src/admin/mod.rs``).

Bad input gets MAS's 400 ``{"errors":[{"title": ...}]}`` with the titles of MAS's extractors:
"Invalid ULID in path", "Invalid pagination parameters" (and "Cannot specify both
`page[first]` and `page[last]` parameters"), "Invalid filter parameters", and for a body
"Invalid JSON body" followed by what is wrong with it.

Nothing here does I/O: a route's ``run`` is called with the :class:`Call` that parsing built.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from mas_twisted.api.errors import AdminApiError
from mas_twisted.rest._parse import ParseError, parse_json

JsonSchema = dict[str, Any]

ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
#: The schema of a ULID, as MAS's ``schema::Ulid``.
ULID_SCHEMA: JsonSchema = {
    "title": "ULID",
    "description": "A ULID as per https://github.com/ulid/spec",
    "type": "string",
    "pattern": "^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{26}$",
    "example": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
}
ULID_REF: JsonSchema = {"$ref": "#/components/schemas/ULID"}
#: Page sizes above this are refused (the database's ``LIMIT`` is a signed 64-bit integer).
MAX_PAGE_SIZE = 2**31 - 1

PAGE_TITLE = "Invalid pagination parameters"
FILTER_TITLE = "Invalid filter parameters"
PATH_TITLE = "Invalid ULID in path"
BODY_TITLE = "Invalid JSON body"


class InvalidValue(ValueError):
    """A parameter or body value that does not fit its schema (the message says why)."""


# -- value parsers ----------------------------------------------------------------------------
def parse_ulid(text: str) -> str:
    upper = text.upper()
    if not ULID_RE.match(upper):
        raise InvalidValue(f"{text!r} is not a ULID")
    return upper


def parse_bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise InvalidValue(f"{text!r} is not a boolean")


def parse_page_size(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise InvalidValue(f"{text!r} is not a positive integer")
    value = int(text)
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidValue(f"{text!r} is out of range")
    return value


def parse_datetime(text: str) -> int:
    """An RFC 3339 date-time with an offset, as epoch milliseconds."""
    try:
        when = datetime.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidValue(f"{text!r} is not an RFC 3339 date-time") from None
    if when.tzinfo is None or "T" not in text.upper():
        raise InvalidValue(f"{text!r} has no offset")
    return int(when.timestamp() * 1000)


def format_datetime(ms: int | None) -> str | None:
    """Epoch milliseconds as RFC 3339 in UTC (``Z``), with milliseconds only when not zero."""
    if ms is None:
        return None
    when = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    # isoformat, not strftime: glibc's %Y does not pad years before 1000 to four digits.
    text = when.replace(microsecond=0, tzinfo=None).isoformat()
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def one_of(*values: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in values:
            raise InvalidValue(f"{text!r} is not one of {', '.join(values)}")
        return text

    return parse


def _identity(text: str) -> str:
    return text


# -- parameters -------------------------------------------------------------------------------
@attrs.frozen
class Param:
    """One path or query parameter.

    ``into`` is the key of the parsed value in :attr:`Call.params`; ``title`` the 400 title of
    a bad value; ``repeated`` parameters (OpenAPI ``type: array``, ``explode``) collect every
    occurrence into a tuple.
    """

    name: str
    into: str
    schema: JsonSchema
    description: str
    parse: Callable[[str], Any] = _identity
    location: str = "query"
    repeated: bool = False
    title: str = FILTER_TITLE

    def openapi(self) -> JsonSchema:
        schema = {"type": "array", "items": self.schema, "default": []} if self.repeated else self.schema
        out: JsonSchema = {
            "in": self.location,
            "name": self.name,
            "description": self.description,
            "schema": schema,
            "style": "simple" if self.location == "path" else "form",
        }
        if self.location == "path":
            out["required"] = True
        elif self.repeated:
            out["explode"] = True
        return out


def path_id(description: str = "The ID of the resource") -> Param:
    return Param("id", "id", ULID_REF, description, parse_ulid, location="path", title=PATH_TITLE)


def filter_ulid(name: str, into: str, description: str, *, repeated: bool = False) -> Param:
    return Param(f"filter[{name}]", into, ULID_REF, description, parse_ulid, repeated=repeated)


def filter_bool(name: str, into: str, description: str) -> Param:
    return Param(f"filter[{name}]", into, {"type": "boolean"}, description, parse_bool)


def filter_enum(name: str, into: str, description: str, schema_name: str, values: Sequence[str]) -> Param:
    return Param(
        f"filter[{name}]", into, {"$ref": f"#/components/schemas/{schema_name}"}, description, one_of(*values)
    )


def filter_string(name: str, into: str, description: str, *, repeated: bool = False) -> Param:
    return Param(f"filter[{name}]", into, {"type": "string"}, description, repeated=repeated)


def filter_datetime(name: str, into: str, description: str) -> Param:
    return Param(
        f"filter[{name}]", into, {"type": "string", "format": "date-time"}, description, parse_datetime
    )


#: MAS's ``PaginationParams``.
PAGINATION: tuple[Param, ...] = (
    Param(
        "page[before]",
        "before",
        ULID_REF,
        "Retrieve the items before the given ID",
        parse_ulid,
        title=PAGE_TITLE,
    ),
    Param(
        "page[after]",
        "after",
        ULID_REF,
        "Retrieve the items after the given ID",
        parse_ulid,
        title=PAGE_TITLE,
    ),
    Param(
        "page[first]",
        "first",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        "Retrieve the first N items",
        parse_page_size,
        title=PAGE_TITLE,
    ),
    Param(
        "page[last]",
        "last",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        "Retrieve the last N items",
        parse_page_size,
        title=PAGE_TITLE,
    ),
    Param(
        "count",
        "count",
        {"$ref": "#/components/schemas/IncludeCount"},
        "Include the total number of items. Defaults to `true`.",
        one_of("true", "false", "only"),
        title=PAGE_TITLE,
    ),
)

FILTER_DATES: tuple[Param, ...] = (
    filter_datetime("created-before", "created_before", "Retrieve the items created before the given time"),
    filter_datetime("created-after", "created_after", "Retrieve the items created after the given time"),
    filter_datetime(
        "last-active-before",
        "last_active_before",
        "Retrieve the items with a last active time before the given time",
    ),
    filter_datetime(
        "last-active-after",
        "last_active_after",
        "Retrieve the items with a last active time after the given time",
    ),
)


# -- bodies -----------------------------------------------------------------------------------
class _Missing:
    """The default of a body member whose absence differs from ``null`` (a ``PUT`` that leaves
    a value as it is, MAS's ``Option<Option<T>>``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


@attrs.frozen
class Field:
    """One member of a JSON body: its JSON types (``("string", "null")``), and a check of the
    value beyond its type (raises :class:`InvalidValue`)."""

    name: str
    types: tuple[str, ...]
    description: str
    required: bool = False
    default: Any = None
    extra_schema: JsonSchema = attrs.field(factory=dict)
    check: Callable[[Any], Any] | None = None

    def schema(self) -> JsonSchema:
        out: JsonSchema = {"description": self.description}
        out["type"] = self.types[0] if len(self.types) == 1 else list(self.types)
        out.update(self.extra_schema)
        if not self.required and self.default is not None and self.default is not MISSING:
            out["default"] = self.default
        return out


@attrs.frozen
class Body:
    """A JSON object body; ``optional`` bodies may be left out entirely (``deactivate``)."""

    schema_name: str
    title: str
    fields: tuple[Field, ...]
    optional: bool = False

    def schema(self) -> JsonSchema:
        out: JsonSchema = {
            "title": self.title,
            "type": "object",
            "properties": {f.name: f.schema() for f in self.fields},
        }
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        return out

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The members of the body, defaults filled in. Raises a 400 :class:`AdminApiError`."""
        if not raw.strip():
            if self.optional:
                return {f.name: f.default for f in self.fields}
            raise AdminApiError(400, BODY_TITLE, "The request body is empty")
        try:
            value = parse_json(raw)
        except ParseError as e:
            raise AdminApiError(400, BODY_TITLE, e.message) from None
        if not isinstance(value, dict):
            raise AdminApiError(400, BODY_TITLE, "The request body is not a JSON object")
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name not in value:
                if f.required:
                    raise AdminApiError(400, BODY_TITLE, f"missing field `{f.name}`")
                out[f.name] = f.default
                continue
            member = value[f.name]
            if not any(_JSON_TYPES[t](member) for t in f.types):
                raise AdminApiError(400, BODY_TITLE, f"invalid type for field `{f.name}`")
            if member is not None and f.check is not None:
                try:
                    member = f.check(member)
                except InvalidValue as e:
                    raise AdminApiError(400, BODY_TITLE, f"invalid value for field `{f.name}`: {e}") from None
            out[f.name] = member
        return out


# -- routes -----------------------------------------------------------------------------------
@attrs.frozen
class Response:
    status: int
    description: str
    #: A component schema name; ``None``: no body (``204``).
    schema: str | None = "ErrorResponse"


@attrs.frozen
class Call:
    """What parsing a request gave a route: path and query values, the body, the caller."""

    params: Mapping[str, Any]
    body: Mapping[str, Any]
    caller: Any
    #: The query values as sent, by parameter name (pagination links repeat the filters).
    raw: Mapping[str, tuple[str, ...]]


@attrs.frozen
class Answer:
    status: int
    body: Any = None


Runner = Callable[[Any, Call], Awaitable[Answer]]


@attrs.frozen
class Route:
    """One operation of the admin API."""

    method: str
    #: The OpenAPI path, with ``{name}`` for each path parameter.
    path: str
    operation_id: str
    summary: str
    tag: str
    run: Runner
    responses: tuple[Response, ...]
    params: tuple[Param, ...] = ()
    body: Body | None = None

    @property
    def klein_path(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)

    def parse(
        self, path_values: Mapping[str, str], query: Mapping[str, list[str]]
    ) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
        """Path and query values by ``into``, and the query values as sent by name; raises a
        400 :class:`AdminApiError` on a bad one."""
        out: dict[str, Any] = {}
        raw_out: dict[str, tuple[str, ...]] = {}
        for param in self.params:
            if param.location == "path":
                try:
                    out[param.into] = param.parse(path_values[param.name])
                except InvalidValue as e:
                    raise AdminApiError(400, param.title, debug=str(e)) from None
                continue
            texts = query.get(param.name)
            if not texts:
                out[param.into] = () if param.repeated else None
                continue
            try:
                raw_out[param.name] = tuple(texts)
                if param.repeated:
                    out[param.into] = tuple(param.parse(text) for text in texts)
                elif len(texts) > 1:
                    raise InvalidValue(f"{param.name} is repeated")
                else:
                    out[param.into] = param.parse(texts[0])
            except InvalidValue as e:
                raise AdminApiError(400, param.title, debug=str(e)) from None
        if out.get("first") is not None and out.get("last") is not None:
            raise AdminApiError(400, "Cannot specify both `page[first]` and `page[last]` parameters")
        return out, raw_out

    def openapi(self, security: Sequence[JsonSchema]) -> JsonSchema:
        responses: dict[str, Any] = {}
        for response in self.responses:
            entry: JsonSchema = {"description": response.description}
            if response.schema is not None:
                entry["content"] = {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{response.schema}"}}
                }
            responses[str(response.status)] = entry
        for status, description in ((400, "Bad request"), (401, "Not authorized")):
            responses.setdefault(
                str(status),
                {
                    "description": description,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                    },
                },
            )
        op: JsonSchema = {
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": self.operation_id,
            "parameters": [p.openapi() for p in self.params],
            "responses": dict(sorted(responses.items())),
            "security": list(security),
        }
        if self.body is not None:
            op["requestBody"] = {
                "required": not self.body.optional,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{self.body.schema_name}"}}
                },
            }
        return op


# -- the document -----------------------------------------------------------------------------
#: The schemas every document has (MAS's ``response.rs`` and ``params.rs``).
BASE_SCHEMAS: dict[str, JsonSchema] = {
    "ULID": ULID_SCHEMA,
    "IncludeCount": {
        "type": "string",
        "enum": ["true", "false", "only"],
        "description": "Include the total number of items (`true`, the default), not (`false`), or only it (`only`)",
    },
    "ErrorResponse": {
        "description": "A top-level response with a list of errors",
        "type": "object",
        "properties": {"errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}}},
        "required": ["errors"],
    },
    "Error": {
        "description": "A single error",
        "type": "object",
        "properties": {"title": {"description": "A human-readable title for the error", "type": "string"}},
        "required": ["title"],
    },
    "SelfLinks": {
        "description": "Related links",
        "type": "object",
        "properties": {
            "self": {"description": "The canonical link to the current resource", "type": "string"}
        },
        "required": ["self"],
    },
    "PaginationLinks": {
        "description": "Related links",
        "type": "object",
        "properties": {
            "self": {"type": "string"},
            "first": {"type": "string"},
            "last": {"type": "string"},
            "next": {"type": "string"},
            "prev": {"type": "string"},
        },
        "required": ["self"],
    },
    "PaginationMeta": {
        "type": "object",
        "properties": {
            "count": {"description": "The total number of results", "type": "integer", "minimum": 0}
        },
    },
    "SingleResourceMeta": {
        "type": "object",
        "properties": {
            "page": {
                "type": "object",
                "properties": {"cursor": {"type": "string"}},
                "required": ["cursor"],
            }
        },
    },
}


def resource_schemas(name: str) -> dict[str, JsonSchema]:
    """``SingleResource_for_X``, ``SingleResponse_for_X`` and ``PaginatedResponse_for_X``."""
    ref = {"$ref": f"#/components/schemas/{name}"}
    single = {
        "description": "A single resource, with its type, ID, attributes and related links",
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "id": ULID_REF,
            "attributes": ref,
            "links": {"$ref": "#/components/schemas/SelfLinks"},
            "meta": {"$ref": "#/components/schemas/SingleResourceMeta"},
        },
        "required": ["type", "id", "attributes", "links"],
    }
    return {
        f"SingleResource_for_{name}": single,
        f"SingleResponse_for_{name}": {
            "description": "A top-level response with a single resource",
            "type": "object",
            "properties": {
                "data": {"$ref": f"#/components/schemas/SingleResource_for_{name}"},
                "links": {"$ref": "#/components/schemas/SelfLinks"},
            },
            "required": ["data", "links"],
        },
        f"PaginatedResponse_for_{name}": {
            "description": "A top-level response with a page of resources",
            "type": "object",
            "properties": {
                "meta": {"$ref": "#/components/schemas/PaginationMeta"},
                "data": {
                    "type": "array",
                    "items": {"$ref": f"#/components/schemas/SingleResource_for_{name}"},
                },
                "links": {"$ref": "#/components/schemas/PaginationLinks"},
            },
            "required": ["links"],
        },
    }


ADMIN_SCOPE_DESCRIPTION = "Grant access to the admin API"


def openapi_document(
    routes: Sequence[Route], schemas: Mapping[str, JsonSchema], *, public_base: str, version: str
) -> JsonSchema:
    """The OpenAPI 3.1 document of ``routes`` (server URL ``http.public_base``, as MAS)."""
    security = [{"oauth2": ["urn:mas:admin"]}, {"bearer": ["urn:mas:admin"]}]
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = route.openapi(security)
    all_schemas: dict[str, JsonSchema] = dict(BASE_SCHEMAS)
    all_schemas.update(schemas)
    for route in routes:
        if route.body is not None:
            all_schemas[route.body.schema_name] = route.body.schema()
    base = public_base.rstrip("/")
    tags = sorted({route.tag for route in routes})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Matrix Authentication Service admin API", "version": version},
        "servers": [{"url": base + "/"}],
        "paths": paths,
        "components": {
            "schemas": all_schemas,
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{base}/oauth2/token",
                            "refreshUrl": f"{base}/oauth2/token",
                            "scopes": {"urn:mas:admin": ADMIN_SCOPE_DESCRIPTION},
                        },
                        "authorizationCode": {
                            "authorizationUrl": f"{base}/authorize",
                            "tokenUrl": f"{base}/oauth2/token",
                            "refreshUrl": f"{base}/oauth2/token",
                            "scopes": {"urn:mas:admin": ADMIN_SCOPE_DESCRIPTION},
                        },
                    },
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token with access to the admin API",
                },
            },
        },
        "security": security,
        "tags": [{"name": tag} for tag in tags],
    }
