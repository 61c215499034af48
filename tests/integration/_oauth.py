# SPDX-License-Identifier: AGPL-3.0-only
"""The OAuth flows against a real ``twistd mas``: the ``service`` fixture (one running service
per module and engine, with a user alice; it yields ``{"base", "port", "metadata", "secret",
"proc"}``), and the client side: a person with a browser (:class:`Browser`, following the
pages' forms), dynamic registration, introspection with the homeserver's secret, and the
login-and-consent dance."""

from __future__ import annotations

import contextlib
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.integration._harness import PostgresDatabase, TwistdProcess, base_config, free_port, venv_script
from tests.integration._harness import request as http_request

PASSWORD = "correct horse battery staple 42"
CLIENT_URI = "https://client.example.test/"
REDIRECT_URI = "https://client.example.test/callback"


class Forms(HTMLParser):
    """Every <form> of a page: action, and the named inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "fields": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value") or ""))


class Browser:
    """A person with a browser: a cookie jar, following the pages' forms, never JavaScript."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.http.get(urljoin(self.base, url), allow_redirects=False, timeout=30)

    def submit(
        self,
        page: requests.Response,
        values: dict[str, str],
        *,
        button: tuple[str, str] | None = None,
        form_index: int | None = None,
    ) -> requests.Response:
        parser = Forms()
        parser.feed(page.text)
        candidates = [f for f in parser.forms if "csrf" in f["fields"]]
        if button is not None:
            candidates = [f for f in candidates if button in f["buttons"]] or candidates
        assert candidates, page.text
        form = candidates[form_index or 0]
        data = dict(form["fields"])
        data.update(values)
        if button is not None:
            data[button[0]] = button[1]
        action = urljoin(page.url, form["action"] or page.url)
        return self.http.post(action, data=data, allow_redirects=False, timeout=30)

    def follow(self, response: requests.Response, until: str | None = None) -> requests.Response:
        """Follow redirects inside the service; stop at the client's redirect URI."""
        for _ in range(10):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = urljoin(response.url, response.headers["location"])
            if until and location.startswith(until):
                return response
            response = self.http.get(location, allow_redirects=False, timeout=30)
        raise AssertionError("redirect loop")


def register(service, **metadata) -> dict:
    body = {"client_uri": CLIENT_URI, "redirect_uris": [REDIRECT_URI], "client_name": "Integration test"}
    body.update(metadata)
    resp = requests.post(service["metadata"]["registration_endpoint"], json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def introspect(service, token: str, **headers) -> dict:
    resp = requests.post(
        service["metadata"]["introspection_endpoint"],
        data={"token": token},
        headers={"Authorization": f"Bearer {service['secret']}", **headers},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def login_and_consent(service, browser: Browser, authorization_url: str) -> str:
    """Drive /authorize → /login → /consent with the real forms; return the callback URL."""
    resp = browser.follow(browser.get(authorization_url))
    assert resp.status_code == 200 and "password" in resp.text, resp.text
    resp = browser.follow(browser.submit(resp, {"username": "alice", "password": PASSWORD}))
    assert resp.status_code == 200, resp.text
    assert "/consent/" in resp.url, resp.url
    callback = browser.follow(browser.submit(resp, {}, button=("action", "consent")), until=REDIRECT_URI)
    assert callback.status_code in (302, 303), callback.text
    location = callback.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    # MAS ends query-mode callbacks with an empty fragment ("#") so that a browser drops any
    # fragment it had; the client's server receives the URL without it, as here.
    return location.split("#", 1)[0]


@contextlib.contextmanager
def running_service(
    tmp: Path,
    engine: str,
    resources: tuple[str, ...] = ("discovery", "human", "oauth", "health"),
    extra_config: dict[str, Any] | None = None,
):
    """``twistd mas`` on ``engine`` serving ``resources`` on one listener, with ``alice``
    registered (password :data:`PASSWORD`); yields base, port, metadata, secret and the process.
    ``extra_config``: top-level sections added to (replacing those of) the configuration."""
    db = PostgresDatabase() if engine == "postgres" else None
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    config = base_config(tmp, database_uri=db.uri if db else None)
    config["http"] = {
        "public_base": base,
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": n} for n in resources],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ],
    }
    config["matrix"]["homeserver"] = "example.test"
    # Every test logs in from 127.0.0.1; MAS's default per-IP login limit is 3 a minute.
    config["rate_limiting"] = {"login": {"per_ip": {"burst": 1000, "per_second": 100}}}
    config.update(extra_config or {})
    proc = TwistdProcess(tmp, config).start()
    try:
        proc.wait_until(lambda: http_request("GET", "/health", port=port))
        out = subprocess.run(
            [
                venv_script("mas-cli"),
                "manage",
                "register-user",
                "alice",
                "-p",
                PASSWORD,
                "-y",
                # No homeserver runs beside this test.
                "--skip-homeserver-check",
                "-c",
                str(proc.config_path),
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        metadata = requests.get(base + ".well-known/openid-configuration", timeout=10).json()
        yield {
            "base": base,
            "port": port,
            "metadata": metadata,
            "secret": config["matrix"]["secret"],
            "proc": proc,
        }
    finally:
        proc.stop()
        if db:
            db.drop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request, tmp_path_factory):
    with running_service(tmp_path_factory.mktemp(f"oauth-{request.param}"), request.param) as running:
        yield running
