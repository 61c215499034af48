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

The reactor thread only looks files up (``stat``). Their bytes are read in the reactor's
thread pool and kept in a bounded in-memory cache (:class:`AssetCache`) keyed on the path,
modification time and size, so a replaced file is read again and an unchanged one never is.
"""

from __future__ import annotations

import collections
import logging
import mimetypes
import os
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING

from klein import Klein
from twisted.internet.threads import deferToThreadPool
from twisted.web import http
from twisted.web.iweb import IRequest

from mas_twisted import urls
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


#: How much the asset cache keeps, in bytes, and the largest file it keeps.
CACHE_MAX_BYTES = 32 * 1024 * 1024
CACHE_MAX_FILE_BYTES = 4 * 1024 * 1024


class AssetCache:
    """File contents by path, valid while the file's modification time and size are unchanged.

    Least recently used entries are dropped past ``max_bytes``; files larger than
    ``max_file_bytes`` are not kept (they are read again, off the reactor thread, each time).
    Used from the reactor thread only.
    """

    def __init__(self, max_bytes: int = CACHE_MAX_BYTES, max_file_bytes: int = CACHE_MAX_FILE_BYTES):
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self._entries: collections.OrderedDict[str, tuple[int, int, bytes]] = collections.OrderedDict()
        self._size = 0

    def get(self, path: str, st: os.stat_result) -> bytes | None:
        entry = self._entries.get(path)
        if entry is None or entry[:2] != (st.st_mtime_ns, st.st_size):
            return None
        self._entries.move_to_end(path)
        return entry[2]

    def put(self, path: str, st: os.stat_result, data: bytes) -> None:
        old = self._entries.pop(path, None)
        if old is not None:
            self._size -= len(old[2])
        if len(data) > self.max_file_bytes:
            return
        self._entries[path] = (st.st_mtime_ns, st.st_size, data)
        self._size += len(data)
        while self._size > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._size -= len(dropped)

    @property
    def size(self) -> int:
        return self._size


def _read(path: str) -> tuple[bytes, os.stat_result]:
    """The file's bytes and its ``stat`` as of the read (runs in a pool thread)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        return f.read(), st


def _regular_file(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


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

    def __init__(self, server: MasServer, roots: Sequence[str], cache: AssetCache | None = None):
        self._reactor = server.get_reactor()
        self._roots = [str(root) for root in roots]
        self._cache = cache if cache is not None else AssetCache()

    @classmethod
    def from_config(cls, server: MasServer, resource: ResourceConfig) -> AssetsResource:
        roots = [resource.path] if resource.path else []
        bundled = bundled_assets_dir()
        if bundled not in roots:
            roots.append(bundled)
        return cls(server, roots)

    def _find(
        self, segments: list[str], accepted: dict[str, float]
    ) -> tuple[str, str | None, os.stat_result] | None:
        """The file to send, its content coding and its ``stat``, preferring what the client likes best."""
        wanted = sorted(
            (
                (_quality(accepted, coding), -i, coding, suffix)
                for i, (coding, suffix) in enumerate(PRECOMPRESSED)
            ),
            reverse=True,
        )
        for root in self._roots:
            original = os.path.join(root, *segments)
            for q, _, coding, suffix in wanted:
                if q > 0:
                    st = _regular_file(original + suffix)
                    if st is not None:
                        return original + suffix, coding, st
            st = _regular_file(original)
            if st is not None:
                return original, None, st
        return None

    def _not_found(self, request: IRequest) -> bytes:
        request.setHeader(b"Cache-Control", CACHE_NOT_FOUND)
        return text_response(request, 404, "Not Found")

    @app.route(urls.STATIC_ASSETS, methods=["GET"])
    def index(self, request: IRequest) -> bytes:
        # MAS serves no directory listings and no index.html.
        return self._not_found(request)

    @app.route(urls.STATIC_ASSET, methods=["GET"])
    async def asset(self, request: IRequest, path: str) -> bytes:
        segments = safe_segments(path)
        if segments is None:
            logger.info("Refused asset path %r", path)
            return self._not_found(request)
        accept_encoding = (request.getHeader(b"Accept-Encoding") or b"").decode("latin-1")
        found = self._find(segments, accepted_encodings(accept_encoding))
        if found is None:
            return self._not_found(request)
        file_path, coding, st = found
        content_type = mimetypes.guess_type(segments[-1], strict=False)[0] or "application/octet-stream"
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        if coding is not None:
            request.setHeader(b"Content-Encoding", coding.encode("ascii"))
        request.setHeader(b"Vary", b"Accept-Encoding")
        request.setHeader(b"Cache-Control", CACHE_FOUND)
        if request.setLastModified(st.st_mtime) is http.CACHED:
            return b""
        cached = self._cache.get(file_path, st)
        if cached is not None:
            data = cached
        else:
            try:
                data, st = await deferToThreadPool(
                    self._reactor, self._reactor.getThreadPool(), _read, file_path
                )
            except OSError as e:
                logger.warning("Could not read asset %s: %s", file_path, e.strerror)
                for name in (b"Content-Type", b"Content-Encoding", b"Vary", b"Last-Modified"):
                    request.responseHeaders.removeHeader(name)
                return self._not_found(request)
            self._cache.put(file_path, st, data)
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
        return data
