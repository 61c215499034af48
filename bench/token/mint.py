# SPDX-License-Identifier: AGPL-3.0-only
"""Mint fresh grants for bench/token into the database of a ``twistd mas`` configuration.

For each grant that needs something to exchange, COUNT fresh items written through the
project's own models and the database pool (``simple_insert_many``, one transaction per
batch), and the form bodies of the token requests that exchange them written to
``OUTDIR/GRANT.txt``, one a line (the wrk script posts each once):

- ``refresh``: COUNT OAuth 2.0 sessions of the bench client, each with an access token and
  the live refresh token issued with it (``grant_type=refresh_token``);
- ``code``: COUNT authorization grants, fulfilled now by one active browser session of the
  ``bench`` user, each with its own code (``grant_type=authorization_code``; no PKCE, as the
  oidc-provider baseline);
- ``device``: COUNT device code grants, fulfilled now by that browser session
  (``grant_type=urn:ietf:params:oauth:grant-type:device_code``).

Scopes: ``urn:matrix:client:api:*`` for the refresh tokens (a refresh issues no ID token),
``openid urn:matrix:client:api:*`` for codes and device codes (an ID token is signed, as
oidc-provider signs one for ``openid``). No device scope: no homeserver runs beside the
bench. Each call makes a new user (``bench-<ULID>``), so rounds never share anything.

Usage::

    .venv/bin/python bench/token/mint.py CONFIG CLIENT_ID OUTDIR COUNT [GRANT ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: Rows per transaction.
BATCH = 10_000
GRANTS = ("refresh", "code", "device")
REDIRECT_URI = "https://bench.example/cb"
REFRESH_SCOPE = "urn:matrix:client:api:*"
CODE_SCOPE = "openid urn:matrix:client:api:*"
DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


def mint(
    config_path: Path,
    client_id: str,
    outdir: Path,
    count: int,
    grants: tuple[str, ...] = GRANTS,
    env: dict[str, str] | None = None,
    root: Path = ROOT,
) -> None:
    """Run this script (in a process of its own: it runs a reactor) with ``env`` added;
    ``root`` is the checkout whose ``bench/token/mint.py`` runs (``run.py --compare``)."""
    script = root / "bench" / "token" / "mint.py"
    subprocess.run(
        [sys.executable, str(script), str(config_path), client_id, str(outdir), str(count), *grants],
        check=True,
        cwd=root,
        env={**os.environ, **(env or {})},
    )


async def _mint(
    reactor: Any, config_path: str, client_id: str, outdir: Path, count: int, grants: list[str]
) -> None:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.server import MasServer
    from mas_twisted.storage.prepare_database import prepare_database
    from mas_twisted.storage.stores.authorization_grants import TABLE as GRANTS_TABLE
    from mas_twisted.storage.stores.device_code_grants import TABLE as DEVICE_TABLE
    from mas_twisted.types.oauth2 import (
        AccessToken,
        AuthorizationGrant,
        DeviceCodeGrant,
        OAuth2Session,
        RefreshToken,
    )
    from mas_twisted.types.tokens import TokenType
    from mas_twisted.types.users import BrowserSession, User

    started = time.monotonic()
    config = RootConfig.load([config_path])
    prepare_database(config.database)
    server = MasServer(config, reactor)
    tokens = server.get_token_generator()
    stores = server.get_stores()
    db_pool = server.get_db_pool()
    now = server.get_clock().time_msec()

    user = User(id=tokens.ulid(), username=f"bench-{tokens.ulid().lower()}", created_at=now)
    await stores.users.add_user(user)
    browser_session = BrowserSession(id=tokens.ulid(), user=user, created_at=now)
    await stores.browser_sessions.add_browser_session(browser_session)

    async def insert(table: str, model: Any, items: list[Any]) -> None:
        keys = list(model.COLUMNS)
        for start in range(0, len(items), BATCH):
            rows = [[item.to_row()[k] for k in keys] for item in items[start : start + BATCH]]
            await db_pool.simple_insert_many(table, keys, rows, desc=f"bench_mint_{table}")

    outdir.mkdir(parents=True, exist_ok=True)
    if "refresh" in grants:
        sessions, access_tokens, refresh_tokens = [], [], []
        for _ in range(count):
            session = OAuth2Session(
                id=tokens.ulid(now),
                client_id=client_id,
                scope=REFRESH_SCOPE,
                created_at=now,
                user_id=user.id,
                user_session_id=browser_session.id,
            )
            access = AccessToken(
                id=tokens.ulid(now),
                session_id=session.id,
                access_token=tokens.token(TokenType.ACCESS_TOKEN),
                created_at=now,
                expires_at=now + 300_000,
            )
            refresh = RefreshToken(
                id=tokens.ulid(now),
                session_id=session.id,
                refresh_token=tokens.token(TokenType.REFRESH_TOKEN),
                created_at=now,
                access_token_id=access.id,
            )
            sessions.append(session)
            access_tokens.append(access)
            refresh_tokens.append(refresh)
        await insert("oauth2_sessions", OAuth2Session, sessions)
        await insert("oauth2_access_tokens", AccessToken, access_tokens)
        await insert("oauth2_refresh_tokens", RefreshToken, refresh_tokens)
        _write(
            outdir / "refresh.txt",
            ({"grant_type": "refresh_token", "refresh_token": t.refresh_token} for t in refresh_tokens),
        )
    if "code" in grants:
        code_grants = [
            AuthorizationGrant(
                id=tokens.ulid(now),
                client_id=client_id,
                redirect_uri=REDIRECT_URI,
                scope=CODE_SCOPE,
                created_at=now,
                response_mode="query",
                code=tokens.authorization_code(),
                nonce=tokens.alphanumeric(16),
                fulfilled_at=now,
                user_session_id=browser_session.id,
            )
            for _ in range(count)
        ]
        await insert(GRANTS_TABLE, AuthorizationGrant, code_grants)
        _write(
            outdir / "code.txt",
            (
                {"grant_type": "authorization_code", "code": g.code, "redirect_uri": REDIRECT_URI}
                for g in code_grants
            ),
        )
    if "device" in grants:
        device_grants = []
        for _ in range(count):
            grant_id = tokens.ulid(now)
            device_grants.append(
                DeviceCodeGrant(
                    id=grant_id,
                    client_id=client_id,
                    scope=CODE_SCOPE,
                    # Unique, unlike COUNT random 6-character codes; the exchange never reads it.
                    user_code=grant_id,
                    device_code=tokens.device_code(),
                    created_at=now,
                    expires_at=now + 3_600_000,
                    fulfilled_at=now,
                    user_session_id=browser_session.id,
                )
            )
        await insert(DEVICE_TABLE, DeviceCodeGrant, device_grants)
        _write(
            outdir / "device.txt",
            ({"grant_type": DEVICE_CODE_GRANT_TYPE, "device_code": g.device_code} for g in device_grants),
        )
    db_pool.close()
    print(f"minted {count} x {', '.join(grants)} in {time.monotonic() - started:.1f} s", flush=True)


def _write(path: Path, forms: Any) -> None:
    with open(path, "w") as out:
        for form in forms:
            out.write(urlencode(form) + "\n")


def main() -> None:
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    config_path, client_id, outdir, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    grants = sys.argv[5:] or list(GRANTS)
    unknown = set(grants) - set(GRANTS)
    if unknown:
        raise SystemExit(f"unknown grants {sorted(unknown)} (known: {', '.join(GRANTS)})")
    # After PYTHONPATH: run.py --compare points it at another commit's checkout, whose
    # mas_twisted must be the one minting (this script mints with any version since 65f576e).
    sys.path.append(str(ROOT))
    from twisted.internet import defer, task

    task.react(
        lambda reactor: defer.ensureDeferred(_mint(reactor, config_path, client_id, outdir, count, grants))
    )


if __name__ == "__main__":
    main()
