# SPDX-License-Identifier: AGPL-3.0-only
"""The link crawler of issue 11 (item 6): every same-origin link of a page, requested.

:func:`page_links` reads what a page points at: ``<a href>``, ``<area href>``, ``<link href>``,
``<script src>``, ``<img src>``, ``<iframe src>``, ``<form action>`` (with its method; a form
without ``action`` posts to the page itself), ``<button formaction>`` and a
``<meta http-equiv="refresh">`` URL. :class:`Crawler` requests them through a test case's
``browse`` (the real ``Site`` on the fake reactor, with the test's cookie jar): a link, a
stylesheet, a script or an image by ``GET``; a form by its method and *without* its fields, so
that no form changes anything (no CSRF token) while its route still has to answer; a redirect's
``Location`` is followed. It goes breadth first from the seeds through every HTML page it
reaches on our origin, and :attr:`Crawler.dead` lists each request that answered 404 (or 405
to a form's method, or 5xx) with the page that linked to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import attrs

from tests.server import FakeChannel

#: Element → the attribute that holds its URL.
URL_ATTRIBUTES = {
    "a": "href",
    "area": "href",
    "link": "href",
    "script": "src",
    "img": "src",
    "iframe": "src",
}


@attrs.frozen
class Link:
    """One URL a page points at, and how a browser would request it."""

    #: What points at it: ``a``, ``form``, ``link``, ``script``, ``redirect``, ...
    kind: str
    method: str
    #: Absolute, without its fragment.
    url: str
    #: The page (absolute URL) it was found on.
    source: str


class _LinkParser(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.links: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "base" and attributes.get("href"):
            self.base = urljoin(self.base, attributes["href"])
        name = URL_ATTRIBUTES.get(tag)
        if name is not None and name in attributes:
            self.links.append((tag, "GET", attributes[name]))
        if tag == "form":
            method = (attributes.get("method") or "GET").upper()
            self.links.append(("form", method, attributes.get("action") or ""))
        if tag in ("button", "input") and attributes.get("formaction"):
            method = (attributes.get("formmethod") or "POST").upper()
            self.links.append(("form", method, attributes["formaction"]))
        if tag == "meta" and (attributes.get("http-equiv") or "").lower() == "refresh":
            _, _, target = (attributes.get("content") or "").partition(";")
            target = target.strip()
            if target.lower().startswith("url="):
                self.links.append(("meta-refresh", "GET", target[4:].strip().strip("'\"")))


def page_links(html: str, page_url: str) -> list[Link]:
    """Every URL ``html`` (served at ``page_url``) points at, resolved, without fragments.

    A bare fragment (``#content``) is the page itself and is left out; so are ``mailto:``,
    ``data:`` and the like.
    """
    parser = _LinkParser(page_url)
    parser.feed(html)
    parser.close()
    links = []
    for kind, method, raw in parser.links:
        raw = raw.strip()
        if raw.startswith("#"):
            continue
        url = urljoin(parser.base, raw)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            continue
        url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
        links.append(Link(kind=kind, method=method, url=url, source=page_url))
    return links


@attrs.frozen
class Visit:
    link: Link
    code: int
    content_type: str | None


def same_origin(url: str, origin: str) -> bool:
    a, b = urlsplit(url), urlsplit(origin)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def request_target(url: str) -> str:
    """The path and query to send for an absolute ``url``."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def is_dead(visit: Visit) -> bool:
    """A link to nothing: 404, a form whose method the route refuses (405), or a 5xx."""
    if visit.code == 404 or visit.code >= 500:
        return True
    return visit.link.kind == "form" and visit.code == 405


class Crawler:
    """Breadth-first over our origin from some seeds (see the module docstring).

    Args:
        browse: ``(method, path_and_query, form) -> FakeChannel``, the test case's browser.
        origin: the public base's scheme and host (``https://auth.example.com``).
        limit: the most requests one crawl sends (the crawl fails past it).
    """

    def __init__(
        self,
        browse: Callable[[str, str, dict[str, Any] | None], FakeChannel],
        origin: str,
        *,
        limit: int = 400,
    ):
        self._browse = browse
        self.origin = origin
        self.limit = limit
        self.visits: list[Visit] = []
        self._seen: set[tuple[str, str]] = set()
        #: The HTML pages reached (absolute URL → body).
        self.pages: dict[str, str] = {}

    @property
    def dead(self) -> list[Visit]:
        return [visit for visit in self.visits if is_dead(visit)]

    def describe_dead(self) -> str:
        return "\n".join(
            f"{v.code} {v.link.method} {v.link.url} ({v.link.kind} on {v.link.source})" for v in self.dead
        )

    def seed_page(self, url: str, channel: FakeChannel) -> None:
        """Crawl from a response the test got itself (a seed whose own status it checked)."""
        self._seen.add(("GET", url))
        self.crawl(self._follow(Link(kind="seed", method="GET", url=url, source="(seed)"), channel))

    def crawl(self, links: Iterable[Link]) -> None:
        """Request ``links`` and everything reachable from them on our origin."""
        queue: deque[Link] = deque(links)
        while queue:
            link = queue.popleft()
            if not same_origin(link.url, self.origin):
                continue
            key = (link.method, link.url)
            if key in self._seen:
                continue
            self._seen.add(key)
            if len(self.visits) >= self.limit:
                raise AssertionError(f"the crawl went past {self.limit} requests (at {link.url})")
            form = {} if link.method == "POST" else None
            channel = self._browse(link.method, request_target(link.url), form)
            self.visits.append(Visit(link, channel.code, channel.content_type))
            queue.extend(self._follow(link, channel))

    def crawl_from(self, *paths: str) -> None:
        """Crawl from ``paths`` (each must answer: it is checked like any link)."""
        self.crawl(Link(kind="seed", method="GET", url=self.origin + p, source="(seed)") for p in paths)

    def _follow(self, link: Link, channel: FakeChannel) -> list[Link]:
        if link.kind == "form":
            # A form sent without its fields answers an error page; its links are those of
            # the error page, which the crawl reaches from elsewhere.
            return []
        location = channel.location
        if channel.code in (301, 302, 303, 307, 308) and location:
            return [Link(kind="redirect", method="GET", url=urljoin(link.url, location), source=link.url)]
        if (channel.content_type or "").startswith("text/html"):
            self.pages[link.url] = channel.text_body
            return page_links(channel.text_body, link.url)
        return []
