# SPDX-License-Identifier: AGPL-3.0-only
"""Sign-up through an upstream provider in a real browser (issue 14), on SQLite and
PostgreSQL: Debian's chromium (Playwright), a real ``twistd mas`` with password login off and
one upstream provider (npm ``oidc-provider`` on loopback), and a real Synapse.

An OAuth client's authorization request sends the browser to ``/login``, which goes straight
to the sole provider; its login and consent pages, then our do-register page (the username
suggested by the provider), our consent page, and the client gets a code, then a token
Synapse accepts for ``@zoe``. A second sign-in, in a fresh browser, needs no registration.
On the account page's "Connected accounts" tab, the provider that is an account's only way in
(password login off) cannot be unlinked.
Screenshots go to ``build/screenshots/upstream-<engine>/``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.integration._harness import free_port, query
from tests.integration._synapse import SynapseServer, mas_with_synapse
from tests.integration._upstream import OpenIDProvider, npm_ci

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
REDIRECT_URI = "https://client.example.test/callback"
API_SCOPE = "urn:matrix:org.matrix.msc2967.client:api:*"
PROVIDER_ID = "01J000000000000000000000SS"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    npm_ci()
    tmp = tmp_path_factory.mktemp(f"upstream-browser-{request.param}")
    op = OpenIDProvider(tmp, free_port())
    extra = {
        "passwords": {"enabled": False},
        "upstream_oauth2": {
            "providers": [
                {
                    "id": PROVIDER_ID,
                    "issuer": op.issuer,
                    "human_name": "Example SSO",
                    "client_id": "mas",
                    "client_secret": "upstream-browser-secret-upstream-browser-secret",
                    "token_endpoint_auth_method": "client_secret_basic",
                    "scope": "openid profile email",
                    "claims_imports": {
                        "localpart": {"action": "suggest"},
                        "displayname": {"action": "force"},
                    },
                }
            ]
        },
    }
    resources = ("discovery", "human", "oauth", "assets", "health")
    try:
        with mas_with_synapse(tmp, request.param, resources=resources, extra_config=extra) as (
            synapse,
            _proc,
            config,
        ):
            base = synapse.mas_endpoint
            op.clients.append(
                {
                    "client_id": "mas",
                    "client_secret": "upstream-browser-secret-upstream-browser-secret",
                    "redirect_uris": [f"{base}upstream/callback/{PROVIDER_ID}"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            )
            op.start()
            metadata = requests.get(base + ".well-known/openid-configuration", timeout=10).json()
            client = requests.post(
                metadata["registration_endpoint"],
                json={
                    "client_name": "Upstream Test Client",
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
    finally:
        op.stop()


def screenshot(page: Any, stack: dict[str, Any], name: str) -> None:
    path = SCREENSHOTS / f"upstream-{stack['engine']}" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG"), path


def sign_in(chromium: Any, stack: dict[str, Any], name: str, *, register: bool) -> str:
    """The whole flow in a fresh browser; the access token the client gets."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(8)
    url = (
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
            }
        )
    )
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    callbacks: list[str] = []

    def handle(route: Any) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!DOCTYPE html><title>Client</title>")

    context.route("https://client.example.test/**", handle)
    try:
        page = context.new_page()
        page.goto(url)
        # Password login is off and there is one provider: straight to its login page.
        assert urlsplit(page.url).netloc.startswith("localhost:"), page.url
        page.fill('input[name="login"]', "zoe")
        page.fill('input[name="password"]', "anything")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if "/interaction/" in page.url:
            page.click("button[type=submit]")  # the provider's consent
            page.wait_for_load_state()
        if register:
            page.wait_for_url("**/upstream/link/**")
            main = page.locator("main").inner_text()
            assert "Create your account" in main and "User zoe" in main, main
            assert page.get_by_label("Username").input_value() == "zoe"
            screenshot(page, stack, f"{name}-do-register")
            page.get_by_role("button", name="Create account").click()
        page.wait_for_url("**/consent/**")
        assert "/upstream/link/" not in page.url
        assert "@zoe:" in page.locator("main").inner_text()
        screenshot(page, stack, f"{name}-consent")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url("https://client.example.test/**")
    finally:
        context.close()
    (callback,) = callbacks
    params = parse_qs(urlsplit(callback).query)
    assert params["state"] == [state], callback
    token = requests.post(
        stack["metadata"]["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": stack["client_id"],
            "code_verifier": verifier,
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text
    return token.json()["access_token"]


def test_sign_up_through_the_provider_then_sign_in_again(chromium: Any, stack: dict[str, Any]) -> None:
    synapse: SynapseServer = stack["synapse"]
    token = sign_in(chromium, stack, "first", register=True)
    whoami = synapse.whoami(token)
    assert whoami.status == 200 and whoami.json()["user_id"] == synapse.mxid("zoe"), whoami.body
    assert query(stack["database"], "SELECT COUNT(*) FROM users WHERE username = 'zoe'") == [(1,)]

    # A second sign-in, in a fresh browser: no do-register page, the same user.
    token = sign_in(chromium, stack, "second", register=False)
    whoami = synapse.whoami(token)
    assert whoami.status == 200 and whoami.json()["user_id"] == synapse.mxid("zoe"), whoami.body
    assert query(stack["database"], "SELECT COUNT(*) FROM users") == [(1,)]


def test_the_only_way_in_cannot_be_unlinked(chromium: Any, stack: dict[str, Any]) -> None:
    # Password login is off: an account whose one link is its only way in keeps it (issue 14
    # item 5, the account page's "Connected accounts" tab).
    base = stack["metadata"]["issuer"]
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(base + "account/connected-accounts")
        # Signed out: /login, which goes straight to the sole provider.
        assert urlsplit(page.url).netloc.startswith("localhost:"), page.url
        page.fill('input[name="login"]', "yara")
        page.fill('input[name="password"]', "anything")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if "/interaction/" in page.url:
            page.click("button[type=submit]")  # the provider's consent
            page.wait_for_load_state()
        page.wait_for_url("**/upstream/link/**")
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url("**/account/")
        page.get_by_role("link", name="Connected accounts").click()
        page.wait_for_url("**/account/connected-accounts")
        main = page.locator("main").inner_text()
        assert "Example SSO" in main and "Link Example SSO" not in main, main
        page.get_by_role("button", name="Unlink").click()
        page.wait_for_load_state()
        alert = page.get_by_role("alert").inner_text()
        assert "This is the only way you can sign in" in alert, alert
        screenshot(page, stack, "connected-accounts-last-way-in")
    finally:
        context.close()
    links = query(
        stack["database"],
        "SELECT l.upstream_oauth_provider_id FROM upstream_oauth_links l"
        " JOIN users u ON u.user_id = l.user_id WHERE u.username = 'yara'",
    )
    assert links == [(PROVIDER_ID,)]
