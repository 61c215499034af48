# SPDX-License-Identifier: AGPL-3.0-only
"""Account recovery end to end: a real ``twistd mas`` (with its worker) sending through a real
SMTP server (Twisted's, ``tests/email/_helpers.py``, its reactor in a thread of this process),
a real Synapse, and Debian's chromium through Playwright, with JavaScript on a desktop window
and without it on a phone-sized one, on SQLite and PostgreSQL.

The user (made with ``mas-cli manage register-user``) asks for a link on ``/recover``, and so
does an address nobody holds: both get the same page and only the holder gets mail. The link
is read from the message the SMTP server received, opened in the browser, a weak password is
refused, the new one set; then the old password is refused at the compatibility login and the
new one accepted (Synapse takes the token), the link is single-use, and an expired link shows
the expired page. Screenshots go to ``build/screenshots/recovery-<engine>/``.

Each case has addresses of its own (they name the engine and the window), since the SMTP server
is shared by the module's cases: each case then sees only the messages its own requests caused.

The ``chromium`` fixture is ``conftest.py``'s (Debian's chromium, ``_browser.py``).
"""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.email._helpers import ReceivedMessage, SmtpTestServer
from tests.integration._harness import eventually, mas_cli, query
from tests.integration._synapse import SynapseServer, mas_with_synapse

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
OLD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "an entirely new and long passphrase"
LINK_RE = re.compile(r"https?://\S+/account/password/recovery\?ticket=[A-Za-z0-9]{32}")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpTestServer]:
    """The test SMTP server, on Twisted's reactor run in a thread of its own."""
    from twisted.internet import reactor

    server = SmtpTestServer()
    started = threading.Event()

    def _start() -> None:
        server.start()
        started.set()

    thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True)
    reactor.callWhenRunning(_start)  # type: ignore[attr-defined]
    thread.start()
    assert started.wait(10), "the SMTP server did not start"
    try:
        yield server
    finally:
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]
        thread.join(10)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any, smtp: SmtpTestServer) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp(f"recovery-{request.param}")
    extra = {
        "account": {"password_recovery_enabled": True},
        "email": {
            "from": '"Recovery Test" <auth@example.test>',
            "transport": "smtp",
            "mode": "plain",
            "hostname": "127.0.0.1",
            "port": smtp.port,
        },
        "rate_limiting": {
            "login": {"per_ip": {"burst": 1000, "per_second": 100}},
            "account_recovery": {
                "per_ip": {"burst": 1000, "per_second": 100},
                "per_address": {"burst": 1000, "per_second": 100},
            },
        },
    }
    resources = ("discovery", "human", "oauth", "assets", "health", "compat")
    with mas_with_synapse(tmp, request.param, resources=resources, extra_config=extra) as (
        synapse,
        _proc,
        config,
    ):
        yield {
            "engine": request.param,
            "synapse": synapse,
            "database": config["database"]["uri"],
            "dir": tmp / "mas",
        }


def register(stack: dict[str, Any], username: str, email: str) -> None:
    out = mas_cli(
        stack["dir"],
        "manage",
        "register-user",
        "--yes",
        username,
        "-p",
        OLD_PASSWORD,
        "-e",
        email,
        "-d",
        username,
    )
    assert out.returncode == 0, out.stderr
    # Provisioned on Synapse by the worker before anyone logs in.
    eventually(
        lambda: (
            query(
                stack["database"],
                "SELECT COUNT(*) FROM queue_jobs WHERE queue_name = 'provision-user' AND status <> 'completed'",
            )
            == [(0,)]
        ),
        what=f"{username} provisioned on Synapse",
    )


def compat_login(stack: dict[str, Any], username: str, password: str) -> str | None:
    """The compatibility password login through Synapse: the access token, or ``None`` if refused."""
    synapse: SynapseServer = stack["synapse"]
    resp = requests.post(
        synapse.mas_endpoint + "_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": username},
            "password": password,
        },
        timeout=30,
    )
    if resp.status_code == 403:
        assert resp.json()["errcode"] == "M_FORBIDDEN", resp.text
        return None
    assert resp.status_code == 200, resp.text
    token = str(resp.json()["access_token"])
    whoami = synapse.whoami(token)
    assert whoami.status == 200 and whoami.json()["user_id"] == synapse.mxid(username), whoami.body
    return token


def messages_to(smtp: SmtpTestServer, address: str) -> list[ReceivedMessage]:
    return [m for m in list(smtp.messages) if address in m.rcpt_to]


def link_in(message: ReceivedMessage) -> str:
    parsed = message.parsed()
    text = parsed.get_body(("plain",))
    assert text is not None
    found = LINK_RE.findall(text.get_content())
    assert found, text.get_content()
    html = parsed.get_body(("html",))
    assert html is not None and found[0] in html.get_content()
    return str(found[0])


def screenshot(page: Any, stack: dict[str, Any], name: str) -> None:
    path = SCREENSHOTS / f"recovery-{stack['engine']}" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, path
    (width,) = struct.unpack(">I", data[16:20])
    assert width == page.viewport_size["width"], (path, width)


def ask_for_link(page: Any, base: str, email: str) -> str:
    page.goto(base + "login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url("**/recover")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send the link").click()
    page.wait_for_url("**/recover/progress/**")
    return str(page.locator("main").inner_text())


def expire_tickets(database: str, email: str) -> None:
    from mas_twisted.storage.engines import create_engine
    from tests.utils import make_db_config

    conn = create_engine(make_db_config({"uri": database})).connect()
    try:
        cur = conn.cursor()
        cur.execute(
            "UPDATE user_recovery_tickets SET expires_at = 0 WHERE user_email_id IN"
            f" (SELECT user_email_id FROM user_emails WHERE email = '{email}')"
        )
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["desktop", "phone-no-js"])
def test_recover_an_account(chromium: Any, stack: dict[str, Any], smtp: SmtpTestServer, mode: str) -> None:
    phone = mode == "phone-no-js"
    # The SMTP server outlives each engine's stack (one per module): the addresses name the
    # engine, so that the SQLite run's messages are not counted as the PostgreSQL run's.
    username = f"rec{mode.split('-')[0]}{stack['engine']}"
    email = f"{username}@example.org"
    nobody = f"nobody-{username}@example.org"
    base = stack["synapse"].mas_endpoint
    assert messages_to(smtp, email) == [] and messages_to(smtp, nobody) == []
    register(stack, username, email)
    context = chromium.new_context(
        viewport=PHONE if phone else DESKTOP, java_script_enabled=not phone, is_mobile=phone, has_touch=phone
    )
    try:
        page = context.new_page()
        # An address nobody holds gets the same page as one somebody does.
        unknown_text = ask_for_link(page, base, nobody)
        screenshot(page, stack, f"{mode}-1-progress")
        known_text = ask_for_link(page, base, email)
        assert known_text.replace(email, "E") == unknown_text.replace(nobody, "E")
        assert "a link to choose a new password is on its way" in known_text

        [message] = eventually(lambda: messages_to(smtp, email), what="the recovery email arrives")
        assert message.parsed()["To"].addresses[0].addr_spec == email
        link = link_in(message)
        assert link.startswith(base), link

        page.goto(link)
        assert f"@{username}:" in page.locator("main").inner_text()
        screenshot(page, stack, f"{mode}-2-new-password")
        page.get_by_label("New password", exact=True).fill("password")
        page.get_by_label("Confirm the new password").fill("password")
        page.get_by_role("button", name="Set the new password").click()
        page.wait_for_load_state()
        assert "This password is too weak." in page.locator("main").inner_text()
        assert compat_login(stack, username, OLD_PASSWORD) is not None

        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Confirm the new password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set the new password").click()
        page.wait_for_load_state()
        assert "Your password has been changed" in page.locator("main").inner_text()
        screenshot(page, stack, f"{mode}-3-done")

        assert compat_login(stack, username, OLD_PASSWORD) is None
        assert compat_login(stack, username, NEW_PASSWORD) is not None

        # Single use.
        page.goto(link)
        assert "This link was used already" in page.locator("main").inner_text()
        screenshot(page, stack, f"{mode}-4-consumed")

        # A new link, let expire: the expired page, whose button sends another.
        ask_for_link(page, base, email)
        messages = eventually(lambda: len(messages_to(smtp, email)) >= 2 and messages_to(smtp, email))
        second = link_in(messages[-1])
        assert second != link
        expire_tickets(stack["database"], email)
        page.goto(second)
        assert "This link has expired" in page.locator("main").inner_text()
        screenshot(page, stack, f"{mode}-5-expired")
        page.get_by_role("button", name="Send a new link").click()
        page.wait_for_url("**/recover/progress/**")
        third = link_in(
            eventually(lambda: len(messages_to(smtp, email)) >= 3 and messages_to(smtp, email))[-1]
        )
        assert third not in (link, second)
        assert parse_qs(urlsplit(third).query)["ticket"]

        # Nothing was ever sent to the address nobody holds, and the holder got one message
        # per request (no job ran twice).
        time.sleep(1)
        assert messages_to(smtp, nobody) == []
        assert len(messages_to(smtp, email)) == 3
        assert query(
            stack["database"], f"SELECT COUNT(*) FROM user_recovery_sessions WHERE email = '{nobody}'"
        ) == [(1,)]
    finally:
        context.close()
