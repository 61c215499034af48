# SPDX-License-Identifier: AGPL-3.0-only
"""The web half of the legacy ``m.login.sso`` flow (inventory §3; MAS's
``crates/handlers/src/compat/login_sso_redirect.rs`` and ``login_sso_complete.rs``).

1. A Matrix client sends the browser to ``/_matrix/client/v3/login/sso/redirect?redirectUrl=…``
   (Matrix client-server API, "Client login via SSO"). :meth:`CompatSsoHandler.start` checks the
   ``redirectUrl`` and stores a pending :class:`~mas_twisted.types.compat.CompatSsoLogin` with a
   32-character ``login_token``; the browser goes on to ``/complete-compat-sso/<id>``.
2. There the user signs in if needed (post-auth action ``continue_compat_sso_login``) and
   confirms (:meth:`CompatSsoHandler.load_confirmation`). Confirming
   (:meth:`CompatSsoHandler.confirm`) fulfils the login with the browser session and sends the
   browser to ``redirectUrl`` with ``loginToken=<login_token>`` added to its query.
3. The client exchanges ``loginToken`` at ``POST /login`` (``m.login.token``), which the
   compatibility login API does (:mod:`mas_twisted.handlers.compat.login`), through the store only.

A login must be confirmed within :data:`~mas_twisted.types.compat.SSO_LOGIN_LIFETIME_MS`
(30 minutes) of the redirect, and the ``compat_login`` policy (``login.type`` ``m.login.sso``
with its ``redirect_uri``) may refuse it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import attrs

from mas_twisted.api.errors import InvalidParamError, MissingParamError, NotFoundError, PageError
from mas_twisted.policy.model import LOGIN_SSO, Requester, SessionCounts
from mas_twisted.types.compat import SSO_LOGIN_LIFETIME_MS, CompatSsoLogin
from mas_twisted.urls import (
    CONTINUE_COMPAT_SSO_LOGIN,
    REGISTER,
    UPSTREAM_OAUTH2_AUTHORIZE,
    PostAuthAction,
    login_url,
    path_for,
)
from mas_twisted.util.ulid import is_ulid

if TYPE_CHECKING:
    from mas_twisted.policy.model import EvaluationResult
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession, User

logger = logging.getLogger(__name__)

#: The ``action`` values MSC3824 defines; anything else is ignored (MAS's ``Unknown``).
SSO_ACTIONS = frozenset({"login", "register"})
#: MSC3824's unstable name of ``action``, still sent by some clients.
UNSTABLE_ACTION_PARAM = "org.matrix.msc3824.action"

#: A URI scheme (RFC 3986 §3.1) followed by its colon.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
#: What no URL may contain unencoded: C0 controls, space and DEL.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


class CompatSsoLoginExpiredError(PageError):
    """The login is older than 30 minutes, or already confirmed: MAS's ``compat_sso_login_expired``
    error page (shown with status 200, as MAS does)."""

    ERROR_CODE = "compat_sso_login_expired"

    def __init__(self, debug: str):
        super().__init__("This login session expired.", code=200, debug=debug)


def pick_action(action: str | None, unstable_action: str | None) -> str | None:
    """MSC3824's ``action``, else its unstable name, ignoring unknown values (MAS's ``Params::action``)."""
    if action in SSO_ACTIONS:
        return action
    if unstable_action in SSO_ACTIONS:
        return unstable_action
    return None


def parse_redirect_url(raw: str | None) -> str:
    """Check a ``redirectUrl`` as MAS does, and return the URL to store.

    It must be an absolute URL (with a scheme), carry no user name or password, and have a host
    when its scheme is ``http`` or ``https``; an ``http(s)`` URL with an empty path gets ``/``
    (as the WHATWG URL parser MAS uses serialises it). Custom schemes (``element://…``,
    ``io.element.app:/callback``) are allowed: native clients use them.

    Raises:
        MissingParamError: 400 ``M_MISSING_PARAM`` when absent.
        InvalidParamError: 400 ``M_INVALID_PARAM`` when invalid.
    """
    if raw is None:
        raise MissingParamError("Missing redirectUrl")

    # The URL itself is never logged: it may carry a password.
    def invalid(reason: str) -> InvalidParamError:
        return InvalidParamError("Invalid redirectUrl", debug=f"redirectUrl refused: {reason}")

    if not _SCHEME.match(raw):
        raise invalid("not an absolute URL")
    if _FORBIDDEN.search(raw):
        raise invalid("control character or space")
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        raise invalid("unparsable authority") from None
    if "@" in parts.netloc:
        raise invalid("user name or password")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        # Browsers (WHATWG) read "\" as "/" in http(s) URLs and decode "%" in hosts, while
        # urlsplit does neither: "https://evil.example\.element.io/" would be shown as
        # evil.example\.element.io on the confirmation page and take the loginToken to
        # evil.example. Such URLs are refused rather than guessed at.
        if "\\" in raw:
            raise invalid("backslash in an http(s) URL")
        if "%" in parts.netloc:
            raise invalid("percent-encoded authority")
        if not raw[len(scheme) + 1 :].startswith("//") or not parts.hostname:
            raise invalid("http(s) without a host")
        if not parts.path:
            rest = raw[len(scheme) + 3 + len(parts.netloc) :]
            raw = f"{raw[: len(raw) - len(rest)]}/{rest}"
    return raw


def with_login_token(redirect_uri: str, login_token: str) -> str:
    """``redirect_uri`` with ``loginToken`` appended to its query; the rest of it (its existing
    query and fragment) is kept as written."""
    base, hash_sign, fragment = redirect_uri.partition("#")
    pair = urlencode({"loginToken": login_token})
    if "?" in base:
        base = base + pair if base.endswith(("?", "&")) else f"{base}&{pair}"
    else:
        base = f"{base}?{pair}"
    return base + hash_sign + fragment


@attrs.frozen
class SsoConfirmation:
    """What the confirmation page shows: the login, the action that returns to it, the policy."""

    login: CompatSsoLogin
    action: PostAuthAction
    policy: EvaluationResult


class CompatSsoHandler:
    """Starts compat SSO logins and lets a signed-in user confirm them
    (``server.get_compat_sso_handler()``)."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        self._stores = server.get_stores()
        self._policy = server.get_policy()
        self._url_builder = server.get_url_builder()
        self._server = server

    # -- GET /login/sso/redirect ------------------------------------------------------------
    async def start(self, redirect_url: str | None, action: str | None, idp: str | None = None) -> str:
        """Store a new pending login for ``redirect_url``; the absolute URL of its confirmation
        page (``/complete-compat-sso/<id>``, with ``action`` under both its names if known), or,
        when ``idp`` names an enabled upstream provider (and the upstream login is mounted),
        that provider's ``/upstream/authorize/<id>`` coming back to the login afterwards.

        Raises:
            MatrixError: the ``redirectUrl`` is missing or invalid; nothing is stored then.
        """
        redirect_uri = parse_redirect_url(redirect_url)
        now = self._clock.time_msec()
        login = CompatSsoLogin(
            id=self._tokens.ulid(now),
            redirect_uri=redirect_uri,
            login_token=self._tokens.sso_login_token(),
            created_at=now,
        )
        await self._stores.compat_sessions.add_sso_login(login)
        logger.info("Started compat SSO login %s", login.id)
        if idp is not None and self._server.get_site_features().upstream_login:
            provider = await self._stores.upstream_oauth_providers.get_upstream_oauth_provider(idp)
            if provider is not None and provider.enabled:
                return self._url_builder.absolute(
                    path_for(UPSTREAM_OAUTH2_AUTHORIZE, provider_id=provider.id),
                    self.post_auth_action(login.id).to_params(),
                )
        query = {"action": action, UNSTABLE_ACTION_PARAM: action} if action is not None else None
        return self._url_builder.absolute(self.post_auth_action(login.id).path(), query)

    # -- /complete-compat-sso/<id> ----------------------------------------------------------
    @staticmethod
    def post_auth_action(login_id: str) -> PostAuthAction:
        """The action that brings a user back to this login's page after signing in.

        Raises:
            NotFoundError: ``login_id`` is not a ULID.
        """
        if not is_ulid(login_id):
            raise NotFoundError("Compat SSO login not found", debug=f"not a ULID: {login_id[:40]!r}")
        return PostAuthAction(kind=CONTINUE_COMPAT_SSO_LOGIN, id=login_id.upper())

    def login_url(self, login_id: str, sso_action: str | None = None) -> str:
        """The login page that comes back to this login afterwards, or with
        ``sso_action="register"`` the registration page (as MAS's ``login_sso_complete``)."""
        action = self.post_auth_action(login_id)
        if sso_action == "register":
            return self._url_builder.relative(REGISTER, action.to_params())
        return login_url(self._url_builder, action)

    async def _load_pending(self, login_id: str) -> CompatSsoLogin:
        login = await self._stores.compat_sessions.get_sso_login(login_id.upper())
        if login is None:
            raise NotFoundError("Compat SSO login not found", debug=login_id)
        if not login.is_pending:
            raise CompatSsoLoginExpiredError(debug=f"compat SSO login {login.id} is no longer pending")
        if self._clock.time_msec() > login.created_at + SSO_LOGIN_LIFETIME_MS:
            raise CompatSsoLoginExpiredError(debug=f"compat SSO login {login.id} is older than 30 minutes")
        return login

    async def session_counts(self, user: User) -> SessionCounts:
        """The user's active sessions, as the session-limit policy counts them (MAS's
        ``count_user_sessions_for_limiting``: OAuth 2.0, compatibility and the user's own personal
        sessions)."""
        oauth2 = await self._stores.oauth2_sessions.count_active_oauth2_sessions_for_user(user.id)
        compat = await self._stores.compat_sessions.count_active_compat_sessions_for_user(user.id)
        personal = await self._stores.personal_sessions.count_active_self_owned_personal_sessions(user.id)
        return SessionCounts(
            total=oauth2 + compat + personal, oauth2=oauth2, compat=compat, personal=personal
        )

    async def _evaluate(
        self, login: CompatSsoLogin, session: BrowserSession, requester: Requester
    ) -> EvaluationResult:
        return self._policy.evaluate_compat_login(
            user=session.user,
            session_counts=await self.session_counts(session.user),
            # Whether the login replaces a device is only known at the token exchange.
            session_replaced=False,
            login_type=LOGIN_SSO,
            redirect_uri=login.redirect_uri,
            requester=requester,
        )

    async def load_confirmation(
        self, login_id: str, session: BrowserSession, requester: Requester
    ) -> SsoConfirmation:
        """What ``GET /complete-compat-sso/<id>`` shows to the signed-in ``session``.

        Raises:
            NotFoundError: no such login.
            CompatSsoLoginExpiredError: too old, or already confirmed.
        """
        action = self.post_auth_action(login_id)
        login = await self._load_pending(login_id)
        return SsoConfirmation(
            login=login, action=action, policy=await self._evaluate(login, session, requester)
        )

    async def confirm(
        self, login_id: str, session: BrowserSession, requester: Requester
    ) -> SsoConfirmation | str:
        """Fulfil the login with ``session`` (``POST /complete-compat-sso/<id>``): the URL to send
        the browser to (``redirectUrl?…&loginToken=…``), or the refusal when the policy says no
        (nothing is written then).

        Raises:
            NotFoundError: no such login.
            CompatSsoLoginExpiredError: too old, or already confirmed (also when a concurrent
                request confirmed it first).
        """
        confirmation = await self.load_confirmation(login_id, session, requester)
        if not confirmation.policy.valid:
            return confirmation
        login = confirmation.login
        if not await self._stores.compat_sessions.fulfill_sso_login(login.id, session.id):
            raise CompatSsoLoginExpiredError(debug=f"compat SSO login {login.id} was fulfilled concurrently")
        logger.info("Compat SSO login %s fulfilled by browser session %s", login.id, session.id)
        return with_login_token(login.redirect_uri, login.login_token)
