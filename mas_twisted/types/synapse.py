# SPDX-License-Identifier: AGPL-3.0-only
"""Rows of a Synapse database, as syn2mas reads them (synapse-integration.md §7, MAS's
``crates/syn2mas/src/synapse_reader/mod.rs``).

Rows of the tables that depend on ``users`` carry their owner's columns too (``owner``): the
reader joins ``users`` in, so that the migration needs no map of every user in memory.
Synapse's old boolean columns are ``smallint`` 0/1 (integers on SQLite): they are read as
Python ``bool`` here. Synapse's ``creation_ts`` is in seconds; every other time is in
milliseconds.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class SynapseUserRow:
    """``users``: the account (``name`` is the full ``@localpart:server`` user id)."""

    name: str
    password_hash: str | None
    admin: bool
    deactivated: bool
    locked: bool
    #: Seconds since the epoch; None in very old databases.
    creation_ts: int | None
    is_guest: bool
    appservice_id: str | None


@attrs.frozen
class SynapseOwner:
    """The owning user's columns joined to a dependent row; None when the user row is missing."""

    name: str
    creation_ts: int | None
    admin: bool
    deactivated: bool
    is_guest: bool
    appservice_id: str | None


@attrs.frozen
class SynapseThreepidRow:
    user_id: str
    medium: str
    address: str
    #: Milliseconds.
    added_at: int | None
    owner: SynapseOwner | None


@attrs.frozen
class SynapseExternalIdRow:
    user_id: str
    auth_provider: str
    external_id: str
    owner: SynapseOwner | None


@attrs.frozen
class SynapseDeviceRow:
    """``devices`` (visible ones: not hidden, not ``guest_device``)."""

    user_id: str
    device_id: str
    display_name: str | None
    last_seen: int | None
    ip: str | None
    user_agent: str | None
    owner: SynapseOwner | None


@attrs.frozen
class SynapseAccessTokenRow:
    """An access token without a refresh token and not a puppet's, with a visible device or
    none."""

    user_id: str
    device_id: str | None
    token: str
    valid_until_ms: int | None
    last_validated: int | None
    owner: SynapseOwner | None


@attrs.frozen
class SynapseRefreshPairRow:
    """A refresh token with its access token, whose successor was not used yet."""

    user_id: str
    device_id: str
    access_token: str
    refresh_token: str
    valid_until_ms: int | None
    last_validated: int | None
    owner: SynapseOwner | None
