# SPDX-License-Identifier: AGPL-3.0-only
"""Who is signed in, for the human pages (MAS's ``crates/handlers/src/session.rs``).

:func:`load_session_or_fallback` reads the ``session`` cookie and returns the browser
session when it is active. When the session has ended, or its user has been locked or
deactivated, it returns the matching page instead (``pages/account/logged_out.html``,
``locked.html`` or ``deactivated.html``), whose "sign in" button logs out and carries the
post-auth action along, so that the flow the user started resumes after a new login. A
cookie naming a session that does not exist is reset and counts as signed out.

:func:`describe_post_auth_action` loads what the login page says about the action (the
name of the client asking), or ``None`` when the object it names is gone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
from twisted.web.iweb import IRequest

from mas_twisted.handlers.login import (
    CONTINUE_AUTHORIZATION_GRANT,
    CONTINUE_COMPAT_SSO_LOGIN,
    CONTINUE_DEVICE_CODE_GRANT,
    PostAuthAction,
)
from mas_twisted.rest.human._forms import html_response
from mas_twisted.templating import AccountInactiveContext, PostAuthContext, simplify_url

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession, User

logger = logging.getLogger(__name__)


@attrs.frozen
class SessionOrFallback:
    """Either the active session (or ``None`` when signed out), or a page to answer with."""

    session: BrowserSession | None = None
    #: The rendered interstitial page (status and headers already set), when not usable.
    fallback: bytes | None = None


def render_account_inactive(
    server: MasServer, request: IRequest, user: User, action: PostAuthAction | None
) -> bytes:
    """The locked, deactivated or logged-out page for ``user`` (status 200, as MAS)."""
    csrf_token = server.get_cookie_manager().csrf_token(request)
    ctx = AccountInactiveContext(csrf_token=csrf_token, user=user, post_logout_action=action)
    return html_response(request, server.get_templates().render_account_inactive(ctx))


async def load_session_or_fallback(
    server: MasServer, request: IRequest, action: PostAuthAction | None = None
) -> SessionOrFallback:
    """The signed-in browser session, or the page explaining why it cannot be used."""
    cookies = server.get_cookie_manager()
    info = cookies.session_info(request)
    if info.current is None:
        return SessionOrFallback()
    session = await server.get_stores().browser_sessions.get_browser_session(info.current)
    if session is None:
        logger.info("The session cookie names an unknown browser session %s", info.current)
        cookies.mark_session_ended(request)
        return SessionOrFallback()
    if (
        session.user.deactivated_at is not None
        or session.user.locked_at is not None
        or session.finished_at is not None
    ):
        return SessionOrFallback(fallback=render_account_inactive(server, request, session.user, action))
    return SessionOrFallback(session=session)


async def describe_post_auth_action(
    server: MasServer, action: PostAuthAction | None
) -> PostAuthContext | None:
    """What the login page shows about ``action``; ``None`` if it names something that is gone."""
    if action is None:
        return None
    stores = server.get_stores()
    client_id: str | None = None
    if action.kind == CONTINUE_AUTHORIZATION_GRANT and action.id is not None:
        grant = await stores.authorization_grants.get_authorization_grant(action.id)
        if grant is None:
            logger.warning("Post-auth action names an unknown authorization grant %s", action.id)
            return None
        client_id = grant.client_id
    elif action.kind == CONTINUE_DEVICE_CODE_GRANT and action.id is not None:
        device_grant = await stores.device_code_grants.get_device_code_grant(action.id)
        if device_grant is None:
            logger.warning("Post-auth action names an unknown device code grant %s", action.id)
            return None
        client_id = device_grant.client_id
    elif action.kind == CONTINUE_COMPAT_SSO_LOGIN and action.id is not None:
        # A legacy SSO login has no client: the app is known by where it gets the browser back.
        sso_login = await stores.compat_sessions.get_sso_login(action.id)
        if sso_login is None:
            logger.warning("Post-auth action names an unknown compat SSO login %s", action.id)
            return None
        return PostAuthContext(action=action, client_name=simplify_url(sso_login.redirect_uri))
    client_name = None
    if client_id is not None:
        client = await stores.oauth2_clients.get_oauth2_client(client_id)
        if client is not None:
            client_name = client.client_name or client.client_id
    return PostAuthContext(action=action, client_name=client_name)
