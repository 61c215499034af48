# SPDX-License-Identifier: AGPL-3.0-only
"""A homeserver before its migration: a real Synapse with its own password logins, filled the
way users fill one (synapse-integration.md §5 "Preparing a Synapse DB for syn2mas tests"),
then stopped.

:func:`populated_synapse` starts Synapse without ``matrix_authentication_service``, with a
pepper and ``bcrypt_rounds: 4``, and an appservice; then:

- ``alice`` (admin) and ``bob`` registered with ``register_new_matrix_user``, ``carol``,
  ``dave`` and ``erin`` with it too;
- alice logs in on device ``ALICEDEV`` (no refresh token), bob on ``BOBPHONE`` with a refresh
  token and on ``BOBDESK`` without;
- bob gets an email and a phone number (admin API ``PUT /_synapse/admin/v2/users``);
- carol is deactivated, dave locked (admin API), dave having logged in first;
- alice makes a device-less "login as" token for erin (admin API
  ``POST /_synapse/admin/v1/users/<user>/login``);
- the appservice registers ``bridge_one``.

What was made is returned in :class:`SynapseHome` for the tests to compare against.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import yaml

from tests.integration._harness import postgres_dsn
from tests.integration._synapse import SynapseServer

PEPPER = "pepper-" + "0123456789"
PASSWORDS = {
    "alice": "alice-correct-horse-1",
    "bob": "bób-battery-staple-2",  # not ASCII: Synapse hashes NFKC(password) + pepper
    "carol": "carol-secret-3",
    "dave": "dave-secret-4",
    "erin": "erin-secret-5",
}


@attrs.define
class SynapseHome:
    synapse: SynapseServer
    config_path: Path
    #: ``(localpart, device_id) → access token`` of the password logins.
    tokens: dict[tuple[str, str], str]
    #: bob's refresh token on BOBPHONE.
    refresh_token: str
    puppet_token: str
    as_token: str
    #: Synapse's configuration before the migration (to put back after delegating to us).
    original_config: str

    def restore_config(self) -> None:
        self.synapse.delegate = False
        self.config_path.write_text(self.original_config)


def _register(synapse: SynapseServer, localpart: str, *, admin: bool) -> None:
    script = synapse.python.parent / "register_new_matrix_user"
    out = subprocess.run(
        [
            str(script),
            "-u",
            localpart,
            "-p",
            PASSWORDS[localpart],
            "--admin" if admin else "--no-admin",
            "-k",
            synapse.secret,
            synapse.base_url.rstrip("/"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _ok(resp: Any, what: str) -> Any:
    assert resp.status == 200, f"{what}: {resp.status} {resp.body[:300]!r}"
    return resp.json()


def _login(
    synapse: SynapseServer, localpart: str, device_id: str, name: str, *, refresh: bool
) -> dict[str, Any]:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": localpart},
        "password": PASSWORDS[localpart],
        "device_id": device_id,
        "initial_device_display_name": name,
    }
    if refresh:
        body["refresh_token"] = True
    return _ok(synapse.request("POST", "_matrix/client/v3/login", body=body), f"login {localpart}")


class SynapsePostgresDatabase:
    """A throw-away PostgreSQL database as Synapse wants it: UTF8 with C collation
    (synapse-integration.md §5), dropped by :meth:`drop`."""

    def __init__(self) -> None:
        import psycopg2
        from psycopg2.extensions import make_dsn, parse_dsn

        self.admin_dsn = postgres_dsn()
        self.name = "synapse_" + secrets.token_hex(6)
        conn = psycopg2.connect(self.admin_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE \"{self.name}\" ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C'"
                " TEMPLATE template0"
            )
        conn.close()
        params = parse_dsn(self.admin_dsn)
        params["dbname"] = self.name
        self.dsn = make_dsn(**params)

    def drop(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.name,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        conn.close()


def populated_synapse(workdir: Path, *, postgres_dsn: str | None = None) -> SynapseHome:
    """Start a Synapse with its own logins in ``workdir`` (on SQLite, or on the PostgreSQL
    database ``postgres_dsn``), fill it, stop it."""
    as_token = "as-" + secrets.token_hex(16)
    registration = workdir / "appservice.yaml"
    registration.write_text(
        yaml.safe_dump(
            {
                "id": "bridge",
                "url": None,
                "as_token": as_token,
                "hs_token": "hs-" + secrets.token_hex(16),
                "sender_localpart": "bridgebot",
                "namespaces": {"users": [{"exclusive": True, "regex": "@bridge_.*:localhost"}]},
                "rate_limited": False,
            }
        )
    )
    synapse = SynapseServer(
        workdir,
        delegate=False,
        postgres_dsn=postgres_dsn,
        extra_config={
            "password_config": {"pepper": PEPPER},
            "bcrypt_rounds": 4,
            "refresh_token_lifetime": "1h",
            "app_service_config_files": [str(registration)],
        },
    )
    synapse.start()
    try:
        _register(synapse, "alice", admin=True)
        for name in ("bob", "carol", "dave", "erin"):
            _register(synapse, name, admin=False)
        tokens: dict[tuple[str, str], str] = {}
        alice = _login(synapse, "alice", "ALICEDEV", "Alice laptop", refresh=False)
        tokens["alice", "ALICEDEV"] = alice["access_token"]
        phone = _login(synapse, "bob", "BOBPHONE", "Bob phone", refresh=True)
        tokens["bob", "BOBPHONE"] = phone["access_token"]
        desk = _login(synapse, "bob", "BOBDESK", "Bob desk", refresh=False)
        tokens["bob", "BOBDESK"] = desk["access_token"]
        dave = _login(synapse, "dave", "DAVEDEV", "Dave", refresh=False)
        tokens["dave", "DAVEDEV"] = dave["access_token"]
        admin = alice["access_token"]
        for token in tokens.values():
            _ok(synapse.whoami(token), "whoami")

        _ok(
            synapse.request(
                "PUT",
                f"_synapse/admin/v2/users/{quote(synapse.mxid('bob'))}",
                token=admin,
                body={
                    "threepids": [
                        {"medium": "email", "address": "bob@example.com"},
                        {"medium": "msisdn", "address": "15551234567"},
                    ]
                },
            ),
            "threepids",
        )
        _ok(
            synapse.request(
                "POST", f"_synapse/admin/v1/deactivate/{quote(synapse.mxid('carol'))}", token=admin, body={}
            ),
            "deactivate",
        )
        _ok(
            synapse.request(
                "PUT",
                f"_synapse/admin/v2/users/{quote(synapse.mxid('dave'))}",
                token=admin,
                body={"locked": True},
            ),
            "lock",
        )
        puppet = _ok(
            synapse.request(
                "POST", f"_synapse/admin/v1/users/{quote(synapse.mxid('erin'))}/login", token=admin, body={}
            ),
            "puppet login",
        )
        _ok(
            synapse.request(
                "POST",
                "_matrix/client/v3/register",
                token=as_token,
                body={"type": "m.login.application_service", "username": "bridge_one"},
            ),
            "appservice registration",
        )
    finally:
        synapse.stop()
    return SynapseHome(
        synapse=synapse,
        config_path=synapse.config_path,
        tokens=tokens,
        refresh_token=phone["refresh_token"],
        puppet_token=puppet["access_token"],
        as_token=as_token,
        original_config=synapse.config_path.read_text(),
    )


def mas_config_for(
    home: SynapseHome, base: dict[str, Any], *, kind: str = "synapse_read_only"
) -> dict[str, Any]:
    """Our configuration for migrating ``home``: Synapse's server name and pepper."""
    config = dict(base)
    config["matrix"] = {
        "kind": kind,
        "homeserver": home.synapse.server_name,
        "endpoint": home.synapse.base_url,
        "secret": home.synapse.secret,
    }
    config["passwords"] = {
        "enabled": True,
        "schemes": [
            {"version": 1, "algorithm": "bcrypt", "unicode_normalization": True, "secret": PEPPER},
            {"version": 2, "algorithm": "argon2id"},
        ],
    }
    return config
