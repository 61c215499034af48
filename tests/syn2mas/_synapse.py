# SPDX-License-Identifier: AGPL-3.0-only
"""A SUBSET of Synapse's schema, for fast tests of syn2mas's reading and checks.

Only the tables and columns syn2mas reads (synapse-integration.md §7, dumped from Synapse
1.163.2 at schema version 94), with Synapse's column types: the old flags are ``smallint``
0/1, the newer ones ``boolean``. It is not Synapse's schema: no indexes beyond the unique ones,
no other tables. The tests that run a real Synapse are ``tests/integration/test_syn2mas.py``;
these build the cases a real Synapse no longer lets one make (upper-case user ids, guests,
appservice users with ``:`` in the localpart, one address on two accounts) or that need an
upstream provider.

:class:`SynapseDatabase` is built on the suite's engine (an :class:`~tests.utils.EmptyDatabase`:
a SQLite file, or a new PostgreSQL database with ``MAS_TEST_POSTGRES_DSN``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.utils import EmptyDatabase

SCHEMA_SUBSET = (
    (
        "CREATE TABLE users (name TEXT, password_hash TEXT, creation_ts BIGINT, admin SMALLINT DEFAULT 0 NOT NULL,"
        " upgrade_ts BIGINT, is_guest SMALLINT DEFAULT 0 NOT NULL, appservice_id TEXT, consent_version TEXT,"
        " user_type TEXT, deactivated SMALLINT DEFAULT 0 NOT NULL, shadow_banned BOOLEAN, approved BOOLEAN,"
        " locked BOOLEAN DEFAULT FALSE NOT NULL, suspended BOOLEAN DEFAULT FALSE NOT NULL, UNIQUE (name))"
    ),
    (
        "CREATE TABLE user_threepids (user_id TEXT NOT NULL, medium TEXT NOT NULL, address TEXT NOT NULL,"
        " validated_at BIGINT NOT NULL, added_at BIGINT NOT NULL, UNIQUE (medium, address))"
    ),
    (
        "CREATE TABLE user_external_ids (auth_provider TEXT NOT NULL, external_id TEXT NOT NULL,"
        " user_id TEXT NOT NULL, UNIQUE (auth_provider, external_id))"
    ),
    (
        "CREATE TABLE devices (user_id TEXT NOT NULL, device_id TEXT NOT NULL, display_name TEXT,"
        " last_seen BIGINT, ip TEXT, user_agent TEXT, hidden BOOLEAN DEFAULT FALSE, UNIQUE (user_id, device_id))"
    ),
    (
        "CREATE TABLE refresh_tokens (id BIGINT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL,"
        " token TEXT NOT NULL, next_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,"
        " expiry_ts BIGINT, ultimate_session_expiry_ts BIGINT, UNIQUE (token))"
    ),
    (
        "CREATE TABLE access_tokens (id BIGINT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT,"
        " token TEXT NOT NULL, valid_until_ms BIGINT, puppets_user_id TEXT, last_validated BIGINT,"
        " refresh_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE, used BOOLEAN, UNIQUE (token))"
    ),
)

SERVER_NAME = "example.com"
PEPPER = "synapse-pepper"


class SynapseDatabase:
    """A Synapse-shaped database (:data:`SCHEMA_SUBSET`) with helpers that insert rows."""

    def __init__(self, directory: Path):
        self.db = EmptyDatabase(str(directory))
        self._ids = 0
        for statement in SCHEMA_SUBSET:
            self.db.query(statement)

    @property
    def engine_name(self) -> str:
        return self.db.engine_name

    def database_section(self) -> dict[str, Any]:
        """Synapse's ``database:`` section for it."""
        if self.db.engine_name == "postgres":
            c = self.db.config_section
            args = {"dbname": c["database"], "host": c.get("host", "127.0.0.1"), "port": c.get("port", 5432)}
            if c.get("username"):
                args["user"] = c["username"]
            if c.get("password"):
                args["password"] = c["password"]
            return {"name": "psycopg2", "args": args}
        return {"name": "sqlite3", "args": {"database": self.db.config_section["uri"][len("sqlite:///") :]}}

    def write_config(self, path: Path, **extra: Any) -> Path:
        """A ``homeserver.yaml`` for this database (``server_name``, pepper, ``extra`` keys)."""
        config: dict[str, Any] = {
            "server_name": SERVER_NAME,
            "database": self.database_section(),
            "password_config": {"pepper": PEPPER},
        }
        config.update(extra)
        path.write_text(yaml.safe_dump(config))
        return path

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def user(
        self,
        localpart: str,
        *,
        server: str = SERVER_NAME,
        password_hash: str | None = "$2b$04$" + "a" * 53,
        creation_ts: int = 1_700_000_000,
        admin: bool = False,
        deactivated: bool = False,
        locked: bool = False,
        is_guest: bool = False,
        appservice_id: str | None = None,
    ) -> str:
        name = f"@{localpart}:{server}"
        self.db.query(
            "INSERT INTO users (name, password_hash, creation_ts, admin, deactivated, locked, is_guest,"
            " appservice_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                password_hash,
                creation_ts,
                int(admin),
                int(deactivated),
                locked,
                int(is_guest),
                appservice_id,
            ),
        )
        return name

    def threepid(self, user_id: str, medium: str, address: str, added_at: int = 1_700_000_000_123) -> None:
        self.db.query(
            "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) VALUES (?, ?, ?, ?, ?)",
            (user_id, medium, address, added_at, added_at),
        )

    def external_id(self, user_id: str, auth_provider: str, external_id: str) -> None:
        self.db.query(
            "INSERT INTO user_external_ids (auth_provider, external_id, user_id) VALUES (?, ?, ?)",
            (auth_provider, external_id, user_id),
        )

    def device(
        self,
        user_id: str,
        device_id: str,
        *,
        display_name: str | None = None,
        last_seen: int | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        hidden: bool = False,
    ) -> None:
        self.db.query(
            "INSERT INTO devices (user_id, device_id, display_name, last_seen, ip, user_agent, hidden)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, device_id, display_name, last_seen, ip, user_agent, hidden),
        )

    def access_token(
        self,
        user_id: str,
        device_id: str | None,
        token: str,
        *,
        valid_until_ms: int | None = None,
        last_validated: int | None = None,
        puppets_user_id: str | None = None,
        refresh_token_id: int | None = None,
        used: bool | None = None,
    ) -> int:
        token_id = self._next_id()
        self.db.query(
            "INSERT INTO access_tokens (id, user_id, device_id, token, valid_until_ms, puppets_user_id,"
            " last_validated, refresh_token_id, used) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_id,
                user_id,
                device_id,
                token,
                valid_until_ms,
                puppets_user_id,
                last_validated,
                refresh_token_id,
                used,
            ),
        )
        return token_id

    def refresh_token(
        self, user_id: str, device_id: str, token: str, *, next_token_id: int | None = None
    ) -> int:
        refresh_id = self._next_id()
        self.db.query(
            "INSERT INTO refresh_tokens (id, user_id, device_id, token, next_token_id) VALUES (?, ?, ?, ?, ?)",
            (refresh_id, user_id, device_id, token, next_token_id),
        )
        return refresh_id

    def cleanup(self) -> None:
        self.db.cleanup()


ENCRYPTION_KEY = "0123456789abcdef" * 4


def write_mas_config(
    path: Path,
    target: EmptyDatabase,
    *,
    homeserver: str = SERVER_NAME,
    pepper: str | None = PEPPER,
    providers: list[dict[str, Any]] | None = None,
) -> Path:
    """Our configuration, ready for a migration of :class:`SynapseDatabase` into ``target``."""
    scheme: dict[str, Any] = {"version": 1, "algorithm": "bcrypt", "unicode_normalization": True}
    if pepper is not None:
        scheme["secret"] = pepper
    config: dict[str, Any] = {
        "database": target.config_section,
        "secrets": {"encryption": ENCRYPTION_KEY},
        "matrix": {"homeserver": homeserver, "secret": "shared-secret", "endpoint": "http://127.0.0.1:9/"},
        "passwords": {"schemes": [scheme, {"version": 2, "algorithm": "argon2id"}]},
    }
    if providers:
        config["upstream_oauth2"] = {"providers": providers}
    path.write_text(yaml.safe_dump(config))
    return path


def run_syn2mas(
    command: str,
    mas_config: Path,
    synapse_config: Path,
    *,
    dry_run: bool = False,
    ignore_missing_auth_providers: bool = False,
) -> tuple[int, list[str]]:
    """One run in this process: ``(exit status, lines printed)``."""
    import io

    from mas_twisted.syn2mas.runner import Options, run

    out = io.StringIO()
    status = run(
        Options(
            command=command,
            config_files=[str(mas_config)],
            synapse_config_files=[str(synapse_config)],
            dry_run=dry_run,
            ignore_missing_auth_providers=ignore_missing_auth_providers,
        ),
        out=out,
    )
    return status, out.getvalue().splitlines()
