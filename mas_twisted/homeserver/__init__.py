# SPDX-License-Identifier: AGPL-3.0-only
"""The connection to the Matrix homeserver (MAS's ``mas-matrix`` and ``mas-matrix-synapse``).

:func:`make_homeserver_connection` picks the implementation from ``matrix.kind``, as MAS's
``homeserver_connection_from_config`` (``crates/cli/src/util.rs``) does:

=====================================  =============================================
``synapse``, ``synapse_modern``        :class:`~.modern.SynapseConnection`
``synapse_legacy``                     :class:`~.legacy.LegacySynapseConnection`
``synapse_read_only``                  :class:`~.read_only.ReadOnlyConnection` over the modern one
=====================================  =============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mas_twisted.homeserver._http import HttpTransport
from mas_twisted.homeserver.base import (
    KEEP,
    HomeserverConnection,
    HomeserverError,
    HomeserverUser,
    ProvisionRequest,
    is_retryable_status,
)

if TYPE_CHECKING:
    from mas_twisted.config.matrix import MatrixConfig

__all__ = [
    "KEEP",
    "HomeserverConnection",
    "HomeserverError",
    "HomeserverUser",
    "ProvisionRequest",
    "is_retryable_status",
    "make_homeserver_connection",
]


def make_homeserver_connection(
    config: MatrixConfig, reactor: Any, *, user_agent: str = "mas-twisted", http_client: Any = None
) -> HomeserverConnection:
    """The homeserver connection ``config`` (the ``matrix`` section) asks for.

    Args:
        config: ``config.matrix``.
        reactor: the container's reactor: it carries the HTTP connections and the timeouts.
        user_agent: the ``User-Agent`` of every request.
        http_client: a ``treq.client.HTTPClient`` to use instead of a new pooled one (tests).
    """
    from mas_twisted.config.matrix import KIND_SYNAPSE_LEGACY, KIND_SYNAPSE_READ_ONLY
    from mas_twisted.homeserver.legacy import LegacySynapseConnection
    from mas_twisted.homeserver.modern import SynapseConnection
    from mas_twisted.homeserver.read_only import ReadOnlyConnection

    transport = HttpTransport(reactor, client=http_client)
    args = (config.homeserver, config.endpoint, config.secret, transport)
    if config.kind == KIND_SYNAPSE_LEGACY:
        return LegacySynapseConnection(*args, user_agent=user_agent)
    modern = SynapseConnection(*args, user_agent=user_agent)
    if config.kind == KIND_SYNAPSE_READ_ONLY:
        return ReadOnlyConnection(modern)
    return modern
