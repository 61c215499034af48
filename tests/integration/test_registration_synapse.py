# SPDX-License-Identifier: AGPL-3.0-only
"""Password registration end to end (issue 12, item 2), on SQLite and on PostgreSQL: a person
with a browser (no JavaScript) registers on a real ``twistd mas`` whose worker provisions a
real Synapse; the emailed code is read from our database (the mail goes to the ``blackhole``
transport here; the SMTP path is in ``tests/handlers/test_user_registration.py``). Then the
user exists on Synapse with the display name they chose, and the new password works for a
compatibility ``m.login.password`` login whose token Synapse accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.integration._harness import eventually, query
from tests.integration._oauth import Browser
from tests.integration._synapse import SynapseServer, mas_with_synapse

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: Any, tmp_path_factory: Any) -> Iterator[tuple[SynapseServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp(f"registration-{request.param}")
    extra = {
        "account": {"password_registration_enabled": True},
        "branding": {"tos_uri": "https://example.com/tos"},
    }
    with mas_with_synapse(
        tmp, request.param, resources=("discovery", "human", "oauth", "health", "compat"), extra_config=extra
    ) as (synapse, _proc, config):
        yield synapse, config


def test_register_then_use_the_account_on_synapse(stack: tuple[SynapseServer, dict[str, Any]]) -> None:
    synapse, config = stack
    base = synapse.mas_endpoint
    database = config["database"]["uri"]
    browser = Browser(base)

    page = browser.follow(browser.get("/register"))
    assert page.status_code == 200 and page.url.endswith("/register/password"), (page.url, page.text)
    fields = {
        "username": "newbie",
        "email": "newbie@example.org",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    # The terms tick is required: refused without it, and nothing is created.
    refused = browser.submit(page, fields)
    assert refused.status_code == 200 and "Accept the terms of service" in refused.text, refused.text
    assert query(database, "SELECT COUNT(*) FROM user_registrations") == [(0,)]

    page = browser.follow(browser.submit(refused, {**fields, "accept_terms": "on"}))
    assert page.status_code == 200 and page.url.endswith("/verify-email"), (page.url, page.text)
    ((code,),) = query(database, "SELECT code FROM user_email_authentication_codes")
    wrong = "000000" if code != "000000" else "111111"
    again = browser.submit(page, {"code": wrong})
    assert again.status_code == 200 and "This value is not valid." in again.text
    page = browser.follow(browser.submit(again, {"code": code}))
    assert page.status_code == 200 and page.url.endswith("/display-name"), (page.url, page.text)
    page = browser.follow(browser.submit(page, {"display_name": "New Bie"}))
    assert page.status_code == 200, page.text
    assert "You are signed in as <strong>newbie</strong>" in page.text, page.text

    # The worker provisions the user on Synapse with the chosen display name.
    user = eventually(lambda: _synapse_user(synapse, "newbie"), what="newbie on Synapse")
    assert user["display_name"] == "New Bie", user
    profile = synapse.profile("newbie")
    assert profile.status == 200 and profile.json()["displayname"] == "New Bie"
    assert query(database, "SELECT email FROM user_emails") == [("newbie@example.org",)]
    assert query(database, "SELECT terms_url FROM user_terms") == [("https://example.com/tos",)]

    # The new password logs in through the compatibility API, and Synapse takes the token.
    resp = requests.post(
        base + "_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "newbie"},
            "password": PASSWORD,
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    whoami = synapse.whoami(resp.json()["access_token"])
    assert whoami.status == 200 and whoami.json()["user_id"] == synapse.mxid("newbie"), whoami.body


def test_taken_username_is_refused(stack: tuple[SynapseServer, dict[str, Any]]) -> None:
    synapse, config = stack
    browser = Browser(synapse.mas_endpoint)
    page = browser.follow(browser.get("/register/password"))
    before = query(config["database"]["uri"], "SELECT COUNT(*) FROM user_registrations")
    refused = browser.submit(
        page,
        {
            "username": "newbie",
            "email": "other@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "accept_terms": "on",
        },
    )
    assert refused.status_code == 200 and "This value is already in use." in refused.text, refused.text
    assert query(config["database"]["uri"], "SELECT COUNT(*) FROM user_registrations") == before


def _synapse_user(synapse: SynapseServer, localpart: str) -> Any:
    resp = synapse.request(
        "GET", f"_synapse/mas/query_user?localpart={quote(localpart)}", token=synapse.secret
    )
    return resp.json() if resp.status == 200 else None
