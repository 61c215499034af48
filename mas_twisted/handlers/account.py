# SPDX-License-Identifier: AGPL-3.0-only
"""The rules of the account pages (``/account/``; MAS's account SPA and the GraphQL mutations
behind it, ``crates/handlers/src/graphql/mutations/``; inventory §4, §5).

Everything here acts for the signed-in user only: a session, device or email id of another
user is :class:`~mas_twisted.api.errors.NotFoundError`, exactly as an unknown one.

- Profile: the homeserver's ``query_user`` (display name, avatar), asked with a short timeout
  so that the page renders while the homeserver is down; ``set_display_name`` calls the
  homeserver's ``set_displayname``/``unset_displayname`` directly, as MAS's ``setDisplayName``
  mutation does, and needs ``account.displayname_change_allowed``.
- Sessions: every unfinished browser, OAuth 2.0 and compatibility session of the user, and
  every personal session acting as the user that is not revoked (whoever owns it: its token
  acts as them), with its name, scope, device, expiry and activity.
  Ending an OAuth 2.0, compatibility or personal session finishes it (a personal session's
  token is revoked with it) (its tokens stop introspecting as
  active at once: introspection checks the session) and schedules ``sync-devices`` in the
  same transaction, which removes the device from the homeserver. Renaming a device stores
  the name and calls ``update_device_display_name`` (MAS's ``setCompatSessionName`` /
  ``setOauth2SessionName``).
- Emails: ``account.email_change_allowed``; a new address gets a 6-digit code by email (the
  ``email`` policy, the registration's email rate limits, the password when the user has one:
  MAS's ``startEmailAuthentication``), and is added once the code is entered, unless another
  user has it (the in-use page); removing one never removes the last one while
  ``account.password_registration_email_required``. Both schedule ``provision-user`` (the
  homeserver's copy of the addresses) in the same transaction. MAS 1.x has no primary address
  any more (``setPrimaryEmail`` is a deprecated no-op), so neither do these pages.
- Password: ``account.password_change_allowed`` and password login on; the current password
  must match, the new one reach ``passwords.minimum_complexity`` (MAS's ``setPassword``).
- Cross-signing reset: ``allow_cross_signing_reset`` on the homeserver.
- Deactivation: ``account.account_deactivation_allowed``; the password when the user has
  one; then the user is marked deactivated (every token dead at once) and ``deactivate-user``
  is scheduled in the same transaction, as ``mas-cli manage lock-user --deactivate`` and the
  admin API do (MAS's ``deactivateUser``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twisted.internet import defer

from mas_twisted.api.errors import NotFoundError, PageError
from mas_twisted.handlers.device_name import describe_user_agent, device_display_name
from mas_twisted.oauth2.scope import device_id_from_scope
from mas_twisted.types.account import AccountProfile, AccountSession, SessionKind
from mas_twisted.types.registrations import UserEmailAuthentication, UserEmailAuthenticationCode
from mas_twisted.types.users import UserEmail, UserPassword

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.storage.database import LoggingTransaction
    from mas_twisted.types.compat import CompatSession
    from mas_twisted.types.oauth2 import OAuth2Session
    from mas_twisted.types.personal import PersonalSessionWithToken
    from mas_twisted.types.users import BrowserSession, User

logger = logging.getLogger(__name__)

#: How long the profile page waits for the homeserver's ``query_user``, in seconds.
PROFILE_TIMEOUT_S = 5.0
#: MAS's limit on a display name (Synapse's is 256 characters).
MAX_DISPLAY_NAME_LENGTH = 256
#: The longest device name accepted.
MAX_DEVICE_NAME_LENGTH = 256
#: What a compatibility session is called when it has no name (MAS's "Legacy login").
COMPAT_CLIENT_NAME = "Legacy login"
#: What the sessions list calls the "client" of a personal session.
PERSONAL_CLIENT_NAME = "Personal access token"

# Problems of the forms (the codes of components/form.html).
REQUIRED = "required"
INVALID = "invalid"
PASSWORD_MISMATCH = "password_mismatch"
PASSWORD_TOO_WEAK = "password_too_weak"
WRONG_PASSWORD = "wrong_password"
HOMESERVER_UNAVAILABLE = "homeserver_unavailable"


class FeatureDisabledError(PageError):
    """The configuration does not let users do this (``account.*_allowed: false``)."""

    def __init__(self, what: str):
        super().__init__(f"{what} is disabled on this server.", code=403)


class AccountHandler:
    """``server.get_account_handler()``."""

    def __init__(self, server: MasServer):
        self._server = server
        self._stores = server.get_stores()
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._passwords = server.get_password_manager()
        self._homeserver = server.get_homeserver_connection()
        self._account = server.config.account
        self.plan_management_iframe_uri: str | None = server.config.experimental.plan_management_iframe_uri

    # -- what is allowed ------------------------------------------------------------------
    @property
    def displayname_change_allowed(self) -> bool:
        return bool(self._account.displayname_change_allowed)

    @property
    def email_change_allowed(self) -> bool:
        return bool(self._account.email_change_allowed)

    @property
    def password_change_allowed(self) -> bool:
        return bool(self._account.password_change_allowed and self._passwords.enabled)

    @property
    def account_deactivation_allowed(self) -> bool:
        return bool(self._account.account_deactivation_allowed)

    # -- profile --------------------------------------------------------------------------
    async def load_profile(self, user: User) -> AccountProfile:
        """The user's display name and avatar on the homeserver (unknown if it does not answer)."""
        mxid = self._homeserver.mxid(user.username)
        d = defer.ensureDeferred(self._homeserver.query_user(user.username))
        d.addTimeout(PROFILE_TIMEOUT_S, self._server.get_reactor())
        try:
            found = await d
        except Exception as e:
            logger.warning("Could not read the profile of %s from the homeserver: %r", user.id, e)
            return AccountProfile(mxid=mxid, reachable=False)
        return AccountProfile(mxid=found.mxid, display_name=found.displayname, avatar_url=found.avatar_url)

    async def set_display_name(self, user: User, display_name: str) -> str | None:
        """Set (or, when blank, remove) the display name on the homeserver; the problem code
        when refused (``invalid``, ``homeserver_unavailable``), else ``None``.

        Raises:
            FeatureDisabledError: ``account.displayname_change_allowed`` is off.
        """
        if not self.displayname_change_allowed:
            raise FeatureDisabledError("Changing the display name")
        display_name = display_name.strip()
        if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
            return INVALID
        try:
            if display_name:
                await self._homeserver.set_displayname(user.username, display_name)
            else:
                await self._homeserver.unset_displayname(user.username)
        except Exception as e:
            logger.warning("Could not set the display name of %s on the homeserver: %r", user.id, e)
            return HOMESERVER_UNAVAILABLE
        logger.info("User %s changed their display name", user.id)
        return None

    # -- emails ---------------------------------------------------------------------------
    @property
    def email_required(self) -> bool:
        """Whether a user must keep an address (``account.password_registration_email_required``)."""
        return bool(self._account.password_registration_email_required)

    async def start_add_email(
        self,
        user: User,
        current: BrowserSession,
        email: str,
        password: str,
        *,
        client_ip: str | None,
        user_agent: str | None,
    ) -> tuple[UserEmailAuthentication | None, dict[str | None, str]]:
        """Send a 6-digit code to a new address (MAS's ``startEmailAuthentication``): the
        authentication, or the problems. The address must be valid, allowed by the ``email``
        policy, and within the email rate limits; the password is asked when the user has one.

        Raises:
            FeatureDisabledError: ``account.email_change_allowed`` is off.
        """
        from mas_twisted.handlers.email import schedule_email_txn
        from mas_twisted.handlers.rate_limit import RateLimitExceededError
        from mas_twisted.handlers.user_registration import EMAIL_CODE_TTL_MS, _is_address
        from mas_twisted.policy.model import Requester

        if not self.email_change_allowed:
            raise FeatureDisabledError("Changing email addresses")
        email = email.strip()
        if not email:
            return None, {"email": REQUIRED}
        if not _is_address(email):
            return None, {"email": INVALID}
        if await self.has_password(user) and not await self._check_password(user, password):
            return None, {"password": WRONG_PASSWORD}
        result = self._server.get_policy().evaluate_email(
            email=email, requester=Requester(ip_address=client_ip, user_agent=user_agent)
        )
        if result.violations:
            return None, {"email": "policy"}
        if any(
            e.email.lower() == email.lower() for e in await self._stores.user_emails.list_user_emails(user.id)
        ):
            return None, {"email": "exists"}
        try:
            await self._server.get_rate_limiter().check_email_authentication_email(client_ip, email)
        except RateLimitExceededError as e:
            logger.warning("User %s: adding an email refused: %s", user.id, e.debug)
            return None, {None: "rate_limit_exceeded"}
        now = self._clock.time_msec()
        authentication = UserEmailAuthentication(
            id=self._tokens.ulid(), email=email, created_at=now, user_session_id=current.id
        )
        code = UserEmailAuthenticationCode(
            id=self._tokens.ulid(),
            user_email_authentication_id=authentication.id,
            code=self._tokens.numeric_code(),
            created_at=now,
            expires_at=now + EMAIL_CODE_TTL_MS,
        )

        def _send(txn: LoggingTransaction) -> None:
            schedule_email_txn(
                txn,
                self._server,
                to=email,
                to_name=user.username,
                template="verification",
                context={"code": code.code, "username": user.username},
                not_after=code.expires_at,
            )

        await self._stores.user_emails.start_email_authentication(authentication, code, also=_send)
        logger.info("User %s: a code is on its way to a new address (%s)", user.id, authentication.id)
        return authentication, {}

    async def load_email_authentication(self, user: User, authentication_id: str) -> UserEmailAuthentication:
        """An email authentication started from one of the user's browser sessions.

        Raises:
            NotFoundError: none, or another user's.
        """
        authentication = await self._stores.user_registrations.get_email_authentication(authentication_id)
        if authentication is not None and authentication.user_session_id is not None:
            session = await self._stores.browser_sessions.get_browser_session(authentication.user_session_id)
            if session is not None and session.user_id == user.id:
                return authentication
        raise NotFoundError(debug=f"no email authentication {authentication_id!r} of user {user.id}")

    async def submit_email_code(
        self, user: User, authentication: UserEmailAuthentication, code: str
    ) -> tuple[str | None, dict[str | None, str]]:
        """Check the code; ``("added" | "in_use" | "completed", {})`` once checked, else
        ``(None, problems)``."""
        from mas_twisted.handlers.rate_limit import RateLimitExceededError
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob

        if not self.email_change_allowed:
            raise FeatureDisabledError("Changing email addresses")
        if authentication.completed_at is not None:
            return "completed", {}
        try:
            await self._server.get_rate_limiter().check_email_authentication_attempt(authentication.id)
        except RateLimitExceededError as e:
            logger.warning("User %s: email code refused: %s", user.id, e.debug)
            return None, {None: "rate_limit_exceeded"}
        code = code.strip()
        if not code:
            return None, {"code": REQUIRED}
        found = await self._stores.user_registrations.find_email_authentication_code(authentication.id, code)
        if found is None:
            return None, {"code": INVALID}
        now = self._clock.time_msec()
        if now >= found.expires_at:
            return None, {"code": "code_expired"}
        email = UserEmail(id=self._tokens.ulid(), user_id=user.id, email=authentication.email, created_at=now)

        def _provision(txn: LoggingTransaction) -> None:
            # The homeserver's copy of the addresses follows (MAS's addEmail does the same).
            enqueue_txn(txn, self._server, ProvisionUserJob(user_id=user.id))

        outcome = await self._stores.user_emails.complete_email_authentication_and_add(
            authentication.id, email, now, also=_provision
        )
        logger.info("User %s: email authentication %s %s", user.id, authentication.id, outcome)
        return outcome, {}

    async def resend_email_code(
        self, user: User, authentication: UserEmailAuthentication, client_ip: str | None
    ) -> dict[str | None, str]:
        """Send a new code (earlier ones stay valid until they expire); the problems if not."""
        if not self.email_change_allowed:
            raise FeatureDisabledError("Changing email addresses")
        from mas_twisted.handlers.email import schedule_email_txn
        from mas_twisted.handlers.rate_limit import RateLimitExceededError
        from mas_twisted.handlers.user_registration import EMAIL_CODE_TTL_MS

        try:
            await self._server.get_rate_limiter().check_email_authentication_send_code(
                client_ip, authentication.id, authentication.email
            )
        except RateLimitExceededError as e:
            logger.warning("User %s: resend refused: %s", user.id, e.debug)
            return {None: "rate_limit_exceeded"}
        store = self._stores.user_registrations
        while True:
            now = self._clock.time_msec()
            code = UserEmailAuthenticationCode(
                id=self._tokens.ulid(),
                user_email_authentication_id=authentication.id,
                code=self._tokens.numeric_code(),
                created_at=now,
                expires_at=now + EMAIL_CODE_TTL_MS,
            )
            if await store.find_email_authentication_code(authentication.id, code.code) is None:
                break

        def _send(txn: LoggingTransaction) -> None:
            schedule_email_txn(
                txn,
                self._server,
                to=authentication.email,
                to_name=user.username,
                template="verification",
                context={"code": code.code, "username": user.username},
                not_after=code.expires_at,
            )

        await store.add_email_authentication_code(code, also=_send)
        return {}

    async def remove_email(self, user: User, email_id: str) -> str | None:
        """Remove one of the user's addresses (never the last one when an address is
        required); the problem code when refused, else ``None``.

        Raises:
            FeatureDisabledError: ``account.email_change_allowed`` is off.
            NotFoundError: not one of the user's addresses.
        """
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.matrix import ProvisionUserJob

        if not self.email_change_allowed:
            raise FeatureDisabledError("Changing email addresses")

        def _provision(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, ProvisionUserJob(user_id=user.id))

        outcome = await self._stores.user_emails.remove_user_email_of(
            user.id, email_id, self.email_required, also=_provision
        )
        if outcome == "missing":
            raise NotFoundError(debug=f"no email {email_id!r} of user {user.id}")
        if outcome == "last":
            return "email_required"
        logger.info("User %s removed an email address", user.id)
        return None

    # -- sessions -------------------------------------------------------------------------
    async def list_sessions(self, user: User, current: BrowserSession) -> list[AccountSession]:
        """Every unfinished session of the user: browsers first (this one on top), then the
        apps (OAuth 2.0 and compatibility), most recently active first."""
        browsers = await self._stores.browser_sessions.list_active_browser_sessions_for_user(user.id)
        oauth2 = await self._stores.oauth2_sessions.list_active_oauth2_sessions_for_user(user.id)
        compat = await self._stores.compat_sessions.list_active_compat_sessions_for_user(user.id)
        personal = await self._stores.personal_sessions.list_valid_personal_sessions_of_actor(user.id)
        browser_items = [self._browser_item(s, current) for s in browsers]
        browser_items.sort(key=lambda s: (not s.is_current, -(s.last_active_at or s.created_at)))
        apps = [await self._oauth2_item(s) for s in oauth2] + [self._compat_item(s) for s in compat]
        apps += [self._personal_item(s) for s in personal]
        apps.sort(key=lambda s: -(s.last_active_at or s.created_at))
        return browser_items + apps

    async def find_session(self, user: User, current: BrowserSession, session_id: str) -> AccountSession:
        """The user's session with this id, of any kind (finished ones too).

        Raises:
            NotFoundError: no session of this user has it.
        """
        browser = await self._stores.browser_sessions.get_browser_session(session_id)
        if browser is not None and browser.user_id == user.id:
            return self._browser_item(browser, current)
        oauth2 = await self._stores.oauth2_sessions.get_oauth2_session(session_id)
        if oauth2 is not None and oauth2.user_id == user.id:
            return await self._oauth2_item(oauth2)
        compat = await self._stores.compat_sessions.get_compat_session(session_id)
        if compat is not None and compat.user_id == user.id:
            return self._compat_item(compat)
        personal = await self._stores.personal_sessions.get_personal_session(session_id)
        if personal is not None and personal.session.actor_user_id == user.id:
            return self._personal_item(personal)
        raise NotFoundError(debug=f"no session {session_id!r} of user {user.id}")

    async def find_device(self, user: User, device_id: str) -> AccountSession:
        """The user's unfinished session holding this Matrix device.

        Raises:
            NotFoundError: no unfinished session of this user has the device.
        """
        for compat in await self._stores.compat_sessions.list_active_compat_sessions_for_user(user.id):
            if compat.device_id == device_id:
                return self._compat_item(compat)
        for oauth2 in await self._stores.oauth2_sessions.list_active_oauth2_sessions_for_user(user.id):
            if device_id_from_scope(oauth2.scope) == device_id:
                return await self._oauth2_item(oauth2)
        for personal in await self._stores.personal_sessions.list_valid_personal_sessions_of_actor(user.id):
            if _personal_device_id(personal) == device_id:
                return self._personal_item(personal)
        raise NotFoundError(debug=f"no device {device_id!r} of user {user.id}")

    async def end_session(self, user: User, session: AccountSession) -> bool:
        """Finish one of the user's sessions; whether it was still open. An app session's
        device leaves the homeserver through ``sync-devices``, scheduled in the same
        transaction."""
        if session.kind is SessionKind.BROWSER:
            browser = await self._stores.browser_sessions.get_browser_session(session.id)
            if browser is None or browser.finished_at is not None:
                return False
            await self._stores.browser_sessions.finish_browser_session(browser, self._clock.time_msec())
            ended = True
        elif session.kind is SessionKind.OAUTH2:
            ended = await self._stores.oauth2_sessions.finish_oauth2_session_by_id(
                session.id, also=self._sync_devices(user.id)
            )
        elif session.kind is SessionKind.PERSONAL:
            ended = await self._stores.personal_sessions.revoke_personal_session(
                session.id, self._clock.time_msec(), also=self._sync_devices(user.id)
            )
        else:
            ended = await self._stores.compat_sessions.finish_compat_session(
                session.id, also=self._sync_devices(user.id)
            )
        if ended:
            logger.info("User %s ended their %s session %s", user.id, session.kind.value, session.id)
        return ended

    async def end_other_browser_sessions(self, user: User, current: BrowserSession) -> int:
        """Sign out of every browser but this one; how many sessions were ended."""
        ended = await self._stores.browser_sessions.finish_other_browser_sessions(
            user.id, current.id, self._clock.time_msec()
        )
        logger.info("User %s signed out of %d other browser(s)", user.id, ended)
        return ended

    async def rename_device(self, user: User, session: AccountSession, name: str) -> str | None:
        """Name the session's device (here, and on the homeserver); the problem code when
        refused, else ``None``."""
        name = name.strip()
        if not name:
            return REQUIRED
        if len(name) > MAX_DEVICE_NAME_LENGTH or not session.can_rename or session.device_id is None:
            return INVALID
        if session.kind is SessionKind.COMPAT:
            still_open = await self._stores.compat_sessions.set_compat_session_human_name(session.id, name)
        else:
            oauth2 = await self._stores.oauth2_sessions.get_oauth2_session(session.id)
            still_open = oauth2 is not None and oauth2.is_valid
            if oauth2 is not None and still_open:
                await self._stores.oauth2_sessions.set_oauth2_session_human_name(oauth2, name)
        if not still_open:
            return INVALID
        try:
            await self._homeserver.update_device_display_name(user.username, session.device_id, name)
        except Exception as e:
            logger.warning(
                "Could not rename device %s of %s on the homeserver: %r", session.device_id, user.id, e
            )
            return HOMESERVER_UNAVAILABLE
        logger.info("User %s renamed device %s", user.id, session.device_id)
        return None

    def _sync_devices(self, user_id: str):  # type: ignore[no-untyped-def]
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.matrix import SyncDevicesJob

        def _txn(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, SyncDevicesJob(user_id=user_id))

        return _txn

    def _browser_item(self, session: BrowserSession, current: BrowserSession) -> AccountSession:
        description = describe_user_agent(session.user_agent)
        return AccountSession(
            kind=SessionKind.BROWSER,
            id=session.id,
            name=description,
            created_at=session.created_at,
            device_description=description,
            user_agent=session.user_agent,
            last_active_at=session.last_active_at,
            last_active_ip=session.last_active_ip,
            finished_at=session.finished_at,
            is_current=session.id == current.id,
        )

    async def _oauth2_item(self, session: OAuth2Session) -> AccountSession:
        client = await self._stores.oauth2_clients.get_oauth2_client(session.client_id)
        client_name = (client.client_name if client is not None else None) or session.client_id
        return AccountSession(
            kind=SessionKind.OAUTH2,
            id=session.id,
            name=session.human_name
            or device_display_name(client_name, session.client_id, session.user_agent),
            created_at=session.created_at,
            device_id=device_id_from_scope(session.scope),
            client_name=client_name,
            client_id=session.client_id,
            device_description=describe_user_agent(session.user_agent),
            user_agent=session.user_agent,
            last_active_at=session.last_active_at,
            last_active_ip=session.last_active_ip,
            finished_at=session.finished_at,
            scope=session.scope_string,
        )

    def _compat_item(self, session: CompatSession) -> AccountSession:
        return AccountSession(
            kind=SessionKind.COMPAT,
            id=session.id,
            name=session.human_name or device_display_name(COMPAT_CLIENT_NAME, "", session.user_agent),
            created_at=session.created_at,
            device_id=session.device_id,
            client_name=COMPAT_CLIENT_NAME,
            device_description=describe_user_agent(session.user_agent),
            user_agent=session.user_agent,
            last_active_at=session.last_active_at,
            last_active_ip=session.last_active_ip,
            finished_at=session.finished_at,
        )

    def _personal_item(self, found: PersonalSessionWithToken) -> AccountSession:
        session = found.session
        return AccountSession(
            kind=SessionKind.PERSONAL,
            id=session.id,
            name=session.human_name,
            created_at=session.created_at,
            device_id=_personal_device_id(found),
            client_name=PERSONAL_CLIENT_NAME,
            last_active_at=session.last_active_at,
            last_active_ip=session.last_active_ip,
            finished_at=session.revoked_at,
            scope=session.scope_string,
            expires_at=found.token.expires_at if found.token is not None else None,
        )

    # -- password -------------------------------------------------------------------------
    async def change_password(
        self, user: User, current_password: str, new_password: str, new_password_confirm: str
    ) -> dict[str | None, str]:
        """Replace the user's password; the problems (field → code, ``None`` for the form)
        when refused, else an empty mapping.

        Raises:
            FeatureDisabledError: ``account.password_change_allowed`` or password login is off.
        """
        if not self.password_change_allowed:
            raise FeatureDisabledError("Changing the password")
        problems: dict[str | None, str] = {}
        if not new_password:
            problems["new_password"] = REQUIRED
        elif new_password != new_password_confirm:
            problems["new_password_confirm"] = PASSWORD_MISMATCH
        elif not self._passwords.is_password_complex_enough(new_password):
            problems["new_password"] = PASSWORD_TOO_WEAK
        if not await self._check_password(user, current_password):
            problems = {"current_password": WRONG_PASSWORD}
        if problems:
            return problems
        version, hashed = await self._passwords.hash(new_password)
        await self._stores.user_passwords.add_user_password(
            UserPassword(
                id=self._tokens.ulid(),
                user_id=user.id,
                hashed_password=hashed,
                version=version,
                created_at=self._clock.time_msec(),
            )
        )
        logger.info("User %s changed their password", user.id)
        return {}

    async def has_password(self, user: User) -> bool:
        return await self._stores.user_passwords.get_active_user_password(user.id) is not None

    async def _check_password(self, user: User, password: str) -> bool:
        """Whether ``password`` is the user's current password (``False`` without one)."""
        current = await self._stores.user_passwords.get_active_user_password(user.id)
        if current is None or not password or not self._passwords.enabled:
            return False
        try:
            return await self._passwords.verify(current.version, password, current.hashed_password)
        except Exception as e:
            logger.warning("Could not check the password of %s: %r", user.id, e)
            return False

    # -- cross-signing reset --------------------------------------------------------------
    async def allow_cross_signing_reset(self, user: User) -> bool:
        """Let the user's next cross-signing key upload skip interactive auth (for a while, the
        homeserver decides); whether the homeserver accepted."""
        try:
            await self._homeserver.allow_cross_signing_reset(user.username)
        except Exception as e:
            logger.warning("Could not allow a cross-signing reset for %s: %r", user.id, e)
            return False
        logger.info("User %s allowed a cross-signing reset", user.id)
        return True

    # -- deactivation ---------------------------------------------------------------------
    async def deactivate(self, user: User, password: str, *, erase: bool) -> str | None:
        """Deactivate the account: marked now, ``deactivate-user`` (``hs_erase`` = ``erase``)
        scheduled in the same transaction; the problem code when refused, else ``None``.

        Raises:
            FeatureDisabledError: ``account.account_deactivation_allowed`` is off.
        """
        from mas_twisted.queue.base import enqueue_txn
        from mas_twisted.queue.jobs.user import DeactivateUserJob

        if not self.account_deactivation_allowed:
            raise FeatureDisabledError("Deleting the account")
        if await self.has_password(user) and not await self._check_password(user, password):
            return WRONG_PASSWORD

        def _job_txn(txn: LoggingTransaction) -> None:
            enqueue_txn(txn, self._server, DeactivateUserJob(user_id=user.id, hs_erase=erase))

        await self._stores.admin.deactivate_user(user.id, self._clock.time_msec(), also=_job_txn)
        logger.warning("User %s deactivated their account (erase: %s)", user.id, erase)
        return None


def _personal_device_id(found: PersonalSessionWithToken) -> str | None:
    """The device a personal session's scope names (``None``: none)."""
    return device_id_from_scope(found.session.scope)
