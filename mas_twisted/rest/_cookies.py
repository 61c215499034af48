# SPDX-License-Identifier: AGPL-3.0-only
"""Encrypted cookies: the browser ``session`` and CSRF protection of every form
(MAS's ``crates/axum-utils/src/{cookies,session,csrf}.rs``).

Every cookie value is sealed with the ``secrets.encryption`` key (ChaCha20-Poly1305,
:class:`mas_twisted.jose.encrypter.Encrypter`) over ``<name>:<JSON payload>``, so a value can
neither be read, nor altered, nor moved to a cookie of another name. Cookies are
``HttpOnly``, ``SameSite=Lax``, ``Secure`` when ``http.public_base`` is https, with the
public base's path as ``Path``. A cookie that fails to open is treated as absent.

- ``session`` (kept for 20 years, as MAS's permanent cookies): ``{"current": <browser session
  id or null>, "logged_out_at": <ms>}``. Logging out keeps the cookie but empties ``current``
  and records when, as MAS does.
- ``csrf`` (a browser-session cookie): ``{"token": <32 random bytes, base64url>, "expiration":
  <seconds>}``.
  Every page with a form gets a token from :meth:`CookieManager.csrf_token`, which reuses the
  cookie's token while it is valid and pushes its expiry one hour ahead; the form carries it
  in a hidden ``csrf`` field, and :meth:`CookieManager.verify_csrf` checks the submitted value
  against the cookie in constant time before the form is acted on. A missing cookie, an
  expired token or a different value refuses the form.

Besides, :meth:`CookieManager.load_session` is how any resource finds who is signed in: the
browser session the ``session`` cookie names (its :attr:`CookieSession.active` is the active
session of a valid user, or ``None``).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
from twisted.web.iweb import IRequest

from mas_twisted.api.errors import PageError
from mas_twisted.jose.encrypter import DecryptError

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

SESSION_COOKIE = "session"
CSRF_COOKIE = "csrf"
#: The name of the hidden form field carrying the CSRF token.
CSRF_FIELD = "csrf"
#: How long a CSRF token stays valid after the page that carried it was rendered.
CSRF_TTL_SECONDS = 3600
#: The lifetime of "permanent" cookies (the ``cookie`` crate's ``make_permanent``).
PERMANENT_MAX_AGE = 20 * 365 * 24 * 3600


class CsrfError(PageError):
    """A form was submitted without a valid CSRF token; nothing it asked for was done.

    MAS answers these with a 500 (its generic ``InternalError``); this is a client error, so
    it is a 400 here, rendered with the same error page.
    """

    def __init__(self, reason: str):
        super().__init__(reason, code=400, debug=f"CSRF check failed: {reason}")
        self.reason = reason


@attrs.frozen
class SessionInfo:
    """The content of the ``session`` cookie."""

    current: str | None = None
    #: When the browser was last signed out (ms), if it is signed out now.
    logged_out_at: int | None = None

    @classmethod
    def for_session(cls, session_id: str) -> SessionInfo:
        return cls(current=session_id, logged_out_at=None)

    def mark_session_ended(self, now_ms: int) -> SessionInfo:
        return SessionInfo(current=None, logged_out_at=now_ms)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"current": self.current}
        if self.logged_out_at is not None:
            data["logged_out_at"] = self.logged_out_at
        return data

    @classmethod
    def from_json(cls, data: Any) -> SessionInfo:
        if not isinstance(data, dict):
            raise ValueError("session cookie is not an object")
        current = data.get("current")
        logged_out_at = data.get("logged_out_at")
        if current is not None and not isinstance(current, str):
            raise ValueError("session cookie has a bad session id")
        if logged_out_at is not None and (
            isinstance(logged_out_at, bool) or not isinstance(logged_out_at, int)
        ):
            raise ValueError("session cookie has a bad logout time")
        return cls(current=current, logged_out_at=logged_out_at)


@attrs.frozen
class CookieSession:
    """What the ``session`` cookie names (:meth:`CookieManager.load_session`)."""

    #: The browser session id in the cookie; ``None`` when signed out or without a cookie.
    session_id: str | None = None
    #: That session, in whatever state; ``None`` also when the cookie names an unknown one.
    session: BrowserSession | None = None

    @property
    def is_unknown(self) -> bool:
        """The cookie names a session that does not exist."""
        return self.session_id is not None and self.session is None

    @property
    def active(self) -> BrowserSession | None:
        """The session if it has not ended and its user is neither locked nor deactivated."""
        return self.session if self.session is not None and self.session.active else None


@attrs.frozen
class CsrfToken:
    token: str
    #: Seconds since the epoch.
    expiration: int

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "expiration": self.expiration}

    @classmethod
    def from_json(cls, data: Any) -> CsrfToken:
        if not isinstance(data, dict):
            raise ValueError("CSRF cookie is not an object")
        token, expiration = data.get("token"), data.get("expiration")
        if not isinstance(token, str) or isinstance(expiration, bool) or not isinstance(expiration, int):
            raise ValueError("CSRF cookie has bad fields")
        return cls(token=token, expiration=expiration)


class CookieManager:
    """Reads and writes the service's encrypted cookies on a request."""

    def __init__(self, server: MasServer):
        self._server = server
        self._encrypter = server.get_encrypter()
        self._clock = server.get_clock()
        self._tokens = server.get_token_generator()
        base = urlsplit(server.config.http.public_base)
        self.secure: bool = base.scheme == "https"
        self.path: str = base.path or "/"

    # -- raw encrypted cookies ------------------------------------------------------------
    def seal(self, name: str, payload: Any) -> str:
        text = name + ":" + json.dumps(payload, separators=(",", ":"), sort_keys=True)
        return self._encrypter.encrypt_to_string(text)

    def unseal(self, name: str, value: str) -> Any:
        """The payload of a sealed cookie value.

        Raises:
            ValueError: the value was not sealed by this service for the cookie ``name``.
        """
        try:
            text = self._encrypter.decrypt_string(value)
        except DecryptError as e:
            raise ValueError(str(e)) from None
        prefix = name + ":"
        if not text.startswith(prefix):
            raise ValueError(f"cookie sealed for another name than {name}")
        return json.loads(text[len(prefix) :])

    def load(self, request: IRequest, name: str) -> Any:
        """The payload of cookie ``name`` (as set earlier in this response, else as received),
        or ``None`` if it is absent or cannot be opened."""
        raw = self._pending(request, name)
        if raw is None:
            received = request.getCookie(name.encode("ascii"))
            raw = received.decode("latin-1") if received is not None else None
        if raw is None or raw == "":
            return None
        try:
            return self.unseal(name, raw)
        except ValueError as e:
            logger.warning("Ignoring the %s cookie: %s", name, e)
            return None

    def save(self, request: IRequest, name: str, payload: Any, *, permanent: bool = False) -> None:
        """Set cookie ``name`` on the response, replacing any value set earlier in it."""
        value = self.seal(name, payload)
        self._forget_pending(request, name)
        request.addCookie(
            name,
            value,
            path=self.path,
            max_age=str(PERMANENT_MAX_AGE) if permanent else None,
            secure=self.secure,
            httpOnly=True,  # type: ignore[call-arg]  # IRequest's stub lags twisted.web's Request
            sameSite="lax",
        )

    @staticmethod
    def _pending(request: IRequest, name: str) -> str | None:
        prefix = name.encode("ascii") + b"="
        for cookie in reversed(getattr(request, "cookies", [])):
            if cookie.startswith(prefix):
                return cookie[len(prefix) :].split(b";", 1)[0].decode("latin-1")
        return None

    @staticmethod
    def _forget_pending(request: IRequest, name: str) -> None:
        prefix = name.encode("ascii") + b"="
        cookies = getattr(request, "cookies", None)
        if cookies:
            cookies[:] = [c for c in cookies if not c.startswith(prefix)]

    # -- the session cookie ---------------------------------------------------------------
    def session_info(self, request: IRequest) -> SessionInfo:
        payload = self.load(request, SESSION_COOKIE)
        if payload is None:
            return SessionInfo()
        try:
            return SessionInfo.from_json(payload)
        except ValueError as e:
            logger.warning("Ignoring the session cookie: %s", e)
            return SessionInfo()

    def set_session_info(self, request: IRequest, info: SessionInfo) -> None:
        self.save(request, SESSION_COOKIE, info.to_json(), permanent=True)

    def set_session(self, request: IRequest, session: BrowserSession) -> None:
        """Sign the browser in to ``session``."""
        self.set_session_info(request, SessionInfo.for_session(session.id))

    def mark_session_ended(self, request: IRequest) -> None:
        """Sign the browser out (the cookie stays, without a current session)."""
        info = self.session_info(request)
        self.set_session_info(request, info.mark_session_ended(self._clock.time_msec()))

    async def load_session(self, request: IRequest) -> CookieSession:
        """The browser session the ``session`` cookie names, whatever its state.

        Use :attr:`CookieSession.active` for the signed-in session, or
        :func:`mas_twisted.rest.human._session.load_session_or_fallback` to show the page
        explaining an ended one.
        """
        session_id = self.session_info(request).current
        if session_id is None:
            return CookieSession()
        session = await self._server.get_stores().browser_sessions.get_browser_session(session_id)
        return CookieSession(session_id=session_id, session=session)

    # -- CSRF -----------------------------------------------------------------------------
    def csrf_token(self, request: IRequest) -> str:
        """The token for the forms of the page being rendered (sets the ``csrf`` cookie)."""
        now = int(self._clock.time())
        token = self._load_csrf(request)
        value = token.token if token is not None and now < token.expiration else self._new_token()
        self.save(request, CSRF_COOKIE, CsrfToken(token=value, expiration=now + CSRF_TTL_SECONDS).to_json())
        return value

    def verify_csrf(self, request: IRequest, form_value: str | None) -> None:
        """Check a submitted form's ``csrf`` field against the cookie.

        Raises:
            CsrfError: no cookie, an expired token, or a different value.
        """
        token = self._load_csrf(request)
        if token is None:
            raise CsrfError("Missing CSRF cookie")
        if int(self._clock.time()) >= token.expiration:
            raise CsrfError("CSRF token expired")
        if not form_value or not hmac.compare_digest(form_value.encode("utf-8"), token.token.encode("utf-8")):
            raise CsrfError("CSRF token mismatch")

    def _load_csrf(self, request: IRequest) -> CsrfToken | None:
        payload = self.load(request, CSRF_COOKIE)
        if payload is None:
            return None
        try:
            return CsrfToken.from_json(payload)
        except ValueError as e:
            logger.warning("Ignoring the CSRF cookie: %s", e)
            return None

    def _new_token(self) -> str:
        # 32 random bytes, unpadded base64url: the form value MAS uses.
        return base64.urlsafe_b64encode(self._tokens.random_bytes(32)).decode("ascii").rstrip("=")
