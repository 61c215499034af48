# SPDX-License-Identifier: AGPL-3.0-only
"""Deactivating and reactivating users (MAS's ``crates/tasks/src/user.rs``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from mas_twisted.queue.base import Job, JobContext, JobError
from mas_twisted.queue.jobs.matrix import homeserver_error, load_user

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)


@attrs.frozen
class DeactivateUserJob(Job):
    """``deactivate-user``: deactivate the user here (sessions ended, tokens revoked, emails
    removed) in one transaction, then on the homeserver, erasing their data there when
    ``hs_erase``."""

    QUEUE_NAME = "deactivate-user"
    user_id: str
    hs_erase: bool = False

    async def run(self, server: MasServer, context: JobContext) -> None:
        user = await load_user(server, self.user_id)
        try:
            ended = await server.get_stores().users.deactivate_user_everywhere(
                user.id, server.get_clock().time_msec()
            )
        except Exception as e:
            raise JobError.retryable(e)
        logger.info("Deactivated user %s: %s", user.id, ", ".join(f"{v} {k}" for k, v in ended.items()))
        try:
            await server.get_homeserver_connection().delete_user(user.username, self.hs_erase)
        except Exception as e:
            raise homeserver_error(e)
        logger.info("Deactivated user %s on the homeserver (erase: %s)", user.id, self.hs_erase)


@attrs.frozen
class ReactivateUserJob(Job):
    """``reactivate-user``: reactivate on the homeserver, then here."""

    QUEUE_NAME = "reactivate-user"
    user_id: str

    async def run(self, server: MasServer, context: JobContext) -> None:
        user = await load_user(server, self.user_id)
        try:
            await server.get_homeserver_connection().reactivate_user(user.username)
        except Exception as e:
            raise homeserver_error(e)
        try:
            await server.get_stores().users.reactivate_user(user)
        except Exception as e:
            raise JobError.retryable(e)
        logger.info("Reactivated user %s", user.id)
