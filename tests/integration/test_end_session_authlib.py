# SPDX-License-Identifier: AGPL-3.0-only
"""OpenID Connect RP-Initiated Logout with a real relying-party library (authlib's requests
client) against a real ``twistd mas``, on both engines: the client registers dynamically with
``post_logout_redirect_uris``, signs the user in (authorization code with PKCE, through the real
login and consent forms), validates its ID token against the published JWKS, then sends the
user to discovery's ``end_session_endpoint`` with ``id_token_hint``, its registered
``post_logout_redirect_uri`` and ``state``. The confirmation page's form (CSRF) signs the
browser out and, ticked, ends the client's session too: the browser lands on the registered
URI with the ``state``, the browser session is over, and the client's refresh token no longer
works. An unregistered (or merely similar) URI is refused with an error page, no redirect."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JsonWebToken

from tests.integration._oauth import REDIRECT_URI, Browser, login_and_consent, register, service  # noqa: F401

LOGGED_OUT_URI = "https://client.example.test/logged-out"


def sign_in(service: dict[str, Any], client_id: str) -> tuple[Browser, OAuth2Session, dict[str, Any]]:
    metadata = service["metadata"]
    rp = OAuth2Session(
        client_id,
        redirect_uri=REDIRECT_URI,
        scope="openid urn:matrix:org.matrix.msc2967.client:api:*",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, _state = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    browser = Browser(service["base"])
    callback = login_and_consent(service, browser, url)
    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    # The RP checks the ID token as it would before trusting it.
    jwks = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    claims = JsonWebToken(["RS256", "ES256", "PS256", "EdDSA", "ES384", "RS384", "RS512"]).decode(
        token["id_token"], jwks
    )
    claims.validate()
    assert claims["aud"] == client_id and claims["iss"] == metadata["issuer"]
    return browser, rp, token


def test_logout_from_the_relying_party(service: dict[str, Any]) -> None:
    metadata = service["metadata"]
    assert metadata["end_session_endpoint"] == service["base"] + "oauth2/end_session"
    client = register(
        service,
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        post_logout_redirect_uris=[LOGGED_OUT_URI],
    )
    browser, rp, token = sign_in(service, client["client_id"])
    # Before the logout the refresh token works.
    id_token = token["id_token"]
    token = rp.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert browser.follow(browser.get("/")).status_code == 200

    state = secrets.token_urlsafe(8)
    logout_url = add_params_to_uri(
        metadata["end_session_endpoint"],
        [
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", LOGGED_OUT_URI),
            ("state", state),
        ],
    )
    page = browser.get(logout_url)
    assert page.status_code == 200, page.text
    assert "Sign out?" in page.text and "Integration test" in page.text
    done = browser.submit(page, {"end_client_sessions": "on"})
    assert done.status_code == 303, done.text
    target = urlsplit(done.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == LOGGED_OUT_URI
    assert parse_qs(target.query) == {"state": [state]}

    # The browser is signed out: the login page asks for a password again.
    login = browser.follow(browser.get("/login"))
    assert 'name="password"' in login.text or "Signed out" in login.text, login.text
    # And the client's session is over: its refresh token is refused.
    refreshed = requests.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": client["client_id"],
        },
        timeout=10,
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant", refreshed.text


def test_unregistered_redirect_is_refused(service: dict[str, Any]) -> None:
    metadata = service["metadata"]
    client = register(service, token_endpoint_auth_method="none", post_logout_redirect_uris=[LOGGED_OUT_URI])
    browser, _rp, token = sign_in(service, client["client_id"])
    for uri in (LOGGED_OUT_URI + "/", LOGGED_OUT_URI.upper(), "https://evil.example.net/logged-out"):
        resp = browser.get(
            add_params_to_uri(
                metadata["end_session_endpoint"],
                [("id_token_hint", token["id_token"]), ("post_logout_redirect_uri", uri)],
            )
        )
        assert resp.status_code == 400 and "location" not in resp.headers, (uri, resp.status_code)
        assert "has not registered" in resp.text
    # Still signed in: nothing was ended.
    page = browser.get(
        add_params_to_uri(metadata["end_session_endpoint"], [("id_token_hint", token["id_token"])])
    )
    assert "Sign out?" in page.text
