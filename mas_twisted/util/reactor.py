# SPDX-License-Identifier: AGPL-3.0-only
"""The reactor's type: every interface of Twisted's reactor the service uses, in one.

Synapse's ``ISynapseReactor``: Twisted types each capability of its reactor as its own
interface, and a process's reactor provides all of them, so ``MasServer.get_reactor()`` returns
this union instead of one interface at a time (with mypy-zope, mypy then checks each use).
"""

from __future__ import annotations

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorFromThreads,
    IReactorPluggableNameResolver,
    IReactorSSL,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
    IReactorUNIX,
)
from zope.interface import Interface


class IMasReactor(
    IReactorCore,
    IReactorTime,
    IReactorThreads,
    IReactorFromThreads,
    IReactorTCP,
    IReactorSSL,
    IReactorUNIX,
    IReactorPluggableNameResolver,
    Interface,
):
    """A reactor providing everything the service runs on."""
