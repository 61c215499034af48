# SPDX-License-Identifier: AGPL-3.0-only
"""``/link`` and ``/device/<id>``: the user's side of the device authorization grant (RFC 8628
§3.3; MAS's ``crates/handlers/src/oauth2/device/{link,consent}.rs``).

Request:  GET /link[?code=<user code>]   (``code`` honoured only with
          ``oauth.device_code_user_code_auto_fill_enabled``)
          POST /link  (form: csrf, code)
Response: 303 to ``/device/<id>`` when the code (any case) names a pending, unexpired grant;
          else 200 with the code form (its ``code`` field marked invalid when one was given).
Request:  GET /device/<id>;  POST /device/<id>  (form: csrf, action=consent|reject,
          confirm_device)
Response: 200 device consent page (the grant's state after a POST); 200 policy violation
          page; 303 to ``/login?kind=continue_device_code_grant&id=…`` when signed out;
          500 error page for an unknown or expired grant, or approval without
          ``confirm_device`` (as MAS). A bad CSRF token: 400, nothing changes.
With ``oauth.device_code_grant_enabled: false`` every page is MAS's 500 error page.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from klein import Klein
from twisted.web.iweb import IRequest

from mas_twisted import urls
from mas_twisted.handlers.device import DeviceConsentView
from mas_twisted.rest._base import html_response
from mas_twisted.rest._cookies import CSRF_FIELD
from mas_twisted.rest.human._consent import GrantConsentPage, is_rejection, requester
from mas_twisted.rest.human._errors import install_html_error_handlers
from mas_twisted.rest.human._forms import first, form_params, query_params, redirect
from mas_twisted.templating import DeviceConsentContext, DeviceLinkContext, FormState
from mas_twisted.urls import CONTINUE_DEVICE_CODE_GRANT

if TYPE_CHECKING:
    from mas_twisted.server import MasServer
    from mas_twisted.types.users import BrowserSession

logger = logging.getLogger(__name__)


class DeviceLinkResource:
    """The user code form."""

    app = Klein()
    install_html_error_handlers(app)

    def __init__(self, server: MasServer):
        self.server = server
        self.templates = server.get_templates()
        self._cookies = server.get_cookie_manager()
        self._url_builder = server.get_url_builder()
        self._handler = server.get_device_handler()

    @app.route(urls.DEVICE_CODE_LINK, methods=["GET"])
    async def get(self, request: IRequest) -> bytes:
        self._handler.check_pages_enabled()
        code = first(query_params(request), "code") if self._handler.auto_fill else None
        return await self._handle_code(request, code)

    @app.route(urls.DEVICE_CODE_LINK, methods=["POST"])
    async def post(self, request: IRequest) -> bytes:
        self._handler.check_pages_enabled()
        fields = form_params(request)
        self._cookies.verify_csrf(request, first(fields, CSRF_FIELD))
        return await self._handle_code(request, first(fields, "code"))

    async def _handle_code(self, request: IRequest, code: str | None) -> bytes:
        form = FormState()
        if code is not None:
            form = FormState.from_form({"code": code})
            grant = await self._handler.find_pending_by_user_code(code)
            if grant is not None:
                return redirect(
                    request,
                    self._url_builder.relative(
                        urls.path_for(urls.DEVICE_CODE_CONSENT, device_code_id=grant.id)
                    ),
                )
            form = form.with_field_error("code", "invalid")
        ctx = DeviceLinkContext(csrf_token=self._cookies.csrf_token(request), form=form)
        return html_response(request, self.templates.render_device_link(ctx))


class DeviceConsentResource(GrantConsentPage):
    """Approve or reject a device."""

    app = Klein()
    install_html_error_handlers(app)

    POST_AUTH_KIND = CONTINUE_DEVICE_CODE_GRANT

    def __init__(self, server: MasServer):
        super().__init__(server)
        self._handler = server.get_device_handler()

    @app.route(urls.DEVICE_CODE_CONSENT, methods=["GET"])
    async def get(self, request: IRequest, device_code_id: str) -> bytes:
        self._handler.check_pages_enabled()
        loaded = await self.signed_in(request, device_code_id)
        if loaded.fallback is not None:
            return loaded.fallback
        view = await self._handler.load_consent(device_code_id, loaded.session, requester(request))
        return self._answer(request, view, loaded.session)

    @app.route(urls.DEVICE_CODE_CONSENT, methods=["POST"])
    async def post(self, request: IRequest, device_code_id: str) -> bytes:
        self._handler.check_pages_enabled()
        fields, loaded = await self.posted_form(request, device_code_id)
        if loaded.fallback is not None:
            return loaded.fallback
        view = await self._handler.decide(
            device_code_id,
            loaded.session,
            requester(request),
            allow=not is_rejection(fields),
            confirmed=first(fields, "confirm_device") is not None,
        )
        return self._answer(request, view, loaded.session)

    def _answer(
        self, request: IRequest, view: DeviceConsentView | str, session: BrowserSession | None
    ) -> bytes:
        if isinstance(view, str):
            return redirect(request, view)
        return self.render_view(
            request, view, session, DeviceConsentContext, self.templates.render_device_consent
        )
