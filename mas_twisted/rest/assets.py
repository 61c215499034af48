# SPDX-License-Identifier: AGPL-3.0-only
"""``GET /assets/<path>``: static files (resource ``assets``; MAS's ``build_router`` in
``crates/cli/src/server.rs``, a ``ServeDir`` with pre-compressed variants).

Request:  GET /assets/mas.css   Accept-Encoding: br, gzip
Response: 200 with the bytes of ``mas.css.br`` (``Content-Encoding: br``), else
          ``mas.css.gz`` (``gzip``), else ``mas.css``; ``Content-Type`` of ``mas.css``,
          ``Vary: Accept-Encoding``, ``Cache-Control: public, max-age=31536000, immutable``.
          ``Last-Modified`` is sent and ``If-Modified-Since`` answered with 304. A missing
          file is 404 with ``Cache-Control: public, max-age=300``.

Files are looked up in the configured ``path`` (MAS's default ``./share/assets/``) first,
then in the project's own ``res/assets/``, which holds what our templates link to. A path
with ``..``, ``.``, empty segments, a backslash or a NUL is refused (404), so nothing
outside those folders is ever served; symbolic links inside them are followed, as
``ServeDir`` does.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from typing import TYPE_CHECKING, Sequence

from klein import Klein
from twisted.web import http
from twisted.web.iweb import IRequest

from mas_twisted.rest import urls
from mas_twisted.rest._base import install_plain_error_handlers, text_response
from mas_twisted.util.paths import data_dir

if TYPE_CHECKING:
    from mas_twisted.config.http import ResourceConfig
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

CACHE_FOUND = b"public, max-age=31536000, immutable"
CACHE_NOT_FOUND = b"public, max-age=300"

#: Pre-compressed variants, in the order preferred when the client likes them equally.
PRECOMPRESSED: tuple[tuple[str, str], ...] = (("br", ".br"), ("gzip", ".gz"))


def bundled_assets_dir() -> str:
    return str(data_dir("res") / "assets")


def accepted_encodings(header: str | None) -> dict[str, float]:
    """``Accept-Encoding`` as ``{coding: q}`` (RFC 9110 §12.5.3); ``*`` covers the others."""
    accepted: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        accepted[coding] = q
    return accepted


def _quality(accepted: dict[str, float], coding: str) -> float:
    if coding in accepted:
        return accepted[coding]
    if coding == "gzip" and "x-gzip" in accepted:
        return accepted["x-gzip"]
    return accepted.get("*", 0.0)


def safe_segments(path: str) -> list[str] | None:
    """The segments of a requested asset path, or None if it could leave the folder."""
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or "\\" in segment or "\0" in segment:
            return None
    return segments


class AssetsResource:
    """Static files from the configured folder, then the bundled one."""

    app = Klein()
    install_plain_error_handlers(app)

    def __init__(self, server: "MasServer", roots: Sequence[str]):
        self._roots = [str(root) for root in roots]

    @classmethod
    def from_config(cls, server: "MasServer", resource: "ResourceConfig") -> "AssetsResource":
        roots = [resource.path] if resource.path else []
        bundled = bundled_assets_dir()
        if bundled not in roots:
            roots.append(bundled)
        return cls(server, roots)

    def _find(self, segments: list[str], accepted: dict[str, float]) -> tuple[str, str | None] | None:
        """The file to send and its content coding, preferring what the client likes best."""
        wanted = sorted(
            ((_quality(accepted, coding), -i, coding, suffix) for i, (coding, suffix) in enumerate(PRECOMPRESSED)),
            reverse=True,
        )
        for root in self._roots:
            original = os.path.join(root, *segments)
            for q, _, coding, suffix in wanted:
                if q > 0 and os.path.isfile(original + suffix):
                    return original + suffix, coding
            if os.path.isfile(original):
                return original, None
        return None

    def _not_found(self, request: IRequest) -> bytes:
        request.setHeader(b"Cache-Control", CACHE_NOT_FOUND)
        return text_response(request, 404, "Not Found")

    @app.route(urls.STATIC_ASSETS, methods=["GET"])
    def index(self, request: IRequest) -> bytes:
        # MAS serves no directory listings and no index.html.
        return self._not_found(request)

    @app.route(urls.STATIC_ASSET, methods=["GET"])
    def asset(self, request: IRequest, path: str) -> bytes:
        segments = safe_segments(path)
        if segments is None:
            logger.info("Refused asset path %r", path)
            return self._not_found(request)
        accept_encoding = (request.getHeader(b"Accept-Encoding") or b"").decode("latin-1")
        found = self._find(segments, accepted_encodings(accept_encoding))
        if found is None:
            return self._not_found(request)
        file_path, coding = found
        try:
            # Assets are small: reading one whole is cheaper than streaming it.
            with open(file_path, "rb") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                data = f.read()
        except OSError as e:
            logger.warning("Could not read asset %s: %s", file_path, e.strerror)
            return self._not_found(request)
        content_type = mimetypes.guess_type(segments[-1], strict=False)[0] or "application/octet-stream"
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        if coding is not None:
            request.setHeader(b"Content-Encoding", coding.encode("ascii"))
        request.setHeader(b"Vary", b"Accept-Encoding")
        request.setHeader(b"Cache-Control", CACHE_FOUND)
        if request.setLastModified(mtime) is http.CACHED:
            return b""
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
        return data
