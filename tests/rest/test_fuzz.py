# SPDX-License-Identifier: AGPL-3.0-only
"""Property-based fuzzing of every route of every resource (issue 11, item 2).

Run it on one engine with::

    env -u MAS_TEST_POSTGRES_DSN .venv/bin/python -m pytest tests/rest/test_fuzz.py -q
    MAS_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m pytest tests/rest/test_fuzz.py -q

The default profile, ``ci`` (``tests/conftest.py``), is derandomized and bounded;
``--hypothesis-profile=deep`` runs many more examples with a fresh seed each run.

The route table is read from ``rest/registry.py`` (every Klein rule of every mounted class and
every exact-path leaf), so a new route is in reach without touching this file. Each example
sends one request through the real ``Site`` on the fake reactor, with a listener mounting every
resource: a method (the route's own, or an odd one), the path with its placeholders filled, a
query, headers (a broken ``Authorization`` among them) and a body of some content type.

Bodies and queries are either arbitrary or, more often, a plausible request for the route
(:data:`TEMPLATES`: a known client id, a real user, the fields the endpoint reads) with one to
three mutations: a value replaced by something nasty (NUL, lone surrogates, invalid UTF-8,
5 000 characters, a JSON value of the wrong type, JSON nested 30 000 deep), a field dropped
(missing), repeated or sent as an array, raw invalid bytes spliced in. A plausible request is
what gets a NUL past the first checks of a handler and into the database. Besides: JSON
nested far deeper than the parser's stack, bodies of a megabyte and more, binary noise.

The properties: no 5xx, nothing logged at ERROR (by the standard library or by Twisted: a
traceback), and a valid request right after (a ``client_credentials`` token, which reads and
writes the database) still answers 200.

At the commit before the parsing boundary (``rest/_parse.py``, issue 11), every example
recorded rather than stopping at the first failure (``deep`` profile, fresh seeds):

- this test: on PostgreSQL 60 of 5 000 examples failed: ``ValueError: A string literal cannot
  contain NUL`` 40 (the ``/consent/<grant_id>`` path 21, ``/oauth2/registration`` 5,
  ``/oauth2/introspect`` 5, ``/oauth2/token`` 5, ``/authorize`` 3, ``/oauth2/userinfo`` 1),
  ``RecursionError`` in ``json.loads`` 19 (registration 11, compat ``/logout/all`` 8),
  ``UnicodeEncodeError`` (a lone surrogate) 1 (registration); on SQLite 12 of 3 901:
  ``RecursionError`` 6 (registration) and ``UnicodeEncodeError`` 6 (registration 5, compat
  ``/login`` 1);
- its first version (arbitrary values, no templates): on PostgreSQL 5 of 15 000 (all
  ``RecursionError``: compat ``/login``, ``/logout/all``), on SQLite 2 of 15 000 (the same, and
  registration); derandomized, 19 and 3 of 5 000 (the NUL in the consent path 16 times).

After it, none in 5 000 examples per engine, nor in the ``deep`` profile's 20 000.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import implementer

from mas_twisted.rest.registry import RESOURCE_CLASSES
from tests.factories import CLIENT_REDIRECT_URI, PASSWORD
from tests.handlers._helpers import use_threadless_password_manager
from tests.rest.human._base import csrf_from
from tests.rest.human._register import use_recording_homeserver
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

#: The fixtures every example may name: a public client, a confidential one, a user.
PUBLIC_CLIENT_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
CONFIDENTIAL_CLIENT_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAW"
CLIENT_SECRET = "fuzz-secret"
USERNAME = "alice"
VALID_BASIC = "Basic " + base64.b64encode(f"{CONFIDENTIAL_CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

#: Stand-ins replaced, in the sent request, by what ``prepare`` made: the login page's CSRF
#: token (with its cookie), an admin API token, the user's id. With them the fuzzer gets past
#: authentication and the CSRF check into the handlers behind them.
CSRF = "@CSRF@"
ADMIN_TOKEN = "@ADMIN@"
USER_ID = "@USER_ID@"
VALID_COOKIES = "@COOKIES@"


def _entropy(length: int) -> str:
    """``length`` random URL-safe characters (fixed seed): unlike ``"A" * 5000``, PostgreSQL
    cannot compress them below its index row limit (2 704 bytes)."""
    return "".join(random.Random(length).choices(string.ascii_letters + string.digits + "-._~", k=length))


# -- values ---------------------------------------------------------------------------------

NASTY_STRINGS = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d",
    "\u202e",
    "\ufeff",
    "A" * 5000,
    _entropy(3000),
    _entropy(20_000),
    _entropy(3000) + "@example.com",
    USER_ID,
    "../../etc/passwd",
    "%00",
    "%ff",
    "mat_\x00",
    "mar_\x00",
    "https://evil.example\\@good.example/",
    "javascript:alert(1)",
    "@alice:example.com",
    PUBLIC_CLIENT_ID,
    PUBLIC_CLIENT_ID + "\x00",
    "0" * 26,
    "-1",
    "99999999999999999999999",
]

NASTY_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(NASTY_STRINGS))

#: For header values: Twisted itself drops a connection whose headers pass 16 KiB.
HEADER_TEXT = st.one_of(st.text(max_size=40), st.sampled_from([s for s in NASTY_STRINGS if len(s) < 8000]))

#: What the parsing boundary refuses, to splice into a plausible value.
MALFORMED = st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\x00\ud800"])


@st.composite
def tainted(draw: st.DrawFn, value: str) -> str:
    """``value`` with a malformed character spliced in somewhere."""
    at = draw(st.integers(0, len(value)))
    return value[:at] + draw(MALFORMED) + value[at:]


def _deep(depth: int) -> bytes:
    """JSON nested ``depth`` arrays deep (written out: ``json.dumps`` itself would recurse)."""
    return b"[" * depth + b"1" + b"]" * depth


class _Raw:
    """A JSON value written out as is (nested too deep for ``json.dumps``)."""

    def __init__(self, text: str):
        self.text = text


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), NASTY_TEXT)

JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(NASTY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)

WRONG_JSON = st.one_of(JSON_VALUES, st.integers(1, 30_000).map(lambda d: _Raw("[" * d + "]" * d)))

FIELD_NAMES = st.sampled_from(
    [
        "grant_type", "code", "redirect_uri", "client_id", "client_secret", "refresh_token", "token",
        "token_type_hint", "scope", "code_verifier", "device_code", "client_assertion",
        "client_assertion_type", "response_type", "state", "nonce", "prompt", "login_hint",
        "username", "password", "csrf", "action", "kind", "id", "code_challenge",
        "code_challenge_method", "redirect_uris", "client_name", "type", "identifier", "user",
        "device_id", "initial_device_display_name", "redirectUrl", "user_code", "response_mode",
        "access_token", "resource", "rel", "max_age",
    ]
)  # fmt: skip

PAIRS = st.lists(st.tuples(FIELD_NAMES | NASTY_TEXT, NASTY_TEXT), max_size=8)


def _encode_pairs(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(list(pairs), encoding="utf-8", errors="surrogatepass").encode()


def _dumps(value: Any) -> str:
    """JSON text, with :class:`_Raw` parts spliced in as they are."""
    raws: list[str] = []

    def default(o: Any) -> Any:
        if isinstance(o, _Raw):
            raws.append(o.text)
            return f"\x01raw{len(raws) - 1}\x01"
        raise TypeError(type(o))

    text = json.dumps(value, default=default)
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0001raw{i}\\u0001"', raw)
    return text


# -- plausible requests ---------------------------------------------------------------------

#: Per route: how its plausible request is sent (``form``, ``json`` or ``query``) and its fields.
TEMPLATES: dict[str, tuple[str, dict[str, Any]]] = {
    "/oauth2/token": ("form", {
        "grant_type": "authorization_code", "code": "x", "redirect_uri": CLIENT_REDIRECT_URI,
        "client_id": PUBLIC_CLIENT_ID, "code_verifier": "v" * 43, "refresh_token": "mar_x",
        "device_code": "x", "scope": "openid",
    }),
    "/oauth2/revoke": ("form", {"token": "mat_x", "token_type_hint": "access_token", "client_id": PUBLIC_CLIENT_ID}),
    "/oauth2/introspect": ("form", {"token": "mat_x", "token_type_hint": "access_token", "client_id": CONFIDENTIAL_CLIENT_ID, "client_secret": CLIENT_SECRET}),
    "/oauth2/device": ("form", {"client_id": PUBLIC_CLIENT_ID, "scope": "openid"}),
    "/oauth2/userinfo": ("query", {"access_token": "mat_x"}),
    "/oauth2/registration": ("json", {
        "client_uri": "https://app.example.com/", "redirect_uris": [CLIENT_REDIRECT_URI],
        "client_name": "Fuzz", "token_endpoint_auth_method": "none", "response_types": ["code"],
        "grant_types": ["authorization_code", "refresh_token"], "contacts": ["a@example.com"],
        "application_type": "web",
    }),
    "/authorize": ("query", {
        "client_id": PUBLIC_CLIENT_ID, "response_type": "code", "scope": "openid urn:matrix:client:api:*",
        "redirect_uri": CLIENT_REDIRECT_URI, "state": "s", "nonce": "n", "code_challenge": "c" * 43,
        "code_challenge_method": "S256", "prompt": "login", "login_hint": "mxid:@alice:example.com",
        "response_mode": "query", "max_age": "60",
    }),
    "/login": ("form", {"csrf": CSRF, "username": USERNAME, "password": PASSWORD}),
    "/logout": ("form", {"csrf": CSRF}),
    "/account/personal-tokens": ("form", {"csrf": CSRF, "name": "bot", "scope": "urn:matrix:client:api:*", "expires_days": "30"}),
    "/account/personal-tokens/<session_id>/revoke": ("form", {"csrf": CSRF}),
    "/link": ("form", {"csrf": CSRF, "code": "ABCDEF"}),
    "/consent/<grant_id>": ("form", {"csrf": CSRF, "action": "consent"}),
    "/device/<device_code_id>": ("form", {"csrf": CSRF, "action": "consent"}),
    "/complete-compat-sso/<grant_id>": ("form", {"csrf": CSRF}),
    "/.well-known/webfinger": ("query", {"resource": "acct:alice@example.com", "rel": "http://openid.net/specs/connect/1.0/issuer"}),
    "/_matrix/client/<version>/login": ("json", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": USERNAME},
        "password": PASSWORD, "device_id": "ABCDEF", "initial_device_display_name": "Fuzz",
        "refresh_token": True,
    }),
    "/_matrix/client/<version>/refresh": ("json", {"refresh_token": "mar_x"}),
    "/_matrix/client/<version>/logout/all": ("json", {"only_compat_is_fine": True}),
    "/_matrix/client/<version>/login/sso/redirect": ("query", {"redirectUrl": "https://app.example.com/", "action": "login"}),
    "/register/password": ("form", {
        "csrf": CSRF, "username": "bob", "email": "bob@example.com", "password": PASSWORD,
        "password_confirm": PASSWORD, "accept_terms": "on",
    }),
    "/api/admin/v1/users": ("json", {"username": "carol", "skip_homeserver_check": True}),
    "/api/admin/v1/user-emails": ("json", {"user_id": USER_ID, "email": "alice2@example.com"}),
    "/api/admin/v1/users/<id>/set-password": ("json", {"password": PASSWORD, "skip_password_check": False}),
    "/api/admin/v1/policy-data": ("json", {"data": {"registration": {"banned_usernames": {"literals": ["x"]}}, "admin_users": ["alice"]}}),
}  # fmt: skip

_CONTENT_TYPES = {"form": "application/x-www-form-urlencoded", "json": "application/json"}


@st.composite
def plausible(draw: st.DrawFn, kind: str, fields: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]]:
    """A template with one to three mutations; ``(kind, pairs)``."""
    pairs: list[tuple[str, Any]] = list(fields.items())
    for _ in range(draw(st.integers(1, 3))):
        mutation = draw(
            st.sampled_from(["taint", "taint", "replace", "drop", "repeat", "wrong", "array", "add"])
        )
        if not pairs:
            break
        i = draw(st.integers(0, len(pairs) - 1))
        name, value = pairs[i]
        if mutation == "taint":
            if isinstance(value, str):
                pairs[i] = (name, draw(tainted(value)))
            elif isinstance(value, dict) and value:
                # One level down: compat login's ``identifier``.
                key = draw(st.sampled_from(sorted(value)))
                pairs[i] = (name, {**value, key: draw(tainted(str(value[key])))})
        elif mutation == "replace":
            pairs[i] = (name, draw(NASTY_TEXT))
        elif mutation == "drop":
            del pairs[i]
        elif mutation == "repeat":
            pairs.insert(i, (name, draw(NASTY_TEXT | st.just(value))))
        elif mutation == "wrong":
            pairs[i] = (name, draw(WRONG_JSON) if kind == "json" else draw(NASTY_TEXT))
        elif mutation == "array":
            pairs[i] = (name + "[]", value) if kind != "json" else (name, [value, value])
        else:
            pairs.append((draw(FIELD_NAMES | NASTY_TEXT), draw(NASTY_TEXT)))
    return kind, pairs


def _encode_plausible(kind: str, pairs: list[tuple[str, Any]], splice: bytes | None) -> bytes:
    if kind == "json":
        # A repeated key stays repeated: the object is written pair by pair.
        members = ", ".join(f"{json.dumps(name)}: {_dumps(value)}" for name, value in pairs)
        return ("{" + members + "}").encode("utf-8", "surrogatepass")
    body = _encode_pairs(
        [(name, value if isinstance(value, str) else json.dumps(value)) for name, value in pairs]
    )
    if splice is not None:
        body += b"&" + splice
    return body


SPLICES = st.one_of(
    st.none(), st.sampled_from([b"x=\xff", b"client_id=%C0%80", b"a=%ED%A0%80", b"%00=1", b"=&&="])
)

BODIES = st.one_of(
    st.just((None, b"")),
    PAIRS.map(lambda p: ("application/x-www-form-urlencoded", _encode_pairs(p))),
    JSON_VALUES.map(lambda v: ("application/json", json.dumps(v).encode("utf-8", "surrogatepass"))),
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=6).map(
        lambda v: ("application/json", json.dumps(v).encode("utf-8", "surrogatepass"))
    ),
    st.integers(min_value=100, max_value=200_000).map(lambda d: ("application/json", _deep(d))),
    st.integers(min_value=1, max_value=3).map(
        lambda n: ("application/json", json.dumps({"redirect_uris": ["https://a.example/"] * (50_000 * n)}).encode())
    ),
    st.integers(min_value=1, max_value=3).map(
        lambda n: ("application/x-www-form-urlencoded", b"token=" + b"a" * (400_000 * n))
    ),
    st.binary(max_size=200).map(lambda b: ("application/x-www-form-urlencoded", b)),
    st.binary(max_size=200).map(lambda b: ("application/json", b)),
    st.sampled_from([b"\xff\xfe", b"grant_type=\xff", b"a=1&a=2&a=3", b"{" * 5000, b"token=%00", b"&" * 5000]).map(
        lambda b: ("application/x-www-form-urlencoded", b)
    ),
    st.tuples(st.sampled_from(["text/plain", "multipart/form-data; boundary=x", "", "application/json; charset=latin-1", "application/x-www-form-urlencoded; charset=utf-8", "application/merge-patch+json"]), st.binary(max_size=100)),
)  # fmt: skip

AUTHORIZATION = st.one_of(
    st.none(),
    st.just(VALID_BASIC),
    st.sampled_from(
        [
            "Basic", "Basic !!!", "Basic " + "QQ==", "Basic Og==", "Basic AA==", "Bearer", "Bearer ",
            "Bearer mat_\x7f", "Bearer " + "a" * 5000, "Negotiate x", "basic YTpi", "Bearer a b",
            "Bearer \x01", "Basic " + base64.b64encode(b"a\x00b:c").decode(),
            "Basic " + base64.b64encode(b"a%00b:c").decode(), "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
            "Basic " + base64.b64encode(f"{PUBLIC_CLIENT_ID}:%ED%A0%80".encode()).decode(),
        ]
    ),
    st.just("Bearer " + ADMIN_TOKEN),
    HEADER_TEXT.map(lambda t: "Bearer " + t),
    HEADER_TEXT.map(lambda t: "Basic " + base64.b64encode(t.encode("utf-8", "surrogatepass")).decode()),
)  # fmt: skip

ODD_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"])


#: The routes with a template, named by the methods that read it (half the examples go there).
TEMPLATED_ROUTES = [(m, r) for m, r in ROUTES if r in TEMPLATES and m in ("GET", "POST")]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method, rule = draw(st.sampled_from(ROUTES) | st.sampled_from(TEMPLATED_ROUTES))
    if draw(st.integers(0, 9)) == 0:
        method = draw(ODD_METHODS)

    def fill(match: re.Match[str]) -> str:
        return quote(
            draw(NASTY_TEXT | st.sampled_from([PUBLIC_CLIENT_ID, "v3", USER_ID])),
            safe="",
            errors="surrogatepass",
        )

    path = _PLACEHOLDER.sub(fill, rule)
    query = draw(PAIRS)
    content_type, body = draw(BODIES)
    template = TEMPLATES.get(rule)
    if template is not None and draw(st.integers(0, 2)) > 0:
        kind, pairs = draw(plausible(*template))
        splice = draw(SPLICES)
        if kind == "query":
            query = []
            path += "?" + _encode_plausible("form", pairs, splice).decode("latin-1")
        else:
            content_type, body = _CONTENT_TYPES[kind], _encode_plausible(kind, pairs, splice)
    if query:
        path += ("&" if "?" in path else "?") + _encode_pairs(query).decode("ascii")
    headers: list[tuple[str, bytes]] = []
    if content_type is not None:
        headers.append(("Content-Type", content_type.encode("latin-1")))
    auth = draw(AUTHORIZATION)
    if auth is not None:
        headers.append(("Authorization", auth.encode("utf-8", "surrogatepass")))
    cookie = draw(st.sampled_from(["none", "nasty", "valid", "valid"]))
    if cookie == "nasty":
        headers.append(("Cookie", draw(HEADER_TEXT).encode("utf-8", "surrogatepass")))
    elif cookie == "valid":
        headers.append(("Cookie", VALID_COOKIES.encode()))
    for name in ("User-Agent", "X-Forwarded-For"):
        if draw(st.integers(0, 5)) == 0:
            headers.append(
                (
                    name,
                    draw(HEADER_TEXT | st.sampled_from(["-1", "1", "::1, 10.0.0.1", "999.1.1.1"])).encode(
                        "utf-8", "surrogatepass"
                    ),
                )
            )
    if draw(st.integers(0, 4)) == 0:
        headers.append(("Accept", b"text/html"))
    return {"method": method, "path": path, "content": body, "headers": headers}


# -- what must not happen --------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage()[:300])


@implementer(ILogObserver)
class _TwistedErrors:
    """Twisted's own error events (an unhandled error in a Deferred, a failure in a resource)."""

    def __init__(self, into: list[str]):
        self.into = into

    def __call__(self, event: LogEvent) -> None:
        if event.get("isError") or event.get("log_failure") is not None:
            self.into.append(str(event.get("log_format") or event.get("log_failure"))[:300])


class RouteFuzzTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"] = [{"name": name} for name in ALL_RESOURCES]
        config.setdefault("passwords", {})["enabled"] = True
        config["account"] = {"password_registration_enabled": True}
        # The two-factor pages answer 404 unless this is on: fuzz what they parse.
        config["experimental"] = {"mfa": {"enabled": True}}
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        use_threadless_password_manager(server, reactor)
        # The homeserver answers (is_localpart_available, provisioning) from a recording resource.
        use_recording_homeserver(self, reactor, server)
        factory = self.factory
        factory.client(id=PUBLIC_CLIENT_ID)
        factory.client(
            id=CONFIDENTIAL_CLIENT_ID,
            auth_method="client_secret_basic",
            secret=CLIENT_SECRET,
            grant_types=("client_credentials",),
        )
        user = factory.user(USERNAME)
        self.user_id = user.id
        admin_client = factory.client(
            grant_types=("client_credentials",), auth_method="client_secret_basic", secret="admin-secret"
        )
        _, access, _ = factory.oauth2_session(
            admin_client, user=None, scope="urn:mas:admin", ttl_ms=10**12, refresh=False
        )
        self.admin_token = access.access_token
        # A browser that opened the login page and signed in: its cookies carry the CSRF
        # token and the session, so that templated forms reach the handlers behind the check.
        page = self.make_request("GET", "/login")
        jar = dict(page.cookies)
        self.csrf = csrf_from(page)
        signed_in = self.make_request(
            "POST",
            "/login",
            form={"csrf": self.csrf, "username": USERNAME, "password": PASSWORD},
            cookies=jar,
        )
        assert signed_in.code in (302, 303), signed_in.body[:300]
        jar.update(signed_in.cookies)
        self.cookie_header = "; ".join(f"{k}={v}" for k, v in jar.items())

    def substitute(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request with the stand-ins replaced by what ``prepare`` made."""
        real = {CSRF: self.csrf, ADMIN_TOKEN: self.admin_token, USER_ID: self.user_id}
        path, content = request["path"], request["content"]
        for stand_in, value in real.items():
            path = path.replace(quote(stand_in, safe=""), quote(value, safe="")).replace(stand_in, value)
            content = content.replace(quote(stand_in, safe="").encode(), quote(value, safe="").encode())
            content = content.replace(stand_in.encode(), value.encode())
        headers = [
            (name, value.replace(ADMIN_TOKEN.encode(), self.admin_token.encode()))
            if name == "Authorization"
            else (name, self.cookie_header.encode())
            if value == VALID_COOKIES.encode()
            else (name, value)
            for name, value in request["headers"]
        ]
        return {**request, "path": path, "content": content, "headers": headers}

    def test_route_table_is_not_empty(self) -> None:
        self.assertGreater(len(ROUTES), 20, ROUTES)
        # Every template names a route that exists.
        self.assertLessEqual(set(TEMPLATES), {rule for _, rule in ROUTES})

    def test_generates_every_malformed_class(self) -> None:
        """The strategy reaches each class of input issue 11 names."""

        def body_json(r: dict[str, Any]) -> Any:
            try:
                return json.loads(r["content"])
            except (ValueError, RecursionError):
                return None

        def not_utf8(r: dict[str, Any]) -> bool:
            try:
                r["content"].decode("utf-8")
            except UnicodeDecodeError:
                return True
            return "%FF" in r["path"].upper()

        classes: dict[str, Callable[[dict[str, Any]], bool]] = {
            "NUL": lambda r: b"\x00" in r["content"] or b"%00" in r["content"] or b"\\u0000" in r["content"],
            "NUL in the query": lambda r: "%00" in r["path"],
            "lone surrogate": lambda r: b"\\ud800" in r["content"] or b"%ED%A0%80" in r["content"].upper(),
            "invalid UTF-8": not_utf8,
            "deep JSON": lambda r: r["content"].count(b"[") > 1000,
            "large body": lambda r: len(r["content"]) > 64 * 1024,
            "wrong JSON type": lambda r: isinstance(body_json(r), dict) and not isinstance(body_json(r).get("password", ""), str),
            "missing field": lambda r: "/login" in r["path"] and isinstance(body_json(r), dict) and "password" not in body_json(r),
            "repeated parameter": lambda r: r["content"].count(b"client_id=") > 1,
            "array parameter": lambda r: b"%5B%5D=" in r["content"] or "%5B%5D=" in r["path"],
            "broken Authorization": lambda r: any(k == "Authorization" and v.startswith(b"Basic !") for k, v in r["headers"]),
            "odd method": lambda r: r["method"] in ("TRACE", "FOO", "PUT", "PATCH", "DELETE"),
        }  # fmt: skip
        seen: set[str] = set()

        @settings(max_examples=4000, phases=[Phase.generate], database=None, derandomize=True)
        @given(requests())
        def sample(request: dict[str, Any]) -> None:
            seen.update(name for name, predicate in classes.items() if predicate(request))

        sample()
        self.assertEqual(sorted(set(classes) - seen), [], "classes never generated in 4 000 examples")

    def valid_request_works(self, after: Callable[[], str]) -> None:
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            form={"grant_type": "client_credentials"},
            headers=[("Authorization", VALID_BASIC)],
        )
        self.assertEqual(channel.code, 200, f"after {after()}: {channel.body[:300]!r}")

    @given(requests())
    def test_no_input_answers_5xx(self, request: dict[str, Any]) -> None:
        request = self.substitute(request)
        errors = _Errors()
        root = logging.getLogger()
        root.addHandler(errors)
        observer = _TwistedErrors(errors.records)
        globalLogPublisher.addObserver(observer)

        def summary() -> str:
            return f"{request['method']} {request['path'][:300]!r} {request['headers']!r} body {request['content'][:300]!r}"

        try:
            channel = self.make_request(**request)
        except AssertionError as e:
            # Twisted refused the request line itself (longer than its 16 KiB limit, say) and
            # closed the connection without a Request: what a client sees is that, or a 400.
            if "did not parse the request" not in str(e):
                raise
            self.assertNotIn("HTTP/1.1 5", str(e), summary())
            channel = None
        finally:
            root.removeHandler(errors)
            globalLogPublisher.removeObserver(observer)
        if channel is not None:
            self.assertLess(channel.code, 500, f"{summary()} -> {channel.code} {channel.body[:300]!r}")
        self.assertEqual(errors.records, [], f"{summary()} logged at ERROR")
        self.valid_request_works(summary)
