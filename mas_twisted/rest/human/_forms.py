# SPDX-License-Identifier: AGPL-3.0-only
"""Request parsing and HTML responses shared by the human pages (MAS's ``human_router``).

Every response of a human page carries ``X-Frame-Options: DENY`` (MAS sets it on the whole
router), so no other site can frame a form and trick a click; the pages themselves go out
through :func:`mas_twisted.rest._base.html_response`, which adds the rest of the security
headers. Redirects are ``303 See Other`` (axum's ``Redirect::to``), so a POSTed form is
followed by a GET.

Query and form parameters are read separately: Twisted's ``request.args`` merges the query
string into a form POST's fields, and a post-auth action must come from the query. Both are
decoded by the parsing boundary (:mod:`mas_twisted.rest._parse`), which refuses invalid
UTF-8, NUL characters and oversized bodies with the HTML 400 (413) page.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping

from twisted.web.iweb import IRequest

from mas_twisted.rest._parse import all_values, read_form, read_query

logger = logging.getLogger(__name__)

Params = Mapping[str, list[str]]


def frame_protect(request: IRequest) -> None:
    request.setHeader(b"X-Frame-Options", b"DENY")


def redirect(request: IRequest, location: str, code: int = 303) -> bytes:
    """Send the browser to ``location`` (a path, or an absolute URL)."""
    request.setResponseCode(code)
    request.setHeader(b"Location", location.encode("utf-8"))
    frame_protect(request)
    request.setHeader(b"Content-Length", b"0")
    return b""


def query_params(request: IRequest, *, single: Collection[str] = ()) -> dict[str, list[str]]:
    """The parameters of the query string only; those in ``single`` may not repeat."""
    return all_values(read_query(request, single=single))


class _AllBut(Collection[str]):
    """Every name except those given (for :func:`form_params`'s default)."""

    def __init__(self, excluded: Collection[str]):
        self._excluded = frozenset(excluded)

    def __contains__(self, name: object) -> bool:
        return name not in self._excluded

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def form_params(
    request: IRequest, *, single: Collection[str] | None = None, multi: Collection[str] = ()
) -> dict[str, list[str]]:
    """The fields of an ``application/x-www-form-urlencoded`` body (empty for anything else).

    The forms of our pages send each field once: a repeated field is refused (issue 11, a
    parameter meant once given twice), except those in ``multi`` (a list of checkboxes) or,
    when ``single`` is given, any not in it."""
    names = single if single is not None else _AllBut(multi)
    return all_values(read_form(request, single=names) or ())


def first(params: Params, name: str) -> str | None:
    """The first value of ``name``, or ``None``."""
    values = params.get(name)
    return values[0] if values else None


def single(params: Params) -> dict[str, str]:
    """Each parameter's first value."""
    return {name: values[0] for name, values in params.items() if values}


def client_ip(request: IRequest) -> str | None:
    """The client address the listener inferred (``None`` if unknown, e.g. on a unix socket)."""
    inferred = getattr(request, "client_ip", None)
    if inferred is not None:
        return inferred
    address = request.getClientAddress()
    return getattr(address, "host", None)


def user_agent(request: IRequest) -> str | None:
    value = request.getHeader(b"User-Agent")
    return value.decode("utf-8", "replace") if value is not None else None
