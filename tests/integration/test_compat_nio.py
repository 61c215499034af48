# SPDX-License-Identifier: AGPL-3.0-only
"""A legacy Matrix client (matrix-nio, from PyPI) against a real Synapse that delegates to a
real ``twistd mas``, behind a proxy routing as contrib/nginx does (issue 6), on SQLite and on
PostgreSQL: ``m.login.password`` through our compatibility layer, then sync, a new room and a
message on Synapse with that token, a token refresh, and logout, after which Synapse refuses
the token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration._harness import TwistdProcess, eventually, mas_cli
from tests.integration._proxy import RoutingProxy
from tests.integration._synapse import SynapseServer, mas_with_synapse

PASSWORD = "correct horse battery staple 42"

try:
    import nio
except ImportError as e:  # pragma: no cover - the test extra installs it
    raise AssertionError("matrix-nio is missing: run `scripts/setup.sh test` (setup.cfg's test extra)") from e


class CompatStack:
    def __init__(
        self,
        tmp: Path,
        synapse: SynapseServer,
        proc: TwistdProcess,
        proxy: RoutingProxy,
        config: dict[str, Any],
    ):
        self.tmp, self.synapse, self.proc, self.proxy, self.config = tmp, synapse, proc, proxy, config


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[CompatStack]:
    tmp = tmp_path_factory.mktemp(f"compat-nio-{request.param}")
    resources = ("discovery", "human", "oauth", "compat", "health")
    with mas_with_synapse(tmp, request.param, resources) as (synapse, proc, config):
        mas_dir = tmp / "mas"
        proxy = RoutingProxy(synapse.mas_endpoint, synapse.base_url).start()
        try:
            out = mas_cli(
                mas_dir,
                "manage",
                "register-user",
                "--yes",
                "alice",
                "-p",
                PASSWORD,
                "-c",
                str(proc.config_path),
            )
            assert out.returncode == 0, out.stderr
            yield CompatStack(mas_dir, synapse, proc, proxy, config)
        finally:
            proxy.stop()


def test_nio_password_login_sync_room_message_refresh_logout(stack: CompatStack) -> None:
    synapse = stack.synapse
    mxid = f"@alice:{synapse.server_name}"
    # The user reaches Synapse through the provision-user job.
    eventually(
        lambda: (
            synapse.request("GET", "_synapse/mas/query_user?localpart=alice", token=synapse.secret).status
            == 200
        ),
        what="alice provisioned on Synapse",
    )

    async def scenario() -> dict[str, Any]:
        client = nio.AsyncClient(stack.proxy.base_url, mxid)
        try:
            # GET /login lists the password flow (served by us, through the proxy).
            flows = await client.login_info()
            assert isinstance(flows, nio.LoginInfoResponse), flows
            assert "m.login.password" in flows.flows and "m.login.sso" in flows.flows

            login = await client.login_raw(
                {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": "alice"},
                    "password": PASSWORD,
                    "initial_device_display_name": "nio test client",
                    "refresh_token": True,
                }
            )
            assert isinstance(login, nio.LoginResponse), login
            raw = await login.transport_response.json()
            assert raw["user_id"] == mxid and raw["access_token"].startswith("mct_")
            assert raw["refresh_token"].startswith("mcr_") and raw["expires_in_ms"] > 0

            # Synapse accepts the token at once (the device was created before the answer).
            whoami = await client.whoami()
            assert isinstance(whoami, nio.WhoamiResponse), whoami
            assert (whoami.user_id, whoami.device_id) == (mxid, login.device_id)
            # ... under the name the client asked for.
            assert synapse.devices("alice").get(login.device_id) == "nio test client"

            sync = await client.sync(timeout=0)
            assert isinstance(sync, nio.SyncResponse), sync
            room = await client.room_create(name="compat room")
            assert isinstance(room, nio.RoomCreateResponse), room
            sent = await client.room_send(
                room.room_id, "m.room.message", {"msgtype": "m.text", "body": "hello through mas-twisted"}
            )
            assert isinstance(sent, nio.RoomSendResponse), sent
            messages = await client.room_messages(room.room_id, start="", limit=10)
            assert any(
                getattr(event, "body", None) == "hello through mas-twisted" for event in messages.chunk
            ), messages

            # Refresh, with nio's own transport.
            old_token = client.access_token
            resp = await client.send(
                "POST",
                "/_matrix/client/v3/refresh",
                json.dumps({"refresh_token": raw["refresh_token"]}),
                headers={"Content-Type": "application/json"},
            )
            assert resp.status == 200, await resp.text()
            refreshed = await resp.json()
            assert refreshed["access_token"].startswith("mct_") and refreshed["access_token"] != old_token
            assert (
                refreshed["refresh_token"].startswith("mcr_")
                and refreshed["refresh_token"] != raw["refresh_token"]
            )
            # The consumed refresh token is refused.
            again = await client.send(
                "POST",
                "/_matrix/client/v3/refresh",
                json.dumps({"refresh_token": raw["refresh_token"]}),
                headers={"Content-Type": "application/json"},
            )
            assert again.status == 401 and (await again.json())["errcode"] == "M_UNKNOWN_TOKEN"
            client.access_token = refreshed["access_token"]
            sent = await client.room_send(
                room.room_id, "m.room.message", {"msgtype": "m.text", "body": "after refresh"}
            )
            assert isinstance(sent, nio.RoomSendResponse), sent

            logout = await client.logout()
            assert isinstance(logout, nio.LogoutResponse), logout
            return {"token": refreshed["access_token"], "device_id": login.device_id}
        finally:
            await client.close()

    result = asyncio.run(scenario())
    # Our introspection (what Synapse asks) says inactive at once.
    import requests

    reply = requests.post(
        synapse.mas_endpoint + "oauth2/introspect",
        data={"token": result["token"]},
        headers={"Authorization": f"Bearer {synapse.secret}"},
        timeout=10,
    )
    assert reply.status_code == 200 and reply.json() == {"active": False}
    # After logout the session is over here at once; Synapse keeps its cached answer for the
    # token until the device is gone, which sync-devices (scheduled by the logout) does.
    eventually(
        lambda: result["device_id"] not in synapse.devices("alice"), what="the device removed from Synapse"
    )
    refused = synapse.whoami(result["token"])
    assert refused.status == 401 and refused.json()["errcode"] == "M_UNKNOWN_TOKEN"
    routed = {target for target, _ in stack.proxy.seen}
    assert routed == {"mas", "synapse"}
    assert ("mas", "POST /_matrix/client/v3/login") in stack.proxy.seen
    assert ("mas", "POST /_matrix/client/v3/logout") in stack.proxy.seen
    assert ("synapse", "GET /_matrix/client/v3/sync") in stack.proxy.seen


def test_sso_through_the_real_pages_then_login_token(stack: CompatStack) -> None:
    """``m.login.sso`` as a legacy client does it: the client sends the browser to
    ``/login/sso/redirect`` (through the proxy), the person signs in and confirms on our pages,
    the browser comes back to the client with ``loginToken``, and the client exchanges it with
    ``m.login.token`` (matrix-nio's ``login(token=…)``) for a token that works on Synapse. The
    loginToken works once."""
    from urllib.parse import parse_qs, urlsplit

    from tests.integration._oauth import Browser

    synapse = stack.synapse
    client_url = "https://client.example.test/sso-done?from=test"
    browser = Browser(stack.proxy.base_url + "/")
    page = browser.get(f"/_matrix/client/v3/login/sso/redirect?redirectUrl={client_url}")
    assert page.status_code in (302, 303), page.text
    page = browser.follow(page)
    # Signed out: the login page first.
    assert urlsplit(page.url).path == "/login", page.url
    page = browser.follow(browser.submit(page, {"username": "alice", "password": PASSWORD}))
    assert "/complete-compat-sso/" in page.url and page.status_code == 200, page.text
    done = browser.submit(page, {})
    assert done.status_code in (302, 303)
    location = done.headers["location"]
    assert location.startswith("https://client.example.test/sso-done?")
    query = parse_qs(urlsplit(location).query)
    assert query["from"] == ["test"]
    (login_token,) = query["loginToken"]

    async def exchange() -> Any:
        client = nio.AsyncClient(stack.proxy.base_url, f"@alice:{synapse.server_name}")
        try:
            login = await client.login(token=login_token, device_name="nio via SSO")
            assert isinstance(login, nio.LoginResponse), login
            whoami = await client.whoami()
            assert isinstance(whoami, nio.WhoamiResponse), whoami
            assert whoami.device_id == login.device_id
            other = nio.AsyncClient(stack.proxy.base_url, "")
            try:
                again = await other.login(token=login_token)
            finally:
                await other.close()
            assert isinstance(again, nio.LoginError), again
            return login, again
        finally:
            await client.close()

    login, again = asyncio.run(exchange())
    assert login.access_token.startswith("mct_")
    assert again.status_code == "M_FORBIDDEN"
