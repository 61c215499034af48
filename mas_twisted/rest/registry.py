# SPDX-License-Identifier: AGPL-3.0-only
"""Which resource classes each ``http.listeners[].resources`` name mounts (MAS's
``build_router`` in ``crates/cli/src/server.rs``).

Each class has ``app = Klein()`` with absolute routes (:mod:`mas_twisted.urls`) and is
built with ``cls(server)``, or ``cls.from_config(server, resource_config)`` when it reads
options of its resource entry (``assets``'s ``path``). A class may instead be a plain
``twisted.web`` leaf serving exact paths (``exact_paths``, the introspection endpoint). A
listener dispatches a request to the first mounted class that serves its path
(``app/listeners.py``).

``adminapi`` mounts nothing yet; ``graphql`` never will (no GraphQL
API in this service, STYLE.md §5.12) and is accepted so that MAS configurations load.

This module imports every resource (and through them every handler); nothing but the
listeners should need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mas_twisted.rest.assets import AssetsResource
from mas_twisted.rest.compat.login import CompatLoginResource
from mas_twisted.rest.compat.logout import CompatLogoutResource
from mas_twisted.rest.compat.refresh import CompatRefreshResource
from mas_twisted.rest.compat.sso import CompatSsoRedirectResource
from mas_twisted.rest.connection_info import ConnectionInfoResource
from mas_twisted.rest.discovery import DiscoveryResource
from mas_twisted.rest.health import HealthResource
from mas_twisted.rest.human.authorize import AuthorizeResource
from mas_twisted.rest.human.compat_sso import CompatSsoCompleteResource
from mas_twisted.rest.human.consent import ConsentResource
from mas_twisted.rest.human.device import DeviceConsentResource, DeviceLinkResource
from mas_twisted.rest.human.index import IndexResource
from mas_twisted.rest.human.login import LoginResource
from mas_twisted.rest.human.logout import LogoutResource
from mas_twisted.rest.human.register import RegisterResource
from mas_twisted.rest.metrics import MetricsResource
from mas_twisted.rest.oauth2.device import DeviceAuthorizationResource
from mas_twisted.rest.oauth2.introspection import IntrospectionResource
from mas_twisted.rest.oauth2.keys import KeysResource
from mas_twisted.rest.oauth2.registration import RegistrationResource
from mas_twisted.rest.oauth2.revoke import RevocationResource
from mas_twisted.rest.oauth2.token import TokenResource
from mas_twisted.rest.oauth2.userinfo import UserinfoResource

if TYPE_CHECKING:
    from mas_twisted.config.http import ResourceConfig
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
        AuthorizeResource,
        ConsentResource,
        DeviceLinkResource,
        DeviceConsentResource,
        CompatSsoCompleteResource,
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
    "adminapi": (),
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
