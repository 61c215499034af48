# SPDX-License-Identifier: AGPL-3.0-only
"""The personal access tokens page in a real browser (Debian's chromium through Playwright)
against a real ``twistd mas`` and a real Synapse, on SQLite and PostgreSQL: alice signs in,
creates a token on ``/account/personal-tokens``, reads it off the page once, and Synapse accepts
it (``whoami``, with the token's own device); she revokes it on the page and Synapse refuses it.

The ``chromium`` fixture is ``conftest.py``'s (Debian's chromium, ``_browser.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration._harness import eventually, mas_cli
from tests.integration._synapse import mas_with_synapse

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp(f"personal-tokens-{request.param}")
    with mas_with_synapse(
        tmp, request.param, resources=("discovery", "human", "oauth", "assets", "health")
    ) as (
        synapse,
        proc,
        _config,
    ):
        out = mas_cli(
            tmp / "mas",
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
        eventually(lambda: synapse.profile("alice").status == 200, what="alice provisioned on Synapse")
        yield synapse


def test_token_made_on_the_page_works_on_synapse_until_revoked(chromium: Any, stack: Any) -> None:
    synapse = stack
    base = synapse.mas_endpoint
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(base + "login")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()
        page.goto(base)
        page.get_by_role("link", name="Personal access tokens").click()
        page.wait_for_url("**/account/personal-tokens")
        page.get_by_label("Name").fill("backup bot")
        page.get_by_label("Expires after").select_option("7")
        page.get_by_role("button", name="Create token").click()
        token = page.locator("#created-token").inner_text().strip()
        assert token.startswith("mpt_"), token

        whoami = synapse.whoami(token)
        assert whoami.status == 200, whoami
        assert whoami.json()["user_id"] == synapse.mxid("alice")
        device_id = whoami.json().get("device_id")
        assert device_id and device_id in synapse.devices("alice"), whoami.json()

        # Reloaded, the page lists the token but never shows it again.
        page.goto(base + "account/personal-tokens")
        assert "backup bot" in page.content() and token not in page.content()
        page.get_by_role("button", name="Revoke").click()
        page.wait_for_url("**/account/personal-tokens")
        assert "Revoked" in page.content()
        eventually(
            lambda: device_id not in synapse.devices("alice"), what="the token's device gone from Synapse"
        )
        eventually(lambda: synapse.whoami(token).status == 401, what="Synapse refuses the revoked token")
    finally:
        context.close()
