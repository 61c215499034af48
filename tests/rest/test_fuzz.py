# SPDX-License-Identifier: AGPL-3.0-only
"""Property-based fuzzing of every route of every resource (issue 11, item 2).

Not yet part of the suite (pytest collects ``test_*.py`` only): it finds today's 5xx answers,
and joins the suite as ``test_fuzz.py`` with the one parsing boundary of issue 11's item 1.
Run it on one engine with::

    env -u MAS_TEST_POSTGRES_DSN .venv/bin/python -m pytest tests/rest/fuzz_routes.py -q
    MAS_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m pytest tests/rest/fuzz_routes.py -q

``--hypothesis-profile=deep`` runs many more examples, with a fresh seed each run (the
profiles are in ``tests/conftest.py``; the default, ``ci``, is bounded and derandomized).

The route table is read from ``rest/registry.py`` (every Klein rule of every mounted class and
every exact-path leaf), so a new route is in reach without touching this file. Each example
sends one request through the real ``Site`` on the fake reactor, with a listener mounting every
resource: a method (the route's own, or an odd one), the path with its placeholders filled, a
query, headers (a broken ``Authorization`` among them) and a body of some content type: forms
with NUL characters, lone surrogates, invalid UTF-8, repeated and array parameters; JSON nested
deeply, large, of the wrong types, with missing fields. The properties: no 5xx, nothing logged
at ERROR (a traceback), and a valid request right after still answers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import given
from hypothesis import strategies as st

from mas_twisted.rest.registry import RESOURCE_CLASSES
from tests.unittest import MasTestCase

#: Every resource name that mounts something (graphql and adminapi mount nothing yet).
ALL_RESOURCES = [name for name, classes in RESOURCE_CLASSES.items() if classes]

_PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def route_table() -> list[tuple[str, str]]:
    """``(method, rule)`` for every route every resource mounts."""
    routes: set[tuple[str, str]] = set()
    for classes in RESOURCE_CLASSES.values():
        for cls in classes:
            app = getattr(cls, "app", None)
            if app is not None:
                for rule in app.url_map.iter_rules():
                    for method in sorted(rule.methods or {"GET"}):
                        routes.add((method, rule.rule))
            for path in getattr(cls, "exact_paths", ()):
                for method in getattr(cls, "allowedMethods", (b"GET",)):
                    routes.add((method.decode(), path))
    return sorted(routes)


ROUTES = route_table()

# -- values ---------------------------------------------------------------------------------

NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfffy",
            "\u202e",
            "A" * 5000,
            "../../etc/passwd",
            "%00",
            "%ff",
            "mat_\x00",
            "https://evil.example\\@good.example/",
            "@alice:example.com",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "0" * 26,
        ]
    ),
)


def _deep(depth: int) -> bytes:
    """JSON nested ``depth`` arrays deep (written out: ``json.dumps`` itself would recurse)."""
    return b"[" * depth + b"1" + b"]" * depth


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), NASTY_TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(NASTY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)

FIELD_NAMES = st.sampled_from(
    [
        "grant_type", "code", "redirect_uri", "client_id", "client_secret", "refresh_token", "token",
        "token_type_hint", "scope", "code_verifier", "device_code", "client_assertion",
        "client_assertion_type", "response_type", "state", "nonce", "prompt", "login_hint",
        "username", "password", "csrf", "action", "kind", "id", "code_challenge",
        "code_challenge_method", "redirect_uris", "client_name", "type", "identifier", "user",
        "device_id", "initial_device_display_name", "redirectUrl", "user_code", "response_mode",
    ]
)  # fmt: skip

PAIRS = st.lists(st.tuples(FIELD_NAMES | NASTY_TEXT, NASTY_TEXT), max_size=8)


def _encode_pairs(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode([(k, v) for k, v in pairs], encoding="utf-8", errors="surrogatepass").encode()


BODIES = st.one_of(
    st.just((None, b"")),
    PAIRS.map(lambda p: ("application/x-www-form-urlencoded", _encode_pairs(p))),
    JSON_VALUES.map(lambda v: ("application/json", json.dumps(v).encode("utf-8", "surrogatepass"))),
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=6).map(
        lambda v: ("application/json", json.dumps(v).encode("utf-8", "surrogatepass"))
    ),
    st.integers(min_value=100, max_value=20000).map(
        lambda d: ("application/json", _deep(d))
    ),
    st.integers(min_value=1, max_value=3).map(
        lambda n: ("application/json", json.dumps({"redirect_uris": ["https://a.example/"] * (50_000 * n)}).encode())
    ),
    st.binary(max_size=200).map(lambda b: ("application/x-www-form-urlencoded", b)),
    st.binary(max_size=200).map(lambda b: ("application/json", b)),
    st.sampled_from([b"\xff\xfe", b"grant_type=\xff", b"a=1&a=2&a=3", b"{" * 5000, b"token=%00"]).map(
        lambda b: ("application/x-www-form-urlencoded", b)
    ),
    st.tuples(st.sampled_from(["text/plain", "multipart/form-data; boundary=x", "", "application/json; charset=latin-1"]), st.binary(max_size=100)),
)  # fmt: skip

AUTHORIZATION = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "Basic", "Basic !!!", "Basic " + "QQ==", "Basic Og==", "Basic AA==", "Bearer", "Bearer ",
            "Bearer mat_\x7f", "Bearer " + "a" * 5000, "Negotiate x", "basic YTpi", "Bearer a b",
        ]
    ),
    NASTY_TEXT.map(lambda t: "Bearer " + t),
)  # fmt: skip

ODD_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"])


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method, rule = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 9)) == 0:
        method = draw(ODD_METHODS)

    def fill(match: re.Match[str]) -> str:
        return quote(
            draw(NASTY_TEXT | st.just("01ARZ3NDEKTSV4RRFFQ69G5FAV")), safe="", errors="surrogatepass"
        )

    path = _PLACEHOLDER.sub(fill, rule)
    query = draw(PAIRS)
    if query:
        path += "?" + _encode_pairs(query).decode("ascii")
    content_type, body = draw(BODIES)
    headers: list[tuple[str, bytes]] = []
    if content_type is not None:
        headers.append(("Content-Type", content_type.encode("latin-1")))
    auth = draw(AUTHORIZATION)
    if auth is not None:
        headers.append(("Authorization", auth.encode("utf-8", "surrogatepass")))
    if draw(st.booleans()):
        headers.append(("Cookie", draw(NASTY_TEXT).encode("utf-8", "surrogatepass")))
    return {"method": method, "path": path, "content": body, "headers": headers}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RouteFuzzTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"] = [{"name": name} for name in ALL_RESOURCES]
        config.setdefault("passwords", {})["enabled"] = True
        return config

    def test_route_table_is_not_empty(self) -> None:
        self.assertGreater(len(ROUTES), 20, ROUTES)

    @given(requests())
    def test_no_input_answers_5xx(self, request: dict[str, Any]) -> None:
        errors = _Errors()
        root = logging.getLogger()
        root.addHandler(errors)
        summary = f"{request['method']} {request['path'][:200]!r} body {request['content'][:200]!r}"
        try:
            channel = self.make_request(**request)
        except AssertionError as e:
            # Twisted refused the request line itself (longer than its 16 KiB limit, say) and
            # closed the connection without a Request: what a client sees is that, or a 400.
            if "did not parse the request" not in str(e):
                raise
            self.assertNotIn("HTTP/1.1 5", str(e), summary)
            channel = None
        finally:
            root.removeHandler(errors)
        if channel is not None:
            self.assertLess(channel.code, 500, f"{summary} -> {channel.code} {channel.body[:300]!r}")
        self.assertEqual([r.getMessage()[:200] for r in errors.records], [], f"{summary} logged at ERROR")
        health = self.make_request("GET", "/health")
        self.assertEqual(health.code, 200, f"after {summary}")


def failures_by_kind(report: str) -> Iterator[str]:  # pragma: no cover - a reading aid
    """The distinct exception types in a pytest report of this module (for the closing note)."""
    yield from sorted(set(re.findall(r"(\w+Error|\w+Exception): ", report)))
