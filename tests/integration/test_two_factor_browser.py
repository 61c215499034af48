# SPDX-License-Identifier: AGPL-3.0-only
"""The TOTP second factor (``experimental.mfa``, issue 18) in a real browser (Debian's chromium
through Playwright) against a real ``twistd mas``, on SQLite and PostgreSQL.

alice signs in, opens the "Two-factor" tab, sets up TOTP by reading the key off the page (the
test computes the codes with pyotp, as an authenticator app would), sees the QR code drawn and
ten recovery codes once. She signs out; signing in with her password now asks for a code: the
code already used is refused, the next step's code signs her in. A recovery code signs her in
once and is refused the second time. The legacy ``/login`` refuses her password (M_FORBIDDEN).
The ``chromium`` fixture is ``conftest.py``'s (Debian's chromium, ``_browser.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import requests

from tests.integration._oauth import PASSWORD, running_service

INVALID_CODE = "That code is not right, or it was used already."


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    with running_service(
        tmp_path_factory.mktemp(f"two-factor-{request.param}"),
        request.param,
        resources=("discovery", "human", "oauth", "compat", "assets", "health"),
        extra_config={"experimental": {"mfa": {"enabled": True, "totp_issuer": "Example Chat"}}},
    ) as running:
        yield running


def sign_in_with_password(page: Any, base: str) -> None:
    page.goto(base + "login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


def sign_out(page: Any, base: str) -> None:
    page.goto(base + "account/two-factor")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def enter_code(page: Any, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


def next_unused_code(totp: pyotp.TOTP, used: set[str]) -> str:
    """The current code, waiting for the next 30-second step if this one's was used."""
    while True:
        code = totp.now()
        if code not in used:
            return code
        time.sleep(1)


def test_enrol_then_sign_in_with_a_code_and_a_recovery_code(chromium: Any, service: dict[str, Any]) -> None:
    base = service["base"]
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in_with_password(page, base)
        page.goto(base + "account/")
        page.get_by_role("link", name="Two-factor").click()
        page.wait_for_url("**/account/two-factor")
        page.get_by_role("button", name="Set up two-factor authentication").click()
        page.wait_for_load_state()
        secret = page.locator("#totp-secret").inner_text().strip()
        assert len(secret) == 32, secret
        qr = page.locator(".qr-code svg")
        assert qr.count() == 1 and qr.bounding_box()["width"] > 100
        totp = pyotp.TOTP(secret)
        used: set[str] = set()
        first = next_unused_code(totp, used)
        page.get_by_label("Code from your app").fill(first)
        page.get_by_role("button", name="Turn on").click()
        page.wait_for_load_state()
        used.add(first)
        codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
        assert len(codes) == 10 and len(set(codes)) == 10, codes
        # Shown once: the tab reloaded shows how many are left, not the codes.
        page.goto(base + "account/two-factor")
        assert page.locator("#unused-recovery-codes").inner_text() == "10"
        assert codes[0] not in page.content()

        # Signing in again needs a code; the one already used is refused.
        sign_out(page, base)
        sign_in_with_password(page, base)
        assert page.url.endswith("/login/two-factor"), page.url
        enter_code(page, first)
        assert INVALID_CODE in page.content()
        page.goto(base + "account/")
        assert "/login" in page.url  # still signed out
        page.goto(base + "login/two-factor")
        code = next_unused_code(totp, used)
        enter_code(page, code)
        used.add(code)
        page.goto(base + "account/two-factor")
        assert page.url.endswith("/account/two-factor"), page.url
        assert "is <strong>on</strong>" in page.content()

        # A recovery code signs in once.
        sign_out(page, base)
        sign_in_with_password(page, base)
        enter_code(page, codes[0])
        page.goto(base + "account/two-factor")
        assert page.url.endswith("/account/two-factor"), page.url
        assert page.locator("#unused-recovery-codes").inner_text() == "9"
        sign_out(page, base)
        sign_in_with_password(page, base)
        enter_code(page, codes[0])
        assert INVALID_CODE in page.content()
        page.goto(base + "account/")
        assert "/login" in page.url
    finally:
        context.close()

    # The legacy API cannot ask for the code: the password alone is refused.
    reply = requests.post(
        base + "_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": PASSWORD,
        },
        timeout=30,
    )
    assert reply.status_code == 403, reply.text
    assert reply.json()["errcode"] == "M_FORBIDDEN"
