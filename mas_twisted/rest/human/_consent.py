# SPDX-License-Identifier: AGPL-3.0-only
"""What the two consent pages share: ``/consent/<grant_id>`` (authorization code grant, MAS's
``oauth2/authorization/consent.rs``) and ``/device/<id>`` (device authorization grant, RFC 8628
§3.3, MAS's ``oauth2/device/consent.rs``).

Both pages need a signed-in browser session and send a signed-out user to the login page with
a post-auth action that brings them back; both take a CSRF-protected form whose ``action`` is
``consent`` or ``reject``; both evaluate the ``authorization_grant`` policy and show either the
policy violation page or their own consent page, which names the Matrix user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from twisted.web.iweb import IRequest

from mas_twisted.policy.model import Requester
from mas_twisted.rest._base import FORM_ACTION_SELF, form_action_source, html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._forms import client_ip, first, form_params, user_agent
from mas_twisted.rest.human._session import SessionOrFallback, load_session_or_fallback
from mas_twisted.templating import MatrixUser, PolicyViolationContext
from mas_twisted.urls import PostAuthAction

if TYPE_CHECKING:
    from mas_twisted.policy.model import EvaluationResult
    from mas_twisted.server import MasServer
    from mas_twisted.types.clients import OAuth2Client
    from mas_twisted.types.users import BrowserSession

#: The form's ``action`` value that denies the request (anything else allows it).
REJECT = "reject"

Ctx = TypeVar("Ctx")


class GrantView(Protocol):
    """What a consent handler answers with: the grant, its client, the post-auth action that
    returns to the page, and the policy's verdict."""

    @property
    def grant(self) -> object: ...

    @property
    def client(self) -> OAuth2Client: ...

    @property
    def action(self) -> PostAuthAction: ...

    @property
    def policy(self) -> EvaluationResult: ...


def requester(request: IRequest) -> Requester:
    """Who asks, for the policy: the client address and user agent."""
    return Requester(ip_address=client_ip(request), user_agent=user_agent(request))


def is_rejection(fields: dict[str, list[str]]) -> bool:
    """Whether the consent form was submitted with its "deny" button."""
    return first(fields, "action") == REJECT


class GrantConsentPage:
    """Base of a consent resource; a subclass names the post-auth action kind for its grant."""

    #: ``kind`` of the post-auth action that resumes this page after login.
    POST_AUTH_KIND: ClassVar[str]

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._server_name: str = server.config.matrix.homeserver

    async def signed_in(self, request: IRequest, grant_id: str) -> SessionOrFallback:
        """The browser session, or the page that explains why it cannot be used; signed out,
        the session is ``None`` and the handler sends the user to log in."""
        action = PostAuthAction.from_params({"kind": self.POST_AUTH_KIND, "id": grant_id})
        return await load_session_or_fallback(self.server, request, action)

    async def posted_form(
        self, request: IRequest, grant_id: str
    ) -> tuple[dict[str, list[str]], SessionOrFallback]:
        """The form's fields once its CSRF token is checked (a bad one raises, before anything
        is read), and the browser session as :meth:`signed_in`."""
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        return fields, await self.signed_in(request, grant_id)

    def render_view(
        self,
        request: IRequest,
        view: GrantView,
        session: BrowserSession | None,
        context: Callable[..., Ctx],
        render: Callable[[Ctx], str],
    ) -> bytes:
        """The policy violation page if the policy refused, else the page ``render`` makes of
        ``context(csrf_token=, session=, client=, grant=, action=, matrix_user=)``."""
        assert session is not None
        csrf_token = self._cookies.csrf_token(request)
        if not view.policy.valid:
            violation = PolicyViolationContext(
                csrf_token=csrf_token,
                session=session,
                client=view.client,
                violations=view.policy.violations,
                action=view.action,
            )
            return html_response(request, self.templates.render_policy_violation(violation))
        ctx = context(
            csrf_token=csrf_token,
            session=session,
            client=view.client,
            grant=view.grant,
            action=view.action,
            matrix_user=MatrixUser.for_user(session.user, self._server_name),
        )
        # Allowing or denying redirects to the client's redirect URI (a device grant has none).
        form_action = [FORM_ACTION_SELF]
        redirect_uri = getattr(view.grant, "redirect_uri", None)
        if redirect_uri:
            form_action.append(form_action_source(redirect_uri))
        return html_response(request, render(ctx), form_action=form_action)
