# SPDX-License-Identifier: AGPL-3.0-only
"""``matrix.kind: synapse_read_only``: the modern API, but nothing is ever written.

For trying this service out next to a live homeserver: reads (``query_user``,
``is_localpart_available``) go through; every write is skipped and logged at debug, and
``provision_user`` reports "not created".

MAS (``crates/matrix/src/readonly.rs``) makes every write *fail* instead ("... is not supported
in read-only mode"), which fails the job or request that asked for it. Skipping quietly is this
project's choice: in both cases the homeserver is left untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet

from mas_twisted.homeserver.base import HomeserverConnection, HomeserverUser, ProvisionRequest

logger = logging.getLogger(__name__)


class ReadOnlyConnection(HomeserverConnection):
    """Reads go to ``inner``; writes do nothing."""

    def __init__(self, inner: HomeserverConnection):
        super().__init__(inner.homeserver, "")
        self._inner = inner

    @property
    def inner(self) -> HomeserverConnection:
        return self._inner

    async def verify_token(self, token: str) -> bool:
        return await self._inner.verify_token(token)

    async def close(self) -> None:
        await self._inner.close()

    async def query_user(self, localpart: str) -> HomeserverUser:
        return await self._inner.query_user(localpart)

    async def is_localpart_available(self, localpart: str) -> bool:
        return await self._inner.is_localpart_available(localpart)

    @staticmethod
    def _skip(call: str) -> None:
        logger.debug("homeserver %s: skipped (read-only)", call)

    async def provision_user(self, request: ProvisionRequest) -> bool:
        self._skip("provision_user")
        return False

    async def upsert_device(self, localpart: str, device_id: str, display_name: str | None = None) -> None:
        self._skip("upsert_device")

    async def update_device_display_name(self, localpart: str, device_id: str, display_name: str) -> None:
        self._skip("update_device_display_name")

    async def delete_device(self, localpart: str, device_id: str) -> None:
        self._skip("delete_device")

    async def sync_devices(self, localpart: str, devices: AbstractSet[str]) -> None:
        self._skip("sync_devices")

    async def delete_user(self, localpart: str, erase: bool) -> None:
        self._skip("delete_user")

    async def reactivate_user(self, localpart: str) -> None:
        self._skip("reactivate_user")

    async def set_displayname(self, localpart: str, displayname: str) -> None:
        self._skip("set_displayname")

    async def unset_displayname(self, localpart: str) -> None:
        self._skip("unset_displayname")

    async def allow_cross_signing_reset(self, localpart: str) -> None:
        self._skip("allow_cross_signing_reset")
