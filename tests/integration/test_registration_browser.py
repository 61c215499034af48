# SPDX-License-Identifier: AGPL-3.0-only
"""Registration in a real browser (Debian's chromium through Playwright) against a real
``twistd mas`` and a real Synapse, on SQLite and PostgreSQL, with JavaScript on a desktop
window and without it on a phone-sized one: a client's ``prompt=create`` authorization request
lands on the registration form; a weak password and a taken username are refused with their
messages and nothing is created; then the form, the emailed code (read from our database: the
mail goes to the ``blackhole`` transport here), a wrong code refused, the display name, the
consent page and back at the client with a code; the user is on Synapse with that display
name. Screenshots of each step go to ``build/screenshots/register-<engine>/``.

The ``chromium`` fixture is ``conftest.py``'s (Debian's chromium, ``_browser.py``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests

from tests.integration._harness import eventually, query
from tests.integration._synapse import SynapseServer, mas_with_synapse

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CLIENT_NAME = "Registration Test Client"
REDIRECT_URI = "https://client.example.test/callback"
API_SCOPE = "urn:matrix:org.matrix.msc2967.client:api:*"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp(f"registration-browser-{request.param}")
    extra = {"account": {"password_registration_enabled": True}}
    resources = ("discovery", "human", "oauth", "assets", "health")
    with mas_with_synapse(tmp, request.param, resources=resources, extra_config=extra) as (
        synapse,
        _proc,
        config,
    ):
        base = synapse.mas_endpoint
        metadata = requests.get(base + ".well-known/openid-configuration", timeout=10).json()
        client = requests.post(
            metadata["registration_endpoint"],
            json={
                "client_name": CLIENT_NAME,
                "client_uri": "https://client.example.test/",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "application_type": "web",
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            },
            timeout=10,
        )
        assert client.status_code == 201, client.text
        yield {
            "engine": request.param,
            "synapse": synapse,
            "database": config["database"]["uri"],
            "metadata": metadata,
            "client_id": client.json()["client_id"],
        }


def authorization_url(stack: dict[str, Any], state: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return (
        stack["metadata"]["authorization_endpoint"]
        + "?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": stack["client_id"],
                "redirect_uri": REDIRECT_URI,
                "scope": f"openid {API_SCOPE}",
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "prompt": "create",
            }
        )
    )


def screenshot(page: Any, stack: dict[str, Any], name: str) -> None:
    path = SCREENSHOTS / f"register-{stack['engine']}" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, path
    (width,) = struct.unpack(">I", data[16:20])
    # Never wider than the window: a phone user never scrolls sideways.
    assert width == page.viewport_size["width"], (path, width)


def fill_form(page: Any, username: str, email: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm the password").fill(password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("mode", ["desktop", "phone-no-js"])
def test_register_from_a_client(chromium: Any, stack: dict[str, Any], mode: str) -> None:
    phone = mode == "phone-no-js"
    username = f"reg{mode.split('-')[0]}"
    synapse: SynapseServer = stack["synapse"]
    database = stack["database"]
    context = chromium.new_context(
        viewport=PHONE if phone else DESKTOP, java_script_enabled=not phone, is_mobile=phone, has_touch=phone
    )
    callbacks: list[str] = []

    def handle(route: Any) -> None:
        callbacks.append(route.request.url)
        route.fulfill(
            status=200, content_type="text/html", body="<!DOCTYPE html><title>Client</title><h1>Back</h1>"
        )

    context.route("https://client.example.test/**", handle)
    try:
        page = context.new_page()
        state = secrets.token_urlsafe(8)
        page.goto(authorization_url(stack, state))
        assert urlsplit(page.url).path == "/register/password", page.url
        assert CLIENT_NAME in page.locator("main").inner_text()
        screenshot(page, stack, f"{mode}-1-form")

        before = query(database, "SELECT COUNT(*) FROM user_registrations")
        fill_form(page, username, f"{username}@example.org", "password")
        assert "This password is too weak." in page.locator("main").inner_text()
        assert page.get_by_label("Username").input_value() == username
        screenshot(page, stack, f"{mode}-2-weak-password")
        fill_form(page, username, f"{username}@example.org", PASSWORD)
        assert "/verify-email" in page.url, page.url
        assert query(database, "SELECT COUNT(*) FROM user_registrations")[0][0] == before[0][0] + 1
        screenshot(page, stack, f"{mode}-3-verify-email")

        ((code,),) = query(
            database,
            "SELECT c.code FROM user_email_authentication_codes c JOIN user_email_authentications a"
            " ON a.user_email_authentication_id = c.user_email_authentication_id"
            f" WHERE a.email = '{username}@example.org'",
        )
        page.get_by_label("6-digit code").fill("000000" if code != "000000" else "111111")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()
        assert "This value is not valid." in page.locator("main").inner_text()
        page.get_by_label("6-digit code").fill(code)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/display-name")
        screenshot(page, stack, f"{mode}-4-display-name")

        page.get_by_label("Display name").fill(f"Reg {mode}")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/consent/**")
        assert f"@{username}:{synapse.server_name}" in page.locator("main").inner_text()
        screenshot(page, stack, f"{mode}-5-consent")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url("https://client.example.test/**")
    finally:
        context.close()

    (callback,) = callbacks
    assert parse_qs(urlsplit(callback).query)["state"] == [state], callback
    user = eventually(
        lambda: _synapse_user(synapse, username),
        what=f"{username} on Synapse",
    )
    assert user["display_name"] == f"Reg {mode}", user


def test_taken_username_in_the_browser(chromium: Any, stack: dict[str, Any]) -> None:
    """A name the first test registered (it runs first in this module) is refused on the form."""
    context = chromium.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(stack["metadata"]["issuer"] + "register/password")
        before = query(stack["database"], "SELECT COUNT(*) FROM user_registrations")
        fill_form(page, "regdesktop", "someone@example.org", PASSWORD)
        assert urlsplit(page.url).path == "/register/password", page.url
        assert "This value is already in use." in page.locator("main").inner_text()
        assert query(stack["database"], "SELECT COUNT(*) FROM user_registrations") == before
        screenshot(page, stack, "desktop-taken-username")
    finally:
        context.close()


def _synapse_user(synapse: SynapseServer, localpart: str) -> Any:
    resp = synapse.request(
        "GET", f"_synapse/mas/query_user?localpart={quote(localpart)}", token=synapse.secret
    )
    return resp.json() if resp.status == 200 else None
