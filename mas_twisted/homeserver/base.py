# SPDX-License-Identifier: AGPL-3.0-only
"""The homeserver connection: what this service asks of the Matrix homeserver.

MAS behaviour (``crates/matrix/src/lib.rs``, trait ``HomeserverConnection``): every call names a
user by its localpart; the homeserver's server name makes the Matrix ID
``@{localpart}:{server_name}``; the homeserver authenticates itself to us (at introspection)
with the same shared secret we send it (``verify_token``). Implementations:
:mod:`mas_twisted.homeserver.modern` (Synapse's ``/_synapse/mas`` API),
:mod:`mas_twisted.homeserver.legacy` (Synapse's admin API) and
:mod:`mas_twisted.homeserver.read_only` (reads only).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import hmac
import logging
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

logger = logging.getLogger(__name__)


class _Keep(enum.Enum):
    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


#: A :class:`ProvisionRequest` field left as it is on the homeserver (MAS's
#: ``FieldAction::DoNothing``); ``None`` unsets the field, a value sets it.
KEEP = _Keep.KEEP

FieldAction = _Keep | None | str
EmailsAction = _Keep | None | tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class HomeserverUser:
    """A user as the homeserver sees it (MAS's ``MatrixUser``).

    Attributes:
        mxid: the full Matrix ID.
        displayname: the profile display name, or ``None``.
        avatar_url: the profile avatar (an ``mxc://`` URI), or ``None``.
        deactivated: whether the account is deactivated on the homeserver.
        suspended: whether the account is suspended (MSC3823); ``None`` when the API used does
            not say (the legacy admin API on older Synapse).
    """

    mxid: str
    displayname: str | None
    avatar_url: str | None
    deactivated: bool
    suspended: bool | None = None


@dataclasses.dataclass(frozen=True)
class ProvisionRequest:
    """Create or update a user on the homeserver (MAS's ``ProvisionRequest``).

    ``displayname``, ``avatar_url`` and ``emails`` each hold :data:`KEEP` (leave it alone, the
    default), ``None`` (unset it) or a value (set it). Build with the ``set_*``/``unset_*``
    methods, which return a new request::

        ProvisionRequest("alice", user.id, locked=False).set_displayname("Alice").set_emails(["a@x"])

    Attributes:
        localpart: the user's localpart.
        sub: the user's id in this service (MAS's ``sub``); the legacy API stores it as an
            external id.
        locked: whether the user is locked (always sent to the modern API).
    """

    localpart: str
    sub: str
    locked: bool = False
    displayname: FieldAction = KEEP
    avatar_url: FieldAction = KEEP
    emails: EmailsAction = KEEP

    def set_displayname(self, displayname: str) -> ProvisionRequest:
        return dataclasses.replace(self, displayname=displayname)

    def unset_displayname(self) -> ProvisionRequest:
        return dataclasses.replace(self, displayname=None)

    def set_avatar_url(self, avatar_url: str) -> ProvisionRequest:
        return dataclasses.replace(self, avatar_url=avatar_url)

    def unset_avatar_url(self) -> ProvisionRequest:
        return dataclasses.replace(self, avatar_url=None)

    def set_emails(self, emails: Iterable[str]) -> ProvisionRequest:
        return dataclasses.replace(self, emails=tuple(emails))

    def unset_emails(self) -> ProvisionRequest:
        return dataclasses.replace(self, emails=None)


#: Matrix error codes meaning "this localpart cannot be registered" (MAS's ``error.rs``).
M_USER_IN_USE = "M_USER_IN_USE"
M_INVALID_USERNAME = "M_INVALID_USERNAME"
M_EXCLUSIVE = "M_EXCLUSIVE"
UNAVAILABLE_ERRCODES = frozenset({M_USER_IN_USE, M_INVALID_USERNAME, M_EXCLUSIVE})


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP error status is worth retrying later.

    5xx (the homeserver or a proxy in front of it is in trouble), 429 (rate limited) and 408
    (request timeout) are; every other status is a refusal that repeating will not change.
    """
    return status >= 500 or status in (408, 429)


class HomeserverError(Exception):
    """A homeserver call failed.

    The message is one line and never contains the shared secret or tokens.

    Attributes:
        call: the connection method that failed (``"provision_user"``).
        status: the HTTP status, or ``None`` if no response came (connection error, timeout).
        errcode: the Matrix ``errcode`` of the response body, if it had one.
        error: the Matrix ``error`` text of the response body, if it had one.
        retryable: whether trying again later may succeed: connection errors, timeouts, 5xx,
            408 and 429 are; other 4xx and malformed answers are not.
    """

    def __init__(
        self,
        call: str,
        message: str,
        *,
        status: int | None = None,
        errcode: str | None = None,
        error: str | None = None,
        retryable: bool,
    ):
        super().__init__(message)
        self.call = call
        self.status = status
        self.errcode = errcode
        self.error = error
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"HomeserverError(call={self.call!r}, status={self.status!r}, errcode={self.errcode!r}, "
            f"retryable={self.retryable!r}, message={str(self)!r})"
        )


class HomeserverConnection(abc.ABC):
    """The operations this service needs from the homeserver (MAS's ``HomeserverConnection``).

    Every method but :meth:`mxid`, :meth:`localpart` and :meth:`verify_token` talks to the
    homeserver and raises :class:`HomeserverError` when that fails.
    """

    def __init__(self, server_name: str, secret: str):
        self._server_name = server_name
        self._secret = secret

    @property
    def homeserver(self) -> str:
        """The homeserver's server name (``matrix.homeserver``)."""
        return self._server_name

    def mxid(self, localpart: str) -> str:
        """The Matrix ID of ``localpart`` on this homeserver."""
        return f"@{localpart}:{self._server_name}"

    def localpart(self, mxid: str) -> str | None:
        """The localpart of ``mxid`` if it is a user ID on this homeserver, else ``None``."""
        if not mxid.startswith("@") or ":" not in mxid:
            return None
        localpart, _, server_name = mxid[1:].partition(":")
        if not localpart or server_name != self._server_name:
            return None
        return localpart

    async def verify_token(self, token: str) -> bool:
        """Whether ``token`` is the shared secret: the homeserver authenticating itself to us.

        Compared in constant time.
        """
        return hmac.compare_digest(token.encode("utf-8"), self._secret.encode("utf-8"))

    async def close(self) -> None:
        """Release the HTTP connections this connection holds open (at shutdown)."""

    @abc.abstractmethod
    async def query_user(self, localpart: str) -> HomeserverUser:
        """The user's state on the homeserver (``M_NOT_FOUND`` error if it does not exist)."""

    @abc.abstractmethod
    async def provision_user(self, request: ProvisionRequest) -> bool:
        """Create or update the user. Returns ``True`` if it was created, ``False`` if it existed."""

    @abc.abstractmethod
    async def is_localpart_available(self, localpart: str) -> bool:
        """Whether ``localpart`` could be registered: ``False`` if taken, invalid or reserved."""

    @abc.abstractmethod
    async def upsert_device(self, localpart: str, device_id: str, display_name: str | None = None) -> None:
        """Create the device if it does not exist (``display_name`` is its initial name)."""

    @abc.abstractmethod
    async def update_device_display_name(self, localpart: str, device_id: str, display_name: str) -> None:
        """Rename a device."""

    @abc.abstractmethod
    async def delete_device(self, localpart: str, device_id: str) -> None:
        """Delete a device (and so invalidate its tokens on the homeserver)."""

    @abc.abstractmethod
    async def sync_devices(self, localpart: str, devices: AbstractSet[str]) -> None:
        """Make the user's devices exactly ``devices``: delete the others, create the missing."""

    @abc.abstractmethod
    async def delete_user(self, localpart: str, erase: bool) -> None:
        """Deactivate the user, erasing their data (GDPR erasure) if ``erase``."""

    @abc.abstractmethod
    async def reactivate_user(self, localpart: str) -> None:
        """Reactivate a deactivated user."""

    @abc.abstractmethod
    async def set_displayname(self, localpart: str, displayname: str) -> None:
        """Set the user's display name."""

    @abc.abstractmethod
    async def unset_displayname(self, localpart: str) -> None:
        """Remove the user's display name."""

    @abc.abstractmethod
    async def allow_cross_signing_reset(self, localpart: str) -> None:
        """Let the user replace their cross-signing keys without UIA for a while (10 min on Synapse)."""
