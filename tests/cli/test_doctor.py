# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli doctor``'s checks (:mod:`mas_twisted.handlers.doctor`), each against a small
twisted.web server on trial's reactor standing in for the service, the homeserver and the
reverse proxy (the real Synapse is in ``tests/integration/test_doctor.py``), a real SMTP
server (Twisted's) and a real database on the test's engine for the schema check. The command
itself runs as a subprocess, as an operator runs it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from twisted.internet import reactor, utils
from twisted.trial import unittest
from twisted.web import resource, server

from mas_twisted.config.root import RootConfig
from mas_twisted.handlers.doctor import BOGUS_TOKEN, ERROR, OK, WARNING, CheckResult, Doctor, exit_code
from mas_twisted.storage.prepare_database import check_schema, prepare_database
from tests.email._helpers import SmtpTestServer, free_port, make_certificate, settle
from tests.utils import EmptyDatabase, temp_dir

SECRET = "the-shared-secret"


class FakeDeployment(resource.Resource):
    """Answers every path the doctor asks about as a healthy deployment does; a test changes
    :attr:`routes` (``path -> (status, JSON body)``) to break one piece."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.base = ""
        self.routes: dict[str, tuple[int, Any]] = {}
        self.authorizations: dict[str, str | None] = {}

    def healthy(self) -> None:
        issuer = self.base + "/"
        metadata = (200, {"issuer": issuer, "authorization_endpoint": issuer + "authorize"})
        self.routes = {
            "/.well-known/openid-configuration": (200, {"issuer": issuer}),
            "/.well-known/matrix/client": (200, {"m.homeserver": {"base_url": issuer}}),
            "/_matrix/client/versions": (200, {"versions": ["v1.11"]}),
            "/_matrix/client/v3/account/whoami": (401, {"errcode": "M_UNKNOWN_TOKEN"}),
            "/_synapse/mas/is_localpart_available": (400, {"errcode": "M_MISSING_PARAM"}),
            "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata": metadata,
            "/_matrix/client/v1/auth_metadata": metadata,
            "/_matrix/client/v3/login": (
                200,
                {
                    "flows": [
                        {"type": "m.login.password"},
                        {"type": "m.login.sso", "oauth_aware_preferred": True},
                    ]
                },
            ),
        }

    def render(self, request: Any) -> bytes:
        path = request.path.decode()
        auth = request.getHeader("authorization")
        self.authorizations[path] = auth
        if path == "/_synapse/mas/is_localpart_available" and auth != f"Bearer {SECRET}":
            status, body = 403, {"errcode": "M_FORBIDDEN"}
        else:
            status, body = self.routes.get(path, (404, {"errcode": "M_UNRECOGNIZED"}))
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(body).encode() if not isinstance(body, bytes) else body


class DoctorTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(temp_dir(self))
        self.fake = FakeDeployment()
        self.port = reactor.listenTCP(0, server.Site(self.fake), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(self.port.stopListening)
        self.fake.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.fake.healthy()

    def write_config(self, **sections: Any) -> str:
        data: dict[str, Any] = {
            "http": {"public_base": self.fake.base + "/"},
            "matrix": {"homeserver": "localhost", "secret": SECRET, "endpoint": self.fake.base + "/"},
            "secrets": {"encryption": "0123456789abcdef" * 4},
        }
        data.update(sections)
        path = self.tmp / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    async def run_doctor(self, **sections: Any) -> list[CheckResult]:
        config = RootConfig.load([self.write_config(**sections)])
        results = await Doctor(config, reactor, well_known_base=self.fake.base).run()
        await settle()
        return results

    def by_name(self, results: list[CheckResult], name: str) -> list[CheckResult]:
        found = [r for r in results if r.name == name]
        self.assertTrue(found, [r.line() for r in results])
        return found

    def assert_one(self, results: list[CheckResult], name: str, level: str, *texts: str) -> CheckResult:
        [result] = self.by_name(results, name)
        self.assertEqual(result.level, level, result.line())
        for text in texts:
            self.assertIn(text, result.message)
        return result

    # -- healthy --------------------------------------------------------------------------------
    async def test_healthy_deployment_every_check_ok(self) -> None:
        results = await self.run_doctor()
        names = [r.name for r in results]
        self.assertEqual(
            names,
            [
                "homeserver name",
                "issuer",
                "discovery",
                "client well-known",
                "homeserver",
                "token check",
                "shared secret",
                "auth metadata",
                "auth metadata",
                "compat login",
                "email",
            ],
        )
        # Plain HTTP in the test: the issuer line is the only warning.
        self.assertEqual(
            [r.line() for r in results if r.level != OK], [r.line() for r in results if r.name == "issuer"]
        )
        self.assertEqual(exit_code(results), 0)
        # The whoami check used the made-up token, the secret went only to /_synapse/mas.
        self.assertEqual(
            self.fake.authorizations["/_matrix/client/v3/account/whoami"], f"Bearer {BOGUS_TOKEN}"
        )
        self.assertEqual(
            [path for path, auth in self.fake.authorizations.items() if auth and SECRET in auth],
            ["/_synapse/mas/is_localpart_available"],
        )
        self.assertFalse(any(SECRET in r.message for r in results))

    # -- the configuration ---------------------------------------------------------------------
    async def test_invalid_server_name(self) -> None:
        results = await self.run_doctor(
            matrix={"homeserver": "not a name", "secret": SECRET, "endpoint": self.fake.base + "/"}
        )
        self.assert_one(results, "homeserver name", ERROR, "'not a name'", "server_name")
        self.assertEqual(exit_code(results), 1)

    async def test_issuer_other_than_public_base(self) -> None:
        # The issuer differs from public_base: discovery then names the other one.
        results = await self.run_doctor(
            http={"public_base": self.fake.base + "/", "issuer": "https://auth.example.com/"}
        )
        self.assert_one(results, "issuer", WARNING, "http.public_base")
        self.assert_one(results, "discovery", ERROR, "'https://auth.example.com/'")

    async def test_public_base_without_trailing_slash(self) -> None:
        results = await self.run_doctor(http={"public_base": self.fake.base + "/auth"})
        self.assert_one(results, "issuer", WARNING, "should end with '/'")

    # -- discovery -----------------------------------------------------------------------------
    async def test_discovery_with_another_issuer(self) -> None:
        self.fake.routes["/.well-known/openid-configuration"] = (200, {"issuer": "https://other.example/"})
        results = await self.run_doctor()
        self.assert_one(results, "discovery", ERROR, "'https://other.example/'")

    async def test_discovery_not_served(self) -> None:
        del self.fake.routes["/.well-known/openid-configuration"]
        results = await self.run_doctor()
        self.assert_one(results, "discovery", ERROR, "answered 404")

    async def test_public_base_unreachable(self) -> None:
        closed = f"http://127.0.0.1:{free_port()}/"
        results = await self.run_doctor(http={"public_base": closed})
        self.assert_one(results, "discovery", ERROR, "cannot fetch", "onnection refused")

    # -- the well-known --------------------------------------------------------------------------
    async def test_well_known_missing_is_a_warning_and_endpoint_is_used(self) -> None:
        del self.fake.routes["/.well-known/matrix/client"]
        results = await self.run_doctor()
        self.assert_one(results, "client well-known", WARNING, "answered 404", "m.homeserver")
        self.assertEqual(exit_code(results), 0)
        self.assert_one(results, "compat login", OK, self.fake.base + "/_matrix/client/v3/login")

    async def test_well_known_points_elsewhere(self) -> None:
        other = FakeDeployment()
        port = reactor.listenTCP(0, server.Site(other), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        other_base = f"http://127.0.0.1:{port.getHost().port}/"
        # A homeserver that does not delegate: no auth_metadata, its own login flows.
        other.routes = {"/_matrix/client/v3/login": (200, {"flows": [{"type": "m.login.password"}]})}
        self.fake.routes["/.well-known/matrix/client"] = (200, {"m.homeserver": {"base_url": other_base}})
        results = await self.run_doctor()
        self.assert_one(results, "client well-known", OK, other_base)
        for result in self.by_name(results, "auth metadata"):
            self.assertEqual(result.level, ERROR)
            self.assertIn(other_base.rstrip("/"), result.message)
            self.assertIn("answered 404", result.message)
        self.assert_one(results, "compat login", ERROR, "answered by something else", "reverse proxy")
        self.assertEqual(exit_code(results), 1)

    # -- the homeserver --------------------------------------------------------------------------
    async def test_homeserver_unreachable(self) -> None:
        closed = f"http://127.0.0.1:{free_port()}/"
        results = await self.run_doctor(
            matrix={"homeserver": "localhost", "secret": SECRET, "endpoint": closed}
        )
        self.assert_one(results, "homeserver", ERROR, "cannot reach the homeserver", "matrix.endpoint")
        # The checks that need the homeserver's API are not run.
        self.assertEqual(self.by_name(results, "homeserver")[0].level, ERROR)
        self.assertNotIn("shared secret", [r.name for r in results])
        self.assertNotIn("token check", [r.name for r in results])
        self.assertEqual(exit_code(results), 1)

    async def test_homeserver_answers_500(self) -> None:
        self.fake.routes["/_matrix/client/versions"] = (502, {})
        results = await self.run_doctor()
        self.assert_one(results, "homeserver", ERROR, "answered 502")

    async def test_wrong_secret(self) -> None:
        results = await self.run_doctor(
            matrix={"homeserver": "localhost", "secret": "not-the-secret", "endpoint": self.fake.base + "/"}
        )
        line = self.assert_one(results, "shared secret", ERROR, "refused matrix.secret (403)").line()
        self.assertNotIn("not-the-secret", line)
        self.assertEqual(exit_code(results), 1)

    async def test_homeserver_without_mas_integration(self) -> None:
        del self.fake.routes["/_synapse/mas/is_localpart_available"]
        # The fake refuses the secret first; a Synapse without the section answers 404.
        self.fake.render = _answer_404_for_mas(self.fake)  # type: ignore[method-assign]
        results = await self.run_doctor()
        self.assert_one(results, "shared secret", ERROR, "not served (404)", "matrix_authentication_service")

    async def test_whoami_accepting_a_fake_token(self) -> None:
        self.fake.routes["/_matrix/client/v3/account/whoami"] = (200, {"user_id": "@x:localhost"})
        results = await self.run_doctor()
        self.assert_one(results, "token check", ERROR, "answered 200", "fake tokens")

    async def test_whoami_503_homeserver_cannot_reach_us(self) -> None:
        self.fake.routes["/_matrix/client/v3/account/whoami"] = (503, {"errcode": "M_UNKNOWN"})
        results = await self.run_doctor()
        self.assert_one(results, "token check", ERROR, "answered 503", "could not reach this service")

    async def test_legacy_kind_skips_the_secret_check(self) -> None:
        results = await self.run_doctor(
            matrix={
                "kind": "synapse_legacy",
                "homeserver": "localhost",
                "secret": "nope",
                "endpoint": self.fake.base + "/",
            }
        )
        self.assert_one(results, "shared secret", OK, "skipped")

    # -- auth metadata and the compat login ------------------------------------------------------
    async def test_auth_metadata_naming_another_issuer(self) -> None:
        self.fake.routes["/_matrix/client/v1/auth_metadata"] = (200, {"issuer": "https://other.example/"})
        results = await self.run_doctor()
        unstable, v1 = self.by_name(results, "auth metadata")
        self.assertEqual(unstable.level, OK, unstable.line())
        self.assertEqual(v1.level, ERROR)
        self.assertIn("'https://other.example/'", v1.message)

    async def test_compat_login_answered_by_the_homeserver(self) -> None:
        self.fake.routes["/_matrix/client/v3/login"] = (
            200,
            {"flows": [{"type": "m.login.password"}, {"type": "m.login.sso"}]},
        )
        results = await self.run_doctor()
        self.assert_one(results, "compat login", ERROR, "answered by something else", "reverse-proxy.html")
        self.assertEqual(exit_code(results), 1)

    async def test_compat_login_unstable_flag_accepted(self) -> None:
        self.fake.routes["/_matrix/client/v3/login"] = (
            200,
            {"flows": [{"type": "m.login.sso", "org.matrix.msc3824.delegated_oidc_compatibility": True}]},
        )
        results = await self.run_doctor()
        self.assert_one(results, "compat login", OK)

    async def test_compat_login_not_json(self) -> None:
        self.fake.routes["/_matrix/client/v3/login"] = (502, b"<html>bad gateway</html>")
        results = await self.run_doctor()
        self.assert_one(results, "compat login", ERROR, "answered 502")

    # -- email ----------------------------------------------------------------------------------
    async def test_smtp_down(self) -> None:
        port = free_port()
        results = await self.run_doctor(
            email={"transport": "smtp", "mode": "plain", "hostname": "localhost", "port": port}
        )
        self.assert_one(results, "email", ERROR, f"localhost:{port}", "connection refused")
        self.assertEqual(exit_code(results), 1)

    async def test_smtp_up_with_starttls_and_auth(self) -> None:
        certificate = make_certificate()
        smtp = SmtpTestServer("starttls", users={"mas": "relay-pw"}, certificate=certificate).start()
        self.addCleanup(smtp.stop)
        os.environ["SSL_CERT_FILE"] = certificate.write_ca(self.tmp)
        self.addCleanup(os.environ.pop, "SSL_CERT_FILE", None)
        email = {
            "transport": "smtp",
            "mode": "starttls",
            "hostname": "localhost",
            "port": smtp.port,
            "username": "mas",
            "password": "relay-pw",
        }
        results = await self.run_doctor(email=email)
        self.assert_one(results, "email", OK, f"localhost:{smtp.port}")
        self.assertEqual(smtp.messages, [])
        results = await self.run_doctor(email={**email, "password": "wrong"})
        line = self.assert_one(results, "email", ERROR).line()
        self.assertNotIn("wrong", line.replace("wrong password", ""))

    async def test_sendmail_command(self) -> None:
        missing = await self.run_doctor(email={"transport": "sendmail", "command": "/nonexistent/sendmail"})
        self.assert_one(missing, "email", ERROR, "'/nonexistent/sendmail'", "email.command")
        not_executable = self.tmp / "sendmail"
        not_executable.write_text("#!/bin/sh\n")
        results = await self.run_doctor(email={"transport": "sendmail", "command": str(not_executable)})
        self.assert_one(results, "email", ERROR, "not an executable")
        not_executable.chmod(0o755)
        results = await self.run_doctor(email={"transport": "sendmail", "command": str(not_executable)})
        self.assert_one(results, "email", OK, str(not_executable))

    # -- the database ----------------------------------------------------------------------------
    async def test_schema_check_on_this_engine(self) -> None:
        db = EmptyDatabase(str(self.tmp / "db"))
        self.addCleanup(db.cleanup)
        config = RootConfig.load([self.write_config(database=db.config_section)])
        results = await Doctor(config, reactor, check_schema=lambda: check_schema(config.database)).run()
        self.assert_one(results, "database", ERROR, "no schema yet", "mas-cli database migrate")
        prepare_database(config.database)
        results = await Doctor(config, reactor, check_schema=lambda: check_schema(config.database)).run()
        self.assert_one(results, "database", OK, "up to date")

    # -- the command ---------------------------------------------------------------------------
    async def mas_cli_doctor(self, **sections: Any) -> tuple[int, str, str]:
        config = self.write_config(**sections)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAS_")}
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable,
            ["-m", "mas_twisted.cli.main", "doctor", "-c", config, "--well-known-base", self.fake.base],
            env=environ,
            path=str(self.tmp),
        )
        await settle()
        self.assertNotIn(b"Traceback", err)
        return code, out.decode(), err.decode()

    async def test_command_exit_status(self) -> None:
        db = EmptyDatabase(str(self.tmp / "db"))
        self.addCleanup(db.cleanup)
        prepare_database(RootConfig.load([self.write_config(database=db.config_section)]).database)
        code, out, err = await self.mas_cli_doctor(database=db.config_section)
        self.assertEqual(code, 0, out + err)
        self.assertIn("✅ shared secret:", out)
        self.assertIn("✅ database:", out)
        self.assertIn("no problem found", out)
        code, out, err = await self.mas_cli_doctor(
            database=db.config_section,
            matrix={"homeserver": "localhost", "secret": "wrong-one", "endpoint": self.fake.base + "/"},
        )
        self.assertEqual(code, 1, out + err)
        self.assertIn("❌ shared secret:", out)
        self.assertIn("1 check(s) failed", err)
        self.assertNotIn("wrong-one", out + err)


def _answer_404_for_mas(fake: FakeDeployment) -> Any:
    original = FakeDeployment.render

    def render(request: Any) -> bytes:
        if request.path == b"/_synapse/mas/is_localpart_available":
            request.setResponseCode(404)
            return b'{"errcode": "M_UNRECOGNIZED"}'
        return original(fake, request)

    return render
