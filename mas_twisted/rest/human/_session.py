# SPDX-License-Identifier: AGPL-3.0-only
"""Who is signed in, for the human pages (MAS's ``crates/handlers/src/session.rs``).

:func:`load_session_or_fallback` reads the ``session`` cookie and returns the browser
session when it is active. When the session has ended, or its user has been locked or
deactivated, it returns the matching page instead (``pages/account/logged_out.html``,
``locked.html`` or ``deactivated.html``), whose "sign in" button logs out and carries the
post-auth action along, so that the flow the user started resumes after a new login. A
cookie naming a session that does not exist is reset and counts as signed out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
from twisted.web.iweb import IRequest

from mas_twisted.rest._base import html_response
from mas_twisted.templating import AccountInactiveContext
from mas_twisted.urls import PostAuthAction

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
    loaded = await cookies.load_session(request)
    if loaded.is_unknown:
        logger.info("The session cookie names an unknown browser session %s", loaded.session_id)
        cookies.mark_session_ended(request)
        return SessionOrFallback()
    if loaded.session is None:
        return SessionOrFallback()
    if loaded.active is None:
        return SessionOrFallback(
            fallback=render_account_inactive(server, request, loaded.session.user, action)
        )
    return SessionOrFallback(session=loaded.session)
