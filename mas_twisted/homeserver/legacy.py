# SPDX-License-Identifier: AGPL-3.0-only
"""Synapse's admin API (``matrix.kind: synapse_legacy``), for Synapse older than 1.135.

MAS behaviour (``crates/matrix-synapse/src/legacy.rs``): users are addressed by their Matrix ID
under ``/_synapse/admin``; provisioning is ``PUT /_synapse/admin/v2/users/{mxid}`` with the
user's id in this service as an ``oauth-delegated`` external id (the lock is not sent); display
names go through the client profile API; each call checks the exact success status Synapse
documents.

This needs a Synapse that takes the shared secret as an admin token, i.e. the old
``experimental_features.msc3861.admin_token``. Synapse 1.157 removed that mode; under the
stable ``matrix_authentication_service`` section the admin API introspects the secret like any
token and refuses it (``synapse-integration.md`` §2b), so every call fails with HTTP 401.
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

#: The ``auth_provider`` of the external id that links a Synapse user to this service.
SYNAPSE_AUTH_PROVIDER = "oauth-delegated"


def provision_user_body(request: ProvisionRequest) -> dict[str, Any]:
    """The ``PUT /_synapse/admin/v2/users/{mxid}`` body for ``request``.

    As MAS: the external id always; ``displayname``/``avatar_url`` when set (``""`` to unset);
    ``threepids`` when set (``[]`` to unset). ``locked`` is not part of it.
    """
    body: dict[str, Any] = {}
    if request.displayname is not KEEP:
        body["displayname"] = request.displayname or ""
    if request.avatar_url is not KEEP:
        body["avatar_url"] = request.avatar_url or ""
    if request.emails is not KEEP:
        body["threepids"] = [{"medium": "email", "address": email} for email in (request.emails or ())]
    body["external_ids"] = [{"auth_provider": SYNAPSE_AUTH_PROVIDER, "external_id": request.sub}]
    return body


class LegacySynapseConnection(HttpHomeserverConnection):
    """The homeserver connection for ``matrix.kind: synapse_legacy``."""

    def _user_path(self, localpart: str) -> str:
        return f"_synapse/admin/v2/users/{quote_segment(self.mxid(localpart))}"

    def _expect(self, response: Any, *statuses: int) -> None:
        if response.status not in statuses:
            raise self._api.unexpected_status(response, " or ".join(str(s) for s in statuses))

    async def query_user(self, localpart: str) -> HomeserverUser:
        response = await self._api.request("query_user", "GET", self._user_path(localpart))
        body = response.json_object()
        deactivated = body.get("deactivated")
        suspended = body.get("suspended")
        return HomeserverUser(
            mxid=opt_str(body.get("name")) or self.mxid(localpart),
            displayname=opt_str(body.get("displayname")),
            avatar_url=opt_str(body.get("avatar_url")),
            deactivated=deactivated if isinstance(deactivated, bool) else False,
            suspended=suspended if isinstance(suspended, bool) else None,
        )

    async def is_localpart_available(self, localpart: str) -> bool:
        # Synapse answers M_UNKNOWN for a non-ASCII localpart; it can never be valid anyway.
        if not localpart.isascii():
            return False
        try:
            response = await self._api.request(
                "is_localpart_available",
                "GET",
                f"_synapse/admin/v1/username_available?username={quote_segment(localpart)}",
            )
        except HomeserverError as e:
            if e.errcode in UNAVAILABLE_ERRCODES:
                logger.debug("homeserver is_localpart_available: not available (%s)", e.errcode)
                return False
            raise
        available = response.json_object().get("available")
        if not isinstance(available, bool):
            raise HomeserverError(
                "is_localpart_available",
                "homeserver is_localpart_available: the answer has no available flag",
                status=response.status,
                retryable=False,
            )
        return available

    async def provision_user(self, request: ProvisionRequest) -> bool:
        response = await self._api.request(
            "provision_user", "PUT", self._user_path(request.localpart), body=provision_user_body(request)
        )
        if response.status == 201:
            return True
        if response.status == 200:
            return False
        raise self._api.unexpected_status(response, "201 or 200")

    async def upsert_device(self, localpart: str, device_id: str, display_name: str | None = None) -> None:
        response = await self._api.request(
            "upsert_device", "POST", self._user_path(localpart) + "/devices", body={"device_id": device_id}
        )
        self._expect(response, 201)
        # The admin API's device creation takes no name: it is set by a second call, as MAS does.
        if display_name is not None:
            await self.update_device_display_name(localpart, device_id, display_name)

    async def update_device_display_name(self, localpart: str, device_id: str, display_name: str) -> None:
        response = await self._api.request(
            "update_device_display_name",
            "PUT",
            f"{self._user_path(localpart)}/devices/{quote_segment(device_id)}",
            body={"display_name": display_name},
        )
        self._expect(response, 200)

    async def delete_device(self, localpart: str, device_id: str) -> None:
        response = await self._api.request(
            "delete_device", "DELETE", f"{self._user_path(localpart)}/devices/{quote_segment(device_id)}"
        )
        self._expect(response, 200)

    async def sync_devices(self, localpart: str, devices: AbstractSet[str]) -> None:
        response = await self._api.request("sync_devices", "GET", self._user_path(localpart) + "/devices")
        self._expect(response, 200)
        listed = response.json_object().get("devices")
        if not isinstance(listed, list):
            raise HomeserverError(
                "sync_devices",
                "homeserver sync_devices: the answer has no devices list",
                status=response.status,
                retryable=False,
            )
        # A dehydrated device (MSC3814) is the user's own business: never delete it.
        existing = {
            d["device_id"]
            for d in listed
            if isinstance(d, dict) and isinstance(d.get("device_id"), str) and d.get("dehydrated") is not True
        }
        to_delete = sorted(existing - set(devices))
        response = await self._api.request(
            "sync_devices",
            "POST",
            self._user_path(localpart) + "/delete_devices",
            body={"devices": to_delete},
        )
        self._expect(response, 200)
        # No batch creation: one idempotent upsert per missing device, as MAS does.
        for device_id in sorted(set(devices) - existing):
            await self.upsert_device(localpart, device_id)

    async def delete_user(self, localpart: str, erase: bool) -> None:
        response = await self._api.request(
            "delete_user",
            "POST",
            f"_synapse/admin/v1/deactivate/{quote_segment(self.mxid(localpart))}",
            body={"erase": erase},
            timeout=DELETE_USER_TIMEOUT_S,
        )
        self._expect(response, 200)

    async def reactivate_user(self, localpart: str) -> None:
        response = await self._api.request(
            "reactivate_user", "PUT", self._user_path(localpart), body={"deactivated": False}
        )
        self._expect(response, 200, 201)

    async def set_displayname(self, localpart: str, displayname: str) -> None:
        await self._put_displayname("set_displayname", localpart, displayname)

    async def unset_displayname(self, localpart: str) -> None:
        await self._put_displayname("unset_displayname", localpart, "")

    async def _put_displayname(self, call: str, localpart: str, displayname: str) -> None:
        response = await self._api.request(
            call,
            "PUT",
            f"_matrix/client/v3/profile/{quote_segment(self.mxid(localpart))}/displayname",
            body={"displayname": displayname},
        )
        self._expect(response, 200)

    async def allow_cross_signing_reset(self, localpart: str) -> None:
        response = await self._api.request(
            "allow_cross_signing_reset",
            "POST",
            f"_synapse/admin/v1/users/{quote_segment(self.mxid(localpart))}/_allow_cross_signing_replacement_without_uia",
            body={},
        )
        self._expect(response, 200)
