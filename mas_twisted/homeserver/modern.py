# SPDX-License-Identifier: AGPL-3.0-only
"""Synapse's ``/_synapse/mas`` API (Synapse 1.135 and later; ``matrix.kind: synapse``).

MAS behaviour (``crates/matrix-synapse/src/modern.rs``), with the answers observed on Synapse
1.163.2 (``synapse-integration.md`` §3): every call is a JSON ``POST`` (or a ``GET`` with a
``localpart`` query parameter) authenticated by the shared secret; any 4xx/5xx is an error.
``provision_user`` always sends ``locked`` and answers 201 for a new user, 200 for an existing
one; ``is_localpart_available`` answers 200 when free and ``M_USER_IN_USE`` /
``M_INVALID_USERNAME`` / ``M_EXCLUSIVE`` when not, and non-ASCII localparts are refused here
without asking (Synapse would answer ``M_UNKNOWN``).
"""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet
from typing import Any

from mas_twisted.homeserver._http import (
    DELETE_USER_TIMEOUT_S,
    HttpHomeserverConnection,
    opt_str,
    quote_segment,
)
from mas_twisted.homeserver.base import (
    KEEP,
    UNAVAILABLE_ERRCODES,
    HomeserverError,
    HomeserverUser,
    ProvisionRequest,
)

logger = logging.getLogger(__name__)

_PREFIX = "_synapse/mas/"


def provision_user_body(request: ProvisionRequest) -> dict[str, Any]:
    """The ``POST /_synapse/mas/provision_user`` body for ``request``.

    As MAS serialises it: ``set_*`` only when setting, ``unset_*: true`` only when unsetting,
    ``locked`` always.
    """
    body: dict[str, Any] = {"localpart": request.localpart}
    if request.displayname is not KEEP:
        if request.displayname is None:
            body["unset_displayname"] = True
        else:
            body["set_displayname"] = request.displayname
    if request.avatar_url is not KEEP:
        if request.avatar_url is None:
            body["unset_avatar_url"] = True
        else:
            body["set_avatar_url"] = request.avatar_url
    if request.emails is not KEEP:
        if request.emails is None:
            body["unset_emails"] = True
        else:
            body["set_emails"] = list(request.emails)
    body["locked"] = request.locked
    return body


def upsert_device_body(localpart: str, device_id: str, display_name: str | None) -> dict[str, Any]:
    """The ``upsert_device`` body: ``display_name`` only when given."""
    body: dict[str, Any] = {"localpart": localpart, "device_id": device_id}
    if display_name is not None:
        body["display_name"] = display_name
    return body


class SynapseConnection(HttpHomeserverConnection):
    """The homeserver connection for ``matrix.kind: synapse`` / ``synapse_modern``."""

    async def _post(self, call: str, route: str, body: dict[str, Any], **kwargs: Any) -> Any:
        return await self._api.request(call, "POST", _PREFIX + route, body=body, **kwargs)

    async def query_user(self, localpart: str) -> HomeserverUser:
        response = await self._api.request(
            "query_user", "GET", f"{_PREFIX}query_user?localpart={quote_segment(localpart)}"
        )
        body = response.json_object()
        if not isinstance(body.get("is_deactivated"), bool):
            raise HomeserverError(
                "query_user",
                "homeserver query_user: the answer has no is_deactivated flag",
                status=response.status,
                retryable=False,
            )
        suspended = body.get("is_suspended")
        return HomeserverUser(
            mxid=opt_str(body.get("user_id")) or self.mxid(localpart),
            displayname=opt_str(body.get("display_name")),
            avatar_url=opt_str(body.get("avatar_url")),
            deactivated=body["is_deactivated"],
            suspended=suspended if isinstance(suspended, bool) else None,
        )

    async def provision_user(self, request: ProvisionRequest) -> bool:
        response = await self._post("provision_user", "provision_user", provision_user_body(request))
        if response.status == 201:
            return True
        if response.status == 200:
            return False
        raise self._api.unexpected_status(response, "201 or 200")

    async def is_localpart_available(self, localpart: str) -> bool:
        # Synapse answers M_UNKNOWN for a non-ASCII localpart; it can never be valid anyway.
        if not localpart.isascii():
            return False
        try:
            await self._api.request(
                "is_localpart_available",
                "GET",
                f"{_PREFIX}is_localpart_available?localpart={quote_segment(localpart)}",
            )
        except HomeserverError as e:
            if e.errcode in UNAVAILABLE_ERRCODES:
                logger.debug("homeserver is_localpart_available: not available (%s)", e.errcode)
                return False
            raise
        return True

    async def upsert_device(self, localpart: str, device_id: str, display_name: str | None = None) -> None:
        await self._post(
            "upsert_device", "upsert_device", upsert_device_body(localpart, device_id, display_name)
        )

    async def update_device_display_name(self, localpart: str, device_id: str, display_name: str) -> None:
        await self._post(
            "update_device_display_name",
            "update_device_display_name",
            {"localpart": localpart, "device_id": device_id, "display_name": display_name},
        )

    async def delete_device(self, localpart: str, device_id: str) -> None:
        await self._post("delete_device", "delete_device", {"localpart": localpart, "device_id": device_id})

    async def sync_devices(self, localpart: str, devices: AbstractSet[str]) -> None:
        # MAS sends a set (any order); sorted here so the same call sends the same bytes.
        await self._post("sync_devices", "sync_devices", {"localpart": localpart, "devices": sorted(devices)})

    async def delete_user(self, localpart: str, erase: bool) -> None:
        await self._post(
            "delete_user",
            "delete_user",
            {"localpart": localpart, "erase": erase},
            timeout=DELETE_USER_TIMEOUT_S,
        )

    async def reactivate_user(self, localpart: str) -> None:
        await self._post("reactivate_user", "reactivate_user", {"localpart": localpart})

    async def set_displayname(self, localpart: str, displayname: str) -> None:
        await self._post(
            "set_displayname", "set_displayname", {"localpart": localpart, "displayname": displayname}
        )

    async def unset_displayname(self, localpart: str) -> None:
        await self._post("unset_displayname", "unset_displayname", {"localpart": localpart})

    async def allow_cross_signing_reset(self, localpart: str) -> None:
        await self._post("allow_cross_signing_reset", "allow_cross_signing_reset", {"localpart": localpart})
