# SPDX-License-Identifier: AGPL-3.0-only
"""``syn2mas migrate``: MAS's mapping rules, row by row, on a Synapse-shaped database (a subset
of Synapse's schema, :mod:`tests.syn2mas._synapse`), and what a second or an interrupted run
finds; on the suite's engine (both databases on it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mas_twisted.storage.engines import create_engine
from mas_twisted.storage.syn2mas import MigrationLock
from mas_twisted.syn2mas.migrate import IdMinter
from mas_twisted.util.ulid import ulid_ms
from tests.syn2mas._synapse import SynapseDatabase, run_syn2mas, write_mas_config
from tests.utils import EmptyDatabase

PROVIDER_ID = "01JAYS74TCG3BTWKADN5Q4518C"
PROVIDER = {
    "id": PROVIDER_ID,
    "synapse_idp_id": "oidc-google",
    "issuer": "https://accounts.google.com/",
    "client_id": "x",
    "token_endpoint_auth_method": "none",
}


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


def _fill(synapse: SynapseDatabase) -> None:
    alice = synapse.user("alice", admin=True, creation_ts=1_600_000_000)
    synapse.user("bob", password_hash=None)
    guest = synapse.user("guest1", is_guest=True)
    gone = synapse.user("gone", deactivated=True)
    synapse.user("locked", locked=True)
    bridge = synapse.user("bridge_x", appservice_id="bridge")
    synapse.threepid(alice, "email", "Alice@Example.com", added_at=1_600_000_001_000)
    synapse.threepid(alice, "msisdn", "15550001", added_at=1_600_000_002_000)
    synapse.threepid(bridge, "email", "bridge@example.com")
    synapse.external_id(alice, "oidc-google", "google-sub")
    synapse.external_id(bridge, "oidc-google", "bridge-sub")
    synapse.device(
        alice, "ALICE1", display_name="Laptop", last_seen=1_700_000_000_000, ip="10.0.0.1", user_agent="UA"
    )
    synapse.device(alice, "ALICE2", ip="-")
    synapse.device(alice, "ALICE3", ip="not an ip")
    synapse.device(alice, "HIDDEN", hidden=True)
    synapse.device(guest, "guest_device")
    synapse.device(gone, "GONEDEV")
    synapse.device(bridge, "BRIDGEDEV")
    synapse.access_token(
        alice, "ALICE1", "syt_alice_1", valid_until_ms=1_900_000_000_000, last_validated=1_700_000_000_500
    )
    synapse.access_token(alice, None, "syt_alice_deviceless", last_validated=1_700_000_000_600)
    synapse.access_token(alice, "HIDDEN", "syt_alice_hidden")
    synapse.access_token(alice, "NODEVICE", "syt_alice_no_such_device")
    synapse.access_token(alice, None, "syt_puppet", puppets_user_id="@admin:example.com")
    synapse.access_token(gone, "GONEDEV", "syt_gone")
    synapse.access_token(bridge, "BRIDGEDEV", "syt_bridge")
    # ALICE2: a pair whose successor was used (skipped), and that successor pair.
    second = synapse.refresh_token(alice, "ALICE2", "syr_second")
    first = synapse.refresh_token(alice, "ALICE2", "syr_first", next_token_id=second)
    synapse.access_token(alice, "ALICE2", "syt_first", refresh_token_id=first, used=True)
    synapse.access_token(alice, "ALICE2", "syt_second", refresh_token_id=second, used=True)
    # ALICE3: a pair whose successor exists but was never used: both pairs stay usable.
    unused = synapse.refresh_token(alice, "ALICE3", "syr_unused_next")
    current = synapse.refresh_token(alice, "ALICE3", "syr_current", next_token_id=unused)
    synapse.access_token(alice, "ALICE3", "syt_current", refresh_token_id=current, used=True)
    synapse.access_token(alice, "ALICE3", "syt_unused_next", refresh_token_id=unused, used=False)


def test_mapping_rules(synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path) -> None:
    _fill(synapse)
    mas = write_mas_config(tmp_path / "mas.yaml", target, providers=[PROVIDER])
    hs = synapse.write_config(
        tmp_path / "hs.yaml", oidc_providers=[{"idp_id": "google", "issuer": "https://accounts.google.com/"}]
    )
    status, lines = run_syn2mas("migrate", mas, hs)
    assert status == 0, lines

    users = {
        r[0]: r
        for r in target.query(
            "SELECT username, user_id, created_at, locked_at, deactivated_at, can_request_admin, is_guest FROM users"
        )
    }
    assert sorted(users) == ["alice", "bob", "gone", "guest1", "locked"]  # no appservice user
    alice = users["alice"]
    assert alice[2] == 1_600_000_000_000 and ulid_ms(alice[1]) == 1_600_000_000_000
    assert bool(alice[5]) and not bool(users["bob"][5])
    assert users["locked"][3] == users["locked"][2] and users["locked"][4] is None
    assert users["gone"][4] == users["gone"][2]
    assert bool(users["guest1"][6])

    # bob has no password; the others' hashes are version 1.
    assert target.query(
        "SELECT COUNT(*) FROM user_passwords p JOIN users u USING (user_id) WHERE u.username = 'bob'"
    ) == [(0,)]
    assert {int(r[0]) for r in target.query("SELECT version FROM user_passwords")} == {1}

    # The address as Synapse has it, with its time.
    assert target.query("SELECT user_id, email, created_at FROM user_emails") == [
        (alice[1], "Alice@Example.com", 1_600_000_001_000)
    ]
    assert target.query(
        "SELECT user_id, medium, address, created_at FROM user_unsupported_third_party_ids"
    ) == [(alice[1], "msisdn", "15550001", 1_600_000_002_000)]
    assert target.query("SELECT upstream_oauth_provider_id, user_id, subject FROM upstream_oauth_links") == [
        (PROVIDER_ID, alice[1], "google-sub")
    ]

    sessions = {
        r[0]: r[1:]
        for r in target.query(
            "SELECT device_id, user_id, human_name, last_active_at, last_active_ip, user_agent, is_synapse_admin"
            " FROM compat_sessions WHERE device_id IS NOT NULL"
        )
    }
    # Hidden devices, guests', deactivated and appservice users' devices are not migrated.
    assert sorted(sessions) == ["ALICE1", "ALICE2", "ALICE3"]
    assert sessions["ALICE1"][1:5] == ("Laptop", 1_700_000_000_000, "10.0.0.1", "UA")
    assert bool(sessions["ALICE1"][5])
    assert sessions["ALICE2"][3] is None and sessions["ALICE3"][3] is None  # "-" and garbage dropped

    tokens = {
        r[0]: r[1:]
        for r in target.query(
            "SELECT t.access_token, s.device_id, t.expires_at, t.created_at FROM compat_access_tokens t"
            " JOIN compat_sessions s USING (compat_session_id)"
        )
    }
    assert sorted(tokens) == [
        "syt_alice_1",
        "syt_alice_deviceless",
        "syt_current",
        "syt_second",
        "syt_unused_next",
    ]
    assert tokens["syt_alice_1"] == ("ALICE1", 1_900_000_000_000, 1_700_000_000_500)
    assert (
        tokens["syt_alice_deviceless"][0] is None and tokens["syt_alice_deviceless"][2] == 1_700_000_000_600
    )
    refresh = dict(
        target.query(
            "SELECT r.refresh_token, a.access_token FROM compat_refresh_tokens r"
            " JOIN compat_access_tokens a USING (compat_access_token_id)"
        )
    )
    assert refresh == {
        "syr_second": "syt_second",
        "syr_current": "syt_current",
        "syr_unused_next": "syt_unused_next",
    }
    assert any("Migrated" in line and "5 users" in line and "skipped" in line for line in lines), lines


def test_a_link_without_a_mapped_provider(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    alice = synapse.user("alice")
    synapse.external_id(alice, "oidc", "sub-1")
    hs = synapse.write_config(tmp_path / "hs.yaml", oidc_config={"enabled": True, "issuer": "https://idp/"})
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    status, lines = run_syn2mas("migrate", mas, hs)
    assert status == 10
    assert target.query("SELECT COUNT(*) FROM users") == [(0,)]
    # A provider missing from Synapse's configuration can be skipped on purpose.
    synapse.external_id(alice, "saml", "sub-2")
    synapse.db.query("DELETE FROM user_external_ids WHERE auth_provider = 'oidc'")
    status, lines = run_syn2mas("migrate", mas, hs, ignore_missing_auth_providers=True)
    assert status == 0, lines
    assert target.query("SELECT username FROM users") == [("alice",)]
    assert target.query("SELECT COUNT(*) FROM upstream_oauth_links") == [(0,)]


def test_runs_after_a_finished_and_after_an_interrupted_run(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    synapse.user("alice")
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    hs = synapse.write_config(tmp_path / "hs.yaml")
    # A dry run leaves nothing, not even its run row.
    assert run_syn2mas("migrate", mas, hs, dry_run=True)[0] == 0
    assert target.query("SELECT COUNT(*) FROM syn2mas_runs") == [(0,)]
    # A run killed after it recorded itself: its row without finished_at (its data rolled back).
    target.query(
        "INSERT INTO syn2mas_runs (syn2mas_run_id, started_at, dry_run) VALUES ('01JAYS74TCG3BTWKADN5Q4518E', 1, ?)",
        (False,),
    )
    with caplog.at_level("WARNING"):
        status, lines = run_syn2mas("migrate", mas, hs)
    assert status == 0, lines
    assert "01JAYS74TCG3BTWKADN5Q4518E" in caplog.text and "interrupted" in caplog.text
    assert target.query("SELECT username FROM users") == [("alice",)]
    assert [r[0] is not None for r in target.query("SELECT finished_at FROM syn2mas_runs")] == [True]
    status, lines = run_syn2mas("migrate", mas, hs)
    assert status == 10
    assert any(line.startswith("ERROR") and "already holds a completed migration" in line for line in lines)


def test_a_second_run_waits_for_the_lock(
    synapse: SynapseDatabase, target: EmptyDatabase, tmp_path: Path
) -> None:
    synapse.user("alice")
    mas = write_mas_config(tmp_path / "mas.yaml", target)
    hs = synapse.write_config(tmp_path / "hs.yaml")
    assert run_syn2mas("check", mas, hs)[0] == 0  # creates the schema
    holder = MigrationLock(create_engine(target.db_config))
    assert holder.acquire()
    try:
        status, lines = run_syn2mas("migrate", mas, hs)
        assert status == 1
        assert lines == ["ERROR Another syn2mas run holds the lock on this database; wait for it to end."]
        assert target.query("SELECT COUNT(*) FROM users") == [(0,)]
    finally:
        holder.release()
    assert run_syn2mas("migrate", mas, hs)[0] == 0


def test_ids_are_stable_within_a_run_and_unpredictable_across_runs() -> None:
    one, other = IdMinter(), IdMinter()
    assert one.ulid(1000, "device", "@a:x", "D") == one.ulid(1000, "device", "@a:x", "D")
    assert one.ulid(1000, "device", "@a:x", "D") != one.ulid(1000, "device", "@a:x", "E")
    assert one.ulid(1000, "device", "@a:x", "D") != other.ulid(1000, "device", "@a:x", "D")
    assert ulid_ms(one.ulid(1234, "user", "@a:x")) == 1234


def test_progress_on_a_terminal_and_in_a_log(caplog: pytest.LogCaptureFixture) -> None:
    import io

    from mas_twisted.syn2mas.migrate import Progress

    ticks = iter([0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0])
    screen = io.StringIO()
    progress = Progress(clock=lambda: next(ticks), stream=screen, terminal=True)
    assert [len(b) for b in progress.track("users", [[1] * 100, [1] * 100, [1] * 100], estimate=400)] == [
        100
    ] * 3
    frames = screen.getvalue().split("\r")[1:]
    assert frames[0].startswith(
        "users            [#######.......................]  25% 100/~400 100 rows/s ETA 3s"
    )
    assert len(frames) == 4 and frames[3].startswith(
        "users            [##############################] 100% 300/~300"
    )
    assert screen.getvalue().endswith("\n")

    ticks = iter([0.0, 6.0, 7.0, 7.0])
    log = io.StringIO()
    with caplog.at_level("INFO", logger="mas_twisted.syn2mas.migrate"):
        list(
            Progress(clock=lambda: next(ticks), stream=log, terminal=False).track(
                "devices", [[1] * 60, [1] * 10], 100
            )
        )
    assert log.getvalue() == ""
    assert "Migrating devices: 60/~100 rows (10 rows/s)" in caplog.text
    assert "Read 70 devices rows in 7.0s" in caplog.text
