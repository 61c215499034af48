# SPDX-License-Identifier: AGPL-3.0-only
"""Jobs that talk to the homeserver about users and devices (MAS's ``crates/tasks/src/matrix.rs``).

Every homeserver failure that may pass (connection refused, timeout, 5xx, 429) is retried with
the queue's backoff; a refusal (4xx) fails the job for good. A job whose user is gone fails
for good, as in MAS.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from mas_twisted.queue.base import Job, JobContext, JobError, enqueue_txn

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import User

logger = logging.getLogger(__name__)


def homeserver_error(error: Exception) -> JobError:
    """A homeserver failure as a job error: retried when the homeserver says it may pass."""
    from mas_twisted.homeserver.base import HomeserverError

    if isinstance(error, HomeserverError):
        return JobError(str(error), retry=error.retryable)
    return JobError.retryable(error)


async def load_user(server: MasServer, user_id: str) -> User:
    try:
        user = await server.get_stores().users.get_user(user_id)
    except Exception as e:
        raise JobError.retryable(e)
    if user is None:
        raise JobError.fatal(f"user {user_id} not found")
    return user


@attrs.frozen
class ProvisionUserJob(Job):
    """Create or update the user on the homeserver (``provision-user``), then sync their devices."""

    QUEUE_NAME = "provision-user"
    user_id: str
    set_display_name: str | None = None

    async def run(self, server: MasServer, context: JobContext) -> None:
        from mas_twisted.homeserver.base import ProvisionRequest

        user = await load_user(server, self.user_id)
        try:
            emails = [e.email for e in await server.get_stores().user_emails.list_user_emails(user.id)]
        except Exception as e:
            raise JobError.retryable(e)
        request = ProvisionRequest(user.username, user.id, locked=user.locked_at is not None).set_emails(
            emails
        )
        if self.set_display_name is not None:
            request = request.set_displayname(self.set_display_name)
        homeserver = server.get_homeserver_connection()
        try:
            created = await homeserver.provision_user(request)
        except Exception as e:
            raise homeserver_error(e)
        logger.info(
            "User %s %s on the homeserver as %s",
            user.id,
            "created" if created else "updated",
            homeserver.mxid(user.username),
        )

        def _txn(txn):
            enqueue_txn(txn, server, SyncDevicesJob(user_id=user.id))

        await server.get_stores().queue.schedule_in_transaction("provision_user_schedule_sync", _txn)


class _LegacyDeviceJob(Job):
    """MAS's older per-device jobs: now they only schedule ``sync-devices`` for the user."""

    user_id: str
    device_id: str

    async def run(self, server: MasServer, context: JobContext) -> None:
        user = await load_user(server, self.user_id)
        await _schedule_sync(server, user.id)


@attrs.frozen
class ProvisionDeviceJob(_LegacyDeviceJob):
    QUEUE_NAME = "provision-device"
    user_id: str
    device_id: str


@attrs.frozen
class DeleteDeviceJob(_LegacyDeviceJob):
    QUEUE_NAME = "delete-device"
    user_id: str
    device_id: str


async def _schedule_sync(server: MasServer, user_id: str) -> None:
    def _txn(txn):
        enqueue_txn(txn, server, SyncDevicesJob(user_id=user_id))

    await server.get_stores().queue.schedule_in_transaction("schedule_sync_devices", _txn)


@attrs.frozen
class SyncDevicesJob(Job):
    """Make the homeserver's device list of a user what our sessions say (``sync-devices``):
    the devices of the user's valid OAuth 2.0 sessions (device scopes) and compatibility
    sessions. Runs under a per-user lock, so that two syncs of one user never interleave a
    stale list with a fresh one."""

    QUEUE_NAME = "sync-devices"
    user_id: str

    async def run(self, server: MasServer, context: JobContext) -> None:
        from mas_twisted.handlers.device_sync import DeviceSyncLockBusy, device_sync_lock

        user = await load_user(server, self.user_id)
        try:
            async with device_sync_lock(server, user.id, f"job:{context.id}"):
                devices = await server.get_stores().users.active_device_ids(user.id)
                try:
                    await server.get_homeserver_connection().sync_devices(user.username, devices)
                except Exception as e:
                    raise homeserver_error(e)
        except JobError:
            raise
        except DeviceSyncLockBusy as e:
            raise JobError.retryable(e)
        except Exception as e:  # the database, taking the lock or reading the devices
            raise JobError.retryable(e)
        logger.info("Synced %d device(s) of user %s to the homeserver", len(devices), user.id)
