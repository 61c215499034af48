# SPDX-License-Identifier: AGPL-3.0-only
"""The checks of ``mas-cli doctor``: is the deployment wired together (MAS's
``crates/cli/src/commands/doctor.rs``; inventory §8; the seed's "Troubleshoot common issues").

Each check gives one :class:`CheckResult` (ok, warning or error) whose message says what was
seen and, when something is wrong, what to change and the page of MAS's documentation that
covers it. The checks, in order:

1. ``matrix.homeserver`` is a server name (Matrix spec, appendix "Server name").
2. ``http.issuer`` / ``http.public_base``: HTTPS (a warning, as MAS: some clients refuse plain
   HTTP), and ``public_base`` ending in ``/`` (paths are joined to it).
3. ``<public_base>.well-known/openid-configuration`` answers with our ``issuer``.
4. ``https://<server_name>/.well-known/matrix/client`` (the base can be overridden, for tests):
   its ``m.homeserver.base_url`` is where clients go; a failure is a warning, as in MAS.
5. ``<matrix.endpoint>/_matrix/client/versions`` answers 2xx; when it does not, checks 6 and 7
   are not run (as MAS).
6. ``/_matrix/client/v3/account/whoami`` with a made-up token answers 401 (503: the homeserver
   could not reach us; a 2xx or 3xx would mean a fake token was accepted).
7. ``/_synapse/mas/is_localpart_available`` with ``matrix.secret`` and no ``localpart``: 400 when
   the secret is accepted, 401/403 when it is not, 404 when the homeserver has no
   ``matrix_authentication_service`` section enabled. Skipped for ``synapse_legacy``.
8. The client API base (the well-known's, else ``matrix.endpoint``) serves
   ``auth_metadata`` (MSC2965, unstable and v1) naming our issuer (beyond MAS: the homeserver
   delegating to *this* service).
9. ``<client API base>/_matrix/client/v3/login`` lists ``m.login.sso`` with
   ``oauth_aware_preferred`` (or MSC3824's unstable name): the reverse proxy sends the
   compatibility API to us. MAS only warns here; we report an error, since legacy clients
   then cannot log in at all.
10. The email transport: SMTP connects, says EHLO and does STARTTLS/AUTH as configured
    without sending anything; sendmail's command exists and is executable; blackhole is ok.
11. The database schema is current (no pending migration, nothing newer than this code).

Unlike MAS (whose exit status is always 0), :func:`exit_code` is 1 when any check is an error.
The shared secret never appears in a message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import attr
import treq
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.web.client import Agent

from mas_twisted import urls

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig

#: MAS's documentation, where its doctor points.
DOCS_BASE = "https://element-hq.github.io/matrix-authentication-service"
DOCS_HOMESERVER = f"{DOCS_BASE}/setup/homeserver.html"
DOCS_REVERSE_PROXY = f"{DOCS_BASE}/setup/reverse-proxy.html"
DOCS_GENERAL = f"{DOCS_BASE}/setup/general.html"
DOCS_EMAIL = f"{DOCS_BASE}/reference/configuration.html#email"
DOCS_DATABASE = f"{DOCS_BASE}/setup/database.html"

OK = "ok"
WARNING = "warning"
ERROR = "error"
ICONS = {OK: "✅", WARNING: "⚠️", ERROR: "❌"}

#: Seconds for each HTTP request and for the SMTP exchange.
HTTP_TIMEOUT_S = 10.0
EMAIL_TIMEOUT_S = 10.0
#: A token no homeserver should accept.
BOGUS_TOKEN = "mas-doctor-this-token-is-not-valid"
#: The largest body read from any answer.
MAX_BODY = 256 * 1024

AUTH_METADATA_PATHS = (
    "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata",
    "/_matrix/client/v1/auth_metadata",
)

# Matrix spec, appendix "Server name": hostname (IPv4, [IPv6] or DNS name) and an optional port.
_DNS_NAME = re.compile(
    r"^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]{2,45}\]$")


@attr.s(frozen=True, slots=True, auto_attribs=True)
class CheckResult:
    """One line of the report."""

    name: str
    level: str
    message: str

    def line(self) -> str:
        return f"{ICONS[self.level]} {self.name}: {self.message}"


def exit_code(results: list[CheckResult]) -> int:
    """1 when any check failed, else 0."""
    return 1 if any(r.level == ERROR for r in results) else 0


def is_valid_server_name(name: str) -> bool:
    """Matrix spec, appendix "Server name": ``host[:port]``."""
    host, port = name, None
    if name.startswith("["):
        end = name.find("]")
        if end < 0:
            return False
        host, rest = name[: end + 1], name[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
        if not _IPV6.match(host):
            return False
    elif ":" in name:
        host, port = name.rsplit(":", 1)
    if port is not None and not (port.isdigit() and 1 <= len(port) <= 5 and 0 < int(port) < 65536):
        return False
    return host.startswith("[") or bool(_DNS_NAME.match(host))


@attr.s(slots=True, auto_attribs=True)
class _Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _why(e: BaseException) -> str:
    """A one-line reason for a failed request."""
    text = " ".join(str(e).split())
    for inner in getattr(e, "reasons", None) or []:  # ResponseFailed / ConnectingCancelledError
        value = getattr(inner, "value", inner)
        text = " ".join(str(value).split()) or type(value).__name__
    if isinstance(e, (defer.CancelledError, defer.TimeoutError)):
        return f"no answer within {HTTP_TIMEOUT_S:g} s"
    return text[:300] or type(e).__name__


class Doctor:
    """Runs the checks for one configuration.

    Args:
        config: the loaded configuration (the one the service runs with).
        reactor: where the requests and the SMTP probe run.
        well_known_base: where to fetch ``/.well-known/matrix/client`` from instead of
            ``https://<matrix.homeserver>`` (tests only: they have no certificate for a name).
        check_schema: checks the database schema; raises ``DatabaseError`` with the reason.
        report: called with each result as soon as it is known.
    """

    def __init__(
        self,
        config: RootConfig,
        reactor: Any,
        *,
        well_known_base: str | None = None,
        check_schema: Callable[[], None] | None = None,
        report: Callable[[CheckResult], None] | None = None,
    ):
        self._config = config
        self._reactor = reactor
        self._well_known_base = well_known_base
        self._check_schema = check_schema
        self._report = report
        self._client = HTTPClient(Agent(reactor, connectTimeout=HTTP_TIMEOUT_S))
        self.results: list[CheckResult] = []

    def _add(self, name: str, level: str, message: str) -> None:
        self._record(CheckResult(name, level, message))

    def _record(self, result: CheckResult) -> None:
        self.results.append(result)
        if self._report is not None:
            self._report(result)

    async def _get(self, url: str, token: str | None = None, *, redirects: bool = True) -> _Answer:
        headers: dict[bytes | str, bytes | str] = (
            {"Authorization": f"Bearer {token}"} if token is not None else {}
        )
        d = self._client.get(url, headers=headers, allow_redirects=redirects)
        d.addTimeout(HTTP_TIMEOUT_S, self._reactor)
        response = await d
        body_d = treq.content(response)
        body_d.addTimeout(HTTP_TIMEOUT_S, self._reactor)
        body = await body_d
        return _Answer(response.code, body[:MAX_BODY])

    async def run(self) -> list[CheckResult]:
        """Every check, in order; the results are also kept in :attr:`results`."""
        name_ok = self.check_server_name()
        self.check_issuer()
        await self.check_discovery()
        discovered = await self.check_well_known() if name_ok else None
        if await self.check_versions():
            await self.check_whoami()
            await self.check_shared_secret()
        client_base = discovered or self._config.matrix.endpoint
        for path in AUTH_METADATA_PATHS:
            await self.check_auth_metadata(client_base, path)
        await self.check_compat_login(client_base)
        await self.check_email()
        self.check_database()
        return self.results

    # -- 1, 2: the configuration itself ------------------------------------------------------
    def check_server_name(self) -> bool:
        name = self._config.matrix.homeserver
        if is_valid_server_name(name):
            self._add("homeserver name", OK, f"matrix.homeserver {name!r} is a valid server name")
            return True
        self._add(
            "homeserver name",
            ERROR,
            f"matrix.homeserver {name!r} is not a server name (host or host:port): set it to the "
            f"server_name of the homeserver's configuration; see {DOCS_HOMESERVER}",
        )
        return False

    def check_issuer(self) -> None:
        http = self._config.http
        problems = []
        if not http.issuer.startswith("https://"):
            problems.append(
                f"the issuer {http.issuer!r} (http.issuer, else http.public_base) is not an HTTPS URL, which some clients refuse"
            )
        if not http.public_base.startswith("https://"):
            problems.append(f"http.public_base {http.public_base!r} is not an HTTPS URL")
        if not urlsplit(http.public_base).path.endswith("/"):
            problems.append(
                f"http.public_base {http.public_base!r} should end with '/' (paths are joined to it)"
            )
        if problems:
            self._add("issuer", WARNING, "; ".join(problems) + f"; see {DOCS_GENERAL}")
        else:
            self._add(
                "issuer", OK, f"issuer {http.issuer!r} and public base {http.public_base!r} are HTTPS URLs"
            )

    # -- 3: our own discovery ------------------------------------------------------------------
    async def check_discovery(self) -> None:
        http = self._config.http
        url = urljoin(http.public_base, urls.OIDC_CONFIGURATION.lstrip("/"))
        fix = "make sure the service is running and http.public_base is the URL it is reached at"
        try:
            answer = await self._get(url)
        except Exception as e:
            self._add("discovery", ERROR, f"cannot fetch {url}: {_why(e)}; {fix}; see {DOCS_GENERAL}")
            return
        body = answer.json()
        if answer.status != 200 or not isinstance(body, dict):
            self._add(
                "discovery",
                ERROR,
                f"{url} answered {answer.status} without a JSON document; {fix}; see {DOCS_GENERAL}",
            )
            return
        if body.get("issuer") != http.issuer:
            self._add(
                "discovery",
                ERROR,
                f"{url} names the issuer {body.get('issuer')!r}, not {http.issuer!r}: another service answers "
                f"there, or it runs with another configuration; see {DOCS_GENERAL}",
            )
            return
        self._add("discovery", OK, f"{url} is served with the issuer {http.issuer!r}")

    # -- 4: the homeserver's client well-known -------------------------------------------------
    async def check_well_known(self) -> str | None:
        base = self._well_known_base or f"https://{self._config.matrix.homeserver}"
        url = _join(base, "/.well-known/matrix/client")
        fix = (
            f'serve {{"m.homeserver": {{"base_url": "https://…"}}}} there so that clients find the '
            f"homeserver; see {DOCS_HOMESERVER}"
        )
        try:
            answer = await self._get(url)
        except Exception as e:
            self._add("client well-known", WARNING, f"cannot fetch {url}: {_why(e)}; {fix}")
            return None
        body = answer.json()
        base_url = None
        if isinstance(body, dict) and isinstance(body.get("m.homeserver"), dict):
            base_url = body["m.homeserver"].get("base_url")
        if (
            answer.status != 200
            or not isinstance(base_url, str)
            or not base_url.startswith(("http://", "https://"))
        ):
            self._add(
                "client well-known",
                WARNING,
                f"{url} answered {answer.status} without an m.homeserver.base_url URL; {fix}",
            )
            return None
        self._add("client well-known", OK, f"{url} sends clients to {base_url}")
        return base_url

    # -- 5, 6, 7: the homeserver's API -----------------------------------------------------------
    def _matrix_fix(self) -> str:
        m = self._config.matrix
        return (
            f"matrix.endpoint ({m.endpoint}) must be the homeserver's client API as this service reaches it, "
            f"and matrix.homeserver ({m.homeserver}) its server_name; see {DOCS_HOMESERVER}"
        )

    async def check_versions(self) -> bool:
        url = _join(self._config.matrix.endpoint, "/_matrix/client/versions")
        try:
            answer = await self._get(url)
        except Exception as e:
            self._add(
                "homeserver", ERROR, f"cannot reach the homeserver at {url}: {_why(e)}; {self._matrix_fix()}"
            )
            return False
        if not 200 <= answer.status < 300:
            self._add(
                "homeserver",
                ERROR,
                f"{url} answered {answer.status}: is the homeserver running? {self._matrix_fix()}",
            )
            return False
        self._add("homeserver", OK, f"the homeserver answers at {url}")
        return True

    async def check_whoami(self) -> None:
        url = _join(self._config.matrix.endpoint, "/_matrix/client/v3/account/whoami")
        try:
            answer = await self._get(url, BOGUS_TOKEN)
        except Exception as e:
            self._add("token check", ERROR, f"cannot reach {url}: {_why(e)}")
            return
        if answer.status == 401:
            self._add("token check", OK, f"{url} refuses a made-up access token (401)")
        elif answer.status < 400:
            self._add(
                "token check",
                ERROR,
                f"{url} answered {answer.status} to a made-up access token: the homeserver may accept fake "
                f"tokens; check its matrix_authentication_service section; see {DOCS_HOMESERVER}",
            )
        elif answer.status == 503:
            self._add(
                "token check",
                ERROR,
                f"{url} answered 503: the homeserver could not reach this service to check the token; make "
                f"sure the service runs and the homeserver's matrix_authentication_service.endpoint reaches "
                f"it (the homeserver's log says more); see {DOCS_HOMESERVER}",
            )
        else:
            self._add(
                "token check", WARNING, f"{url} answered {answer.status} to a made-up token, expected 401"
            )

    async def check_shared_secret(self) -> None:
        m = self._config.matrix
        if m.uses_legacy_api:
            self._add("shared secret", OK, "skipped: matrix.kind synapse_legacy has no /_synapse/mas API")
            return
        url = _join(m.endpoint, "/_synapse/mas/is_localpart_available")
        try:
            # No `localpart` on purpose: 400 once the secret is accepted. Never redirected,
            # so that the secret goes nowhere else.
            answer = await self._get(url, m.secret, redirects=False)
        except Exception as e:
            self._add("shared secret", ERROR, f"cannot reach {url}: {_why(e)}; {self._matrix_fix()}")
            return
        if answer.status == 400:
            self._add("shared secret", OK, f"the homeserver accepts matrix.secret at {url}")
        elif answer.status in (401, 403):
            self._add(
                "shared secret",
                ERROR,
                f"{url} refused matrix.secret ({answer.status}): it must be exactly the secret of the "
                f"homeserver's matrix_authentication_service section; see {DOCS_HOMESERVER}",
            )
        elif answer.status == 404:
            self._add(
                "shared secret",
                ERROR,
                f"{url} is not served (404): enable the homeserver's matrix_authentication_service section "
                f"(enabled: true, endpoint: {self._config.http.issuer}, secret: matrix.secret's value), "
                f"or check matrix.kind; see {DOCS_HOMESERVER}",
            )
        else:
            self._add(
                "shared secret",
                ERROR,
                f"{url} answered {answer.status}, expected 400; is the homeserver running? {self._matrix_fix()}",
            )

    # -- 8: the homeserver delegating to us ------------------------------------------------------
    async def check_auth_metadata(self, client_base: str, path: str) -> None:
        url = _join(client_base, path)
        issuer = self._config.http.issuer
        fix = (
            f"the homeserver must delegate to this service: matrix_authentication_service.enabled: true "
            f"with its endpoint reaching this service; see {DOCS_HOMESERVER}"
        )
        try:
            answer = await self._get(url)
        except Exception as e:
            self._add("auth metadata", ERROR, f"cannot fetch {url}: {_why(e)}; {fix}")
            return
        body = answer.json()
        found = body.get("issuer") if isinstance(body, dict) else None
        if answer.status != 200 or found is None:
            self._add("auth metadata", ERROR, f"{url} answered {answer.status} without an issuer; {fix}")
        elif found != issuer:
            self._add(
                "auth metadata", ERROR, f"{url} names the issuer {found!r}, not ours ({issuer!r}); {fix}"
            )
        else:
            self._add("auth metadata", OK, f"{url} names our issuer")

    # -- 9: the compatibility API through the reverse proxy ---------------------------------------
    async def check_compat_login(self, client_base: str) -> None:
        url = _join(client_base, "/_matrix/client/v3/login")
        fix = (
            "route /_matrix/client/*/login, /logout and /refresh to this service in the reverse proxy, "
            f"not to the homeserver; see {DOCS_REVERSE_PROXY}"
        )
        try:
            answer = await self._get(url)
        except Exception as e:
            self._add(
                "compat login", ERROR, f"cannot reach {url}: {_why(e)}; legacy clients cannot log in; {fix}"
            )
            return
        body = answer.json()
        flows = body.get("flows") if isinstance(body, dict) else None
        ours = any(
            isinstance(flow, dict)
            and flow.get("type") == "m.login.sso"
            and (
                flow.get("oauth_aware_preferred") is True
                or flow.get("org.matrix.msc3824.delegated_oidc_compatibility") is True
            )
            for flow in (flows if isinstance(flows, list) else [])
        )
        if 200 <= answer.status < 300 and ours:
            self._add("compat login", OK, f"{url} is answered by this service")
        elif 200 <= answer.status < 300:
            self._add(
                "compat login",
                ERROR,
                f"{url} is answered by something else (no m.login.sso flow with oauth_aware_preferred); {fix}",
            )
        else:
            self._add(
                "compat login", ERROR, f"{url} answered {answer.status}; legacy clients cannot log in; {fix}"
            )

    # -- 10: email ----------------------------------------------------------------------------
    async def check_email(self) -> None:
        self._record(await probe_email(self._config, self._reactor))

    # -- 11: the database ----------------------------------------------------------------------
    def check_database(self) -> None:
        from mas_twisted.api.errors import DatabaseError

        if self._check_schema is None:
            return
        target = self._config.database.describe_target()
        try:
            self._check_schema()
        except DatabaseError as e:
            self._add("database", ERROR, f"{e.msg}; see {DOCS_DATABASE}")
            return
        self._add("database", OK, f"the schema of the {target} is up to date")


async def probe_email(config: RootConfig, reactor: Any, timeout: float = EMAIL_TIMEOUT_S) -> CheckResult:
    """The email transport's line: SMTP connects, EHLO, STARTTLS and AUTH as configured, then
    QUIT without sending; sendmail's command is an executable file; blackhole is ok."""
    from mas_twisted.config.email import TRANSPORT_SENDMAIL, TRANSPORT_SMTP
    from mas_twisted.email.transport import DeliveryError, make_transport

    email = config.email
    if email.transport == TRANSPORT_SENDMAIL:
        command = email.command or "sendmail"
        found = shutil.which(command)
        if found is None or not os.access(found, os.X_OK):
            return CheckResult(
                "email",
                ERROR,
                f"the sendmail command {command!r} is not an executable in PATH: sending email will fail; "
                f"set email.command; see {DOCS_EMAIL}",
            )
        return CheckResult("email", OK, f"sendmail command {found}")
    if email.transport != TRANSPORT_SMTP:
        return CheckResult("email", OK, "email.transport is blackhole: no email is sent")
    transport = make_transport(email, reactor)
    try:
        await transport.probe(timeout)
    except DeliveryError as e:
        return CheckResult(
            "email", ERROR, f"cannot use the SMTP relay, sending email will fail: {e}; see {DOCS_EMAIL}"
        )
    return CheckResult(
        "email", OK, f"the SMTP relay {transport.describe()} accepts a connection as configured"
    )
