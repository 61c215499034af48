# SPDX-License-Identifier: AGPL-3.0-only
"""A real browser (Debian's chromium, driven by Playwright) through the real pages of a real
``twistd mas``, on SQLite and PostgreSQL: a client's authorization request with PKCE
(RFC 6749 §4.1, RFC 7636) lands on the login page, the user signs in and allows the client on
the consent page, and the browser ends at the client's redirect URI with a code and the
state (RFC 6749 §4.1.2), which the token endpoint then exchanges (§4.1.3). Done with
JavaScript on a desktop window and again without JavaScript on a phone-sized one; a wrong
password shows its error on the login page.

Screenshots of every step are saved under ``build/screenshots/<engine>/``.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (Debian's
``chromium`` package, which ``scripts/setup.sh test`` installs when run as root).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.integration._oauth import PASSWORD, running_service

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CLIENT_NAME = "Browser Test Client"
CLIENT_URI = "https://client.example.test/"
REDIRECT_URI = "https://client.example.test/callback"
API_SCOPE = "urn:matrix:org.matrix.msc2967.client:api:*"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
INVALID_CREDENTIALS = "That username and password do not match an account."


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"browser-{request.param}")
    resources = ("discovery", "human", "oauth", "assets", "health")
    with running_service(tmp, request.param, resources) as running:
        client = requests.post(
            running["metadata"]["registration_endpoint"],
            json={
                "client_name": CLIENT_NAME,
                "client_uri": CLIENT_URI,
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "application_type": "web",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
            timeout=10,
        )
        assert client.status_code == 201, client.text
        yield {
            "engine": request.param,
            "base": running["base"],
            "metadata": running["metadata"],
            "secret": running["secret"],
            "client_id": client.json()["client_id"],
        }


class Client:
    """The relying party: builds the authorization URL and plays the redirect URI's host."""

    def __init__(self, service: dict):
        self.service = service
        self.verifier = secrets.token_urlsafe(48)
        self.state = secrets.token_urlsafe(12)
        self.callbacks: list[str] = []
        #: The bodies of the POSTs to the redirect URI (``response_mode=form_post``).
        self.posts: list[str] = []

    def authorization_url(self, **extra: str) -> str:
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        )
        return (
            self.service["metadata"]["authorization_endpoint"]
            + "?"
            + urlencode(
                {
                    "response_type": "code",
                    "client_id": self.service["client_id"],
                    "redirect_uri": REDIRECT_URI,
                    "scope": f"openid {API_SCOPE}",
                    "state": self.state,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    **extra,
                }
            )
        )

    def serve(self, context) -> None:
        """client.example.test does not exist: answer its requests inside the browser."""

        def handle(route) -> None:
            self.callbacks.append(route.request.url)
            if route.request.method == "POST":
                self.posts.append(route.request.post_data or "")
            route.fulfill(
                status=200,
                content_type="text/html",
                body="<!DOCTYPE html><meta name=viewport content='width=device-width'>"
                "<title>Client</title><h1>Back at the client</h1>",
            )

        context.route("https://client.example.test/**", handle)

    def exchange(self, callback: str) -> dict:
        code = parse_qs(urlsplit(callback).query)["code"][0]
        resp = requests.post(
            self.service["metadata"]["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": self.service["client_id"],
                "code_verifier": self.verifier,
            },
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def screenshot(page, service: dict, name: str) -> Path:
    """A full-page PNG under build/screenshots/<engine>/; checked to be a real, non-empty PNG."""
    path = SCREENSHOTS / service["engine"] / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.is_file() and path.stat().st_size > 1000, path
    width, height = png_size(path)
    # A full-page capture is as wide as the page: wider than the window means the page
    # overflows sideways (a phone user would have to scroll horizontally).
    assert width == page.viewport_size["width"] and height >= page.viewport_size["height"], (
        path,
        width,
        height,
    )
    return path


def watch_csp(page) -> list[str]:
    """The console messages of ``page`` about Content-Security-Policy violations (chromium
    logs each blocked script, style, image or form submission): there must be none."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


@pytest.mark.parametrize("mode", ["desktop", "phone-no-js"])
def test_login_and_consent(chromium, service, mode: str) -> None:
    phone = mode == "phone-no-js"
    context = chromium.new_context(
        viewport=PHONE if phone else DESKTOP, java_script_enabled=not phone, is_mobile=phone, has_touch=phone
    )
    try:
        client = Client(service)
        client.serve(context)
        page = context.new_page()
        violations = watch_csp(page)

        page.goto(client.authorization_url())
        assert urlsplit(page.url).path == "/login", page.url
        assert page.locator("h1").inner_text() == "Sign in"
        assert CLIENT_NAME in page.locator("main").inner_text()
        # The stylesheet applied: the primary button is a 2.75rem touch target spanning the card.
        button = page.get_by_role("button", name="Continue")
        box = button.bounding_box()
        card = page.locator("main").bounding_box()
        assert box["height"] >= 44 and box["width"] >= 0.8 * card["width"], (box, card)
        screenshot(page, service, f"{mode}-1-login")

        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        button.click()
        page.wait_for_url("**/consent/**")

        main = page.locator("main").inner_text()
        assert f"Allow {CLIENT_NAME} to use your account?" in main
        assert "@alice:example.test" in main
        assert "See your profile: your username and Matrix ID" in main
        assert "Read your messages, rooms and account data" in main
        assert "client.example.test" in main
        screenshot(page, service, f"{mode}-2-consent")

        page.get_by_role("button", name="Allow").click()
        page.wait_for_url("https://client.example.test/**")
        assert page.locator("h1").inner_text() == "Back at the client"
        screenshot(page, service, f"{mode}-3-client")
        assert violations == []
    finally:
        context.close()

    assert len(client.callbacks) == 1, client.callbacks
    callback = client.callbacks[0]
    assert callback.split("?")[0] == REDIRECT_URI
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [client.state] and len(query["code"]) == 1, callback

    token = client.exchange(callback)
    assert token["access_token"].startswith("mat_") and token["refresh_token"].startswith("mar_")
    assert set(token["scope"].split()) == {"openid", API_SCOPE}
    seen = requests.post(
        service["metadata"]["introspection_endpoint"],
        data={"token": token["access_token"]},
        headers={"Authorization": f"Bearer {service['secret']}"},
        timeout=10,
    ).json()
    assert (
        seen["active"] is True and seen["username"] == "alice" and seen["client_id"] == service["client_id"]
    )


def test_form_post_response_mode(chromium, service) -> None:
    """``response_mode=form_post``: the page's script (a static file, under the CSP's
    ``script-src 'self'``) posts the code to the client, whose origin ``form-action`` allows."""
    context = chromium.new_context(viewport=DESKTOP)
    try:
        client = Client(service)
        client.serve(context)
        page = context.new_page()
        violations = watch_csp(page)
        page.goto(client.authorization_url(response_mode="form_post"))
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/consent/**")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url("https://client.example.test/**")
        assert page.locator("h1").inner_text() == "Back at the client"
        assert violations == []
    finally:
        context.close()
    assert client.callbacks == [REDIRECT_URI]
    (posted,) = client.posts
    fields = parse_qs(posted)
    assert fields["state"] == [client.state] and len(fields["code"]) == 1, posted


def test_wrong_password(chromium, service) -> None:
    context = chromium.new_context(viewport=DESKTOP)
    try:
        client = Client(service)
        client.serve(context)
        page = context.new_page()
        violations = watch_csp(page)
        page.goto(client.authorization_url())
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD + " but wrong")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()

        assert urlsplit(page.url).path == "/login", page.url
        alert = page.get_by_role("alert")
        assert alert.inner_text().strip() == INVALID_CREDENTIALS
        assert alert.is_visible()
        # The username is kept, the password is not sent back.
        assert page.get_by_label("Username").input_value() == "alice"
        assert page.get_by_label("Password").input_value() == ""
        screenshot(page, service, "desktop-wrong-password")

        # The same page still signs in with the right password and goes on to consent.
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/consent/**")
        assert violations == []
    finally:
        context.close()
    assert client.callbacks == []
