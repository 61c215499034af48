# SPDX-License-Identifier: AGPL-3.0-only
"""The parsing boundary (``mas_twisted/rest/_parse.py``): its functions, and what each protocol
answers when it refuses a request (issue 11, item 1).

The per-protocol tests send what used to reach the database or blow the parser's stack (a NUL
in a client id, a user name or a path segment; JSON nested 100 000 deep; bodies over the
limit) through the real ``Site``, on whichever engine the suite runs on: each answer is the
protocol's own error, nothing is logged at ERROR, and nothing was written.
"""

from __future__ import annotations

import ast
import base64
import json
import logging
import unittest
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request

from mas_twisted.rest import _parse
from mas_twisted.rest._parse import (
    DEFAULT_BODY_LIMIT,
    MAX_JSON_DEPTH,
    ParseError,
    Part,
    Reason,
    json_depth,
    parse_json,
    parse_pairs,
    read_body,
)
from mas_twisted.rest.oauth2.registration import BODY_LIMIT as REGISTRATION_LIMIT
from mas_twisted.rest.registry import RESOURCE_CLASSES
from tests.server import FakeChannel
from tests.unittest import MasTestCase

REST = Path(_parse.__file__).resolve().parent


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


class ParsePairsTestCase(unittest.TestCase):
    def refused(self, raw: bytes, **kwargs: Any) -> ParseError:
        with self.assertRaises(ParseError) as caught:
            parse_pairs(raw, Part.FORM, **kwargs)
        return caught.exception

    def test_valid_forms_decode_as_before(self) -> None:
        for raw in (
            b"a=1&b=%C3%A9+x&c",
            b"&&a==b=&%zz=%4",
            b"a%20b=c%2Bd&a=2",
            "x=é".encode(),
            b"",
            b"redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1",
        ):
            self.assertEqual(
                parse_pairs(raw, Part.FORM), parse_qsl(raw.decode(), keep_blank_values=True), raw
            )

    def test_refused(self) -> None:
        cases = [
            (b"a=%00", Reason.NUL),
            (b"a=x%00y", Reason.NUL),
            (b"%00=1", Reason.NUL),
            (b"a=%ff", Reason.NOT_UTF8),
            (b"a=\xff", Reason.NOT_UTF8),
            (b"a=%ED%A0%80", Reason.NOT_UTF8),  # a UTF-8-encoded lone surrogate (CESU-8)
            (b"a=%C0%80", Reason.NOT_UTF8),  # an overlong NUL
            (b"a=1&" * 1000, Reason.TOO_MANY),
        ]
        for raw, reason in cases:
            error = self.refused(raw)
            self.assertIs(error.reason, reason, raw)
            self.assertEqual(error.code, 400)
            self.assertIs(error.part, Part.FORM)

    def test_single_parameters(self) -> None:
        error = self.refused(b"client_id=a&x=1&client_id=a", single={"client_id"})
        self.assertIs(error.reason, Reason.DUPLICATE)
        self.assertEqual(error.message, "Parameter client_id is repeated")
        # Others may repeat.
        self.assertEqual(
            parse_pairs(b"x=1&x=2&client_id=a", Part.QUERY, single={"client_id"}),
            [("x", "1"), ("x", "2"), ("client_id", "a")],
        )

    def test_messages_do_not_repeat_client_text(self) -> None:
        error = self.refused(b"%3Cscript%3E=%00")
        self.assertEqual(error.message, "NUL character in a parameter")


class ParseJsonTestCase(unittest.TestCase):
    def refused(self, raw: bytes) -> ParseError:
        with self.assertRaises(ParseError) as caught:
            parse_json(raw)
        self.assertIs(caught.exception.part, Part.JSON)
        return caught.exception

    def test_valid_documents(self) -> None:
        for doc in (
            b'{"a": [1, 2.5, "x", null, true, {"b": "\\u00e9\\ud83d\\ude00"}]}',
            b"[]",
            b'"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',
            b"-1e300",
            '"é"'.encode(),
        ):
            self.assertEqual(parse_json(doc), json.loads(doc), doc)

    def test_depth(self) -> None:
        self.assertEqual(parse_json(deep(MAX_JSON_DEPTH)), json.loads(deep(MAX_JSON_DEPTH)))
        self.assertIs(self.refused(deep(MAX_JSON_DEPTH + 1)).reason, Reason.TOO_DEEP)
        # Far beyond the interpreter's recursion limit: refused before parsing.
        self.assertIs(self.refused(deep(100_000)).reason, Reason.TOO_DEEP)
        self.assertIs(self.refused(b"[" * 100_000).reason, Reason.TOO_DEEP)
        self.assertIs(self.refused(b'{"a":' * 50_000).reason, Reason.TOO_DEEP)
        # Brackets in strings, escaped quotes included, do not count.
        doc = b'["\\"[[[[' + b"[" * 100 + b'", {"k": "]]]"}]'
        self.assertEqual(json_depth(doc), 2)
        self.assertEqual(parse_json(doc), json.loads(doc))

    def test_refused(self) -> None:
        cases = [
            (b'{"a": "\\u0000"}', Reason.NUL),
            (b'{"a\\u0000": 1}', Reason.NUL),
            (b'[[["x\\u0000y"]]]', Reason.NUL),
            (b'["\\ud800"]', Reason.SURROGATE),
            (b'{"\\udfff": 1}', Reason.SURROGATE),
            (b'{"a": 1, "a": 2}', Reason.DUPLICATE),
            (b'[{"a": {"b": 1, "b": 1}}]', Reason.DUPLICATE),
            (b"NaN", Reason.NOT_JSON),
            (b"[Infinity]", Reason.NOT_JSON),
            (b"-Infinity", Reason.NOT_JSON),
            (b"1e400", Reason.NOT_JSON),
            (b"{not json", Reason.NOT_JSON),
            (b"", Reason.NOT_JSON),
            (b"1" * 5000, Reason.NOT_JSON),  # beyond Python's integer digit limit
            (b'"\xff"', Reason.NOT_UTF8),
            (b'"\xed\xa0\x80"', Reason.NOT_UTF8),
            (b'\xef\xbb\xbf{"a": 1}', Reason.NOT_JSON),  # a byte-order mark
        ]
        for raw, reason in cases:
            self.assertIs(self.refused(raw).reason, reason, raw)

    def test_duplicate_names_the_key(self) -> None:
        error = self.refused(b'{"client_uri": 1, "client_uri": 2}')
        self.assertEqual((error.name, error.message), ("client_uri", "duplicate field `client_uri`"))


class ReadBodyTestCase(unittest.TestCase):
    def request(self, body: bytes, content_length: bytes | None = None) -> Request:
        channel = HTTPChannel()
        channel.makeConnection(StringTransport())
        request = Request(channel)
        request.content = BytesIO(body)
        if content_length is not None:
            request.requestHeaders.setRawHeaders(b"Content-Length", [content_length])
        return request

    def test_limits(self) -> None:
        self.assertEqual(read_body(self.request(b"x" * 100), limit=100), b"x" * 100)
        for request in (
            self.request(b"x" * 101),  # a chunked body: no Content-Length
            self.request(b"x" * 101, b"101"),
            self.request(b"", b"1000000"),  # announced, not (yet) received
        ):
            with self.assertRaises(ParseError) as caught:
                read_body(request, limit=100)
            self.assertEqual((caught.exception.reason, caught.exception.code), (Reason.TOO_LARGE, 413))


class OnlyTheBoundaryReadsRequestsTestCase(unittest.TestCase):
    """No resource reads the body, the query or ``request.args`` itself."""

    def test_no_reader_outside_the_boundary(self) -> None:
        """In ``rest/`` and in the admin API (``api/``), which has resources of its own."""
        found = []
        for path in sorted([*REST.rglob("*.py"), *(REST.parent / "api").rglob("*.py")]):
            if path.name == "_parse.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in ("args", "content")
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "request"
                ):
                    found.append(f"{path.relative_to(REST.parent)}:{node.lineno}: request.{node.attr}")
                if isinstance(node, ast.Name) and node.id in ("parse_qs", "parse_qsl"):
                    found.append(f"{path.relative_to(REST.parent)}:{node.lineno}: {node.id}")
        self.assertEqual(found, [])

    def test_every_placeholder_refuses_nul(self) -> None:
        for classes in RESOURCE_CLASSES.values():
            for cls in classes:
                app = getattr(cls, "app", None)
                for rule in app.url_map.iter_rules() if app is not None else ():
                    for name, converter in rule._converters.items():
                        with self.assertRaises(Exception, msg=f"{cls.__name__} {rule.rule} <{name}>"):
                            converter.to_python("a\x00b")


# -- each protocol's answer ---------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


#: What the refused requests might have written.
TABLES = ("oauth2_clients", "oauth2_authorization_grants", "users", "compat_sessions", "user_sessions")


class ProtocolAnswersTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config["http"]["listeners"][0]["resources"] = [
            {"name": "discovery"},
            {"name": "oauth"},
            {"name": "compat"},
            {"name": "human"},
            {"name": "health"},
        ]
        config.setdefault("passwords", {})["enabled"] = True
        return config

    def prepare(self, reactor: Any, clock: Any, server: Any) -> None:
        self.errors = _ErrorLog()
        logging.getLogger().addHandler(self.errors)
        self.addCleanup(logging.getLogger().removeHandler, self.errors)
        self.before = self.counts()
        # Cleanups run last in, first out: this one before the database's removal.
        self.addCleanup(self.check_unharmed)

    def counts(self) -> dict[str, int]:
        out = {}
        for table in TABLES:
            rows = self.get_success(self.db_pool.execute("count", f"SELECT COUNT(*) FROM {table}"))
            out[table] = int(rows[0][0])
        return out

    def check_unharmed(self) -> None:
        """Nothing logged at ERROR (no traceback), nothing written, and the service answers."""
        self.assertEqual([r.getMessage() for r in self.errors.records], [])
        self.assertEqual(self.counts(), self.before)
        self.assertEqual(self.make_request("GET", "/health").code, 200)

    def send(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
             headers: tuple[tuple[str, str | bytes], ...] = ()) -> FakeChannel:  # fmt: skip
        all_headers = list(headers) + ([("Content-Type", content_type)] if content_type else [])
        return self.make_request(method, path, content=body, headers=all_headers)

    # -- OAuth 2.0 -------------------------------------------------------------------------------
    def assert_invalid_request(self, channel: FakeChannel, code: int = 400) -> None:
        self.assertEqual(channel.code, code, channel.body)
        self.assertEqual(channel.json_body["error"], "invalid_request", channel.body)

    def test_token(self) -> None:
        form = "application/x-www-form-urlencoded"
        for body in (
            b"grant_type=authorization_code&code=x&client_id=%00",
            b"grant_type=refresh_token&refresh_token=mar_%00&client_id=abc",
            b"grant_type=authorization_code&code=x&client_id=%ED%A0%80",
            b"grant_type=authorization_code&code=x&client_id=%ff",
            b"grant_type=authorization_code&grant_type=refresh_token&client_id=abc",
        ):
            self.assert_invalid_request(self.send("POST", "/oauth2/token", body, form))
        # A NUL in the client id of a Basic header, after its base64 and its percent-encoding.
        for credentials in (b"a\x00b:secret", b"a%00b:secret"):
            basic = ("Authorization", b"Basic " + base64.b64encode(credentials))
            channel = self.send("POST", "/oauth2/token", b"grant_type=client_credentials", form, (basic,))
            self.assert_invalid_request(channel)
        # Control characters in the header: Twisted refuses a NUL itself (400, no body), the
        # boundary the others.
        channel = self.send(
            "POST", "/oauth2/token", b"grant_type=x", form, (("Authorization", b"Bearer a\x00b"),)
        )
        self.assertEqual(channel.code, 400)
        channel = self.send(
            "POST", "/oauth2/token", b"grant_type=x", form, (("Authorization", b"Bearer a\x01b"),)
        )
        self.assert_invalid_request(channel)
        big = b"grant_type=client_credentials&scope=" + b"a" * DEFAULT_BODY_LIMIT
        self.assert_invalid_request(self.send("POST", "/oauth2/token", big, form), 413)

    def test_introspection_and_revocation(self) -> None:
        form = "application/x-www-form-urlencoded"
        for path in ("/oauth2/introspect", "/oauth2/revoke"):
            self.assert_invalid_request(self.send("POST", path, b"token=%00&client_id=abc", form))
            self.assert_invalid_request(self.send("POST", path, b"token=" + b"a" * 70_000, form), 413)

    def test_registration(self) -> None:
        def register(body: bytes) -> FakeChannel:
            return self.send("POST", "/oauth2/registration", body, "application/json")

        valid = {"client_uri": "https://app.example.com/", "redirect_uris": ["https://app.example.com/cb"]}
        for doc in (
            deep(100_000),
            b'{"redirect_uris": ["https://app.example.com/cb"], "client_uri": "https://app.example.com/"'
            + b', "x": [' * 40,
            json.dumps({**valid, "client_name": "a\x00b"}).encode(),
            json.dumps({**valid, "client_name": "\ud800"}).encode(),  # the escape \\ud800
            b'{"client_name": "\xed\xa0\x80"}',  # the surrogate in CESU-8
            b'{"client_uri": NaN}',
        ):
            self.assert_invalid_request(register(doc))
        big = json.dumps({**valid, "redirect_uris": ["https://app.example.com/cb"] * 50_000}).encode()
        self.assertGreater(len(big), REGISTRATION_LIMIT)
        self.assert_invalid_request(register(big), 413)
        # Larger than the default limit, within registration's own: registered.
        within = json.dumps({**valid, "contacts": ["a" * 1000 + "@example.com"] * 100}).encode()
        self.assertGreater(len(within), DEFAULT_BODY_LIMIT)
        self.assertEqual(register(within).code, 201)
        self.before["oauth2_clients"] += 1

    def test_userinfo(self) -> None:
        channel = self.send("GET", "/oauth2/userinfo?access_token=%00")
        self.assertEqual(
            (channel.code, channel.header("WWW-Authenticate")), (400, 'Bearer error="invalid_request"')
        )
        channel = self.send("GET", "/oauth2/userinfo", headers=(("Authorization", b"Bearer a\x01b"),))
        self.assertEqual(channel.code, 400)

    # -- HTML pages -------------------------------------------------------------------------------
    def assert_error_page(self, channel: FakeChannel, code: int = 400) -> None:
        self.assertEqual(channel.code, code, channel.body[:500])
        self.assertTrue(
            channel.header("Content-Type").startswith("text/html"), channel.header("Content-Type")
        )
        self.assertNotIn(b"Traceback", channel.body)

    def test_authorize(self) -> None:
        for query in (
            "client_id=%00&response_type=code&scope=openid",
            "client_id=abc%00&response_type=code&scope=openid&redirect_uri=https://a.example/",
            "client_id=%ff&response_type=code&scope=openid",
            "client_id=a&client_id=b&response_type=code&scope=openid",
            "client_id=a&response_type=code&scope=openid&state=1&state=2",
        ):
            self.assert_error_page(self.send("GET", f"/authorize?{query}"))

    def test_human_forms(self) -> None:
        form = "application/x-www-form-urlencoded"
        for body in (b"csrf=x&username=al%00ice&password=p", b"csrf=x&username=%ff&password=p"):
            self.assert_error_page(self.send("POST", "/login", body, form))
        self.assert_error_page(self.send("POST", "/login", b"username=" + b"a" * 70_000, form), 413)
        self.assert_error_page(self.send("GET", "/login?kind=%00"))

    def test_path_placeholders(self) -> None:
        for path in ("/consent/%00", "/device/a%00b", "/complete-compat-sso/%00"):
            self.assert_error_page(self.send("GET", path, headers=(("Accept", "text/html"),)), 404)

    # -- Matrix ----------------------------------------------------------------------------------
    def assert_matrix(self, channel: FakeChannel, code: int, errcode: str) -> None:
        self.assertEqual((channel.code, channel.json_body.get("errcode")), (code, errcode), channel.body)

    def test_compat_login(self) -> None:
        def login(body: bytes) -> FakeChannel:
            return self.send("POST", "/_matrix/client/v3/login", body, "application/json")

        password = {"type": "m.login.password", "identifier": {"type": "m.id.user"}, "password": "p"}
        nul_user = {**password, "identifier": {"type": "m.id.user", "user": "al\x00ice"}}
        self.assert_matrix(login(json.dumps(nul_user).encode()), 400, "M_INVALID_PARAM")
        self.assert_matrix(login(json.dumps({**password, "user": "\x00"}).encode()), 400, "M_INVALID_PARAM")
        self.assert_matrix(login(deep(30_000)), 400, "M_NOT_JSON")
        self.assert_matrix(login(b'{"type": "m.login.password", "x": "\\ud800"}'), 400, "M_NOT_JSON")
        self.assert_matrix(login(b'{"type": "m.login.password", "type": "m.login.token"}'), 400, "M_BAD_JSON")
        self.assert_matrix(login(b'{"password": "' + b"a" * 70_000 + b'"}'), 413, "M_TOO_LARGE")

    def test_compat_refresh_and_logout(self) -> None:
        def refresh(body: bytes) -> FakeChannel:
            return self.send("POST", "/_matrix/client/v3/refresh", body, "application/json")

        self.assertEqual(refresh(deep(30_000)).code, 400)
        self.assertEqual(refresh(b'{"refresh_token": "\\ud800"}').code, 400)
        self.assertEqual(refresh(b'{"refresh_token": "mar_\\u0000"}').code, 422)
        self.assertEqual(refresh(b'{"refresh_token": "' + b"a" * 70_000 + b'"}').code, 413)
        channel = self.send("POST", "/_matrix/client/v3/logout/all", deep(30_000), "application/json")
        self.assert_matrix(channel, 400, "M_NOT_JSON")
        channel = self.send("GET", "/_matrix/client/v3/login/sso/redirect?redirectUrl=%00")
        self.assert_matrix(channel, 400, "M_INVALID_PARAM")

    def test_discovery(self) -> None:
        channel = self.send("GET", "/.well-known/webfinger?resource=acct:%00@example.com")
        self.assertEqual(channel.code, 400)
        self.assertIn(b"Failed to deserialize query string", channel.body)
