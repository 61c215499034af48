# SPDX-License-Identifier: AGPL-3.0-only
"""One authorization code exchanged by many requests at once, against the real ``twistd mas``
on PostgreSQL and on SQLite (issue 4).

RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once"; the server
must deny a second use, and MAS (``crates/handlers/src/oauth2/token.rs``; mas-inventory.md
§2.1) answers every re-use with ``invalid_grant`` and ends the session the first exchange
created only when that exchange is more than 20 seconds old. So for each code:

- of ``CONTENDERS`` concurrent ``POST /oauth2/token`` exchanges (all connected first, then
  written at once), exactly one gets 200 and a token pair, every other one 400
  ``invalid_grant``;
- the database holds one new session for the client, with exactly one access token and one
  refresh token, the ones the winner received;
- the losers came within the 20 s grace, so the winner's tokens stay active (introspection
  with the homeserver's shared secret, as Synapse does);
- once the exchange is made older than 20 s (``exchanged_at`` moved back in the database),
  one more replay is ``invalid_grant`` and ends the session: both tokens go inactive.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import yaml

# service: the running service of the OAuth end-to-end tests (both engines, user alice), one per module.
from tests.integration._oauth import (  # noqa: F401 - service is a pytest fixture
    REDIRECT_URI,
    Browser,
    introspect,
    login_and_consent,
    register,
    service,
)

CONTENDERS = 8
CODES = 5
REUSE_GRACE_MS = 20 * 1000


class Database:
    """Questions (and one scenario write) to the service's database, from outside the service."""

    def __init__(self, uri: str):
        self.uri = uri
        self.postgres = uri.startswith("postgres")

    @classmethod
    def of(cls, config_path: Path) -> Database:
        return cls(yaml.safe_load(config_path.read_text())["database"]["uri"])

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg2

            return psycopg2.connect(self.uri)
        return sqlite3.connect(self.uri.removeprefix("sqlite:///"), timeout=30)

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()


def exchange_at_once(port: int, body: dict[str, str], contenders: int) -> list[tuple[int, dict]]:
    """``contenders`` identical token requests: every connection is opened first, then all
    requests are written together once every thread is at the barrier."""
    encoded = urlencode(body)
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(contenders)]
    for conn in conns:
        conn.connect()
    barrier = threading.Barrier(contenders)
    results: list[Any] = [None] * contenders

    def _run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            conns[i].request(
                "POST",
                "/oauth2/token",
                body=encoded,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            resp = conns[i].getresponse()
            raw = resp.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"raw": raw.decode(errors="replace")}
            results[i] = (resp.status, parsed)
        except Exception as e:  # reported to the test thread
            results[i] = e
        finally:
            conns[i].close()

    threads = [threading.Thread(target=_run, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
        assert not thread.is_alive(), "a token request hung"
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


def new_code(service: dict, client_id: str, verifier: str) -> str:
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session(client_id, scope="openid", redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    url, _state = client.create_authorization_url(
        service["metadata"]["authorization_endpoint"], code_verifier=verifier
    )
    callback = login_and_consent(service, Browser(service["base"]), url)
    return parse_qs(urlsplit(callback).query)["code"][0]


def test_concurrent_code_exchange_yields_one_token_pair(service) -> None:
    db = Database.of(service["proc"].config_path)
    info = register(
        service,
        token_endpoint_auth_method="client_secret_post",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    client_id = info["client_id"]
    verifier = "r" * 64

    for round_ in range(CODES):
        code = new_code(service, client_id, verifier)
        sessions_before = db.execute(
            "SELECT COUNT(*) FROM oauth2_sessions WHERE oauth2_client_id = ?", (client_id,)
        )[0][0]
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "client_secret": info["client_secret"],
            "code_verifier": verifier,
        }
        results = exchange_at_once(service["port"], body, CONTENDERS)

        winners = [b for status, b in results if status == 200]
        losers = [(status, b) for status, b in results if status != 200]
        assert len(winners) == 1, (round_, results)
        assert all(status == 400 and b.get("error") == "invalid_grant" for status, b in losers), (
            round_,
            results,
        )
        token = winners[0]
        assert token["access_token"].startswith("mat_") and token["refresh_token"].startswith("mar_"), token

        # One session for the code, holding exactly the winner's pair; nothing of the losers.
        rows = db.execute(
            "SELECT oauth2_session_id, exchanged_at FROM oauth2_authorization_grants"
            " WHERE authorization_code = ?",
            (code,),
        )
        assert len(rows) == 1 and rows[0][0] is not None and rows[0][1] is not None, rows
        session_id = rows[0][0]
        assert (
            db.execute("SELECT COUNT(*) FROM oauth2_sessions WHERE oauth2_client_id = ?", (client_id,))[0][0]
            == sessions_before + 1
        )
        access = db.execute(
            "SELECT access_token, revoked_at FROM oauth2_access_tokens WHERE oauth2_session_id = ?",
            (session_id,),
        )
        refresh = db.execute(
            "SELECT refresh_token, revoked_at, consumed_at FROM oauth2_refresh_tokens"
            " WHERE oauth2_session_id = ?",
            (session_id,),
        )
        assert access == [(token["access_token"], None)], access
        assert refresh == [(token["refresh_token"], None, None)], refresh

        # The losers replayed the code within MAS's 20 s grace: the session lives on.
        assert db.execute(
            "SELECT finished_at FROM oauth2_sessions WHERE oauth2_session_id = ?", (session_id,)
        ) == [(None,)]
        seen = introspect(service, token["access_token"])
        assert seen["active"] is True and seen["username"] == "alice" and seen["client_id"] == client_id, seen
        assert introspect(service, token["refresh_token"])["active"] is True

        # A replay once the exchange is older than the grace ends the session (MAS's replay defence).
        db.execute(
            "UPDATE oauth2_authorization_grants SET exchanged_at = exchanged_at - ?"
            " WHERE authorization_code = ?",
            (REUSE_GRACE_MS + 1000, code),
        )
        late = requests.post(service["metadata"]["token_endpoint"], data=body, timeout=30)
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant", late.text
        assert introspect(service, token["access_token"]) == {"active": False}
        assert introspect(service, token["refresh_token"]) == {"active": False}
        finished = db.execute(
            "SELECT finished_at FROM oauth2_sessions WHERE oauth2_session_id = ?", (session_id,)
        )
        assert finished[0][0] is not None, finished
