# SPDX-License-Identifier: AGPL-3.0-only
"""The rules of the admin API (``/api/admin/v1``; MAS's ``crates/handlers/src/admin/``,
inventory §6): who may call it, and what each operation changes.

**Caller** (MAS's ``admin/call_context.rs``): ``Authorization: Bearer <token>``, where the token
is an OAuth 2.0 access token (``mat_``) that is neither revoked nor expired, of a session that is
not finished, whose user (if any: ``client_credentials`` sessions have none) is neither locked nor
deactivated, and whose scope has ``urn:mas:admin``. Such a session is what a client listed in
``policy.data.admin_clients`` gets from ``client_credentials``, or what a user with
``can_request_admin`` (or in ``policy.data.admin_users``) gets by logging in: the grant policy
decides who may hold the scope, this module only asks for it. Refusals, with MAS's titles: no
header 400 "Missing authorization header", not ``Bearer`` 400 "Invalid authorization header",
then 401 "Invalid type of access token" (not an access token at all, or a compatibility token),
"Unknown access token", "Access token revoked" (session finished), "Access token expired",
"User locked", "Missing urn:mas:admin scope". A personal access token (``mpt_``) of a session
whose scope has ``urn:mas:admin`` authenticates too: its session not revoked, the token neither
revoked nor expired, its owning user (if a user owns it) valid and its actor not deactivated.

**Changes**: each is one transaction with the jobs it needs, as the CLI schedules them
(``cli/manage_users.py``): creating a user schedules ``provision-user``; locking, unlocking, and
adding or removing an email address ``provision-user`` (which carries the lock and the addresses
to the homeserver); deactivating ``deactivate-user`` (erasing unless ``skip_erase``);
reactivating ``reactivate-user``; finishing a compatibility or OAuth 2.0 session
``sync-devices`` (the compatibility logout's job).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.api.errors import AdminApiError
from mas_twisted.handlers.users import (
    HomeserverCheckFailedError,
    InvalidUsernameError,
    Registration,
)
from mas_twisted.oauth2.scope import MAS_ADMIN_SCOPE
from mas_twisted.storage.stores.admin import (
    AnyFilter,
    Page,
    Pagination,
)
from mas_twisted.types.personal import PersonalSession, PersonalSessionWithToken, hash_personal_token
from mas_twisted.types.registrations import UserRegistrationToken
from mas_twisted.types.tokens import TokenFormatError, TokenType
from mas_twisted.types.users import UserEmail

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.compat import CompatSession
    from mas_twisted.types.oauth2 import OAuth2Session
    from mas_twisted.types.policy_data import PolicyData
    from mas_twisted.types.upstream import UpstreamOAuthLink, UpstreamOAuthProvider
    from mas_twisted.types.users import BrowserSession, User

logger = logging.getLogger(__name__)

#: The username rule of MAS's ``POST /users`` (``username_valid``).
_USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789=_-./+")


def username_valid(username: str) -> bool:
    """Non-empty, at most 255 bytes, not starting with ``_``, only ``a-z0-9=_-./+``."""
    return (
        0 < len(username.encode("utf-8")) <= 255
        and not username.startswith("_")
        and all(c in _USERNAME_CHARS for c in username)
    )


@attrs.frozen
class AdminCaller:
    """Who called: the OAuth 2.0 session of the token, and its user if it has one."""

    session: OAuth2Session | PersonalSession
    user: User | None

    @property
    def personal_session_owner(self) -> tuple[str | None, str | None]:
        """``(owner_user_id, owner_client_id)`` of a personal session this caller creates (MAS's
        ``personal_session_owner_from_caller``): the session's user, else its client; for a
        personal session, its actor."""
        session = self.session
        if isinstance(session, PersonalSession):
            return session.actor_user_id, None
        if session.user_id is not None:
            return session.user_id, None
        return None, session.client_id


def _unauthorized(title: str, debug: str | None = None) -> AdminApiError:
    return AdminApiError(401, title, debug=debug)


def not_found(title: str) -> AdminApiError:
    return AdminApiError(404, title)


def _personal_error(error: Any, session_id: str | None) -> AdminApiError:
    """A :class:`~mas_twisted.handlers.personal_sessions.PersonalSessionError` with MAS's status and title."""
    kind = error.kind.value
    if kind == "user_not_found":
        return AdminApiError(404, "User not found")
    if kind == "user_deactivated":
        return AdminApiError(410, "User is not active")
    if kind == "device_provisioning_failed":
        return AdminApiError(503, "Failed to provision device", debug=error.debug)
    if kind == "not_found":
        return AdminApiError(404, f"Personal session with ID {session_id} not found")
    if kind == "already_revoked":
        return AdminApiError(409, f"Personal session with ID {session_id} is already revoked")
    return AdminApiError(422, "Session not valid")


class AdminHandler:
    """Authentication and the operations of the admin API (plain values in and out)."""

    def __init__(self, server: MasServer):
        self._server = server
        self._clock = server.get_clock()
        self._stores = server.get_stores()
        self._tokens = server.get_token_generator()
        self._activity = server.get_activity_tracker()
        self._users = server.get_user_handler()
        self._personal = server.get_personal_session_handler()

    # -- the caller ---------------------------------------------------------------------------
    async def authenticate(self, authorization: bytes | None, ip: str | None = None) -> AdminCaller:
        """The caller of a request with this ``Authorization`` header value.

        Raises:
            AdminApiError: 400 or 401 (see the module docstring).
        """
        if authorization is None:
            raise AdminApiError(400, "Missing authorization header")
        try:
            text = authorization.decode("ascii")
        except UnicodeDecodeError:
            raise AdminApiError(400, "Invalid authorization header") from None
        scheme, _, token = text.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AdminApiError(400, "Invalid authorization header")
        try:
            token_type = TokenType.check(token)
        except TokenFormatError as e:
            raise _unauthorized("Invalid type of access token", debug=str(e)) from None
        if token_type is TokenType.PERSONAL_ACCESS_TOKEN:
            return await self._authenticate_personal(token, ip)
        if token_type is not TokenType.ACCESS_TOKEN:
            raise _unauthorized("Invalid type of access token", debug=str(token_type))
        access_token = await self._stores.access_tokens.find_access_token_by_token(token)
        if access_token is None:
            raise _unauthorized("Unknown access token")
        session = await self._stores.oauth2_sessions.get_oauth2_session(access_token.session_id)
        if session is None:
            raise AdminApiError(500, f"Failed to load session {access_token.session_id}")
        if not session.is_valid:
            raise _unauthorized("Access token revoked")
        now = self._clock.time_msec()
        if not access_token.is_valid(now):
            raise _unauthorized("Access token expired")
        self._activity.record_oauth2_session(session.id, now, ip)
        user = None
        if session.user_id is not None:
            user = await self._stores.users.get_user(session.user_id)
            if user is None:
                raise AdminApiError(500, f"Failed to load user {session.user_id}")
            if not user.is_valid:
                raise _unauthorized("User locked")
        if MAS_ADMIN_SCOPE not in session.scope.tokens:
            raise _unauthorized("Missing urn:mas:admin scope")
        return AdminCaller(session=session, user=user)

    async def _authenticate_personal(self, token: str, ip: str | None) -> AdminCaller:
        """A personal access token (MAS's ``CallContext``, ``PersonalAccessToken`` branch): the
        session not revoked ("Access token revoked"), the token neither revoked nor expired
        ("Access token expired"), the owning user (if a user owns it) neither locked nor
        deactivated and the actor not deactivated ("User locked"), ``urn:mas:admin`` in scope."""
        found = await self._stores.personal_sessions.lookup_token(hash_personal_token(token))
        if found is None:
            raise _unauthorized("Unknown access token")
        session = found.session
        if not session.is_valid:
            raise _unauthorized("Access token revoked")
        now = self._clock.time_msec()
        if not found.token.is_valid(now):
            raise _unauthorized("Access token expired")
        if found.owner is not None and not found.owner.is_valid:
            raise _unauthorized("User locked")
        self._activity.record_personal_session(session.id, now, ip)
        user = await self._stores.users.get_user(session.actor_user_id)
        if user is None:
            raise AdminApiError(500, f"Failed to load user {session.actor_user_id}")
        if user.deactivated_at is not None:
            raise _unauthorized("User locked")
        if MAS_ADMIN_SCOPE not in session.scope.tokens:
            raise _unauthorized("Missing urn:mas:admin scope")
        return AdminCaller(session=session, user=user)

    def site_config(self) -> dict[str, Any]:
        """``GET /site-config`` (MAS's ``admin/v1/site_config.rs``)."""
        config = self._server.config
        account, passwords = config.account, config.passwords
        return {
            "server_name": config.matrix.homeserver,
            "password_login_enabled": passwords.enabled,
            "password_registration_enabled": passwords.enabled and account.password_registration_enabled,
            "password_registration_email_required": account.password_registration_email_required,
            "password_registration_token_required": account.password_registration_token_required,
            "registration_token_required": account.registration_token_required,
            "email_change_allowed": account.email_change_allowed,
            "displayname_change_allowed": account.displayname_change_allowed,
            "password_change_allowed": passwords.enabled and account.password_change_allowed,
            "account_recovery_allowed": passwords.enabled and account.password_recovery_enabled,
            "account_deactivation_allowed": account.account_deactivation_allowed,
            "captcha_enabled": config.captcha.service is not None,
            "minimum_password_complexity": passwords.minimum_complexity,
        }

    # -- lists --------------------------------------------------------------------------------
    async def list(
        self, list_filter: AnyFilter, pagination: Pagination, include_count: str
    ) -> tuple[Page[Any] | None, int | None]:
        """A page and/or the total (``include_count``: ``true``, ``false`` or ``only``)."""
        return await self._stores.admin.list_page(
            list_filter, None if include_count == "only" else pagination, count=include_count != "false"
        )

    async def check_clients_exist(self, client_ids: tuple[str, ...]) -> None:
        """Raises 404 "Client ID … not found" for the first unknown client of a filter."""
        known = await self._stores.admin.existing_client_ids(client_ids)
        for client_id in client_ids:
            if client_id not in known:
                raise not_found(f"Client ID {client_id} not found")

    async def check_user_exists(self, user_id: str) -> None:
        if await self._stores.users.get_user(user_id) is None:
            raise not_found(f"User ID {user_id} not found")

    async def check_user_session_exists(self, session_id: str) -> None:
        if await self._stores.admin.get_user_session(session_id) is None:
            raise not_found(f"User session ID {session_id} not found")

    # -- users --------------------------------------------------------------------------------
    async def get_user(self, user_id: str) -> User:
        user = await self._stores.users.get_user(user_id)
        if user is None:
            raise not_found(f"User ID {user_id} not found")
        return user

    async def get_user_by_username(self, username: str) -> User:
        user = await self._stores.users.find_user_by_username(username)
        if user is None:
            raise not_found(f"User with username {username!r} not found".replace("'", '"'))
        return user

    async def create_user(
        self, username: str, *, skip_homeserver_check: bool, displayname: str | None
    ) -> User:
        """Register a user with no password; ``provision-user`` tells the homeserver.

        Raises:
            AdminApiError: 409 taken (here, or on the homeserver unless skipped), 400 invalid,
                503 the homeserver could not be asked.
        """
        if await self._stores.users.user_exists(username):
            raise AdminApiError(409, "User already exists")
        if not username_valid(username):
            raise AdminApiError(400, "Username is not valid")
        try:
            await self._users.check_and_normalize_username(
                username, check_homeserver=not skip_homeserver_check
            )
            return await self._users.register_user(Registration(username=username, display_name=displayname))
        except InvalidUsernameError as e:
            if "homeserver" in e.msg:
                raise AdminApiError(409, "Username is reserved by the homeserver") from None
            if "exists" in e.msg:
                raise AdminApiError(409, "User already exists") from None
            raise AdminApiError(400, "Username is not valid", debug=e.msg) from None
        except HomeserverCheckFailedError as e:
            raise AdminApiError(503, "Could not check the username on the homeserver", debug=e.msg) from None

    async def set_password(self, user_id: str, password: str, *, skip_password_check: bool) -> None:
        """Raises 403 when password login is off, 400 when the password is too weak."""
        if not self._server.config.passwords.enabled:
            raise AdminApiError(403, "Password auth is disabled")
        user = await self.get_user(user_id)
        if not skip_password_check and not self._server.get_password_manager().is_password_complex_enough(
            password
        ):
            raise AdminApiError(400, "Password is too weak")
        await self._users.set_password(user.username, password, ignore_complexity=True)

    async def set_admin(self, user_id: str, admin: bool) -> User:
        user = await self.get_user(user_id)
        return await self._stores.users.set_can_request_admin(user, admin)

    def _enqueue(self, job: Any) -> Any:
        from mas_twisted.queue.base import enqueue_txn

        def _txn(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, job)

        return _txn

    async def lock_user(self, user_id: str) -> User:
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob

        user = await self.get_user(user_id)
        await self._stores.users.lock_user_unless_locked(
            user.id, self._clock.time_msec(), also=self._enqueue(ProvisionUserJob(user_id=user.id))
        )
        return await self.get_user(user_id)

    async def unlock_user(self, user_id: str) -> User:
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob

        user = await self.get_user(user_id)
        await self._stores.users.unlock_user_by_id(
            user.id, also=self._enqueue(ProvisionUserJob(user_id=user.id))
        )
        return await self.get_user(user_id)

    async def deactivate_user(self, user_id: str, *, skip_erase: bool) -> User:
        from mas_twisted.queue.jobs.user import DeactivateUserJob

        user = await self.get_user(user_id)
        await self._stores.admin.deactivate_user(
            user.id,
            self._clock.time_msec(),
            also=self._enqueue(DeactivateUserJob(user_id=user.id, hs_erase=not skip_erase)),
        )
        return await self.get_user(user_id)

    async def reactivate_user(self, user_id: str) -> User:
        """Schedules ``reactivate-user``, which clears the deactivation once the homeserver
        has reactivated the user."""
        from mas_twisted.queue.jobs.user import ReactivateUserJob

        user = await self.get_user(user_id)
        await self._stores.queue.schedule_in_transaction(
            "admin_reactivate_user", self._enqueue(ReactivateUserJob(user_id=user.id))
        )
        return user

    # -- user emails --------------------------------------------------------------------------
    async def get_user_email(self, email_id: str) -> UserEmail:
        email = await self._stores.admin.get_user_email(email_id)
        if email is None:
            raise not_found(f"User email ID {email_id} not found")
        return email

    async def add_user_email(self, user_id: str, address: str) -> UserEmail:
        from mas_twisted.email.message import is_valid_address
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob

        user = await self.get_user(user_id)
        if not is_valid_address(address):
            raise AdminApiError(400, f"Email {address!r} is not valid".replace("'", '"'))
        email = UserEmail(
            id=self._tokens.ulid(), user_id=user.id, email=address, created_at=self._clock.time_msec()
        )
        existing = await self._stores.admin.add_user_email(
            email, also=self._enqueue(ProvisionUserJob(user_id=user.id))
        )
        if existing is not None:
            raise AdminApiError(409, f"User email {address!r} already in use".replace("'", '"'))
        return email

    async def delete_user_email(self, email_id: str) -> None:
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob

        email = await self.get_user_email(email_id)
        removed = await self._stores.admin.remove_user_email(
            email.id, also=self._enqueue(ProvisionUserJob(user_id=email.user_id))
        )
        if not removed:
            raise not_found(f"User email ID {email_id} not found")

    # -- sessions -----------------------------------------------------------------------------
    async def get_user_session(self, session_id: str) -> BrowserSession:
        session = await self._stores.admin.get_user_session(session_id)
        if session is None:
            raise not_found(f"User session with ID {session_id} not found")
        return session

    async def finish_user_session(self, session_id: str) -> BrowserSession:
        session = await self.get_user_session(session_id)
        if session.finished_at is not None or not await self._stores.admin.finish_user_session(
            session.id, self._clock.time_msec()
        ):
            raise AdminApiError(400, f"User session with ID {session_id} is already finished")
        return await self.get_user_session(session_id)

    async def get_compat_session(self, session_id: str) -> CompatSession:
        session = await self._stores.compat_sessions.get_compat_session(session_id)
        if session is None:
            raise not_found(f"Compatibility session with ID {session_id} not found")
        return session

    async def finish_compat_session(self, session_id: str) -> CompatSession:
        """Finish the session (its tokens die at once) and schedule ``sync-devices``, which
        removes its device from the homeserver."""
        from mas_twisted.queue.jobs.matrix import SyncDevicesJob

        session = await self.get_compat_session(session_id)
        finished = session.finished_at is None and await self._stores.compat_sessions.finish_compat_session(
            session.id, also=self._enqueue(SyncDevicesJob(user_id=session.user_id))
        )
        if not finished:
            raise AdminApiError(400, f"Compatibility session with ID {session_id} is already finished")
        return await self.get_compat_session(session_id)

    async def get_oauth2_session(self, session_id: str) -> OAuth2Session:
        session = await self._stores.oauth2_sessions.get_oauth2_session(session_id)
        if session is None:
            raise not_found(f"OAuth 2.0 session with ID {session_id} not found")
        return session

    async def finish_oauth2_session(self, session_id: str) -> OAuth2Session:
        """Finish the session (tokens revoked) and, for a user's session, schedule ``sync-devices``."""
        from mas_twisted.queue.jobs.matrix import SyncDevicesJob

        session = await self.get_oauth2_session(session_id)
        also = self._enqueue(SyncDevicesJob(user_id=session.user_id)) if session.user_id is not None else None
        finished = (
            session.finished_at is None
            and await self._stores.oauth2_sessions.finish_oauth2_session_by_id(session.id, also=also)
        )
        if not finished:
            raise AdminApiError(400, f"OAuth 2.0 session with ID {session_id} is already finished")
        return await self.get_oauth2_session(session_id)

    # -- personal sessions --------------------------------------------------------------------
    async def get_personal_session(self, session_id: str) -> PersonalSessionWithToken:
        found = await self._personal.get(session_id)
        if found is None:
            raise not_found("Personal session not found")
        return found

    async def create_personal_session(
        self,
        caller: AdminCaller,
        *,
        actor_user_id: str,
        human_name: str,
        scope: str,
        expires_in: int | None,
    ) -> tuple[PersonalSessionWithToken, str]:
        """A new personal session acting as ``actor_user_id``, owned by the caller (MAS's
        ``personal_sessions/add.rs``), and its first token's text (shown this once).

        Devices named in the scope are created on the homeserver first, as MAS does.

        Raises:
            AdminApiError: 404 unknown user, 410 deactivated user, 400 invalid scope, 503 the
                homeserver could not create a device.
        """
        from mas_twisted.handlers.personal_sessions import PersonalSessionError
        from mas_twisted.oauth2.scope import InvalidScopeFormat, Scope

        owner_user_id, owner_client_id = caller.personal_session_owner
        try:
            parsed = Scope.parse(scope)
        except InvalidScopeFormat:
            parsed = None
        actor = await self._stores.users.get_user(actor_user_id)
        if actor is None:
            raise AdminApiError(404, "User not found")
        if actor.deactivated_at is not None:
            raise AdminApiError(410, "User is not active")
        if parsed is None:
            raise AdminApiError(400, "Invalid scope")
        try:
            return await self._personal.issue(
                owner_user_id=owner_user_id,
                owner_client_id=owner_client_id,
                actor_user_id=actor_user_id,
                human_name=human_name,
                scope=parsed,
                expires_in=expires_in,
            )
        except PersonalSessionError as e:
            raise _personal_error(e, session_id=None) from None

    async def revoke_personal_session(self, session_id: str) -> PersonalSessionWithToken:
        """Revoke the session and its token (MAS's ``revoke.rs``).

        Raises:
            AdminApiError: 404 unknown, 409 already revoked.
        """
        from mas_twisted.handlers.personal_sessions import PersonalSessionError

        try:
            return await self._personal.revoke(session_id)
        except PersonalSessionError as e:
            raise _personal_error(e, session_id=session_id) from None

    async def regenerate_personal_session(
        self, caller: AdminCaller, session_id: str, expires_in: int | None
    ) -> tuple[PersonalSessionWithToken, str]:
        """Replace the session's token (MAS's ``regenerate.rs``): only its owner may, and only
        while it is valid.

        Raises:
            AdminApiError: 404 unknown, 422 revoked, 403 owned by someone else.
        """
        from mas_twisted.handlers.personal_sessions import PersonalSessionError

        found = await self._personal.get(session_id)
        if found is None:
            raise AdminApiError(404, "Session not found")
        session = found.session
        if not session.is_valid:
            raise AdminApiError(422, "Session not valid")
        if (session.owner_user_id, session.owner_client_id) != caller.personal_session_owner:
            raise AdminApiError(403, "Session does not belong to you")
        try:
            return await self._personal.regenerate(session, expires_in)
        except PersonalSessionError as e:
            raise _personal_error(e, session_id=session_id) from None

    # -- user registration tokens -------------------------------------------------------------
    def now_ms(self) -> int:
        return self._clock.time_msec()

    async def get_registration_token(self, token_id: str) -> UserRegistrationToken:
        token = await self._stores.user_registrations.get_registration_token(token_id)
        if token is None:
            raise not_found(f"Registration token with ID {token_id} not found")
        return token

    async def add_registration_token(
        self, token: str | None, usage_limit: int | None, expires_at: int | None
    ) -> UserRegistrationToken:
        """A new token (MAS's ``user_registration_tokens/add.rs``): a random 12-character one
        unless given. Raises 409 when the string is taken."""
        row = UserRegistrationToken(
            id=self._tokens.ulid(),
            token=token if token is not None else self._tokens.alphanumeric(12),
            created_at=self._clock.time_msec(),
            usage_limit=usage_limit,
            expires_at=expires_at,
        )
        if not await self._stores.user_registrations.add_registration_token_unless_taken(row):
            raise AdminApiError(409, "A registration token with the same token already exists")
        return row

    async def update_registration_token(
        self, token_id: str, changes: dict[str, int | None]
    ) -> UserRegistrationToken:
        if not await self._stores.user_registrations.update_registration_token(token_id, changes):
            raise not_found(f"Registration token with ID {token_id} not found")
        return await self.get_registration_token(token_id)

    async def revoke_registration_token(self, token_id: str) -> UserRegistrationToken:
        token = await self.get_registration_token(token_id)
        if (
            token.revoked_at is not None
            or not await self._stores.user_registrations.revoke_registration_token(
                token.id, self._clock.time_msec()
            )
        ):
            raise AdminApiError(400, f"Registration token with ID {token_id} is already revoked")
        return await self.get_registration_token(token_id)

    async def unrevoke_registration_token(self, token_id: str) -> UserRegistrationToken:
        token = await self.get_registration_token(token_id)
        if token.revoked_at is None or not await self._stores.user_registrations.unrevoke_registration_token(
            token.id
        ):
            raise AdminApiError(400, f"Registration token with ID {token_id} is not revoked")
        return await self.get_registration_token(token_id)

    # -- policy data --------------------------------------------------------------------------
    async def set_policy_data(self, data: Any) -> PolicyData:
        """New policy data, in force here at once and in other processes within a minute.

        Raises:
            AdminApiError: 400 when the policies cannot use it (nothing stored).
        """
        from mas_twisted.handlers.policy_data import InvalidPolicyDataError

        try:
            return await self._server.get_policy_data_handler().set(data)
        except InvalidPolicyDataError as e:
            raise AdminApiError(400, "Failed to instanciate policy with the provided data", str(e)) from None

    async def get_latest_policy_data(self) -> PolicyData:
        found = await self._server.get_policy_data_handler().get_latest()
        if found is None:
            raise not_found("No policy data found")
        return found

    async def get_policy_data(self, policy_data_id: str) -> PolicyData:
        found = await self._server.get_policy_data_handler().get(policy_data_id)
        if found is None:
            raise not_found(f"Policy data with ID {policy_data_id} not found")
        return found

    # -- upstream OAuth links and providers ---------------------------------------------------
    async def check_provider_exists(self, provider_id: str) -> None:
        if await self._stores.upstream_oauth_providers.get_upstream_oauth_provider(provider_id) is None:
            raise not_found(f"Provider ID {provider_id} not found")

    async def get_upstream_oauth_link(self, link_id: str) -> UpstreamOAuthLink:
        link = await self._stores.upstream_oauth_sessions.get_link(link_id)
        if link is None:
            raise not_found(f"Upstream OAuth 2.0 Link ID {link_id} not found")
        return link

    async def add_upstream_oauth_link(
        self, *, user_id: str, provider_id: str, subject: str, human_account_name: str | None
    ) -> tuple[UpstreamOAuthLink, bool]:
        """Link a subject at a provider to a user (MAS's ``upstream_oauth_links/add.rs``): a
        new link (``created``), or an unowned existing one given to the user.

        Raises:
            AdminApiError: 404 unknown user or provider, 409 the subject is someone's already.
        """
        from mas_twisted.storage.stores.admin import LinkConflictError
        from mas_twisted.types.upstream import UpstreamOAuthLink

        if await self._stores.users.get_user(user_id) is None:
            raise not_found(f"User ID {user_id} not found")
        if await self._stores.upstream_oauth_providers.get_upstream_oauth_provider(provider_id) is None:
            raise not_found(f"Upstream OAuth 2.0 Provider ID {provider_id} not found")
        now = self._clock.time_msec()
        link = UpstreamOAuthLink(
            id=self._tokens.ulid(now),
            provider_id=provider_id,
            subject=subject,
            created_at=now,
            user_id=user_id,
            human_account_name=human_account_name,
        )
        try:
            return await self._stores.admin.add_upstream_oauth_link(link)
        except LinkConflictError:
            raise AdminApiError(
                409,
                f"Upstream Oauth 2.0 Provider ID {provider_id} with subject {subject} is already linked to a user",
            ) from None

    async def delete_upstream_oauth_link(self, link_id: str) -> None:
        link = await self.get_upstream_oauth_link(link_id)
        if not await self._stores.admin.remove_upstream_oauth_link(link.id, self._clock.time_msec()):
            raise not_found(f"Upstream OAuth 2.0 Link ID {link_id} not found")

    async def get_upstream_oauth_provider(self, provider_id: str) -> UpstreamOAuthProvider:
        provider = await self._stores.upstream_oauth_providers.get_upstream_oauth_provider(provider_id)
        if provider is None:
            raise not_found("Provider not found")
        return provider

    # -- OAuth 2.0 clients ---------------------------------------------------------------------
    async def get_oauth2_client(self, client_id: str) -> OAuth2Client:
        client = await self._stores.oauth2_clients.get_oauth2_client(client_id)
        if client is None:
            raise not_found(f"OAuth 2.0 client ID {client_id} not found")
        return client
