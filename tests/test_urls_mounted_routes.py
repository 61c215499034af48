# SPDX-License-Identifier: AGPL-3.0-only
"""``urls.MountedRoutes``: whether a mounted route serves a path, and the routes of a listener
as ``rest/registry.py`` mounts them."""

from __future__ import annotations

from mas_twisted import urls
from mas_twisted.config.http import ListenerConfig, ResourceConfig
from mas_twisted.rest.registry import RESOURCE_CLASSES, listener_routes, mounted_routes
from mas_twisted.urls import MountedRoutes


def test_serves_paths_methods_and_placeholders() -> None:
    routes = MountedRoutes(
        [
            (urls.ACCOUNT, {"GET"}),
            (urls.LOGIN, {"GET", "POST"}),
            (urls.CONSENT, {"get"}),
            (urls.CONSENT, {"POST"}),
        ]
    )
    assert routes.serves("/account/")
    # Werkzeug's trailing-slash redirect: /account answers (with a redirect to /account/).
    assert routes.serves("/account")
    assert routes.serves("/login", "POST")
    assert not routes.serves("/login", "DELETE")
    assert routes.serves("/consent/01ARZ3NDEKTSV4RRFFQ69G5FAV", "POST")
    assert routes.serves("/consent/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert not routes.serves("/consent/")
    assert not routes.serves("/recover")
    assert not routes.serves("/account/sessions")
    # A rule mounted twice has the methods of both.
    assert routes.rules[urls.CONSENT] == {"GET", "POST"}


def test_routes_of_the_mounted_resources() -> None:
    human = mounted_routes(["human"])
    assert human.serves(urls.INDEX) and human.serves(urls.LOGIN, "POST") and human.serves("/link", "POST")
    assert not human.serves(urls.OAUTH2_TOKEN, "POST")
    # The introspection endpoint is an exact-path leaf, not a Klein app.
    oauth = mounted_routes(["oauth"])
    assert oauth.serves(urls.OAUTH2_INTROSPECTION, "POST") and oauth.serves(urls.OAUTH2_TOKEN, "POST")
    assert not oauth.serves(urls.INDEX)
    # Registration and account recovery (issue 12), the account pages (issue 13) and the
    # upstream login (issue 14) are mounted; no other /account/ path is.
    everything = mounted_routes(RESOURCE_CLASSES)
    assert everything.serves(urls.REGISTER) and human.serves(urls.REGISTER)
    assert human.serves(urls.ACCOUNT) and human.serves(urls.ACCOUNT_SESSIONS)
    assert human.serves("/account/devices/ABCDEFGHIJ", "POST")
    assert human.serves(urls.ACCOUNT_RECOVERY_START, "POST") and human.serves(urls.ACCOUNT_RECOVERY_FINISH)
    assert not human.serves(urls.ACCOUNT_RECOVERY_FINISH + "/x")
    assert human.serves("/upstream/authorize/x") and human.serves("/upstream/callback/x", "POST")
    assert human.serves("/upstream/link/x", "POST")
    for path in ("/account/nothing-here",):
        assert not everything.serves(path), path


def test_listener_routes_are_the_union_of_their_resources() -> None:
    listeners = [
        ListenerConfig(0, "web", "web", (ResourceConfig("human"),), "", ()),
        ListenerConfig(1, "api", "api", (ResourceConfig("oauth"), ResourceConfig("graphql")), "", ()),
    ]
    routes = listener_routes(listeners)
    assert routes.serves(urls.LOGIN) and routes.serves(urls.OAUTH2_TOKEN, "POST")
    assert not routes.serves(urls.OIDC_CONFIGURATION)
