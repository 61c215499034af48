# SPDX-License-Identifier: AGPL-3.0-only
"""The account pages (issue 13) in a real browser (Debian's chromium through Playwright)
against a real ``twistd mas`` (with its worker) and a real Synapse, on SQLite and PostgreSQL,
with JavaScript on a desktop window and without it on a phone-sized one.

A user registered with ``mas-cli manage register-user`` logs in once with the legacy API
(a compat session) and once through OAuth 2.0 (a device-scoped session); both work on Synapse.
Then, in the browser: the MSC4191 ``sessions_list`` action goes through ``/login`` and lands
on the sessions list, which shows both device ids; ending the compat device (the
``session_end`` action's confirmation) makes its token inactive at introspection at once and
the device leaves Synapse; a display name change reaches Synapse's profile; a wrong current
password is refused, then the change is made and the old password is refused at the legacy
login while the new one works; deactivation kills every token and Synapse reports the user
deactivated. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.integration._harness import eventually, mas_cli
from tests.integration._oauth import REDIRECT_URI, Browser, register
from tests.integration._synapse import SynapseServer, mas_with_synapse

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
API_SCOPE = "urn:matrix:client:api:*"
PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "an entirely different long passphrase"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp(f"account-pages-{request.param}")
    resources = ("discovery", "human", "oauth", "compat", "assets", "health")
    with mas_with_synapse(tmp, request.param, resources=resources) as (synapse, proc, config):
        base = synapse.mas_endpoint
        yield {
            "engine": request.param,
            "tmp": tmp,
            "base": base,
            "synapse": synapse,
            "proc": proc,
            "secret": config["matrix"]["secret"],
            "metadata": requests.get(base + ".well-known/openid-configuration", timeout=10).json(),
        }


def screenshot(page: Any, tmp: Path, name: str) -> None:
    path = tmp / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, path
    (width,) = struct.unpack(">I", data[16:20])
    assert width == page.viewport_size["width"], (path, width)


def synapse_user(synapse: SynapseServer, localpart: str) -> Any:
    resp = synapse.request(
        "GET", f"_synapse/mas/query_user?localpart={quote(localpart)}", token=synapse.secret
    )
    return resp.json() if resp.status == 200 else None


def compat_login(stack: dict[str, Any], username: str, password: str, device_id: str) -> requests.Response:
    return requests.post(
        stack["base"] + "_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": username},
            "password": password,
            "device_id": device_id,
        },
        timeout=30,
    )


def oauth_login(stack: dict[str, Any], username: str, device_id: str) -> dict[str, Any]:
    """An authorization code login with PKCE through the real forms; the token response."""
    md = stack["metadata"]
    info = register(
        stack,
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        client_name="Account Test App",
    )
    client = OAuth2Session(
        info["client_id"],
        info["client_secret"],
        scope=f"openid {API_SCOPE} urn:matrix:client:device:{device_id}",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = uuid.uuid4().hex * 2
    url, _state = client.create_authorization_url(md["authorization_endpoint"], code_verifier=verifier)
    browser = Browser(stack["base"])
    page = browser.follow(browser.get(url))
    page = browser.follow(browser.submit(page, {"username": username, "password": PASSWORD}))
    assert "/consent/" in page.url, (page.url, page.text)
    callback = browser.follow(browser.submit(page, {}, button=("action", "consent")), until=REDIRECT_URI)
    location = callback.headers["location"]
    token: dict[str, Any] = client.fetch_token(
        md["token_endpoint"], authorization_response=location.split("#", 1)[0], code_verifier=verifier
    )
    return token


def active(stack: dict[str, Any], token: str) -> bool:
    resp = requests.post(
        stack["metadata"]["introspection_endpoint"],
        data={"token": token},
        headers={"Authorization": f"Bearer {stack['secret']}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["active"])


def main_text(page: Any) -> str:
    return str(page.locator("main").inner_text())


@pytest.mark.parametrize("mode", ["desktop", "phone-no-js"])
def test_account_pages(chromium: Any, stack: dict[str, Any], mode: str, tmp_path: Path) -> None:
    phone = mode == "phone-no-js"
    username = f"acct{mode.split('-')[0]}"
    compat_device = f"COMPAT{mode.split('-')[0].upper()}"
    oauth_device = f"OAUTH{mode.split('-')[0].upper()}"
    synapse: SynapseServer = stack["synapse"]
    base = stack["base"]
    out = mas_cli(
        stack["tmp"] / "mas",
        "manage",
        "register-user",
        "--yes",
        username,
        "-p",
        PASSWORD,
        "-d",
        "Before",
        "-c",
        str(stack["proc"].config_path),
    )
    assert out.returncode == 0, (out.stdout, out.stderr)
    eventually(lambda: synapse_user(synapse, username), what=f"{username} on Synapse")

    # Two app sessions, both usable on Synapse.
    login = compat_login(stack, username, PASSWORD, compat_device)
    assert login.status_code == 200, login.text
    compat_token = login.json()["access_token"]
    oauth_token = oauth_login(stack, username, oauth_device)["access_token"]
    for token in (compat_token, oauth_token):
        assert synapse.whoami(token).status == 200
    assert {compat_device, oauth_device} <= set(synapse.devices(username))

    context = chromium.new_context(
        viewport=PHONE if phone else DESKTOP, java_script_enabled=not phone, is_mobile=phone, has_touch=phone
    )
    try:
        page = context.new_page()
        # A client's "Manage devices" (MSC4191) goes through the login page and back.
        page.goto(base + "account/?action=org.matrix.sessions_list")
        assert urlsplit(page.url).path == "/login", page.url
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/account/sessions")
        text = main_text(page)
        assert compat_device in text and oauth_device in text, text
        assert "Account Test App" in text and "Legacy login" in text, text
        screenshot(page, tmp_path, f"{mode}-1-sessions")

        # End the compat device from the session_end action's confirmation.
        page.goto(base + f"account/?action=org.matrix.session_end&device_id={compat_device}")
        assert urlsplit(page.url).path == f"/account/devices/{compat_device}", page.url
        assert "out of your account?" in main_text(page)
        screenshot(page, tmp_path, f"{mode}-2-end-device")
        page.get_by_role("button", name="Sign out this device").click()
        page.wait_for_url("**/account/sessions")
        assert not active(stack, compat_token)
        assert active(stack, oauth_token)
        assert compat_device not in main_text(page)
        eventually(
            lambda: (
                compat_device not in synapse.devices(username) and oauth_device in synapse.devices(username)
            ),
            what=f"{compat_device} removed from Synapse",
        )

        # Display name.
        page.goto(base + "account/?action=org.matrix.profile")
        assert "Before" in main_text(page)
        page.get_by_label("Display name").fill(f"After {mode}")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**/account/?saved=1")
        screenshot(page, tmp_path, f"{mode}-3-profile")
        profile = synapse.profile(username)
        assert profile.status == 200 and profile.json()["displayname"] == f"After {mode}", profile.json()

        # Password: a wrong current password is refused, then the change is made.
        page.goto(base + "account/password/change")
        page.get_by_label("Current password").fill("not my password")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        page.wait_for_load_state()
        assert "That is not your password." in main_text(page)
        screenshot(page, tmp_path, f"{mode}-4-wrong-password")
        assert compat_login(stack, username, PASSWORD, "CHECKOLD1").status_code == 200
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        page.wait_for_url("**/account/password/change?changed=1")
        assert compat_login(stack, username, PASSWORD, "CHECKOLD2").status_code == 403
        relogin = compat_login(stack, username, NEW_PASSWORD, "CHECKNEW1")
        assert relogin.status_code == 200, relogin.text
        new_token = relogin.json()["access_token"]

        # Deactivation: every token dies at once, Synapse deactivates the user.
        page.goto(base + "account/deactivate")
        page.get_by_label("Your password").fill(NEW_PASSWORD)
        page.get_by_label("I understand that this cannot be undone").check()
        screenshot(page, tmp_path, f"{mode}-5-deactivate")
        page.get_by_role("button", name="Delete my account").click()
        page.wait_for_load_state()
        assert "Account deactivated" in main_text(page), main_text(page)
        screenshot(page, tmp_path, f"{mode}-6-deactivated")
    finally:
        context.close()

    for token in (oauth_token, new_token):
        assert not active(stack, token)
    eventually(
        lambda: (synapse_user(synapse, username) or {}).get("is_deactivated") is True,
        what=f"{username} deactivated on Synapse",
    )
    assert compat_login(stack, username, NEW_PASSWORD, "CHECKNEW2").status_code == 403
