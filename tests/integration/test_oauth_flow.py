# SPDX-License-Identifier: AGPL-3.0-only
"""End to end with a real OAuth client library (authlib) against the real ``twistd mas``, on
SQLite and PostgreSQL: dynamic registration (RFC 7591), the authorization code flow with PKCE
(RFC 6749 §4.1, RFC 7636) through the real HTML login and consent forms, the ID token (OIDC
Core §3.1.3.7) verified against the JWKS, userinfo, refresh and double refresh, introspection
with the homeserver's shared secret (RFC 7662, the Synapse contract), revocation (RFC 7009),
client_credentials, the device authorization grant (RFC 8628) and every client
authentication method (RFC 6749 §2.3, RFC 7523)."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration._harness import PostgresDatabase, TwistdProcess, base_config, free_port, venv_script
from tests.integration._harness import request as http_request

PASSWORD = "correct horse battery staple 42"
CLIENT_URI = "https://client.example.test/"
REDIRECT_URI = "https://client.example.test/callback"
API_SCOPE = "urn:matrix:org.matrix.msc2967.client:api:*"
DEVICE = "AAAAAAAAAADEVICE"
DEVICE_SCOPE = f"urn:matrix:org.matrix.msc2967.client:device:{DEVICE}"


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


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"oauth-{request.param}")
    db = PostgresDatabase() if request.param == "postgres" else None
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    config = base_config(tmp, database_uri=db.uri if db else None)
    config["http"] = {
        "public_base": base,
        "listeners": [
            {
                "name": "web",
                "resources": [{"name": n} for n in ("discovery", "human", "oauth", "health")],
                "binds": [{"host": "127.0.0.1", "port": port}],
            }
        ],
    }
    config["matrix"]["homeserver"] = "example.test"
    # Every test logs in from 127.0.0.1; MAS's default per-IP login limit is 3 a minute.
    config["rate_limiting"] = {"login": {"per_ip": {"burst": 1000, "per_second": 100}}}
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


def test_authorization_code_flow(service) -> None:
    md = service["metadata"]
    client_info = register(
        service,
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    scope = f"openid {API_SCOPE} {DEVICE_SCOPE}"
    client = OAuth2Session(
        client_info["client_id"],
        client_info["client_secret"],
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = "v" * 64
    url, state = client.create_authorization_url(
        md["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6"
    )
    callback = login_and_consent(service, Browser(service["base"]), url)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]

    token = client.fetch_token(md["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["access_token"].startswith("mat_") and token["refresh_token"].startswith("mar_")
    assert token["token_type"].lower() == "bearer"
    assert set(token["scope"].split()) == set(scope.split())

    # The ID token verifies against the published keys and carries what the flow put in.
    jwks = JsonWebKey.import_key_set(requests.get(md["jwks_uri"], timeout=10).json())
    claims = jwt.decode(token["id_token"], jwks)
    claims.validate()
    assert claims["iss"] == md["issuer"] and claims["aud"] == client_info["client_id"]
    assert claims["nonce"] == "n-0S6" and "at_hash" in claims and "auth_time" in claims

    info = client.get(md["userinfo_endpoint"]).json()
    assert info == {"sub": claims["sub"], "username": "alice"}

    seen = introspect(service, token["access_token"])
    assert seen["active"] is True and seen["username"] == "alice" and seen["sub"] == claims["sub"]
    assert seen["client_id"] == client_info["client_id"]
    assert DEVICE_SCOPE in seen["scope"].split()
    assert f"urn:matrix:client:device:{DEVICE}" in seen["scope"].split()  # normalised to both forms

    # Refresh rotates the pair; presenting the old refresh token again before the new access
    # token is used is tolerated (MAS's double-refresh rule), and rotates again.
    old_refresh = token["refresh_token"]
    refreshed = client.refresh_token(md["token_endpoint"], refresh_token=old_refresh)
    assert refreshed["access_token"] != token["access_token"]
    again = client.refresh_token(md["token_endpoint"], refresh_token=old_refresh)
    assert again["access_token"] not in (token["access_token"], refreshed["access_token"])
    assert introspect(service, refreshed["access_token"])["active"] is False
    assert introspect(service, token["access_token"])["active"] is False
    current = again
    assert introspect(service, current["access_token"])["active"] is True

    # Revocation ends the whole session: both tokens go inactive.
    client.token = current
    resp = client.revoke_token(
        md["revocation_endpoint"], token=current["access_token"], token_type_hint="access_token"
    )
    assert resp.status_code == 200, resp.text
    assert introspect(service, current["access_token"]) == {"active": False}
    assert introspect(service, current["refresh_token"]) == {"active": False}


def test_client_credentials(service) -> None:
    md = service["metadata"]
    info = register(
        service,
        token_endpoint_auth_method="client_secret_post",
        grant_types=["client_credentials"],
        response_types=[],
        redirect_uris=[],
    )
    client = OAuth2Session(
        info["client_id"], info["client_secret"], token_endpoint_auth_method="client_secret_post"
    )
    token = client.fetch_token(md["token_endpoint"], grant_type="client_credentials")
    assert token["access_token"].startswith("mat_") and "refresh_token" not in token
    seen = introspect(service, token["access_token"])
    assert seen["active"] is True and seen["client_id"] == info["client_id"] and "sub" not in seen


def test_device_code_grant(service) -> None:
    md = service["metadata"]
    info = register(
        service,
        token_endpoint_auth_method="none",
        application_type="native",
        grant_types=["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        response_types=[],
        redirect_uris=[],
    )
    start = requests.post(
        md["device_authorization_endpoint"],
        data={"client_id": info["client_id"], "scope": f"openid {API_SCOPE}"},
        timeout=10,
    )
    assert start.status_code == 200, start.text
    grant = start.json()
    assert grant["expires_in"] == 1200 and grant["interval"] == 5
    assert grant["verification_uri"] == service["base"] + "link"

    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": grant["device_code"],
        "client_id": info["client_id"],
    }
    pending = requests.post(md["token_endpoint"], data=poll, timeout=10)
    assert pending.status_code == 403 and pending.json()["error"] == "authorization_pending"

    browser = Browser(service["base"])
    page = browser.follow(browser.get("/login"))
    browser.follow(browser.submit(page, {"username": "alice", "password": PASSWORD}))
    page = browser.follow(browser.get("/link"))
    page = browser.follow(browser.submit(page, {"code": grant["user_code"]}))
    assert "/device/" in page.url, page.text
    done = browser.follow(browser.submit(page, {"confirm_device": "on"}, button=("action", "consent")))
    assert done.status_code == 200, done.text

    token = requests.post(md["token_endpoint"], data=poll, timeout=10)
    assert token.status_code == 200, token.text
    body = token.json()
    assert (
        body["access_token"].startswith("mat_")
        and body["refresh_token"].startswith("mar_")
        and "id_token" in body
    )
    assert introspect(service, body["access_token"])["username"] == "alice"
    replay = requests.post(md["token_endpoint"], data=poll, timeout=10)
    # An exchanged device code is invalid_grant with 400 (MAS: only pending/denied/expired are 403).
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"]
)
def test_client_authentication_methods(service, method: str) -> None:
    md = service["metadata"]
    metadata = {
        "token_endpoint_auth_method": method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    private_pem = None
    if method == "private_key_jwt":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = JsonWebKey.import_key(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).as_dict()
        public.update({"kid": "k1", "alg": "RS256", "use": "sig"})
        metadata.update({"jwks": {"keys": [public]}, "token_endpoint_auth_signing_alg": "RS256"})
    if method == "client_secret_jwt":
        metadata["token_endpoint_auth_signing_alg"] = "HS256"
    if method == "none":
        metadata["application_type"] = "web"
    info = register(service, **metadata)

    if method == "client_secret_jwt":
        auth = ClientSecretJWT(md["token_endpoint"], alg="HS256")
        client = OAuth2Session(
            info["client_id"],
            info["client_secret"],
            token_endpoint_auth_method=auth,
            scope="openid",
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        )
        client.register_client_auth_method(auth)
    elif method == "private_key_jwt":
        auth = PrivateKeyJWT(md["token_endpoint"], alg="RS256", headers={"kid": "k1"})
        client = OAuth2Session(
            info["client_id"],
            private_pem.decode(),
            token_endpoint_auth_method=auth,
            scope="openid",
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        )
        client.register_client_auth_method(auth)
    else:
        client = OAuth2Session(
            info["client_id"],
            info.get("client_secret"),
            token_endpoint_auth_method=method,
            scope="openid",
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        )
    verifier = "w" * 60
    url, _state = client.create_authorization_url(md["authorization_endpoint"], code_verifier=verifier)
    callback = login_and_consent(service, Browser(service["base"]), url)
    token = client.fetch_token(md["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["access_token"].startswith("mat_")
    assert introspect(service, token["access_token"])["client_id"] == info["client_id"]

    # The same code a second time: invalid_grant, and no second token pair.
    again = requests.post(
        md["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": parse_qs(urlsplit(callback).query)["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": info["client_id"],
            "code_verifier": verifier,
            "client_secret": info.get("client_secret", ""),
        },
        timeout=10,
    )
    assert again.status_code in (400, 401) and again.json()["error"] in ("invalid_grant", "invalid_client")
