# SPDX-License-Identifier: AGPL-3.0-only
"""Signing in through an upstream OpenID Provider (issue 14) end to end, on SQLite and
PostgreSQL: a real ``twistd mas`` with its worker and a real Synapse, and a real OpenID
Provider on loopback: npm ``oidc-provider`` (certified, the one ``bench/introspect`` already
uses; it speaks every client authentication method, PKCE, form_post and key rotation),
installed from ``tests/integration/upstream/package-lock.json`` with ``npm ci``.

A person with a cookie jar (no JavaScript) goes MAS → the provider's login and consent pages
→ back to MAS, once per provider of the config: each ``token_endpoint_auth_method`` (incl.
``private_key_jwt`` with our keys and ``client_secret_jwt``), each ``pkce_method``, query and
form_post, each ``discovery_mode``, signed and plain userinfo; the claim imports (require,
force, suggest, and ``on_conflict`` add / fail); a second sign-in needs no registration; a
replayed callback is refused; the provider rotating its signing key is followed; a provider
that is down or answers garbage gives an error page naming it and writes nothing; an existing
local account links a provider from the account page's "Connected accounts" tab, signs in
through it, and unlinks it; ``on_login: sync`` (beyond MAS) re-imports a display name and email
the provider changed between two sign-ins.
"""

from __future__ import annotations

import http.server
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from tests.integration._harness import eventually, free_port, mas_cli, query, run_sql
from tests.integration._oauth import Forms
from tests.integration._synapse import SynapseServer, mas_with_synapse
from tests.integration._upstream import OpenIDProvider, npm_ci

NONE_QUERY = "01J0000000000000000000000A"
BASIC_FORM_POST = "01J0000000000000000000000B"
POST_INSECURE = "01J0000000000000000000000C"
SECRET_JWT_DISABLED = "01J0000000000000000000000D"
PRIVATE_KEY_JWT = "01J0000000000000000000000E"
DOWN = "01J0000000000000000000000F"
GARBAGE = "01J0000000000000000000000G"
TOKEN_REQUIRED = "01J0000000000000000000000H"
PROFILE_SYNC = "01J0000000000000000000000J"
SECRET = "upstream-client-secret-upstream-client-secret"


class Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>this is not a discovery document</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _provider(provider_id: str, issuer: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": provider_id,
        "issuer": issuer,
        "human_name": name,
        "client_id": provider_id.lower(),
        "scope": "openid profile email",
        **extra,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    npm_ci()
    tmp = tmp_path_factory.mktemp(f"upstream-{request.param}")
    op = OpenIDProvider(tmp, free_port())
    garbage = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=garbage.serve_forever, daemon=True).start()
    iss = op.issuer
    localpart_require = {"localpart": {"action": "require"}, "displayname": {"action": "force"}}
    providers = [
        _provider(
            NONE_QUERY,
            iss,
            "Public OP",
            token_endpoint_auth_method="none",
            pkce_method="always",
            on_backchannel_logout="logout_browser_only",
            claims_imports={**localpart_require, "email": {"action": "force"}},
        ),
        _provider(
            BASIC_FORM_POST,
            iss,
            "Basic OP",
            token_endpoint_auth_method="client_secret_basic",
            client_secret=SECRET,
            pkce_method="never",
            response_mode="form_post",
            on_backchannel_logout="logout_all",
            claims_imports={
                "localpart": {"action": "suggest"},
                "displayname": {"action": "suggest"},
                "email": {"action": "suggest"},
            },
        ),
        _provider(
            POST_INSECURE,
            iss,
            "Post OP",
            token_endpoint_auth_method="client_secret_post",
            client_secret=SECRET,
            discovery_mode="insecure",
            claims_imports={"localpart": {"action": "force", "on_conflict": "add"}},
        ),
        _provider(
            SECRET_JWT_DISABLED,
            iss,
            "Secret JWT OP",
            token_endpoint_auth_method="client_secret_jwt",
            token_endpoint_auth_signing_alg="HS256",
            client_secret=SECRET,
            discovery_mode="disabled",
            authorization_endpoint=iss + "/auth",
            token_endpoint=iss + "/token",
            jwks_uri=iss + "/jwks",
            userinfo_endpoint=iss + "/me",
            fetch_userinfo=True,
            claims_imports={
                "localpart": {
                    "action": "require",
                    "template": "{{ userinfo_claims.preferred_username }}-jwt",
                },
                "skip_confirmation": True,
            },
        ),
        _provider(
            PRIVATE_KEY_JWT,
            iss,
            "Private Key OP",
            token_endpoint_auth_method="private_key_jwt",
            token_endpoint_auth_signing_alg="RS256",
            fetch_userinfo=True,
            userinfo_signed_response_alg="RS256",
            claims_imports={"localpart": {"action": "force", "on_conflict": "fail"}},
        ),
        _provider(
            TOKEN_REQUIRED,
            iss,
            "Invite OP",
            token_endpoint_auth_method="none",
            registration_token_required=True,
            claims_imports={"localpart": {"action": "require"}, "skip_confirmation": True},
        ),
        _provider(
            PROFILE_SYNC,
            iss,
            "Sync OP",
            token_endpoint_auth_method="none",
            claims_imports={
                "localpart": {"action": "require"},
                "skip_confirmation": True,
                "displayname": {"action": "force", "on_login": "sync"},
                "email": {"action": "force", "on_login": "sync"},
            },
        ),
        _provider(DOWN, f"http://127.0.0.1:{free_port()}", "Down OP", token_endpoint_auth_method="none"),
        _provider(
            GARBAGE,
            f"http://127.0.0.1:{garbage.server_address[1]}",
            "Garbage OP",
            token_endpoint_auth_method="none",
        ),
    ]
    extra = {"upstream_oauth2": {"providers": providers}}
    try:
        with mas_with_synapse(
            tmp,
            request.param,
            resources=("discovery", "human", "oauth", "health", "compat"),
            extra_config=extra,
        ) as (synapse, proc, config):
            base = synapse.mas_endpoint
            for p in providers[:7]:
                client: dict[str, Any] = {
                    "client_id": p["client_id"],
                    "redirect_uris": [f"{base}upstream/callback/{p['id']}"],
                    "token_endpoint_auth_method": p["token_endpoint_auth_method"],
                    "response_types": ["code"],
                    "grant_types": ["authorization_code"],
                }
                if "client_secret" in p:
                    client["client_secret"] = p["client_secret"]
                if p["token_endpoint_auth_method"] == "private_key_jwt":
                    # Our public keys, as MAS publishes them.
                    client["jwks"] = requests.get(f"{base}oauth2/keys.json", timeout=10).json()
                    client["token_endpoint_auth_signing_alg"] = "RS256"
                if p["token_endpoint_auth_method"] == "client_secret_jwt":
                    client["token_endpoint_auth_signing_alg"] = "HS256"
                if p.get("userinfo_signed_response_alg"):
                    client["userinfo_signed_response_alg"] = p["userinfo_signed_response_alg"]
                op.clients.append(client)
            op.start()
            yield {"synapse": synapse, "config": config, "op": op, "base": base, "proc": proc, "tmp": tmp}
    finally:
        op.stop()
        garbage.shutdown()


class Person:
    """A cookie jar driving MAS's and the provider's pages (their forms, no JavaScript)."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.authorization_url: str | None = None
        self.form_post = False

    def go(self, response: requests.Response) -> requests.Response:
        """Follow redirects, the provider's login/consent pages and its form_post page, until a
        page of MAS that is not a redirect."""
        for _ in range(20):
            if response.status_code in (302, 303):
                location = urljoin(response.url, response.headers["location"])
                if "/auth?" in location and self.authorization_url is None:
                    self.authorization_url = location
                response = self.http.get(location, allow_redirects=False, timeout=30)
                continue
            parser = Forms()
            parser.feed(response.text)
            fields = parser.forms[0]["fields"] if parser.forms else {}
            if fields.get("prompt") == "login":
                action = urljoin(response.url, parser.forms[0]["action"])
                login = self.login_name
                response = self.http.post(
                    action, data={"prompt": "login", "login": login, "password": "x"}, allow_redirects=False
                )
                continue
            if fields.get("prompt") == "consent":
                action = urljoin(response.url, parser.forms[0]["action"])
                response = self.http.post(action, data={"prompt": "consent"}, allow_redirects=False)
                continue
            if "code" in fields and "state" in fields:
                # The provider's form_post page (its script would submit it).
                self.form_post = True
                action = urljoin(response.url, parser.forms[0]["action"])
                response = self.http.post(action, data=fields, allow_redirects=False)
                continue
            return response
        raise AssertionError("too many steps")

    def forget_provider(self) -> None:
        """Drop the provider's cookies (it runs on localhost, we on 127.0.0.1)."""
        for cookie in list(self.http.cookies):
            if cookie.domain.startswith("localhost"):
                self.http.cookies.clear(cookie.domain, cookie.path, cookie.name)

    def sign_in(self, provider_id: str, login_name: str) -> requests.Response:
        self.login_name = login_name
        self.authorization_url = None
        return self.go(self.http.get(f"{self.base}upstream/authorize/{provider_id}", allow_redirects=False))

    def submit(self, page: requests.Response, values: dict[str, str]) -> requests.Response:
        parser = Forms()
        parser.feed(page.text)
        form = next(f for f in parser.forms if "csrf" in f["fields"])
        data = {**form["fields"], **values}
        return self.go(
            self.http.post(urljoin(page.url, form["action"] or page.url), data=data, allow_redirects=False)
        )


def _signed_in_as(page: requests.Response, username: str) -> bool:
    return page.status_code == 200 and f"You are signed in as <strong>{username}</strong>" in page.text


def _user_links(database: str, username: str) -> list[tuple[Any, ...]]:
    return query(
        database,
        "SELECT l.upstream_oauth_provider_id, l.subject FROM upstream_oauth_links l"
        f" JOIN users u ON u.user_id = l.user_id WHERE u.username = '{username}'"
        " ORDER BY l.upstream_oauth_provider_id",
    )


def _synapse_user(synapse: SynapseServer, localpart: str) -> Any:
    resp = synapse.request("GET", f"_synapse/mas/query_user?localpart={localpart}", token=synapse.secret)
    return resp.json() if resp.status == 200 else None


def test_public_client_with_pkce_registers_with_required_and_forced_claims(stack: dict[str, Any]) -> None:
    base, database, synapse = stack["base"], stack["config"]["database"]["uri"], stack["synapse"]
    person = Person(base)
    page = person.sign_in(NONE_QUERY, "alice")
    query_ = parse_qs(urlsplit(person.authorization_url or "").query)
    assert query_["code_challenge_method"] == ["S256"] and query_["client_id"] == [NONE_QUERY.lower()]
    assert "nonce" in query_ and "state" in query_ and "response_mode" not in query_
    # The do-register page: the username is imposed, display name and email too.
    assert page.status_code == 200 and "Create your account" in page.text, page.text
    assert "@alice:" in page.text and 'name="username"' not in page.text
    assert "User alice" in page.text and "alice@example.org" in page.text
    page = person.submit(page, {})
    assert _signed_in_as(page, "alice"), page.text
    assert _user_links(database, "alice") == [(NONE_QUERY, "alice")]
    assert query(database, "SELECT email FROM user_emails") == [("alice@example.org",)]
    user = eventually(lambda: _synapse_user(synapse, "alice"), what="alice on Synapse")
    assert user["display_name"] == "User alice", user

    # A second sign-in, in a new browser: no registration, straight in as alice.
    again = Person(base)
    page = again.sign_in(NONE_QUERY, "alice")
    assert _signed_in_as(page, "alice"), page.text
    assert query(database, "SELECT COUNT(*) FROM users WHERE username = 'alice'") == [(1,)]


def test_basic_auth_form_post_without_pkce_suggests_what_the_user_may_refuse(stack: dict[str, Any]) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    person = Person(base)
    page = person.sign_in(BASIC_FORM_POST, "bob")
    query_ = parse_qs(urlsplit(person.authorization_url or "").query)
    assert "code_challenge" not in query_ and query_["response_mode"] == ["form_post"]
    assert person.form_post
    assert page.status_code == 200 and 'name="username"' in page.text and 'value="bob"' in page.text
    assert 'name="import_display_name"' in page.text and 'name="import_email"' in page.text
    # A username that is not a Matrix localpart is refused; then another one, no email.
    refused = person.submit(page, {"username": "Bob Smith!"})
    assert refused.status_code == 200 and "This value is not valid." in refused.text
    page = person.submit(refused, {"username": "robert", "import_display_name": "on"})
    assert _signed_in_as(page, "robert"), page.text
    assert _user_links(database, "robert") == [(BASIC_FORM_POST, "bob")]
    assert query(database, "SELECT COUNT(*) FROM user_emails WHERE email = 'bob@example.org'") == [(0,)]


def test_client_secret_jwt_without_discovery_and_skip_confirmation(stack: dict[str, Any]) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    person = Person(base)
    # No do-register page: the localpart (from the userinfo claims) is required and imported.
    page = person.sign_in(SECRET_JWT_DISABLED, "carol")
    assert _signed_in_as(page, "carol-jwt"), page.text
    assert _user_links(database, "carol-jwt") == [(SECRET_JWT_DISABLED, "carol")]


def test_on_conflict_add_links_the_existing_user_and_fail_refuses(stack: dict[str, Any]) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    first = Person(base)
    page = first.submit(first.sign_in(NONE_QUERY, "dave"), {})
    assert _signed_in_as(page, "dave"), page.text
    # Insecure discovery, client_secret_post, localpart forced with on_conflict: add.
    second = Person(base)
    page = second.sign_in(POST_INSECURE, "dave")
    assert page.status_code == 200 and "Create your account" in page.text, page.text
    page = second.submit(page, {})
    assert _signed_in_as(page, "dave"), page.text
    assert _user_links(database, "dave") == [(NONE_QUERY, "dave"), (POST_INSECURE, "dave")]
    # private_key_jwt and signed userinfo, localpart forced with on_conflict: fail.
    third = Person(base)
    page = third.sign_in(PRIVATE_KEY_JWT, "dave")
    assert page.status_code == 200 and "Create your account" in page.text, page.text
    refused = third.submit(page, {})
    assert refused.status_code == 400 and "already exists" in refused.text, refused.text
    assert _user_links(database, "dave") == [(NONE_QUERY, "dave"), (POST_INSECURE, "dave")]
    # The same provider registers a free username.
    fourth = Person(base)
    page = fourth.submit(fourth.sign_in(PRIVATE_KEY_JWT, "erin"), {})
    assert _signed_in_as(page, "erin"), page.text


def test_a_replayed_callback_is_refused(stack: dict[str, Any]) -> None:
    base = stack["base"]
    person = Person(base)
    person.login_name = "frank"
    response = person.http.get(f"{base}upstream/authorize/{NONE_QUERY}", allow_redirects=False)
    # Walk to the provider's redirect back to us, and keep the callback URL.
    callback = None
    for _ in range(20):
        if response.status_code in (302, 303):
            location = urljoin(response.url, response.headers["location"])
            if "/upstream/callback/" in location:
                callback = location
                break
            response = person.http.get(location, allow_redirects=False)
        else:
            parser = Forms()
            parser.feed(response.text)
            prompt = parser.forms[0]["fields"]["prompt"]
            action = urljoin(response.url, parser.forms[0]["action"])
            data = {"prompt": prompt, "login": "frank", "password": "x"}
            response = person.http.post(action, data=data, allow_redirects=False)
    assert callback is not None
    first = person.http.get(callback, allow_redirects=False)
    assert first.status_code == 303 and "/upstream/link/" in first.headers["location"]
    replay = person.http.get(callback, allow_redirects=False)
    assert replay.status_code == 400 and "already completed" in replay.text, replay.text


def test_a_rotated_provider_key_is_fetched(stack: dict[str, Any]) -> None:
    base, op = stack["base"], stack["op"]
    person = Person(base)
    page = person.submit(person.sign_in(NONE_QUERY, "grace"), {})
    assert _signed_in_as(page, "grace"), page.text
    # The provider restarts with a new key (new kid): our cached JWKS does not have it.
    op.restart(op.new_key("op-key-2"))
    again = Person(base)
    page = again.sign_in(NONE_QUERY, "grace")
    assert _signed_in_as(page, "grace"), page.text


@pytest.mark.parametrize(("provider_id", "name"), [(DOWN, "Down OP"), (GARBAGE, "Garbage OP")])
def test_a_provider_down_or_answering_garbage_is_an_error_page(
    stack: dict[str, Any], provider_id: str, name: str
) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    before = query(database, "SELECT COUNT(*) FROM upstream_oauth_authorization_sessions")
    person = Person(base)
    page = person.http.get(f"{base}upstream/authorize/{provider_id}", allow_redirects=False)
    assert page.status_code == 502, page.text
    assert f"Signing in with {name} failed." in page.text
    assert re.search(r"could not be reached|not valid", page.text), page.text
    assert query(database, "SELECT COUNT(*) FROM upstream_oauth_authorization_sessions") == before


def _logout_token(
    op: OpenIDProvider, client_id: str, sub: str, *, key: dict[str, Any] | None = None, **extra: Any
) -> str:
    claims = {
        "iss": op.issuer,
        "aud": client_id,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
        "sub": sub,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        **extra,
    }
    jwk = JWK(**(key or op.key))
    token = JWS(json.dumps(claims).encode())
    token.add_signature(jwk, alg="RS256", protected=json.dumps({"alg": "RS256", "kid": jwk.get("kid")}))
    return token.serialize(compact=True)


def _open_sessions(database: str, username: str) -> int:
    ((count,),) = query(
        database,
        "SELECT COUNT(*) FROM user_sessions s JOIN users u ON u.user_id = s.user_id"
        f" WHERE u.username = '{username}' AND s.finished_at IS NULL",
    )
    return count


@pytest.mark.parametrize(
    ("provider_id", "login", "username", "finished"),
    [
        (NONE_QUERY, "henry", "henry", True),  # logout_browser_only
        (BASIC_FORM_POST, "bob", "robert", True),  # logout_all
        (POST_INSECURE, "dave", "dave", False),  # do_nothing (the default)
    ],
)
def test_backchannel_logout(
    stack: dict[str, Any], provider_id: str, login: str, username: str, finished: bool
) -> None:
    base, database, op = stack["base"], stack["config"]["database"]["uri"], stack["op"]
    person = Person(base)
    page = person.sign_in(provider_id, login)
    if "Create your account" in page.text:
        page = person.submit(page, {})
    assert _signed_in_as(page, username), page.text
    assert _open_sessions(database, username) >= 1
    url = f"{base}upstream/backchannel-logout/{provider_id}"
    client_id = provider_id.lower()
    # Refused: a nonce, another audience, a key that is not the provider's, no event.
    stranger = OpenIDProvider.new_key("stranger")
    for bad in (
        _logout_token(op, client_id, login, nonce="n"),
        _logout_token(op, "someone-else", login),
        _logout_token(op, client_id, login, key=stranger),
        _logout_token(op, client_id, login, events={}),
    ):
        refused = requests.post(url, data={"logout_token": bad}, timeout=10)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_request", refused.text
    assert _open_sessions(database, username) >= 1
    token = _logout_token(op, client_id, login)
    done = requests.post(url, data={"logout_token": token}, timeout=10)
    assert done.status_code == 200, done.text
    assert (_open_sessions(database, username) == 0) is finished
    # The same token again (same jti): refused.
    replay = requests.post(url, data={"logout_token": token}, timeout=10)
    assert replay.status_code == 400, replay.text
    if finished:
        # The browser is signed out.
        index = person.http.get(base, allow_redirects=False)
        assert f"You are signed in as <strong>{username}</strong>" not in index.text


def test_registration_token_required(stack: dict[str, Any]) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    run_sql(
        database,
        "INSERT INTO user_registration_tokens (user_registration_token_id, token, usage_limit, times_used,"
        " created_at) VALUES ('01J00000000000000000000TK1', 'invite-me', 1, 0, 0)",
    )
    person = Person(base)
    # skip_confirmation does not skip the token: the page asks for it.
    page = person.sign_in(TOKEN_REQUIRED, "ivan")
    assert page.status_code == 200 and 'name="token"' in page.text, page.text
    refused = person.submit(page, {"token": "wrong"})
    assert refused.status_code == 200 and "This value is not valid." in refused.text, refused.text
    assert query(database, "SELECT COUNT(*) FROM users WHERE username = 'ivan'") == [(0,)]
    page = person.submit(refused, {"token": "invite-me"})
    assert _signed_in_as(page, "ivan"), page.text
    assert query(database, "SELECT times_used FROM user_registration_tokens WHERE token = 'invite-me'") == [
        (1,)
    ]
    # Used up: the next newcomer is refused.
    other = Person(base)
    page = other.sign_in(TOKEN_REQUIRED, "judy")
    refused = other.submit(page, {"token": "invite-me"})
    assert refused.status_code == 200 and "This value is not valid." in refused.text, refused.text


def test_signed_in_user_links_a_new_provider_account_and_a_mismatch_is_refused(stack: dict[str, Any]) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    person = Person(base)
    page = person.submit(person.sign_in(NONE_QUERY, "kim"), {})
    assert _signed_in_as(page, "kim"), page.text
    # Signed in as kim, an unknown account at another provider: linking is suggested. (The
    # provider's own cookies are dropped so that it asks who signs in.)
    person.forget_provider()
    page = person.sign_in(BASIC_FORM_POST, "kim-elsewhere")
    assert page.status_code == 200 and "Link your Basic OP account?" in page.text, page.text
    page = person.submit(page, {"action": "link"})
    assert _signed_in_as(page, "kim"), page.text
    assert _user_links(database, "kim") == [(NONE_QUERY, "kim"), (BASIC_FORM_POST, "kim-elsewhere")]
    # Still kim, an account at the first provider that belongs to alice: a mismatch page.
    person.forget_provider()
    page = person.sign_in(NONE_QUERY, "alice")
    assert page.status_code == 200 and "belongs to someone else here" in page.text, page.text
    assert "@alice:" in page.text and "@kim:" in page.text
    assert _user_links(database, "alice") == [(NONE_QUERY, "alice")]


def test_a_local_account_links_from_the_account_page_signs_in_through_it_and_unlinks(
    stack: dict[str, Any],
) -> None:
    base, database = stack["base"], stack["config"]["database"]["uri"]
    password = "a local password for lena, long enough"
    out = mas_cli(
        stack["tmp"] / "mas",
        "manage",
        "register-user",
        "--yes",
        "lena",
        "-p",
        password,
        "-c",
        str(stack["proc"].config_path),
    )
    assert out.returncode == 0, (out.stdout, out.stderr)
    person = Person(base)
    page = person.submit(
        person.http.get(f"{base}login", timeout=10), {"username": "lena", "password": password}
    )
    assert _signed_in_as(page, "lena"), page.text
    tab = person.http.get(f"{base}account/connected-accounts", timeout=10)
    assert tab.status_code == 200 and "No other account is connected to yours." in tab.text, tab.text
    match = re.search(rf'href="([^"]*/upstream/authorize/{NONE_QUERY}\?kind=manage_account)"', tab.text)
    assert match is not None, tab.text
    # "Link Public OP": the provider's login, then the suggest-link page, then back to /account/.
    person.login_name = "lena-at-op"
    person.authorization_url = None
    page = person.go(person.http.get(urljoin(tab.url, match.group(1)), allow_redirects=False, timeout=10))
    assert page.status_code == 200 and "Link your Public OP account?" in page.text, page.text
    page = person.submit(page, {"action": "link"})
    assert page.status_code == 200 and urlsplit(page.url).path.endswith("/account/"), page.url
    assert _user_links(database, "lena") == [(NONE_QUERY, "lena-at-op")]
    tab = person.http.get(f"{base}account/connected-accounts", timeout=10)
    assert "Public OP" in tab.text and "Unlink" in tab.text, tab.text

    # Another browser signs in as lena through the provider alone.
    other = Person(base)
    assert _signed_in_as(other.sign_in(NONE_QUERY, "lena-at-op"), "lena")

    # Unlink (lena still has her password): the provider's account no longer signs in as lena.
    parser = Forms()
    parser.feed(tab.text)
    unlink = next(f for f in parser.forms if (f["action"] or "").endswith("/unlink"))
    done = person.http.post(urljoin(tab.url, unlink["action"]), data=unlink["fields"], timeout=10)
    assert done.status_code == 200 and "Public OP is no longer connected to your account." in done.text, (
        done.text
    )
    assert _user_links(database, "lena") == []
    third = Person(base)
    page = third.sign_in(NONE_QUERY, "lena-at-op")
    assert not _signed_in_as(page, "lena")
    assert page.status_code == 200 and 'name="csrf"' in page.text and "@lena-at-op:" in page.text, page.text


def _emails(database: str, username: str) -> list[str]:
    rows = query(
        database,
        "SELECT e.email FROM user_emails e JOIN users u ON u.user_id = e.user_id"
        f" WHERE u.username = '{username}' ORDER BY e.email",
    )
    return [r[0] for r in rows]


def _provision_jobs(database: str, username: str) -> int:
    rows = query(database, f"SELECT user_id FROM users WHERE username = '{username}'")
    user_id = rows[0][0]
    jobs = query(database, "SELECT CAST(payload AS TEXT) FROM queue_jobs WHERE queue_name = 'provision-user'")
    return sum(1 for (payload,) in jobs if json.loads(payload).get("user_id") == user_id)


def test_profile_sync_on_login_re_imports_what_the_provider_changed(stack: dict[str, Any]) -> None:
    synapse, op = stack["synapse"], stack["op"]
    base, database = stack["base"], stack["config"]["database"]["uri"]
    person = Person(base)
    assert _signed_in_as(person.sign_in(PROFILE_SYNC, "mia"), "mia")
    eventually(lambda: (_synapse_user(synapse, "mia") or {}).get("display_name") == "User mia", what="mia")
    assert _emails(database, "mia") == ["mia@example.org"]
    registered = _provision_jobs(database, "mia")
    # The same claims again: nothing to re-import.
    person.forget_provider()
    assert _signed_in_as(person.sign_in(PROFILE_SYNC, "mia"), "mia")
    assert _provision_jobs(database, "mia") == registered
    # The provider changes them: the next sign-in brings them here and to Synapse.
    op.set_claims("mia", name="Mia Wong", email="mia.wong@example.org")
    person.forget_provider()
    assert _signed_in_as(person.sign_in(PROFILE_SYNC, "mia"), "mia")
    assert _emails(database, "mia") == ["mia.wong@example.org"]
    assert _provision_jobs(database, "mia") == registered + 1
    eventually(
        lambda: (_synapse_user(synapse, "mia") or {}).get("display_name") == "Mia Wong", what="the new name"
    )
    # Without on_login, a provider keeps what it imported at registration (MAS's behaviour).
    other = Person(base)
    page = other.submit(other.sign_in(NONE_QUERY, "noor"), {})
    assert _signed_in_as(page, "noor"), page.text
    before = _provision_jobs(database, "noor")
    op.set_claims("noor", name="Noor Changed", email="noor.changed@example.org")
    other.forget_provider()
    assert _signed_in_as(other.sign_in(NONE_QUERY, "noor"), "noor")
    assert _provision_jobs(database, "noor") == before
    assert _emails(database, "noor") == ["noor@example.org"]
