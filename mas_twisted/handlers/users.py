# SPDX-License-Identifier: AGPL-3.0-only
"""Creating users and setting passwords (MAS's ``mas-cli manage register-user`` and
``manage set-password``, ``crates/cli/src/commands/manage.rs``).

A username may be given as a localpart or a Matrix ID: a leading ``@`` and anything from the
first ``:`` on are dropped, as MAS does. It must then be free (in any casing) and a valid
Matrix localpart (lower-case letters, digits and ``._=-/+``, as Synapse's
``is_localpart_available`` demands). The CLI also asks the homeserver, as MAS does: a name it
says is taken or invalid is refused, and so is every name while it cannot answer at all
(:class:`HomeserverCheckFailedError`), unless the operator skips the check.
A password must reach ``passwords.minimum_complexity`` unless the caller waives the check.
The user, their password and their emails are written in one transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from mas_twisted.api.errors import MasError
from mas_twisted.email.message import is_valid_address
from mas_twisted.types.users import User, UserEmail, UserPassword

if TYPE_CHECKING:
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

_LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
#: A Matrix user ID is at most 255 bytes (``@``, localpart, ``:``, server name).
_MAX_MXID_LENGTH = 255


class UserNotFoundError(MasError):
    def __init__(self, username: str):
        super().__init__("User not found", code=404, debug=f"no user named {username!r}")
        self.username = username


class InvalidUsernameError(MasError):
    """The username cannot be registered (empty, malformed, or taken)."""

    def __init__(self, msg: str):
        super().__init__(msg, code=400)


class HomeserverCheckFailedError(MasError):
    """The homeserver could not confirm that the username is free (unreachable, timed out,
    or an unexpected answer), so it cannot be registered."""

    def __init__(self, reason: str):
        super().__init__(f"Could not check the username on the homeserver: {reason}", code=503)


class PasswordTooWeakError(MasError):
    def __init__(self) -> None:
        super().__init__("That password is too weak.", code=400)


class InvalidEmailError(MasError):
    def __init__(self, email: str):
        super().__init__(f"Invalid email address: {email}", code=400)


class UpstreamLinkError(MasError):
    """An upstream account of ``register-user -m`` cannot be linked (unknown or disabled
    provider, or a subject that has a link already)."""

    def __init__(self, msg: str):
        super().__init__(msg, code=400)


@attrs.frozen
class Registration:
    """What ``register-user`` is about to create."""

    username: str
    #: ``(version, hash)`` of the password, already hashed.
    hashed_password: tuple[int, str] | None = None
    emails: tuple[str, ...] = ()
    #: ``None`` leaves the default (not an admin).
    can_request_admin: bool | None = None
    display_name: str | None = None
    #: ``(provider_id, subject)`` of each upstream account to link (``-m PROVIDER:SUBJECT``).
    upstream_links: tuple[tuple[str, str], ...] = ()


def strip_mxid(localpart_or_mxid: str) -> str:
    """``@alice:example.com`` → ``alice`` (MAS's basic MXID-to-localpart conversion)."""
    localpart = localpart_or_mxid.lstrip("@")
    return localpart.split(":", 1)[0]


class UserHandler:
    """User creation and password changes, for the CLI and the admin API."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        self._stores = server.get_stores()
        self._passwords = server.get_password_manager()
        self._tokens = server.get_token_generator()
        self.server_name: str = server.config.matrix.homeserver
        self._server = server

    def mxid(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    async def check_and_normalize_username(
        self, localpart_or_mxid: str, *, check_homeserver: bool = False
    ) -> str:
        """The localpart to register for ``localpart_or_mxid``.

        With ``check_homeserver``, the homeserver must also confirm the name is free.

        Raises:
            InvalidUsernameError: empty, not a valid Matrix localpart, or already taken (here
                or, with ``check_homeserver``, on the homeserver).
            HomeserverCheckFailedError: ``check_homeserver`` and the homeserver could not answer.
        """
        localpart = strip_mxid(localpart_or_mxid)
        if not localpart:
            raise InvalidUsernameError("Username cannot be empty")
        if not _LOCALPART_RE.match(localpart) or localpart.startswith("_"):
            raise InvalidUsernameError(
                f"Invalid username {localpart!r}: use lower-case letters, digits and . _ = - / + (not first _)"
            )
        if len(self.mxid(localpart).encode("utf-8")) > _MAX_MXID_LENGTH:
            raise InvalidUsernameError(f"Username {localpart!r} is too long")
        if await self._stores.users.user_exists(localpart):
            raise InvalidUsernameError("User already exists")
        if check_homeserver:
            await self._check_available_on_homeserver(localpart)
        return localpart

    async def _check_available_on_homeserver(self, localpart: str) -> None:
        """MAS's CLI refuses a username unless the homeserver confirms it is free: a name it
        says is taken, invalid or reserved is refused, and so is any name while the homeserver
        cannot answer (unreachable, timed out, an unexpected answer), since a name Synapse
        already has must never be handed out again. ``register-user --skip-homeserver-check``
        is the operator's explicit way round it.

        Raises:
            InvalidUsernameError: the homeserver says the name is not available.
            HomeserverCheckFailedError: the homeserver could not be asked.
        """
        from mas_twisted.homeserver.base import HomeserverError

        try:
            available = await self._server.get_homeserver_connection().is_localpart_available(localpart)
        except HomeserverError as e:
            raise HomeserverCheckFailedError(str(e)) from None
        if not available:
            raise InvalidUsernameError("Username not available on homeserver")

    def check_password_complexity(self, password: str) -> None:
        """Raises :class:`PasswordTooWeakError` below ``passwords.minimum_complexity``."""
        if not self._passwords.is_password_complex_enough(password):
            raise PasswordTooWeakError()

    async def hash_password(self, password: str) -> tuple[int, str]:
        return await self._passwords.hash(password)

    async def register_user(self, registration: Registration) -> User:
        """Create the user, with its password, emails and upstream links, in one transaction.

        Raises:
            InvalidUsernameError: the username is invalid or taken.
            InvalidEmailError: an email address is malformed.
            UpstreamLinkError: an upstream subject already has a link.
        """
        username = await self.check_and_normalize_username(registration.username)
        for email in registration.emails:
            if not is_valid_address(email):
                raise InvalidEmailError(email)
        now = self._clock.time_msec()
        user = User(
            id=self._tokens.ulid(),
            username=username,
            created_at=now,
            can_request_admin=bool(registration.can_request_admin),
        )
        password = None
        if registration.hashed_password is not None:
            version, hashed = registration.hashed_password
            password = UserPassword(
                id=self._tokens.ulid(),
                user_id=user.id,
                hashed_password=hashed,
                version=version,
                created_at=now,
            )
        emails = [
            UserEmail(id=self._tokens.ulid(), user_id=user.id, email=address, created_at=now)
            for address in registration.emails
        ]
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob
        from mas_twisted.storage.stores.users import UpstreamLinkExistsError
        from mas_twisted.types.upstream import UpstreamOAuthLink

        links = [
            UpstreamOAuthLink(
                id=self._tokens.ulid(),
                provider_id=provider_id,
                subject=subject,
                created_at=now,
                user_id=user.id,
            )
            for provider_id, subject in registration.upstream_links
        ]
        # The homeserver learns of the user from a job scheduled in the same transaction.
        provision = ProvisionUserJob(user_id=user.id, set_display_name=registration.display_name)
        try:
            await self._stores.users.register_user(
                user,
                password,
                emails,
                also=lambda txn: enqueue_txn(txn, self._server, provision),
                links=links,
            )
        except UpstreamLinkExistsError as e:
            provider_id, subject = e.args
            raise UpstreamLinkError(
                f"The subject {subject!r} of upstream provider {provider_id} is already linked"
            ) from None
        logger.info("User registered: %s (%s)", user.username, user.id)
        return user

    async def set_password(self, username: str, password: str, *, ignore_complexity: bool = False) -> User:
        """Give the user a new password (hashed with the current scheme).

        Raises:
            UserNotFoundError: no such user.
            PasswordTooWeakError: below ``minimum_complexity`` (unless ``ignore_complexity``).
        """
        user = await self._stores.users.find_user_by_username(username)
        if user is None:
            raise UserNotFoundError(username)
        if not ignore_complexity:
            self.check_password_complexity(password)
        version, hashed = await self._passwords.hash(password)
        await self._stores.user_passwords.add_user_password(
            UserPassword(
                id=self._tokens.ulid(),
                user_id=user.id,
                hashed_password=hashed,
                version=version,
                created_at=self._clock.time_msec(),
            )
        )
        logger.info("Password changed for user %s (%s)", user.username, user.id)
        return user

    async def add_emails(self, user: User, emails: Sequence[str]) -> None:
        """Add verified addresses to a user (skipping ones they already have)."""
        for address in emails:
            if not is_valid_address(address):
                raise InvalidEmailError(address)
            if await self._stores.user_emails.find_user_email(user.id, address) is None:
                await self._stores.user_emails.add_user_email(
                    UserEmail(
                        id=self._tokens.ulid(),
                        user_id=user.id,
                        email=address,
                        created_at=self._clock.time_msec(),
                    )
                )
