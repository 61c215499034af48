# SPDX-License-Identifier: AGPL-3.0-only
"""Dynamic policy data: what ``POST /api/admin/v1/policy-data`` sets, and how it reaches the
policies of every process (MAS's ``admin/v1/policy_data/`` and
``load_policy_factory_dynamic_data_continuously`` in ``crates/cli/src/util.rs``).

- Setting data inserts a new ``policy_data`` row and swaps it into this process's
  :class:`~mas_twisted.policy.PolicyEngine` at once. Data the engine refuses (not an object,
  cannot be merged over ``policy.data``, or breaks an entrypoint) is refused with nothing
  written.
- Every process (several may share one database) loads the latest row when it starts, then
  every :data:`REFRESH_INTERVAL_S` seconds, as MAS does; a row already in force is not merged
  again. A failed refresh keeps the data in force and is logged (MAS stops the process
  instead; a database hiccup should not take the service down).
- The ``prune-stale-policy-data`` job (``queue/jobs/cleanup.py``) keeps the
  :data:`KEEP_LATEST` latest rows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from mas_twisted.types.policy_data import PolicyData

if TYPE_CHECKING:
    from twisted.internet.task import LoopingCall

    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: Seconds between two loads of the latest row (MAS: one minute).
REFRESH_INTERVAL_S = 60.0
#: Rows the daily prune keeps (MAS: ten).
KEEP_LATEST = 10


class InvalidPolicyDataError(Exception):
    """The policies cannot use this data (the message says why)."""


class PolicyDataHandler:
    def __init__(self, server: MasServer):
        self._policy = server.get_policy()
        self._store = server.get_stores().policy_data
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._loop: LoopingCall | None = None

    async def get(self, policy_data_id: str) -> PolicyData | None:
        return await self._store.get(policy_data_id)

    async def get_latest(self) -> PolicyData | None:
        return await self._store.get_latest()

    async def set(self, data: Any) -> PolicyData:
        """Store ``data`` as the latest policy data and put it in force in this process.

        Raises:
            InvalidPolicyDataError: the policies cannot use it; nothing is stored.
        """
        try:
            self._policy.check_dynamic_data(data)
        except ValueError as e:
            raise InvalidPolicyDataError(str(e)) from None
        now = self._clock.time_msec()
        row = PolicyData(id=self._tokens.ulid(now), created_at=now, data=data)
        await self._store.add(row)
        self._policy.set_dynamic_data(row.id, row.data)
        logger.info("Policy data %s set", row.id)
        return row

    async def load(self) -> bool:
        """Put the latest row in force; whether the data changed."""
        latest = await self._store.get_latest()
        if latest is None:
            return False
        try:
            updated = self._policy.set_dynamic_data(latest.id, latest.data)
        except ValueError as e:
            logger.error("Policy data %s cannot be used, keeping the data in force: %s", latest.id, e)
            return False
        if updated:
            logger.info("Loaded dynamic policy data %s from the database", latest.id)
        return updated

    async def _refresh(self) -> None:
        try:
            await self.load()
        except Exception:
            logger.exception("Failed to load the dynamic policy data; keeping the data in force")

    def start(self) -> None:
        """Load now, then every :data:`REFRESH_INTERVAL_S` seconds (started by the service)."""
        if self._loop is None:
            self._loop = self._clock.looping_call(
                lambda: defer.ensureDeferred(self._refresh()), REFRESH_INTERVAL_S, now=True
            )

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
