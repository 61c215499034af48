# SPDX-License-Identifier: AGPL-3.0-only
"""The ``adminapi`` resource: ``/api/admin/v1/*`` (every :data:`~mas_twisted.api.admin.routes.ROUTES`
entry, mounted from its declaration), ``GET /api/spec.json`` (the OpenAPI 3.1 document generated
from the same declarations) and ``GET /api/doc/`` (an HTML page listing the operations of that
document, rendered on the server: no script, nothing from another origin).

Each request is authenticated first (``AdminHandler.authenticate``; MAS's ``CallContext`` is
the first extractor of every admin handler), then its path and query parameters are parsed, then
its body. :class:`~mas_twisted.api.errors.AdminApiError` becomes ``{"errors":[{"title": ...}]}``
with its status; anything unexpected a logged 500 ``{"errors":[{"title":"Internal server
error"}]}`` that says nothing more.
"""

from __future__ import annotations

import functools
import html
import json
import logging
from typing import TYPE_CHECKING, Any, cast

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from mas_twisted import __version__, urls
from mas_twisted.api.admin.routes import ROUTES, SCHEMAS
from mas_twisted.api.admin.spec import Call, Route, openapi_document
from mas_twisted.api.errors import AdminApiError
from mas_twisted.rest._base import (
    API_CORS,
    _install,
    html_response,
    json_response,
    log_parse_error,
    with_length,
)
from mas_twisted.rest._parse import ParseError, all_values, read_body, read_query

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


def render_admin_error(request: IRequest, error: AdminApiError) -> bytes:
    logger.log(
        logging.ERROR if error.code >= 500 else logging.INFO,
        "%s %s: %d %s%s",
        request.method.decode("ascii", "replace"),
        request.path.decode("utf-8", "replace"),
        error.code,
        error.msg,
        f" ({error.debug})" if error.debug else "",
    )
    request.responseHeaders.removeHeader(b"Content-Length")
    return json_response(request, error.code, error.to_json())


def _view(route: Route) -> Any:
    async def view(self: AdminApiResource, request: IRequest, **path_values: str) -> bytes:
        return await self.serve(route, request, path_values)

    view.__name__ = route.operation_id
    return view


def _render_parse_error(request: IRequest, error: ParseError) -> bytes:
    """A request refused at the parsing boundary (``rest/_parse.py``), in the admin API's error
    shape: 400, or 413 for a body over the limit."""
    log_parse_error(request, error)
    return json_response(request, error.code, {"errors": [{"title": error.message}]})


class AdminApiResource:
    """The admin API, its OpenAPI document and its documentation page."""

    app = Klein()

    @app.handle_errors(AdminApiError)
    def admin_error(self, request: IRequest, failure: Failure) -> bytes:
        return render_admin_error(request, cast(AdminApiError, failure.value))

    _install(
        app,
        lambda request: json_response(request, 500, {"errors": [{"title": "Internal server error"}]}),
        _render_parse_error,
    )
    cors = API_CORS

    for _route in ROUTES:
        app.route(_route.klein_path, methods=[_route.method], endpoint=_route.operation_id)(_view(_route))
    del _route

    def __init__(self, server: MasServer):
        self._handler = server.get_admin_handler()
        self._public_base = str(server.config.http.public_base)

    async def serve(self, route: Route, request: IRequest, path_values: dict[str, str]) -> bytes:
        caller = await self._handler.authenticate(
            request.getHeader(b"Authorization"), ip=getattr(request, "client_ip", None)
        )
        params, raw = route.parse(path_values, all_values(read_query(request)))
        body: dict[str, Any] = {}
        if route.body is not None:
            body = route.body.parse(read_body(request))
        answer = await route.run(self._handler, Call(params=params, body=body, caller=caller, raw=raw))
        if answer.body is None:
            request.setResponseCode(answer.status)
            return with_length(request, b"")
        return json_response(request, answer.status, answer.body)

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        return openapi_document(ROUTES, SCHEMAS, public_base=self._public_base, version=__version__)

    @app.route(urls.API_SPEC, methods=["GET"])
    def spec(self, request: IRequest) -> bytes:
        return json_response(request, 200, self.document)

    @app.route(urls.API_DOC, methods=["GET"])
    def doc(self, request: IRequest) -> bytes:
        return html_response(request, render_doc_page(self.document))


def _schema_text(schema: Any) -> str:
    return json.dumps(schema, ensure_ascii=False)


def render_doc_page(document: dict[str, Any]) -> str:
    """The documentation page: every operation of ``document`` with its parameters, body and
    answers, grouped by tag, and a link to the document itself."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(document['info']['title'])}</title></head><body>",
        f"<h1>{e(document['info']['title'])}</h1>",
        (
            f"<p>Version {e(document['info']['version'])}. The OpenAPI document: "
            f'<a href="{e(urls.API_SPEC)}">{e(urls.API_SPEC)}</a>. Every operation needs '
            "<code>Authorization: Bearer &lt;token&gt;</code> with the <code>urn:mas:admin</code> scope.</p>"
        ),
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            by_tag.setdefault(operation["tags"][0], []).append((method.upper(), path, operation))
    out.append("<nav><ul>")
    for tag in sorted(by_tag):
        out.append(f'<li><a href="#tag-{e(tag)}">{e(tag)}</a></li>')
    out.append("</ul></nav>")
    for tag in sorted(by_tag):
        out.append(f'<section id="tag-{e(tag)}"><h2>{e(tag)}</h2>')
        for method, path, operation in by_tag[tag]:
            out.append(f'<article id="{e(operation["operationId"])}">')
            out.append(f"<h3><code>{e(method)} {e(path)}</code></h3><p>{e(operation['summary'])}</p>")
            if operation["parameters"]:
                out.append(
                    "<table><thead><tr><th>Parameter</th><th>In</th><th>Schema</th><th>Description</th></tr></thead><tbody>"
                )
                for param in operation["parameters"]:
                    out.append(
                        f"<tr><td><code>{e(param['name'])}</code></td><td>{e(param['in'])}</td>"
                        f"<td><code>{e(_schema_text(param['schema']))}</code></td><td>{e(param['description'])}</td></tr>"
                    )
                out.append("</tbody></table>")
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                name = ref.rsplit("/", 1)[-1]
                schema = document["components"]["schemas"][name]
                out.append(
                    f"<p>Body (<code>application/json</code>): <code>{e(_schema_text(schema))}</code></p>"
                )
            out.append("<ul>")
            for status, response in operation["responses"].items():
                out.append(f"<li><code>{e(status)}</code> {e(response['description'])}</li>")
            out.append("</ul></article>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
