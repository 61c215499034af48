# SPDX-License-Identifier: AGPL-3.0-only
"""``syn2mas check``: each error and warning, as the operator reads it, and the exit status
(10 errors, 11 warnings only, 0 clean), on a Synapse-shaped database (a subset of Synapse's
schema, :mod:`tests.syn2mas._synapse`) on the suite's engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.syn2mas._synapse import SynapseDatabase, run_syn2mas, write_mas_config
from tests.utils import EmptyDatabase

PROVIDER_ID = "01JAYS74TCG3BTWKADN5Q4518C"


@pytest.fixture
def synapse(tmp_path: Path) -> Iterator[SynapseDatabase]:
    db = SynapseDatabase(tmp_path / "synapse")
    yield db
    db.cleanup()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[EmptyDatabase]:
    db = EmptyDatabase(str(tmp_path / "mas"))
    yield db
    db.cleanup()


def _lines(lines: list[str], level: str, *words: str) -> list[str]:
    return [line for line in lines if line.startswith(level + " ") and all(w in line for w in words)]


def test_a_clean_homeserver_passes(synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path) -> None:
    alice = synapse.user("alice", admin=True)
    synapse.threepid(alice, "email", "alice@example.com")
    status, lines = run_syn2mas(
        "check", write_mas_config(tmp_path / "mas.yaml", target), synapse.write_config(tmp_path / "hs.yaml")
    )
    assert status == 0, lines
    assert lines == ["Check completed successfully with no errors or warnings."]


def test_the_real_world_cases_are_warned_about(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    synapse.user("guest1", is_guest=True)
    bob = synapse.user("bob")
    synapse.threepid(bob, "msisdn", "15551234567")
    synapse.threepid(bob, "email", "Shared@Example.com")
    other = synapse.user("other")
    synapse.threepid(other, "email", "shared@example.com")
    synapse.user("irc_#chan:server", appservice_id="irc")
    synapse.user("Charlie")
    synapse.user("charlie")
    synapse.device(bob, "BOBDEV")
    synapse.access_token(bob, None, "syt_puppet", puppets_user_id="@admin:example.com")
    synapse.access_token(bob, None, "syt_deviceless")

    status, lines = run_syn2mas(
        "check", write_mas_config(tmp_path / "mas.yaml", target), synapse.write_config(tmp_path / "hs.yaml")
    )
    assert status == 11, lines
    assert not _lines(lines, "ERROR"), lines
    assert _lines(lines, "WARN", "1 guest account(s)")
    assert _lines(lines, "WARN", "1 third-party id(s) other than email addresses")
    assert _lines(
        lines, "WARN", "1 appservice user(s) whose localpart contains ':'", "@irc_#chan:server:example.com"
    )
    assert _lines(lines, "WARN", "1 user(s) with upper-case letters", "@Charlie:example.com")
    assert _lines(lines, "WARN", "1 group(s) of users whose ids differ only by case", "@charlie:example.com")
    assert _lines(lines, "WARN", "1 email address(es) on more than one account", "shared@example.com")
    assert _lines(lines, "WARN", "1 access token(s) made by an admin to act as another user")
    assert _lines(lines, "WARN", "1 access token(s) without a device")
    assert lines[-1] == "No errors; 8 warning(s) to consider before migrating."


def test_a_user_of_another_server_is_an_error_before_anything_is_written(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    synapse.user("alice")
    synapse.user("mallory", server="old.example.org")
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    hs = synapse.write_config(tmp_path / "hs.yaml")
    status, lines = run_syn2mas("check", mas, hs)
    assert status == 10
    assert _lines(
        lines, "ERROR", "1 user(s) whose id does not end in ':example.com'", "@mallory:old.example.org"
    )
    # migrate refuses too, and writes nothing.
    status, lines = run_syn2mas("migrate", mas, hs)
    assert status == 10
    assert target.query("SELECT COUNT(*) FROM users") == [(0,)]


@pytest.mark.parametrize(
    ("pepper", "expected"),
    [
        (None, "has no secret but Synapse has a pepper"),
        ("not-the-pepper", "has a secret that differs from Synapse's pepper"),
    ],
)
def test_a_missing_or_wrong_pepper_is_an_error(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path, pepper: str | None, expected: str
) -> None:
    synapse.user("alice")
    status, lines = run_syn2mas(
        "check",
        write_mas_config(tmp_path / "mas.yaml", target, pepper=pepper),
        synapse.write_config(tmp_path / "hs.yaml"),
    )
    assert status == 10
    assert _lines(lines, "ERROR", expected, "every imported password would be refused")


def test_synapse_settings_that_must_change(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    hs = synapse.write_config(
        tmp_path / "hs.yaml",
        allow_guest_access=True,
        enable_3pid_changes=True,
        login_via_existing_session={"enabled": True},
        enable_registration=True,
        enable_registration_captcha=True,
        user_consent={"version": "1.0", "template_dir": "x"},
        cas_config={"enabled": True},
        jwt_config={"enabled": True},
        password_config={"pepper": "synapse-pepper", "localdb_enabled": False},
    )
    status, lines = run_syn2mas(
        "check", write_mas_config(tmp_path / "mas.yaml", target, homeserver="wrong.example"), hs
    )
    assert status == 10
    assert _lines(lines, "ERROR", "allow_guest_access")
    assert _lines(lines, "ERROR", "enable_3pid_changes")
    assert _lines(lines, "ERROR", "login_via_existing_session")
    assert _lines(lines, "ERROR", "matrix.homeserver is 'wrong.example'", "'example.com'")
    assert _lines(lines, "WARN", "registration enabled")
    assert _lines(lines, "WARN", "user_consent")
    assert _lines(lines, "WARN", "branding.tos_uri")
    assert _lines(lines, "WARN", "CAPTCHA")
    assert _lines(lines, "WARN", "CAS login")
    assert _lines(lines, "WARN", "JWT login")
    assert _lines(lines, "WARN", "password provider module")
    # Errors come first.
    levels = [line.split(" ", 1)[0] for line in lines[:-1]]
    assert levels == sorted(levels)


def test_oidc_users_need_a_provider_with_their_synapse_idp_id(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    alice = synapse.user("alice")
    synapse.external_id(alice, "oidc-google", "google-sub-1")
    synapse.external_id(alice, "oidc-gone", "gone-sub-1")
    synapse.external_id(alice, "oauth-delegated", "01J...")
    hs = synapse.write_config(
        tmp_path / "hs.yaml",
        oidc_providers=[{"idp_id": "google", "issuer": "https://accounts.google.com/", "client_id": "x"}],
    )
    status, lines = run_syn2mas("check", write_mas_config(tmp_path / "mas.yaml", target), hs)
    assert status == 10
    assert _lines(
        lines, "ERROR", "'oidc-google'", "https://accounts.google.com/", "synapse_idp_id: 'oidc-google'"
    )
    assert _lines(lines, "ERROR", "'oidc-gone'", "--ignore-missing-auth-providers")
    assert _lines(lines, "ERROR", "oauth-delegated", "DELETE FROM user_external_ids")

    provider = {
        "id": PROVIDER_ID,
        "synapse_idp_id": "oidc-google",
        "issuer": "https://accounts.google.com/",
        "client_id": "x",
        "token_endpoint_auth_method": "none",
    }
    synapse.db.query("DELETE FROM user_external_ids WHERE auth_provider = 'oauth-delegated'")
    mas = write_mas_config(tmp_path / "mas.yaml", target, providers=[provider])
    status, lines = run_syn2mas("check", mas, hs)
    assert status == 10
    assert not _lines(lines, "ERROR", "'oidc-google'")
    assert _lines(lines, "ERROR", "'oidc-gone'")
    status, lines = run_syn2mas("check", mas, hs, ignore_missing_auth_providers=True)
    assert status == 11, lines
    assert _lines(lines, "WARN", "'oidc-gone'", "not migrated")


def test_a_non_empty_target_is_refused(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    synapse.user("alice")
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    hs = synapse.write_config(tmp_path / "hs.yaml")
    assert run_syn2mas("check", mas, hs)[0] == 0
    target.query(
        "INSERT INTO users (user_id, username, created_at) VALUES ('01JAYS74TCG3BTWKADN5Q4518D', 'x', 0)"
    )
    status, lines = run_syn2mas("check", mas, hs)
    assert status == 10
    assert _lines(lines, "ERROR", "not empty: users has rows")


def test_a_running_synapse_is_refused_for_a_real_migration(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    import os

    synapse.user("alice")
    # A daemonized Synapse's pid_file, naming a live process (this one).
    pid_file = tmp_path / "homeserver.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    hs = synapse.write_config(tmp_path / "hs.yaml", pid_file=str(pid_file))
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    status, lines = run_syn2mas("check", mas, hs)
    assert status == 11
    assert _lines(lines, "WARN", "Synapse seems to be running", str(os.getpid()))
    assert run_syn2mas("migrate", mas, hs, dry_run=True)[0] == 0
    status, lines = run_syn2mas("migrate", mas, hs)
    assert status == 10
    assert _lines(lines, "ERROR", "Synapse seems to be running")
    assert target.query("SELECT COUNT(*) FROM users") == [(0,)]
    # A pid_file left behind by a process that is gone does not count.
    pid_file.write_text("999999999\n")
    assert run_syn2mas("migrate", mas, hs)[0] == 0


def test_other_sessions_on_synapses_postgres_database(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    synapse.user("alice")
    hs = synapse.write_config(tmp_path / "hs.yaml")
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    if synapse.engine_name != "postgres":
        # Nothing tells on SQLite (a reader does not see the others).
        assert run_syn2mas("check", mas, hs)[0] == 0
        return
    other = synapse.db.connect()  # as a running Synapse holds connections
    try:
        status, lines = run_syn2mas("check", mas, hs)
        assert status == 11
        assert _lines(lines, "WARN", "1 other session(s) are connected to Synapse's database")
        assert run_syn2mas("migrate", mas, hs)[0] == 10
    finally:
        other.close()
