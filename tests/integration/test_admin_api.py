# SPDX-License-Identifier: AGPL-3.0-only
"""The admin API on a live ``twistd mas`` (both engines): an operator's plain-HTTP script
(a ``client_credentials`` token of a client listed in ``policy.data.admin_clients``, then
users, emails and sessions), and schemathesis run against ``/api/spec.json``: no server error
and no answer that violates the document, in positive and negative modes."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration._harness import (
    PostgresDatabase,
    TwistdProcess,
    base_config,
    eventually,
    free_port,
    venv_script,
)
from tests.integration._harness import request as http_request
from tests.integration._synapse import SynapseServer

ENGINES = ["sqlite", "postgres"]
ADMIN_CLIENT_ID = "01J0000000000000000ADM1N00"
ADMIN_CLIENT_SECRET = "admin-client-secret"
#: Examples per operation and phase; enough to reach every parameter of every route.
MAX_EXAMPLES = int(os.environ.get("MAS_TEST_SCHEMATHESIS_EXAMPLES", "40"))


@contextlib.contextmanager
def admin_service(tmp: Path, engine: str) -> Iterator[dict[str, Any]]:
    """A real Synapse and ``twistd mas`` (with its worker) serving the admin API and the
    compatibility API, a static client listed in ``policy.data.admin_clients`` and its
    ``client_credentials`` token."""
    db = PostgresDatabase() if engine == "postgres" else None
    (tmp / "synapse").mkdir()
    synapse = SynapseServer(tmp / "synapse", mas_port=free_port())
    proc = None
    try:
        synapse.start()
        port = synapse.mas_port
        base = synapse.mas_endpoint
        config = base_config(tmp, database_uri=db.uri if db else None)
        config["http"] = {
            "public_base": base,
            "listeners": [
                {
                    "name": "web",
                    "resources": [
                        {"name": n} for n in ("discovery", "oauth", "health", "compat", "adminapi")
                    ],
                    "binds": [{"host": "127.0.0.1", "port": port}],
                }
            ],
        }
        config["matrix"] = {
            "kind": "synapse",
            "homeserver": synapse.server_name,
            "endpoint": synapse.base_url,
            "secret": synapse.secret,
        }
        config["clients"] = [
            {
                "client_id": ADMIN_CLIENT_ID,
                "client_auth_method": "client_secret_basic",
                "client_secret": ADMIN_CLIENT_SECRET,
            }
        ]
        config["policy"] = {"data": {"admin_clients": [ADMIN_CLIENT_ID]}}
        config["rate_limiting"] = {"login": {"per_ip": {"burst": 1000, "per_second": 100}}}
        proc = TwistdProcess(tmp, config).start()
        proc.wait_until(lambda: http_request("GET", "/health", port=port))
        token = requests.post(
            base + "oauth2/token",
            data={"grant_type": "client_credentials", "scope": "urn:mas:admin"},
            auth=(ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET),
            timeout=10,
        )
        assert token.status_code == 200, token.text
        yield {
            "base": base,
            "port": port,
            "token": token.json()["access_token"],
            "proc": proc,
            "tmp": tmp,
            "synapse": synapse,
            "secret": synapse.secret,
        }
    finally:
        if proc is not None:
            proc.stop()
        synapse.stop()
        if db:
            db.drop()


@pytest.fixture(scope="module", params=ENGINES, name="service")
def _service(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    with admin_service(tmp_path_factory.mktemp(f"admin-{request.param}"), request.param) as running:
        yield running


def _introspect(service: dict[str, Any], token: str) -> dict[str, Any]:
    resp = requests.post(
        service["base"] + "oauth2/introspect",
        data={"token": token},
        headers={"Authorization": f"Bearer {service['secret']}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def _compat_login(service: dict[str, Any], username: str, password: str, device: str) -> requests.Response:
    return requests.post(
        service["base"] + "_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": username},
            "password": password,
            "device_id": device,
        },
        timeout=10,
    )


def test_operator_script(service: dict[str, Any]) -> None:
    """What an operator's script does with plain HTTP, seen on the real Synapse."""
    synapse = service["synapse"]
    base, headers = service["base"] + "api/admin/v1", {"Authorization": f"Bearer {service['token']}"}
    assert requests.get(base + "/users", timeout=10).status_code == 400

    created = requests.post(
        base + "/users", json={"username": "opal", "displayname": "Opal"}, headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["data"]["id"]
    eventually(lambda: synapse.profile("opal").status == 200, what="opal provisioned on Synapse")
    taken = requests.post(base + "/users", json={"username": "opal"}, headers=headers, timeout=10)
    assert taken.status_code == 409, taken.text

    password = "a long and unusual admin-set password 77"
    resp = requests.post(
        base + f"/users/{user_id}/set-password", json={"password": password}, headers=headers, timeout=10
    )
    assert resp.status_code == 204, resp.text
    login = _compat_login(service, "opal", password, "ADMINDEV1")
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    assert synapse.whoami(token).status == 200
    eventually(lambda: "ADMINDEV1" in synapse.devices("opal"), what="device on Synapse")

    sessions = requests.get(
        base + f"/compat-sessions?filter[user]={user_id}", headers=headers, timeout=10
    ).json()
    assert [s["attributes"]["device_id"] for s in sessions["data"]] == ["ADMINDEV1"]
    finished = requests.post(
        base + f"/compat-sessions/{sessions['data'][0]['id']}/finish", headers=headers, timeout=10
    )
    assert finished.status_code == 200, finished.text
    assert _introspect(service, token) == {"active": False}
    eventually(lambda: "ADMINDEV1" not in synapse.devices("opal"), what="device gone from Synapse")
    assert synapse.whoami(token).status == 401

    # A personal access token for opal, with a device: Synapse knows the device at once and
    # accepts the token; revoked, the token dies and the device goes.
    personal = requests.post(
        base + "/personal-sessions",
        json={
            "actor_user_id": user_id,
            "human_name": "opal's bot",
            "scope": "urn:matrix:client:api:* urn:matrix:client:device:PERSONAL01",
            "expires_in": 3600,
        },
        headers=headers,
        timeout=10,
    )
    assert personal.status_code == 201, personal.text
    personal_id = personal.json()["data"]["id"]
    personal_token = personal.json()["data"]["attributes"]["access_token"]
    assert personal_token.startswith("mpt_")
    assert "PERSONAL01" in synapse.devices("opal")
    whoami = synapse.whoami(personal_token)
    assert whoami.status == 200 and whoami.json()["user_id"] == synapse.mxid("opal"), whoami
    assert whoami.json().get("device_id") == "PERSONAL01", whoami.json()
    again = requests.get(base + f"/personal-sessions/{personal_id}", headers=headers, timeout=10).json()
    assert "access_token" not in again["data"]["attributes"]
    revoked = requests.post(base + f"/personal-sessions/{personal_id}/revoke", headers=headers, timeout=10)
    assert revoked.status_code == 200, revoked.text
    assert _introspect(service, personal_token) == {"active": False}
    eventually(lambda: "PERSONAL01" not in synapse.devices("opal"), what="personal device gone from Synapse")
    assert synapse.whoami(personal_token).status == 401

    # A personal token with urn:mas:admin is an admin API credential of its own.
    admin_personal = requests.post(
        base + "/personal-sessions",
        json={"actor_user_id": user_id, "human_name": "opal admin", "scope": "urn:mas:admin"},
        headers=headers,
        timeout=10,
    ).json()["data"]["attributes"]["access_token"]
    listed_by_personal = requests.get(
        base + "/personal-sessions?filter[status]=revoked",
        headers={"Authorization": f"Bearer {admin_personal}"},
        timeout=10,
    )
    assert listed_by_personal.status_code == 200, listed_by_personal.text
    assert [s["id"] for s in listed_by_personal.json()["data"]] == [personal_id]

    second = _compat_login(service, "opal", password, "ADMINDEV2").json()["access_token"]
    locked = requests.post(base + f"/users/{user_id}/lock", headers=headers, timeout=10).json()
    assert locked["data"]["attributes"]["locked_at"] is not None
    assert _introspect(service, second) == {"active": False}
    assert _compat_login(service, "opal", password, "ADMINDEV3").status_code == 401
    eventually(
        lambda: synapse.query("SELECT locked FROM users WHERE name = ?", (synapse.mxid("opal"),)) == [(1,)],
        what="opal locked on Synapse",
    )
    listed = requests.get(base + "/users?filter[status]=locked", headers=headers, timeout=10).json()
    assert [u["id"] for u in listed["data"]] == [user_id] and listed["meta"]["count"] == 1

    spec = requests.get(service["base"] + "api/spec.json", timeout=10).json()
    assert spec["openapi"].startswith("3.1") and "/api/admin/v1/users" in spec["paths"]
    doc = requests.get(service["base"] + "api/doc/", timeout=10)
    assert doc.status_code == 200 and "listUsers" in doc.text and "<script" not in doc.text


def test_schemathesis(service: dict[str, Any]) -> None:
    out = subprocess.run(
        [
            venv_script("schemathesis"),
            "run",
            service["base"] + "api/spec.json",
            "--header",
            f"Authorization: Bearer {service['token']}",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--seed",
            "15",
            "--no-color",
            # Its stateful phase would find the session of the token it runs with and finish it.
            "--exclude-operation-id",
            "finishOAuth2Session",
        ],
        capture_output=True,
        text=True,
        cwd=service["tmp"],
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-5000:]
    log = service["proc"].output()
    assert "Unhandled error" not in log, log[-20000:]
