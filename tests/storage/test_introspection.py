# SPDX-License-Identifier: AGPL-3.0-only
"""Introspection reads without the database thread pool (:class:`IntrospectionReader`), on the
real reactor and a database in a file (SQLite) or on the server (PostgreSQL, with
``MAS_TEST_POSTGRES_DSN``): the same answers as the pool, fresh after a write through the
pool, and the pool again when the reader's own connection breaks."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from mas_twisted.storage.database import DatabasePool, make_database_pool
from mas_twisted.storage.introspection import IntrospectionReader
from mas_twisted.storage.prepare_database import prepare_database
from mas_twisted.storage.stores.access_tokens import ACCESS_TOKEN_QUERY
from mas_twisted.storage.stores.compat_sessions import COMPAT_ACCESS_TOKEN_QUERY
from mas_twisted.types.clients import OAuth2Client
from mas_twisted.types.oauth2 import AccessToken, OAuth2Session
from mas_twisted.types.tokens import base62_crc
from mas_twisted.types.users import User
from tests.utils import EmptyDatabase, temp_dir

NOW = 1_700_000_000_000


def _token(n: int) -> str:
    base = f"mat_{n:030d}"
    return f"{base}_{base62_crc(base)}"


class IntrospectionReaderTestCase(unittest.TestCase):
    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        db = EmptyDatabase(temp_dir(self))
        self.addCleanup(db.cleanup)
        prepare_database(db.db_config)
        self.pool = make_database_pool(db.db_config, reactor)
        self.addCleanup(self.pool.close)
        self.reader = IntrospectionReader(self.pool, reactor, (ACCESS_TOKEN_QUERY, COMPAT_ACCESS_TOKEN_QUERY))
        self.addCleanup(self.reader.close)
        self.pool_reads = 0
        # Every use of a pooled connection (reads and interactions) goes through _run_in_pool.
        real = self.pool._run_in_pool

        def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
            self.pool_reads += 1
            return real(func, *args, **kwargs)

        self.pool._run_in_pool = counting  # type: ignore[method-assign]

    async def _arrange(self, pool: DatabasePool) -> list[AccessToken]:
        user = User(id="01HUSER0000000000000000000", username="alice", created_at=NOW)
        await pool.simple_insert("users", user.to_row())
        client = OAuth2Client(id="01HCLIENT000000000000000000", token_endpoint_auth_method="none")
        await pool.simple_insert("oauth2_clients", client.to_row())
        tokens = []
        for n in range(3):
            session = OAuth2Session(
                id=f"01HSESSION{n:016d}", client_id=client.id, scope="openid", created_at=NOW, user_id=user.id
            )
            token = AccessToken(
                id=f"01HTOKEN{n:018d}",
                session_id=session.id,
                access_token=_token(n),
                created_at=NOW,
                expires_at=NOW + 1,
            )
            await pool.simple_insert("oauth2_sessions", session.to_row())
            await pool.simple_insert("oauth2_access_tokens", token.to_row())
            tokens.append(token)
        return tokens

    def test_reads_on_the_reactor(self) -> defer.Deferred[None]:
        async def run() -> None:
            tokens = await self._arrange(self.pool)
            self.pool_reads = 0
            found = await self.reader.lookup(
                [t.access_token for t in tokens] + [_token(99)], ACCESS_TOKEN_QUERY
            )
            self.assertEqual(sorted(found), sorted(t.access_token for t in tokens))
            for token in tokens:
                self.assertEqual(found[token.access_token].token, token)
                self.assertEqual(found[token.access_token].user.username, "alice")  # type: ignore[union-attr]
            self.assertEqual(self.pool_reads, 0)
            # A write committed through the pool is seen by the next read.
            await self.pool.execute(
                "revoke",
                "UPDATE oauth2_access_tokens SET revoked_at = ? WHERE oauth2_access_token_id = ?",
                NOW,
                tokens[0].id,
            )
            self.pool_reads = 0  # the write above used the pool; the reads below must not
            found = await self.reader.lookup([tokens[0].access_token], ACCESS_TOKEN_QUERY)
            self.assertEqual(found[tokens[0].access_token].token.revoked_at, NOW)
            # Several lookups at once.
            results = await defer.gatherResults(
                [
                    defer.ensureDeferred(self.reader.lookup([t.access_token], ACCESS_TOKEN_QUERY))
                    for t in tokens * 3
                ]
            )
            self.assertEqual([sorted(r) for r in results], [[t.access_token] for t in tokens * 3])
            self.assertEqual(self.pool_reads, 0)

        return defer.ensureDeferred(run())

    def test_falls_back_to_the_pool(self) -> defer.Deferred[None]:
        async def run() -> None:
            tokens = await self._arrange(self.pool)
            wanted = [t.access_token for t in tokens]
            await self.reader.lookup(wanted, ACCESS_TOKEN_QUERY)
            # Break the reader's own connections under it.
            if self.reader._sqlite_conn is not None:
                self.reader._sqlite_conn.close()
            else:
                for conn in self.reader._pg_conns or ():
                    pid = conn._connection.get_backend_pid()
                    await self.pool.execute("kill", "SELECT pg_terminate_backend(?)", pid)
            self.pool_reads = 0
            with self.assertLogs("mas_twisted.storage.introspection", "WARNING"):
                found = await self.reader.lookup(wanted, ACCESS_TOKEN_QUERY)
            self.assertEqual(sorted(found), sorted(wanted))
            self.assertEqual(self.pool_reads, 1)
            # For a while, the pool only.
            found = await self.reader.lookup(wanted, ACCESS_TOKEN_QUERY)
            self.assertEqual(sorted(found), sorted(wanted))
            self.assertEqual(self.pool_reads, 2)
            # Then its own connection again, a new one.
            self.reader._failed_at = self.reactor.seconds() - IntrospectionReader.RETRY_AFTER_S
            found = await self.reader.lookup(wanted, ACCESS_TOKEN_QUERY)
            self.assertEqual(sorted(found), sorted(wanted))
            self.assertEqual(self.pool_reads, 2)

        return defer.ensureDeferred(run())

    def test_compat_access_tokens_on_the_reactor(self) -> defer.Deferred[None]:
        from mas_twisted.types.compat import CompatAccessToken, CompatSession

        async def run() -> None:
            await self._arrange(self.pool)
            session = CompatSession(
                id="01HCOMPAT0000000000000000A",
                user_id="01HUSER0000000000000000000",
                device_id="DEV",
                created_at=NOW,
            )
            token = CompatAccessToken(
                id="01HCTOKEN000000000000000AA",
                session_id=session.id,
                access_token="mct_compat_for_the_reader_0001_abcdef",
                created_at=NOW,
            )
            await self.pool.simple_insert("compat_sessions", session.to_row())
            await self.pool.simple_insert("compat_access_tokens", token.to_row())
            self.pool_reads = 0
            found = await self.reader.lookup([token.access_token, "mct_unknown"], COMPAT_ACCESS_TOKEN_QUERY)
            self.assertEqual(list(found), [token.access_token])
            result = found[token.access_token]
            self.assertEqual((result.token, result.session, result.user.username), (token, session, "alice"))
            # OAuth tokens on the same reader, same connection, alongside.
            oauth = await self.reader.lookup([_token(0)], ACCESS_TOKEN_QUERY)
            self.assertEqual(list(oauth), [_token(0)])
            self.assertEqual(self.pool_reads, 0)

        return defer.ensureDeferred(run())
