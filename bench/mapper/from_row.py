# SPDX-License-Identifier: AGPL-3.0-only
"""Microbenchmark for issue 10 item 3: would an attrs-metadata row mapper cost more than the
hand-written ``from_row`` on the introspection hot path?

Reads 100k rows of the introspection statement's two models (``OAuth2Session`` and
``AccessToken``) four ways: the hand-written ``from_row`` of ``mas_twisted.types.oauth2``,
and three mappers driven by ``attrs.field(metadata={"column": ..., "codec": ...})`` on mirror
classes with the same fields: a generic loop over the fields (no compilation), a precomputed
tuple of converters (compiled once per class), and a function generated once per class
(the hand-written code, written by the mapper). Then the whole introspection row (token,
session, user): the decoding before issue 10 (ca1605d's ``_introspection_from_row``, inlined
here) against :meth:`~mas_twisted.storage.introspection.TokenSessionUser.decoder`. Prints
the best of ``--repeat`` runs, in ns per row.

    .venv/bin/python bench/mapper/from_row.py
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mas_twisted.oauth2.scope import Scope
from mas_twisted.storage.introspection import owner_from_columns
from mas_twisted.storage.stores.access_tokens import ACCESS_TOKEN_QUERY
from mas_twisted.types.oauth2 import AccessToken, AccessTokenIntrospection, OAuth2Session, _scope_from_row

ROWS = 100_000


def column(name: str, codec: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
    """A field stored in ``name``, read through ``codec`` (none: as the driver returns it)."""
    return attrs.field(metadata={"column": name, "codec": codec}, **kwargs)


@attrs.frozen
class MappedSession:
    id: str = column("oauth2_session_id")
    client_id: str = column("oauth2_client_id")
    scope: Scope = column("scope_list", _scope_from_row)
    created_at: int = column("created_at", int)
    user_id: str | None = column("user_id", default=None)
    user_session_id: str | None = column("user_session_id", default=None)
    finished_at: int | None = column("finished_at", default=None)
    user_agent: str | None = column("user_agent", default=None)
    last_active_at: int | None = column("last_active_at", default=None)
    last_active_ip: str | None = column("last_active_ip", default=None)
    human_name: str | None = column("human_name", default=None)


@attrs.frozen
class MappedToken:
    id: str = column("oauth2_access_token_id")
    session_id: str = column("oauth2_session_id")
    access_token: str = column("access_token")
    created_at: int = column("created_at", int)
    expires_at: int | None = column("expires_at", default=None)
    revoked_at: int | None = column("revoked_at", default=None)
    first_used_at: int | None = column("first_used_at", default=None)


def columns_of(cls: type) -> tuple[str, ...]:
    return tuple(f.metadata["column"] for f in attrs.fields(cls))


def loop_reader(cls: type) -> Callable[[Sequence[Any]], Any]:
    """Generic: walks the fields for every row."""

    def read(row: Sequence[Any]) -> Any:
        values = {}
        for f, value in zip(attrs.fields(cls), row):
            codec = f.metadata["codec"]
            values[f.name] = value if codec is None else codec(value)
        return cls(**values)

    return read


def tuple_reader(cls: type) -> Callable[[Sequence[Any]], Any]:
    """Compiled once: positional arguments through a precomputed tuple of codecs."""
    coded = tuple((i, f.metadata["codec"]) for i, f in enumerate(attrs.fields(cls)) if f.metadata["codec"])

    def read(row: Sequence[Any]) -> Any:
        values = list(row)
        for i, codec in coded:
            values[i] = codec(values[i])
        return cls(*values)

    return read


def generated_reader(cls: type) -> Callable[[Sequence[Any]], Any]:
    """Compiled once: the source of a hand-written ``from_row``, generated and ``exec``'d."""
    fields = attrs.fields(cls)
    names = [f"v{i}" for i in range(len(fields))]
    namespace: dict[str, Any] = {"cls": cls}
    args = []
    for i, f in enumerate(fields):
        codec = f.metadata["codec"]
        if codec is None:
            args.append(names[i])
        else:
            namespace[f"c{i}"] = codec
            args.append(f"c{i}({names[i]})")
    source = f"def read(row):\n    {', '.join(names)}, = row\n    return cls({', '.join(args)})\n"
    exec(source, namespace)
    return namespace["read"]  # type: ignore[no-any-return]


def decode_before(row: Sequence[Any]) -> AccessTokenIntrospection:
    """The introspection row's decoding before issue 10 (``ACCESS_TOKEN_QUERY.decode``)."""
    n_token = len(AccessToken.COLUMNS)
    n_session = len(OAuth2Session.COLUMNS)
    return AccessTokenIntrospection(
        token=AccessToken.from_row(row[:n_token]),
        session=OAuth2Session.from_row(row[n_token : n_token + n_session]),
        user=owner_from_columns(*row[n_token + n_session :]),
    )


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
    assert columns_of(MappedSession) == OAuth2Session.COLUMNS
    assert columns_of(MappedToken) == AccessToken.COLUMNS
    session_rows = [session_row] * ROWS
    token_rows = [token_row] * ROWS

    def measure(read_session: Callable[..., Any], read_token: Callable[..., Any]) -> float:
        def run() -> None:
            for s, t in zip(session_rows, token_rows):
                read_session(s)
                read_token(t)

        best = min(timeit.repeat(run, number=1, repeat=args.repeat))
        return best / ROWS * 1e9

    ways = {
        "hand-written from_row": (OAuth2Session.from_row, AccessToken.from_row),
        "mapper, loop per row": (loop_reader(MappedSession), loop_reader(MappedToken)),
        "mapper, codec tuple": (tuple_reader(MappedSession), tuple_reader(MappedToken)),
        "mapper, generated": (generated_reader(MappedSession), generated_reader(MappedToken)),
    }
    assert generated_reader(MappedSession)(session_row) == loop_reader(MappedSession)(session_row)
    base = None
    for name, (rs, rt) in ways.items():
        ns = measure(rs, rt)
        base = base or ns
        print(f"{name:24} {ns:8.0f} ns per session+token row  {ns / base:5.2f}x")

    row = token_row + session_row + ("01HUSER", "alice", None, None)
    rows = [row] * ROWS
    assert decode_before(row) == ACCESS_TOKEN_QUERY.decode(row)
    base = None
    for name, decode in (
        ("introspection row before", lambda r: decode_before(r)),
        ("introspection row now", ACCESS_TOKEN_QUERY.decode),
    ):
        best = min(timeit.repeat(lambda d=decode: [d(r) for r in rows], number=1, repeat=args.repeat))
        ns = best / ROWS * 1e9
        base = base or ns
        print(f"{name:24} {ns:8.0f} ns per row               {ns / base:5.2f}x")


if __name__ == "__main__":
    main()
