# SPDX-License-Identifier: AGPL-3.0-only
"""Which resource classes each ``http.listeners[].resources`` name mounts (MAS's
``build_router`` in ``crates/cli/src/server.rs``).

Each class has ``app = Klein()`` with absolute routes (:mod:`mas_twisted.urls`) and is
built with ``cls(server)``, or ``cls.from_config(server, resource_config)`` when it reads
options of its resource entry (``assets``'s ``path``). A class may instead be a plain
``twisted.web`` leaf serving exact paths (``exact_paths``, the introspection endpoint). A
listener dispatches a request to the first mounted class that serves its path
(``app/listeners.py``).

``adminapi`` mounts the admin API (``api/admin/``); ``graphql`` never will (no GraphQL
API in this service, STYLE.md §5.12) and is accepted so that MAS configurations load.

:func:`mounted_routes` reads the same table for the pages and the discovery document: a link
to a page, or an advertised URL, appears only once a mounted class serves it
(:class:`mas_twisted.urls.MountedRoutes`).

This module imports every resource (and through them every handler); nothing but the
listeners should need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from mas_twisted.api.admin.resource import AdminApiResource
from mas_twisted.rest._base import render_not_found, wants_html
from mas_twisted.rest.assets import AssetsResource
from mas_twisted.rest.compat.login import CompatLoginResource
from mas_twisted.rest.compat.logout import CompatLogoutResource
from mas_twisted.rest.compat.refresh import CompatRefreshResource
from mas_twisted.rest.compat.sso import CompatSsoRedirectResource
from mas_twisted.rest.connection_info import ConnectionInfoResource
from mas_twisted.rest.discovery import DiscoveryResource
from mas_twisted.rest.health import HealthResource
from mas_twisted.rest.human.account import AccountResource
from mas_twisted.rest.human.authorize import AuthorizeResource
from mas_twisted.rest.human.compat_sso import CompatSsoCompleteResource
from mas_twisted.rest.human.consent import ConsentResource
from mas_twisted.rest.human.device import DeviceConsentResource, DeviceLinkResource
from mas_twisted.rest.human.end_session import EndSessionResource
from mas_twisted.rest.human.index import IndexResource
from mas_twisted.rest.human.login import LoginResource
from mas_twisted.rest.human.logout import LogoutResource
from mas_twisted.rest.human.personal_tokens import PersonalTokensResource
from mas_twisted.rest.human.recovery import AccountRecoveryFinishResource, AccountRecoveryResource
from mas_twisted.rest.human.register import RegisterResource
from mas_twisted.rest.human.two_factor import TwoFactorResource
from mas_twisted.rest.human.upstream import UpstreamBackchannelLogoutResource, UpstreamOAuth2Resource
from mas_twisted.rest.metrics import MetricsResource
from mas_twisted.rest.oauth2.device import DeviceAuthorizationResource
from mas_twisted.rest.oauth2.introspection import IntrospectionResource
from mas_twisted.rest.oauth2.keys import KeysResource
from mas_twisted.rest.oauth2.registration import RegistrationResource
from mas_twisted.rest.oauth2.revoke import RevocationResource
from mas_twisted.rest.oauth2.token import TokenResource
from mas_twisted.rest.oauth2.userinfo import UserinfoResource
from mas_twisted.urls import MountedRoutes

if TYPE_CHECKING:
    from mas_twisted.config.http import ListenerConfig, ResourceConfig
    from mas_twisted.server import MasServer

#: Resource name → the classes it mounts, tried in this order.
RESOURCE_CLASSES: dict[str, tuple[type, ...]] = {
    "health": (HealthResource,),
    "prometheus": (MetricsResource,),
    "discovery": (DiscoveryResource,),
    "human": (
        IndexResource,
        LoginResource,
        LogoutResource,
        RegisterResource,
        AccountRecoveryResource,
        AccountRecoveryFinishResource,
        EndSessionResource,
        AuthorizeResource,
        ConsentResource,
        DeviceLinkResource,
        DeviceConsentResource,
        CompatSsoCompleteResource,
        AccountResource,
        UpstreamOAuth2Resource,
        UpstreamBackchannelLogoutResource,
        PersonalTokensResource,
        TwoFactorResource,
    ),
    "graphql": (),
    "oauth": (
        IntrospectionResource,
        KeysResource,
        TokenResource,
        UserinfoResource,
        RegistrationResource,
        RevocationResource,
        DeviceAuthorizationResource,
    ),
    "compat": (CompatLoginResource, CompatLogoutResource, CompatRefreshResource, CompatSsoRedirectResource),
    "assets": (AssetsResource,),
    "adminapi": (AdminApiResource,),
    "connection-info": (ConnectionInfoResource,),
}

#: Names accepted for compatibility that this service deliberately never serves.
IGNORED_RESOURCES: frozenset[str] = frozenset({"graphql"})


def build_resources(server: MasServer, resource: ResourceConfig) -> list[Any]:
    """Instantiate the classes mounted by one ``resources[]`` entry."""
    instances = []
    for cls in RESOURCE_CLASSES[resource.name]:
        from_config = getattr(cls, "from_config", None)
        instances.append(from_config(server, resource) if from_config is not None else cls(server))
    return instances


def class_routes(cls: type) -> list[tuple[str, frozenset[str]]]:
    """``(rule, methods)`` of one resource class: its Klein rules, or its exact paths."""
    routes: list[tuple[str, frozenset[str]]] = []
    app = getattr(cls, "app", None)
    if app is not None:
        for rule in app.url_map.iter_rules():
            routes.append((rule.rule, frozenset(rule.methods or ())))
    for path in getattr(cls, "exact_paths", ()):
        methods = frozenset(m.decode("ascii") for m in getattr(cls, "allowedMethods", (b"GET",)))
        routes.append((path, methods))
    return routes


def mounted_routes(resource_names: Iterable[str]) -> MountedRoutes:
    """The routes of every class mounted under ``resource_names`` (those of ``http.listeners``)."""
    return MountedRoutes(
        route
        for name in dict.fromkeys(resource_names)
        for cls in RESOURCE_CLASSES.get(name, ())
        for route in class_routes(cls)
    )


def listener_routes(listeners: Iterable[ListenerConfig]) -> MountedRoutes:
    """The routes every one of ``listeners`` (``http.listeners``) mounts, together."""
    return mounted_routes(name for listener in listeners for name in listener.resource_names)


def not_found_fallback(server: MasServer) -> Callable[[Any], bytes]:
    """The listener's answer to a path no mounted resource serves (MAS's ``fallback``): the
    ``pages/404.html`` page for a client that accepts HTML, the plain-text 404 otherwise (API
    clients)."""
    from mas_twisted.rest.human._errors import render_not_found_page

    def _render(request: Any) -> bytes:
        if wants_html(request):
            return render_not_found_page(server.get_templates(), request)
        return render_not_found(request)

    return _render
