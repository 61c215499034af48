# SPDX-License-Identifier: AGPL-3.0-only
"""Mint COUNT live access tokens (OAuth 2.0 and compatibility) into the database of a ``twistd mas`` configuration.

For bench/introspect: one user (``bench``), one client, and COUNT sessions, each with one
access token (OAuth ones valid for a day, with the scope Synapse needs: the C-S API and a
device of its own), as Matrix clients that logged in COUNT times would have. Rows are written with the
database pool's ``simple_insert_many`` in transactions of :data:`BATCH` rows, never one
transaction per token. The schema is migrated first. The token strings are written to
TOKENS_FILE, one a line, for the wrk script.

KIND chooses what is minted (:data:`MINTERS`): ``oauth`` (OAuth 2.0 sessions, ``mat_``),
``compat`` (compatibility sessions with a device each, ``mct_``, what legacy ``/login`` and
syn2mas-imported Synapse tokens are), or ``mixed`` (the default of bench/introspect: batches
of each in turn, half and half, interleaved in TOKENS_FILE so that the load rotates through
both kinds).

Usage::

    .venv/bin/python bench/introspect/mint.py CONFIG COUNT TOKENS_FILE [KIND]
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: Rows per transaction.
BATCH = 10_000
#: How long the minted access tokens stay valid.
TOKEN_TTL_MS = 24 * 3600 * 1000
SCOPE_PREFIX = ["openid", "urn:matrix:client:api:*"]


def mint_tokens(
    config_path: Path,
    count: int,
    tokens_path: Path,
    kind: str = "mixed",
    env: dict[str, str] | None = None,
    root: Path = ROOT,
) -> None:
    """Mint ``count`` tokens of ``kind`` (a key of :data:`MINTERS`) into the database of
    ``config_path`` (in a process of its own, since it runs a reactor, with ``env`` added to
    its environment) and write them to ``tokens_path``. ``root`` is the checkout whose
    ``bench/introspect/mint.py`` runs (another commit's, for ``run.py --compare``)."""
    script = root / "bench" / "introspect" / "mint.py"
    subprocess.run(
        [sys.executable, str(script), str(config_path), str(count), str(tokens_path), kind],
        check=True,
        cwd=root,
        env={**os.environ, **(env or {})},
    )


async def _mint(reactor: Any, config_path: str, count: int, tokens_path: str, kind: str) -> None:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.server import MasServer
    from mas_twisted.storage.prepare_database import prepare_database
    from mas_twisted.types.users import User
    from mas_twisted.util.rand import TokenGenerator

    minter = MINTERS.get(kind)
    if minter is None:
        raise SystemExit(
            f"cannot mint {kind!r} tokens yet (known: {', '.join(MINTERS)}); see the module's docstring"
        )
    started = time.monotonic()
    config = RootConfig.load([config_path])
    prepare_database(config.database)
    server = MasServer(config, reactor)
    clock = server.get_clock()
    # Seeded: a rerun mints the same tokens (ULIDs still follow the clock).
    tokens = TokenGenerator(random.Random(20261125), clock)
    stores = server.get_stores()

    now = clock.time_msec()
    user = User(id=tokens.ulid(), username="bench", created_at=now)
    await stores.users.add_user(user)
    with open(tokens_path, "w") as out:
        for start in range(0, count, BATCH):
            for token in await minter(server, tokens, user, now, min(BATCH, count - start), start == 0):
                out.write(token + "\n")
    server.get_db_pool().close()
    print(f"minted {count} {kind} access tokens in {time.monotonic() - started:.1f} s", flush=True)


#: The client of the OAuth sessions (made by the first batch).
_client: Any = None


async def _mint_oauth_batch(server: Any, tokens: Any, user: Any, now: int, n: int, first: bool) -> list[str]:
    """``n`` OAuth 2.0 sessions of one client, each with one access token; the tokens."""
    global _client
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.oauth2 import AccessToken, OAuth2Session
    from mas_twisted.types.tokens import TokenType

    db_pool = server.get_db_pool()
    if first:
        _client = OAuth2Client(
            id=tokens.ulid(),
            redirect_uris=("https://bench.example/cb",),
            grant_type_authorization_code=True,
            grant_type_refresh_token=True,
            token_endpoint_auth_method="none",
            client_name="bench",
            created_at=now,
        )
        await server.get_stores().oauth2_clients.add_oauth2_client(_client)
    client = _client
    session_keys = list(OAuth2Session.COLUMNS)
    token_keys = list(AccessToken.COLUMNS)
    sessions: list[list[Any]] = []
    access_tokens: list[list[Any]] = []
    minted: list[str] = []
    for _ in range(n):
        session = OAuth2Session(
            id=tokens.ulid(now),
            client_id=client.id,
            scope=SCOPE_PREFIX + [f"urn:matrix:client:device:{tokens.device_id()}"],
            created_at=now,
            user_id=user.id,
        )
        token = AccessToken(
            id=tokens.ulid(now),
            session_id=session.id,
            access_token=tokens.token(TokenType.ACCESS_TOKEN),
            created_at=now,
            expires_at=now + TOKEN_TTL_MS,
        )
        session_row = session.to_row()
        token_row = token.to_row()
        sessions.append([session_row[k] for k in session_keys])
        access_tokens.append([token_row[k] for k in token_keys])
        minted.append(token.access_token)
    await db_pool.simple_insert_many("oauth2_sessions", session_keys, sessions, desc="bench_mint_sessions")
    await db_pool.simple_insert_many(
        "oauth2_access_tokens", token_keys, access_tokens, desc="bench_mint_access_tokens"
    )
    return minted


async def _mint_compat_batch(server: Any, tokens: Any, user: Any, now: int, n: int, first: bool) -> list[str]:
    """``n`` compatibility sessions, each with a device and one ``mct_`` access token (no
    expiry, as a legacy login without a refresh token); the tokens."""
    from mas_twisted.types.compat import CompatAccessToken, CompatSession
    from mas_twisted.types.tokens import TokenType

    db_pool = server.get_db_pool()
    session_keys = list(CompatSession.COLUMNS)
    token_keys = list(CompatAccessToken.COLUMNS)
    sessions: list[list[Any]] = []
    access_tokens: list[list[Any]] = []
    minted: list[str] = []
    for _ in range(n):
        session = CompatSession(
            id=tokens.ulid(now), user_id=user.id, device_id=tokens.device_id(), created_at=now
        )
        token = CompatAccessToken(
            id=tokens.ulid(now),
            session_id=session.id,
            access_token=tokens.token(TokenType.COMPAT_ACCESS_TOKEN),
            created_at=now,
        )
        session_row, token_row = session.to_row(), token.to_row()
        sessions.append([session_row[k] for k in session_keys])
        access_tokens.append([token_row[k] for k in token_keys])
        minted.append(token.access_token)
    await db_pool.simple_insert_many(
        "compat_sessions", session_keys, sessions, desc="bench_mint_compat_sessions"
    )
    await db_pool.simple_insert_many(
        "compat_access_tokens", token_keys, access_tokens, desc="bench_mint_compat_tokens"
    )
    return minted


_mixed_batches = 0


async def _mint_mixed_batch(server: Any, tokens: Any, user: Any, now: int, n: int, first: bool) -> list[str]:
    """Half of each batch OAuth 2.0, half compatibility, interleaved token by token."""
    global _mixed_batches
    oauth = await _mint_oauth_batch(server, tokens, user, now, n - n // 2, first)
    compat = await _mint_compat_batch(server, tokens, user, now, n // 2, first)
    _mixed_batches += 1
    out: list[str] = []
    for i in range(len(oauth)):
        out.append(oauth[i])
        if i < len(compat):
            out.append(compat[i])
    return out


#: What ``KIND`` mints: an async function ``(server, token generator, user, now, n, first
#: batch) -> the n token strings``.
MINTERS: dict[str, Callable[..., Awaitable[list[str]]]] = {
    "oauth": _mint_oauth_batch,
    "compat": _mint_compat_batch,
    "mixed": _mint_mixed_batch,
}


def main() -> None:
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    config_path, count, tokens_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    kind = sys.argv[4] if len(sys.argv) == 5 else "mixed"
    sys.path.insert(0, str(ROOT))
    from twisted.internet import defer, task

    task.react(lambda reactor: defer.ensureDeferred(_mint(reactor, config_path, count, tokens_path, kind)))


if __name__ == "__main__":
    main()
