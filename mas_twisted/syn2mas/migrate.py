# SPDX-License-Identifier: AGPL-3.0-only
"""``syn2mas migrate``: Synapse's accounts, sessions and tokens into our schema (MAS's
``crates/syn2mas/src/migration.rs``, inventory §13, synapse-integration.md §8a).

The mapping, as MAS does it:

- ``users`` → ``users``: ``username`` = the localpart (an id of another server is an error);
  ``created_at`` = ``creation_ts`` (seconds → ms); ``locked_at`` / ``deactivated_at`` =
  ``created_at`` when Synapse flags the user so; ``can_request_admin`` = Synapse's ``admin``;
  ``is_guest``. Appservice users are not migrated, nor anything of theirs (those whose
  localpart holds a ``:`` are logged). The password hash → ``user_passwords``, verbatim, as
  scheme version 1 (bcrypt with Synapse's pepper; re-hashed with the newest scheme at the
  user's next login).
- ``user_threepids``: ``email`` → ``user_emails`` (``created_at`` = ``added_at``), any other
  medium → ``user_unsupported_third_party_ids``.
- ``user_external_ids`` → ``upstream_oauth_links`` (``subject`` = ``external_id``) of the
  provider whose ``synapse_idp_id`` is the row's ``auth_provider``; a provider without one is an
  error, or the row is skipped with ``--ignore-missing-auth-providers``.
- ``devices`` (visible ones) of users that are not deactivated, guests or appservice users →
  one ``compat_sessions`` row each: ``device_id``, ``human_name`` = ``display_name``,
  ``last_active_at`` = ``last_seen``, ``last_active_ip`` = ``ip`` (dropped when ``-`` or not an
  address), ``user_agent``, ``is_synapse_admin`` = Synapse's ``admin``.
- Access tokens without a refresh token and not a puppet's → ``compat_access_tokens`` of their
  device's session, keeping the token string and ``valid_until_ms`` as ``expires_at``
  (``created_at`` = ``last_validated``, or now); a token without a device gets a session of its
  own, without a device.
- Refresh tokens whose successor access token was not used yet, with their access token →
  ``compat_refresh_tokens`` + ``compat_access_tokens`` of the device's session.

Where this differs from MAS: sessions are written before the tokens that belong to them (our
foreign keys stay in force during the run), so a token's device must be a visible one; and
ids are not drawn at random per row but derived from the row (its owner's id, device id or
token) with a key of the run (:class:`IdMinter`), so that no map of users or devices has to be
kept in memory: every table is streamed in batches, joined to its owner in Synapse's database.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

import attrs

from mas_twisted.api.errors import MasError
from mas_twisted.storage.database import LoggingTransaction
from mas_twisted.storage.syn2mas import insert_rows_txn, pause_constraints_txn, restore_constraints_txn
from mas_twisted.syn2mas.checks import MIGRATED_PASSWORD_VERSION
from mas_twisted.types.synapse import (
    SynapseAccessTokenRow,
    SynapseDeviceRow,
    SynapseExternalIdRow,
    SynapseOwner,
    SynapseRefreshPairRow,
    SynapseThreepidRow,
    SynapseUserRow,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]


class MigrationError(MasError):
    """The Synapse data cannot be migrated as it is (the run writes nothing)."""


class IdMinter:
    """ULIDs for migrated rows: the timestamp MAS would use, and 80 bits of a keyed hash of
    what identifies the row in Synapse (so the same device always gets the same session id
    within a run, without remembering it). The key is random per run, so ids cannot be
    predicted from public data."""

    def __init__(self, key: bytes | None = None):
        self._key = key if key is not None else secrets.token_bytes(32)

    def ulid(self, ms: int, kind: str, *parts: str) -> str:
        digest = hashlib.blake2b(
            "\x00".join((kind, *parts)).encode("utf-8"), key=self._key, digest_size=10
        ).digest()
        return fast_ulid(max(0, ms), digest)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two base32 characters.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def fast_ulid(ms: int, randomness: bytes) -> str:
    """:func:`mas_twisted.util.ulid.make_ulid`, several times faster (it runs for every migrated
    row): the 128 bits (behind 2 zero bits) as 13 pairs of base32 characters."""
    n = (ms << 80) | int.from_bytes(randomness, "big")
    p = _PAIRS
    return (
        p[n >> 120]
        + p[(n >> 110) & 1023]
        + p[(n >> 100) & 1023]
        + p[(n >> 90) & 1023]
        + p[(n >> 80) & 1023]
        + p[(n >> 70) & 1023]
        + p[(n >> 60) & 1023]
        + p[(n >> 50) & 1023]
        + p[(n >> 40) & 1023]
        + p[(n >> 30) & 1023]
        + p[(n >> 20) & 1023]
        + p[(n >> 10) & 1023]
        + p[n & 1023]
    )


@attrs.define
class MigrationStats:
    """Rows written and skipped, per kind (what the run logs at the end)."""

    migrated: Counter[str] = attrs.field(factory=Counter)
    skipped: Counter[str] = attrs.field(factory=Counter)


@attrs.frozen
class Mapper:
    """The mapping rules, one Synapse row at a time (pure: no I/O)."""

    server_name: str
    now_ms: int
    ids: IdMinter
    #: ``synapse_idp_id`` → our ``upstream_oauth_provider_id``.
    provider_ids: dict[str, str]
    ignore_missing_auth_providers: bool = False
    stats: MigrationStats = attrs.field(factory=MigrationStats)

    # -- users -------------------------------------------------------------------------------
    def localpart(self, mxid: str) -> str:
        suffix = ":" + self.server_name
        if not mxid.startswith("@") or not mxid.endswith(suffix) or len(mxid) <= len(suffix) + 1:
            raise MigrationError(
                f"the Synapse user {mxid!r} is not a user of {self.server_name!r} (server_name):"
                " is --synapse-config the configuration of this database's server?"
            )
        return mxid[1 : -len(suffix)]

    def user_created_ms(self, creation_ts: int | None) -> int:
        return int(creation_ts) * 1000 if creation_ts is not None else self.now_ms

    def user_id(self, name: str, creation_ts: int | None) -> str:
        return self.ids.ulid(self.user_created_ms(creation_ts), "user", name)

    def user(self, row: SynapseUserRow) -> tuple[Row, Row | None] | None:
        """``(users row, user_passwords row or None)``, or None for a user not migrated."""
        username = self.localpart(row.name)
        if row.appservice_id is not None:
            if ":" in username:
                logger.warning("Appservice user %s has a ':' in its localpart; skipped", row.name)
            self.stats.skipped["users"] += 1
            return None
        created = self.user_created_ms(row.creation_ts)
        user_id = self.user_id(row.name, row.creation_ts)
        user = (
            user_id,
            username,
            created,
            created if row.locked else None,
            created if row.deactivated else None,
            row.admin,
            row.is_guest,
        )
        self.stats.migrated["users"] += 1
        password = None
        if row.password_hash:
            password = (
                self.ids.ulid(created, "password", row.name),
                user_id,
                row.password_hash,
                MIGRATED_PASSWORD_VERSION,
                created,
            )
            self.stats.migrated["passwords"] += 1
        return user, password

    def _owner(self, table: str, user_id: str, owner: SynapseOwner | None) -> SynapseOwner:
        if owner is None:
            raise MigrationError(f"Synapse's {table} has a row of {user_id!r}, who is not in its users table")
        self.localpart(owner.name)
        return owner

    def _owner_id(self, owner: SynapseOwner) -> str:
        return self.user_id(owner.name, owner.creation_ts)

    @staticmethod
    def _has_sessions(owner: SynapseOwner) -> bool:
        """Whether this user's devices and tokens are migrated."""
        return not (owner.deactivated or owner.is_guest or owner.appservice_id is not None)

    # -- threepids, links ----------------------------------------------------------------------
    def threepid(self, row: SynapseThreepidRow) -> tuple[str, Row] | None:
        """``(table, row)``: an email or an unsupported third-party id."""
        owner = self._owner("user_threepids", row.user_id, row.owner)
        if owner.appservice_id is not None:
            self.stats.skipped["threepids"] += 1
            return None
        created = row.added_at if row.added_at is not None else self.now_ms
        user_id = self._owner_id(owner)
        if row.medium == "email":
            self.stats.migrated["emails"] += 1
            email_id = self.ids.ulid(created, "email", row.user_id, row.address)
            return "user_emails", (email_id, user_id, row.address, created)
        self.stats.migrated["unsupported_threepids"] += 1
        return "user_unsupported_third_party_ids", (user_id, row.medium, row.address, created)

    def external_id(self, row: SynapseExternalIdRow) -> Row | None:
        owner = self._owner("user_external_ids", row.user_id, row.owner)
        if owner.appservice_id is not None:
            self.stats.skipped["upstream_links"] += 1
            return None
        provider_id = self.provider_ids.get(row.auth_provider)
        if provider_id is None:
            if self.ignore_missing_auth_providers:
                self.stats.skipped["upstream_links"] += 1
                return None
            raise MigrationError(
                f"no upstream_oauth2.providers entry has synapse_idp_id: {row.auth_provider!r}"
                f" (used by {row.user_id} and maybe others); configure it, or pass"
                " --ignore-missing-auth-providers"
            )
        created = self.user_created_ms(owner.creation_ts)
        self.stats.migrated["upstream_links"] += 1
        return (
            self.ids.ulid(created, "link", row.auth_provider, row.external_id),
            provider_id,
            self._owner_id(owner),
            row.external_id,
            created,
        )

    # -- devices and tokens --------------------------------------------------------------------
    def device_session_id(self, user_id: str, device_id: str) -> str:
        return self.ids.ulid(self.now_ms, "device", user_id, device_id)

    @staticmethod
    def _ip(ip: str | None) -> str | None:
        if ip is None or ip == "-":
            return None
        try:
            return str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            logger.warning("Unparsable device IP address %r, dropped", ip)
            return None

    def device(self, row: SynapseDeviceRow) -> Row | None:
        owner = self._owner("devices", row.user_id, row.owner)
        if not self._has_sessions(owner):
            self.stats.skipped["devices"] += 1
            return None
        self.stats.migrated["devices"] += 1
        return (
            self.device_session_id(row.user_id, row.device_id),
            self._owner_id(owner),
            row.device_id,
            owner.admin,
            self.now_ms,
            row.last_seen,
            self._ip(row.ip),
            row.user_agent,
            row.display_name,
        )

    def access_token(self, row: SynapseAccessTokenRow) -> tuple[Row | None, Row] | None:
        """``(device-less session row or None, compat_access_tokens row)``."""
        owner = self._owner("access_tokens", row.user_id, row.owner)
        if not self._has_sessions(owner):
            self.stats.skipped["access_tokens"] += 1
            return None
        created = row.last_validated if row.last_validated is not None else self.now_ms
        session = None
        if row.device_id is None:
            session_id = self.ids.ulid(created, "deviceless", row.token)
            session = (session_id, self._owner_id(owner), None, False, created, None, None, None, None)
            self.stats.migrated["deviceless_sessions"] += 1
        else:
            session_id = self.device_session_id(row.user_id, row.device_id)
        self.stats.migrated["access_tokens"] += 1
        token = (
            self.ids.ulid(created, "access", row.token),
            session_id,
            row.token,
            created,
            row.valid_until_ms,
        )
        return session, token

    def refresh_pair(self, row: SynapseRefreshPairRow) -> tuple[Row, Row] | None:
        """``(compat_access_tokens row, compat_refresh_tokens row)``."""
        owner = self._owner("refresh_tokens", row.user_id, row.owner)
        if not self._has_sessions(owner):
            self.stats.skipped["refresh_tokens"] += 1
            return None
        created = row.last_validated if row.last_validated is not None else self.now_ms
        session_id = self.device_session_id(row.user_id, row.device_id)
        access_id = self.ids.ulid(created, "access", row.access_token)
        self.stats.migrated["refresh_tokens"] += 1
        return (
            (access_id, session_id, row.access_token, created, row.valid_until_ms),
            (
                self.ids.ulid(created, "refresh", row.refresh_token),
                session_id,
                access_id,
                row.refresh_token,
                created,
            ),
        )


class Progress:
    """Progress per table: on a terminal, a bar redrawn in place with rows/s and an ETA; otherwise
    (or with ``terminal=False``) a plain log line every ``every_s`` seconds. The totals are
    estimates (PostgreSQL's planner statistics), so the bar may end short of or past 100%.
    """

    BAR_WIDTH = 30

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = 5.0,
        *,
        stream: TextIO | None = None,
        terminal: bool | None = None,
    ):
        self._clock = clock
        self._every = every_s
        self._stream = stream if stream is not None else sys.stderr
        self._terminal = self._stream.isatty() if terminal is None else terminal

    def bar(self, name: str, done: int, estimate: int | None, elapsed: float) -> str:
        """One line of the terminal display."""
        rate = done / elapsed if elapsed > 0 else 0.0
        if estimate:
            fraction = min(done / estimate, 1.0)
            filled = int(fraction * self.BAR_WIDTH)
            left = max(estimate - done, 0)
            eta = f"ETA {left / rate:.0f}s" if rate > 0 and left else "ETA -"
            return (
                f"{name:<16} [{'#' * filled}{'.' * (self.BAR_WIDTH - filled)}] {fraction:4.0%}"
                f" {done}/~{estimate} {rate:.0f} rows/s {eta}"
            )
        return f"{name:<16} {done} rows {rate:.0f} rows/s"

    def track(self, name: str, batches: Iterable[list[T]], estimate: int | None = None) -> Iterator[list[T]]:
        started = last = self._clock()
        done = 0
        for batch in batches:
            done += len(batch)
            yield batch
            now = self._clock()
            if self._terminal:
                if now - last >= 0.2:
                    last = now
                    self._stream.write("\r" + self.bar(name, done, estimate, now - started) + "\x1b[K")
                    self._stream.flush()
            elif now - last >= self._every:
                last = now
                rate = done / max(now - started, 1e-9)
                total = f"/~{estimate}" if estimate else ""
                logger.info("Migrating %s: %d%s rows (%.0f rows/s)", name, done, total, rate)
        elapsed = self._clock() - started
        if self._terminal:
            self._stream.write("\r" + self.bar(name, done, done or None, elapsed) + "\x1b[K\n")
            self._stream.flush()
        logger.info("Read %d %s rows in %.1fs", done, name, elapsed)


def migrate_txn(
    txn: LoggingTransaction,
    reader: Any,
    mapper: Mapper,
    *,
    progress: Progress | None = None,
) -> MigrationStats:
    """Stream every table of ``reader`` (a :class:`~mas_twisted.storage.synapse_reader.SynapseReader`)
    through ``mapper`` into ``txn``, batch by batch. Owners first: users, then their emails and
    links, then sessions, then the tokens of those sessions."""
    progress = progress or Progress()
    restore = pause_constraints_txn(txn)

    def estimate(table: str) -> int | None:
        try:
            return int(reader.estimated_rows(table))
        except Exception:  # an estimate is only for the log
            return None

    for batch in progress.track("users", reader.users(), estimate("users")):
        users: list[Row] = []
        passwords: list[Row] = []
        for user_row in batch:
            mapped = mapper.user(user_row)
            if mapped is not None:
                users.append(mapped[0])
                if mapped[1] is not None:
                    passwords.append(mapped[1])
        insert_rows_txn(txn, "users", users)
        insert_rows_txn(txn, "user_passwords", passwords)

    for batch in progress.track("user_threepids", reader.threepids(), estimate("user_threepids")):
        by_table: dict[str, list[Row]] = {"user_emails": [], "user_unsupported_third_party_ids": []}
        for threepid_row in batch:
            mapped_threepid = mapper.threepid(threepid_row)
            if mapped_threepid is not None:
                by_table[mapped_threepid[0]].append(mapped_threepid[1])
        for table, rows in by_table.items():
            insert_rows_txn(txn, table, rows)

    for batch in progress.track("user_external_ids", reader.external_ids(), estimate("user_external_ids")):
        insert_rows_txn(txn, "upstream_oauth_links", _mapped(batch, mapper.external_id))

    for batch in progress.track("devices", reader.devices(), estimate("devices")):
        insert_rows_txn(txn, "compat_sessions", _mapped(batch, mapper.device))

    for batch in progress.track("access_tokens", reader.access_tokens(), estimate("access_tokens")):
        sessions: list[Row] = []
        tokens: list[Row] = []
        for token_row in batch:
            mapped_token = mapper.access_token(token_row)
            if mapped_token is not None:
                if mapped_token[0] is not None:
                    sessions.append(mapped_token[0])
                tokens.append(mapped_token[1])
        insert_rows_txn(txn, "compat_sessions", sessions)
        insert_rows_txn(txn, "compat_access_tokens", tokens)

    for batch in progress.track("refresh_tokens", reader.refresh_pairs(), estimate("refresh_tokens")):
        accesses: list[Row] = []
        refreshes: list[Row] = []
        for pair_row in batch:
            mapped_pair = mapper.refresh_pair(pair_row)
            if mapped_pair is not None:
                accesses.append(mapped_pair[0])
                refreshes.append(mapped_pair[1])
        insert_rows_txn(txn, "compat_access_tokens", accesses)
        insert_rows_txn(txn, "compat_refresh_tokens", refreshes)
    restore_constraints_txn(txn, restore)
    return mapper.stats


def _mapped(batch: Sequence[T], func: Callable[[T], Row | None]) -> list[Row]:
    out = []
    for item in batch:
        row = func(item)
        if row is not None:
            out.append(row)
    return out
