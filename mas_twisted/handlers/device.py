# SPDX-License-Identifier: AGPL-3.0-only
"""The device authorization grant's endpoint and pages (RFC 8628 §3.1–3.3; MAS's
``crates/handlers/src/oauth2/device/{authorize,link,consent}.rs``, inventory §2.2).

- :meth:`DeviceHandler.start_device_authorization` (``POST /oauth2/device``): refused with
  ``invalid_request`` (400) when ``oauth.device_code_grant_enabled`` is off, before the client
  is authenticated; the authenticated client needs the device code grant
  (``unauthorized_client``, 401). Stores a pending grant: ``device_code`` 32 alphanumerics,
  ``user_code`` 6 upper-case alphanumerics, expiring in 1200 s, with the device's IP address
  and user agent. The answer has ``verification_uri`` = ``{public_base}link``, an
  ``interval`` of 5 s and ``verification_uri_complete`` (``…/link?code=<user_code>``) only
  with ``oauth.device_code_user_code_auto_fill_enabled``.
- :meth:`DeviceHandler.find_pending_by_user_code` (``/link``): the code, upper-cased, names a
  pending, unexpired grant, or nothing.
- :meth:`DeviceHandler.load_consent` and :meth:`DeviceHandler.decide` (``/device/<id>``):
  the grant must exist and be unexpired (else MAS answers a 500 error page); the
  ``authorization_grant`` policy (``grant_type`` device code, the user's session counts)
  may refuse; a pending grant is fulfilled (only with the ``confirm_device`` box ticked, else
  a 500 error page as MAS) or rejected; a grant already decided is shown as it is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from mas_twisted.api.errors import InvalidRequestError, PageError, UnauthorizedClientError
from mas_twisted.handlers.authorization import DEFAULT_LOCALE
from mas_twisted.oauth2.requests import DEVICE_CODE
from mas_twisted.oauth2.scope import Scope
from mas_twisted.policy.model import Requester, SessionCounts
from mas_twisted.types.oauth2 import DeviceCodeGrant, InvalidTransitionError
from mas_twisted.urls import CONTINUE_DEVICE_CODE_GRANT, PostAuthAction, login_url

if TYPE_CHECKING:
    from mas_twisted.policy.model import EvaluationResult
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)

#: How long a device code stays valid, in seconds.
DEVICE_CODE_LIFETIME_S = 1200
#: How long the device should wait between polls, in seconds.
POLL_INTERVAL_S = 5

DISABLED_DESCRIPTION = "The Device Authorization Grant is disabled on this server"


@attrs.frozen
class DeviceAuthorizationResponse:
    """RFC 8628 §3.2's response."""

    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int
    verification_uri_complete: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
        }
        if self.verification_uri_complete is not None:
            out["verification_uri_complete"] = self.verification_uri_complete
        out["expires_in"] = self.expires_in
        out["interval"] = self.interval
        return out


@attrs.frozen
class DeviceConsentView:
    """What ``/device/<id>`` shows: the grant (in its current state) or the policy's refusal."""

    grant: DeviceCodeGrant
    client: OAuth2Client
    action: PostAuthAction
    policy: EvaluationResult


class DeviceHandler:
    """``POST /oauth2/device``, ``/link`` and ``/device/<id>``."""

    def __init__(self, server: MasServer):
        self._clock = server.get_clock()
        self._stores = server.get_stores()
        self._tokens = server.get_token_generator()
        self._url_builder = server.get_url_builder()
        self._policy = server.get_policy()
        self.enabled: bool = server.config.oauth.device_code_grant_enabled
        self.auto_fill: bool = server.config.oauth.device_code_user_code_auto_fill_enabled

    # -- POST /oauth2/device --------------------------------------------------------------
    def check_enabled(self) -> None:
        """Raises :class:`InvalidRequestError` (400) when the grant is disabled."""
        if not self.enabled:
            raise InvalidRequestError(DISABLED_DESCRIPTION)

    async def start_device_authorization(
        self, client: OAuth2Client, scope: Scope | None, requester: Requester
    ) -> DeviceAuthorizationResponse:
        """Store a pending grant for the authenticated ``client``.

        Raises:
            UnauthorizedClientError: the client may not use the device code grant (401).
        """
        if DEVICE_CODE not in client.grant_types:
            raise UnauthorizedClientError(debug=f"client {client.id} lacks the device code grant")
        now = self._clock.time_msec()
        grant = DeviceCodeGrant(
            id=self._tokens.ulid(),
            client_id=client.id,
            scope=scope or Scope(),
            user_code=self._tokens.user_code(),
            device_code=self._tokens.device_code(),
            created_at=now,
            expires_at=now + DEVICE_CODE_LIFETIME_S * 1000,
            ip_address=requester.ip_address,
            user_agent=requester.user_agent,
        )
        await self._stores.device_code_grants.add_device_code_grant(grant)
        complete = None
        if self.auto_fill:
            complete = self._url_builder.device_code_link(grant.user_code)
        return DeviceAuthorizationResponse(
            device_code=grant.device_code,
            user_code=grant.user_code,
            verification_uri=self._url_builder.device_code_link(),
            expires_in=DEVICE_CODE_LIFETIME_S,
            interval=POLL_INTERVAL_S,
            verification_uri_complete=complete,
        )

    # -- /link ----------------------------------------------------------------------------
    def check_pages_enabled(self) -> None:
        """Raises :class:`PageError` when the grant is disabled: 404 (MAS answers 500; we
        answer no request with a 5xx that a client's input caused, issue 11)."""
        if not self.enabled:
            raise PageError("The Device Authorization Grant is disabled", code=404)

    async def find_pending_by_user_code(self, code: str) -> DeviceCodeGrant | None:
        """The pending, unexpired grant whose user code is ``code`` (any case)."""
        grant = await self._stores.device_code_grants.find_device_code_grant_by_user_code(code.upper())
        if grant is None or not grant.is_pending or not grant.expires_at > self._clock.time_msec():
            return None
        return grant

    # -- /device/<id> ---------------------------------------------------------------------
    async def _load(self, grant_id: str) -> tuple[DeviceCodeGrant, OAuth2Client]:
        grant = await self._stores.device_code_grants.get_device_code_grant(grant_id)
        if grant is None:
            raise PageError("Device grant not found", code=404)
        if grant.is_expired(self._clock.time_msec()):
            raise PageError("Grant is expired", code=410)
        client = await self._stores.oauth2_clients.get_oauth2_client(grant.client_id)
        if client is None:
            raise PageError("Client not found", code=500, debug=grant.client_id)
        return grant, client

    async def _evaluate(
        self, grant: DeviceCodeGrant, client: OAuth2Client, session: BrowserSession, requester: Requester
    ) -> EvaluationResult:
        oauth2 = await self._stores.oauth2_sessions.count_active_oauth2_sessions_for_user(session.user.id)
        return self._policy.evaluate_authorization_grant(
            client=client,
            scope=grant.scope,
            grant_type=DEVICE_CODE,
            user=session.user,
            session_counts=SessionCounts(total=oauth2, oauth2=oauth2),
            requester=requester,
        )

    def _action(self, grant_id: str) -> PostAuthAction:
        return PostAuthAction(kind=CONTINUE_DEVICE_CODE_GRANT, id=grant_id)

    async def load_consent(
        self, grant_id: str, session: BrowserSession | None, requester: Requester
    ) -> DeviceConsentView | str:
        """What ``GET /device/<id>`` shows, or the login URL (a ``str``) when signed out.

        Raises:
            PageError: unknown or expired grant, or a client that is gone (500, as MAS).
        """
        action = self._action(grant_id)
        if session is None:
            return login_url(self._url_builder, action)
        grant, client = await self._load(grant_id)
        result = await self._evaluate(grant, client, session, requester)
        return DeviceConsentView(grant=grant, client=client, action=action, policy=result)

    async def decide(
        self,
        grant_id: str,
        session: BrowserSession | None,
        requester: Requester,
        *,
        allow: bool,
        confirmed: bool,
    ) -> DeviceConsentView | str:
        """``POST /device/<id>``: approve (``confirmed`` must be true) or reject a pending grant.

        Raises:
            PageError: as :meth:`load_consent`; approving without confirmation (500, as MAS).
        """
        action = self._action(grant_id)
        if session is None:
            return login_url(self._url_builder, action)
        grant, client = await self._load(grant_id)
        result = await self._evaluate(grant, client, session, requester)
        if not result.valid:
            return DeviceConsentView(grant=grant, client=client, action=action, policy=result)
        if grant.is_pending:
            try:
                if allow:
                    if not confirmed:
                        raise PageError(
                            "The device must be confirmed before consent can be granted", code=400
                        )
                    grant = await self._stores.device_code_grants.fulfill_device_code_grant(
                        grant, session.id, DEFAULT_LOCALE
                    )
                else:
                    grant = await self._stores.device_code_grants.reject_device_code_grant(grant, session.id)
            except InvalidTransitionError:
                reloaded = await self._stores.device_code_grants.get_device_code_grant(grant.id)
                assert reloaded is not None
                grant = reloaded
        else:
            # Most likely the form sent again: show the decision already taken.
            logger.warning("Device grant %s is not pending (browser session %s)", grant.id, session.id)
        return DeviceConsentView(grant=grant, client=client, action=action, policy=result)
