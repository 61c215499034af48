# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli manage register-user -m UPSTREAM_PROVIDER_ID:SUBJECT`` (MAS's
``--upstream-provider-mapping``), run as a subprocess against a migrated database whose
providers ``config sync`` wrote: the user is created with a link to each upstream account, the
link the upstream login flow then finds; a malformed mapping exits with status 2, an unknown or
disabled provider or a subject that is linked already with status 1, and nothing is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.cli._helpers import (  # noqa: F401 - pytest fixtures
    config,
    db,
    homeserver,
    mas_cli,
)
from tests.utils import EmptyDatabase

ACME = "01J0000000000000000000PRVA"
GONE = "01J0000000000000000000PRVB"


def with_providers(path: str, tmp_path: Path, *provider_ids: str) -> None:
    """Configure these providers and run ``config sync --prune`` (removed ones are deleted)."""
    data = yaml.safe_load(Path(path).read_text())
    data["upstream_oauth2"] = {
        "providers": [
            {
                "id": provider_id,
                "issuer": f"https://{provider_id.lower()}.example.org/",
                "human_name": "Acme SSO" if provider_id == ACME else None,
                "client_id": "mas",
                "client_secret": "secret",
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid",
            }
            for provider_id in provider_ids
        ]
    }
    Path(path).write_text(yaml.safe_dump(data))
    result = mas_cli("config", "sync", "-c", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def links(db: EmptyDatabase) -> list[tuple[Any, ...]]:
    return db.query(
        "SELECT l.upstream_oauth_provider_id, l.subject, u.username, l.human_account_name"
        " FROM upstream_oauth_links l JOIN users u ON u.user_id = l.user_id ORDER BY l.subject"
    )


def usernames(db: EmptyDatabase) -> list[str]:
    return [row[0] for row in db.query("SELECT username FROM users ORDER BY username")]


def test_register_user_with_upstream_accounts(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    with_providers(config, tmp_path, ACME, GONE)
    result = mas_cli(
        "manage",
        "register-user",
        "-c",
        config,
        "-y",
        "alice",
        "-m",
        f"{ACME}:sub:with:colons",
        "--upstream-provider-mapping",
        f"{GONE.lower()}:other",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f'Upstream account: Acme SSO ({ACME}) : "sub:with:colons"' in result.stdout
    assert "user will not be able to log in" not in result.stdout
    assert links(db) == [(GONE, "other", "alice", None), (ACME, "sub:with:colons", "alice", None)]
    # The provisioning job is scheduled with the user, as without -m.
    assert db.query("SELECT COUNT(*) FROM queue_jobs WHERE queue_name = 'provision-user'") == [(1,)]


def test_register_user_mapping_refusals_write_nothing(tmp_path: Path, db: EmptyDatabase, config: str) -> None:
    with_providers(config, tmp_path, ACME)
    for bad in ("no-colon", f"{ACME[:-1]}:x", "nope:x"):
        result = mas_cli("manage", "register-user", "-c", config, "-y", "bob", "-m", bad, cwd=tmp_path)
        assert result.returncode == 2, (bad, result.stderr)
        assert "upstream-provider-mapping" in result.stderr
    unknown = mas_cli("manage", "register-user", "-c", config, "-y", "bob", "-m", f"{GONE}:x", cwd=tmp_path)
    assert unknown.returncode == 1
    assert f"Unknown or disabled upstream provider {GONE}" in unknown.stderr
    assert usernames(db) == []

    assert (
        mas_cli(
            "manage", "register-user", "-c", config, "-y", "carol", "-m", f"{ACME}:s1", cwd=tmp_path
        ).returncode
        == 0
    )
    taken = mas_cli(
        "manage",
        "register-user",
        "-c",
        config,
        "-y",
        "bob",
        "-e",
        "bob@example.org",
        "-m",
        f"{ACME}:s1",
        cwd=tmp_path,
    )
    assert taken.returncode == 1
    assert f"The subject 's1' of upstream provider {ACME} is already linked" in taken.stderr
    assert usernames(db) == ["carol"]
    assert db.query("SELECT COUNT(*) FROM user_emails") == [(0,)]
    assert links(db) == [(ACME, "s1", "carol", None)]

    # A provider that left the configuration is disabled by `config sync`: it cannot be used.
    with_providers(config, tmp_path)
    disabled = mas_cli(
        "manage", "register-user", "-c", config, "-y", "dave", "-m", f"{ACME}:s2", cwd=tmp_path
    )
    assert disabled.returncode == 1
    assert f"Unknown or disabled upstream provider {ACME}" in disabled.stderr
    assert usernames(db) == ["carol"]
