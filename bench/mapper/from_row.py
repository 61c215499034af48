# SPDX-License-Identifier: AGPL-3.0-only
"""Microbenchmark for issue 10 item 3: does the attrs-metadata row mapper
(:func:`mas_twisted.types.columns.mapped`) cost more than the hand-written ``from_row`` /
``to_row`` it replaced, on the introspection hot path?

Reads 100k rows of the introspection statement's two models (``OAuth2Session`` and
``AccessToken``) three ways: the hand-written ``from_row`` of 588e9ff (inlined here, building
the same classes), a generic loop over the fields' ``column`` metadata (no compilation), and
the ``from_row`` the mapper generates. Then ``to_row`` hand-written against generated, and
the whole introspection row (token, session, user) decoded with the hand-written readers
against ``ACCESS_TOKEN_QUERY.decode`` (the generated ones). Prints the best of ``--repeat``
runs, in ns per row.

    .venv/bin/python bench/mapper/from_row.py --repeat 10
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mas_twisted.storage.introspection import owner_from_columns
from mas_twisted.storage.stores.access_tokens import ACCESS_TOKEN_QUERY
from mas_twisted.types.columns import to_db_json
from mas_twisted.types.oauth2 import AccessToken, AccessTokenIntrospection, OAuth2Session, _scope_from_row

ROWS = 100_000


# -- the hand-written code of 588e9ff ------------------------------------------------------
def session_from_row(row: Sequence[Any]) -> OAuth2Session:
    (
        session_id,
        client_id,
        scope_list,
        created_at,
        user_id,
        user_session_id,
        finished_at,
        user_agent,
        last_active_at,
        last_active_ip,
        human_name,
    ) = row
    return OAuth2Session(
        id=session_id,
        client_id=client_id,
        scope=_scope_from_row(scope_list),
        created_at=int(created_at),
        user_id=user_id,
        user_session_id=user_session_id,
        finished_at=finished_at,
        user_agent=user_agent,
        last_active_at=last_active_at,
        last_active_ip=last_active_ip,
        human_name=human_name,
    )


def token_from_row(row: Sequence[Any]) -> AccessToken:
    token_id, session_id, access_token, created_at, expires_at, revoked_at, first_used_at = row
    return AccessToken(
        id=token_id,
        session_id=session_id,
        access_token=access_token,
        created_at=int(created_at),
        expires_at=expires_at,
        revoked_at=revoked_at,
        first_used_at=first_used_at,
    )


def session_to_row(self: OAuth2Session) -> dict[str, Any]:
    return {
        "oauth2_session_id": self.id,
        "oauth2_client_id": self.client_id,
        "scope_list": to_db_json(list(self.scope.tokens)),
        "created_at": self.created_at,
        "user_id": self.user_id,
        "user_session_id": self.user_session_id,
        "finished_at": self.finished_at,
        "user_agent": self.user_agent,
        "last_active_at": self.last_active_at,
        "last_active_ip": self.last_active_ip,
        "human_name": self.human_name,
    }


def token_to_row(self: AccessToken) -> dict[str, Any]:
    return {
        "oauth2_access_token_id": self.id,
        "oauth2_session_id": self.session_id,
        "access_token": self.access_token,
        "created_at": self.created_at,
        "expires_at": self.expires_at,
        "revoked_at": self.revoked_at,
        "first_used_at": self.first_used_at,
    }


def decode_by_hand(row: Sequence[Any]) -> AccessTokenIntrospection:
    return AccessTokenIntrospection(
        token=token_from_row(row[:7]), session=session_from_row(row[7:18]), user=owner_from_columns(*row[18:])
    )


# -- a mapper without compilation ----------------------------------------------------------
def loop_reader(cls: type) -> Callable[[Sequence[Any]], Any]:
    """Generic: walks the fields' metadata for every row (single-column fields only)."""

    def read(row: Sequence[Any]) -> Any:
        values = {}
        for f, value in zip(attrs.fields(cls), row):
            codec = f.metadata.get("mas_twisted.codec")
            values[f.name] = value if codec is None or codec.read is None else codec.read(value)
        return cls(**values)

    return read


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    session_row = (
        "01HSESSION0000000000000000",
        "01HCLIENT000000000000000000",
        '["openid"]',
        1,
        "01HUSER",
        None,
        None,
        None,
        None,
        None,
        None,
    )
    token_row = ("01HTOKEN00000000000000000", "01HSESSION0000000000000000", "mat_x", 1, 2, None, None)
    session_rows = [session_row] * ROWS
    token_rows = [token_row] * ROWS

    def ns_per_row(run: Callable[[], Any]) -> float:
        return min(timeit.repeat(run, number=1, repeat=args.repeat)) / ROWS * 1e9

    def reading(read_session: Callable[..., Any], read_token: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            for s, t in zip(session_rows, token_rows):
                read_session(s)
                read_token(t)

        return run

    readers = {
        "hand-written from_row": (session_from_row, token_from_row),
        "mapper, loop per row": (loop_reader(OAuth2Session), loop_reader(AccessToken)),
        "mapper, generated": (OAuth2Session.from_row, AccessToken.from_row),
    }
    for rs, rt in readers.values():
        assert rs(session_row) == session_from_row(session_row) and rt(token_row) == token_from_row(token_row)
    base = None
    for name, (rs, rt) in readers.items():
        ns = ns_per_row(reading(rs, rt))
        base = base or ns
        print(f"{name:26} {ns:8.0f} ns per session+token row  {ns / base:5.2f}x")

    session, token = session_from_row(session_row), token_from_row(token_row)
    sessions, tokens = [session] * ROWS, [token] * ROWS
    assert session.to_row() == session_to_row(session) and token.to_row() == token_to_row(token)
    base = None
    for name, ws, wt in (
        ("hand-written to_row", session_to_row, token_to_row),
        ("mapper to_row", OAuth2Session.to_row, AccessToken.to_row),
    ):

        def writing(ws: Callable[..., Any] = ws, wt: Callable[..., Any] = wt) -> None:
            for s, t in zip(sessions, tokens):
                ws(s)
                wt(t)

        ns = ns_per_row(writing)
        base = base or ns
        print(f"{name:26} {ns:8.0f} ns per session+token obj  {ns / base:5.2f}x")

    row = token_row + session_row + ("01HUSER", "alice", None, None)
    rows = [row] * ROWS
    assert decode_by_hand(row) == ACCESS_TOKEN_QUERY.decode(row)
    base = None
    for name, decode in (
        ("introspection row by hand", decode_by_hand),
        ("introspection row mapper", ACCESS_TOKEN_QUERY.decode),
    ):
        ns = ns_per_row(lambda d=decode: [d(r) for r in rows])
        base = base or ns
        print(f"{name:26} {ns:8.0f} ns per row               {ns / base:5.2f}x")


if __name__ == "__main__":
    main()
