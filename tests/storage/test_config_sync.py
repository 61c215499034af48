# SPDX-License-Identifier: AGPL-3.0-only
"""``config sync``: static clients and upstream providers from the config into the database."""

from __future__ import annotations

import copy
import json
from typing import Any

from mas_twisted.api.errors import DatabaseError
from mas_twisted.config.root import RootConfig
from mas_twisted.jose.encrypter import Encrypter
from mas_twisted.storage.config_sync import SyncReport, config_sync, run_config_sync
from mas_twisted.storage.prepare_database import prepare_database
from mas_twisted.types.clients import OAuth2Client
from tests.unittest import TEST_ENCRYPTION_KEY, MasTestCase, deep_merge
from tests.utils import EmptyDatabase, temp_dir

CLIENT_A = "01J00000000000000000000AAA"
CLIENT_B = "01J00000000000000000000BBB"
DYNAMIC = "01J00000000000000000000DDD"
PROVIDER_1 = "01J0000000000000000000PRV1"
PROVIDER_2 = "01J0000000000000000000PRV2"
PROVIDER_3 = "01J0000000000000000000PRV3"

CLIENTS = [
    {
        "client_id": CLIENT_A,
        "client_auth_method": "client_secret_basic",
        "client_secret": "s3cret",
        "client_name": "Client A",
        "redirect_uris": ["https://a.example.com/cb", "com.example.app:/cb"],
        "post_logout_redirect_uris": ["https://a.example.com/bye"],
    },
    {"client_id": CLIENT_B, "client_auth_method": "none", "redirect_uris": ["https://b.example.com/cb"]},
]

PROVIDERS = [
    {
        "id": PROVIDER_1,
        "issuer": "https://accounts.example.com/",
        "human_name": "Example",
        "client_id": "mas-client",
        "client_secret": "upstream-secret",
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "openid profile email",
        "pkce_method": "always",
        "forward_login_hint": True,
        "additional_authorization_parameters": {"prompt": "consent"},
        "claims_imports": {"localpart": {"action": "require"}, "email": {"action": "suggest"}},
    },
    {
        "id": PROVIDER_2,
        "discovery_mode": "disabled",
        "client_id": "other",
        "token_endpoint_auth_method": "none",
        "authorization_endpoint": "https://other.example.com/authorize",
        "token_endpoint": "https://other.example.com/token",
        "jwks_uri": "https://other.example.com/jwks",
        "pkce_method": "never",
    },
    {
        "id": PROVIDER_3,
        "enabled": False,
        "issuer": "https://off.example.com/",
        "client_id": "off",
        "token_endpoint_auth_method": "none",
    },
]


class ConfigSyncTestCase(MasTestCase):
    def config_with(self, clients: list[dict[str, Any]], providers: list[dict[str, Any]]) -> RootConfig:
        raw = self.default_config()
        raw["database"] = dict(self.test_db.config_section)
        raw["clients"] = copy.deepcopy(clients)
        raw["upstream_oauth2"] = {"providers": copy.deepcopy(providers)}
        return RootConfig(raw)

    def sync(
        self,
        clients: list[dict[str, Any]] = CLIENTS,
        providers: list[dict[str, Any]] = PROVIDERS,
        *,
        prune: bool = False,
        dry_run: bool = False,
    ) -> SyncReport:
        config = self.config_with(clients, providers)
        return self.get_success(config_sync(self.server, prune=prune, dry_run=dry_run, config=config))

    def clients(self) -> dict[str, OAuth2Client]:
        rows = self.get_success(self.db_pool.simple_select_list("oauth2_clients", None, OAuth2Client.COLUMNS))
        return {row[0]: OAuth2Client.from_row(row) for row in rows}

    def providers(self) -> dict[str, Any]:
        stores = self.server.get_stores()
        return {
            p.id: p for p in self.get_success(stores.upstream_oauth_providers.list_upstream_oauth_providers())
        }

    def test_adds_clients_and_providers(self) -> None:
        with self.assertLogs("mas_twisted.storage.config_sync", "INFO") as logs:
            report = self.sync()
        self.assertEqual(report.clients_added, [CLIENT_A, CLIENT_B])
        self.assertEqual(report.providers_added, [PROVIDER_1, PROVIDER_2])
        self.assertIn(f"INFO:mas_twisted.storage.config_sync:Adding client {CLIENT_A}", logs.output)
        self.assertIn(f"INFO:mas_twisted.storage.config_sync:Adding provider {PROVIDER_1}", logs.output)

        clients = self.clients()
        self.assertEqual(set(clients), {CLIENT_A, CLIENT_B})
        a = clients[CLIENT_A]
        self.assertTrue(a.is_static)
        self.assertEqual(a.client_name, "Client A")
        self.assertEqual(a.token_endpoint_auth_method, "client_secret_basic")
        self.assertEqual(a.redirect_uris, ("https://a.example.com/cb", "com.example.app:/cb"))
        self.assertEqual(a.post_logout_redirect_uris, ("https://a.example.com/bye",))
        self.assertEqual(clients[CLIENT_B].post_logout_redirect_uris, ())
        self.assertEqual(
            a.grant_types,
            (
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code",
            ),
        )
        assert a.encrypted_client_secret is not None
        self.assertNotIn("s3cret", a.encrypted_client_secret)
        encrypter = Encrypter(bytes.fromhex(TEST_ENCRYPTION_KEY))
        self.assertEqual(encrypter.decrypt_string(a.encrypted_client_secret), "s3cret")
        self.assertIsNone(clients[CLIENT_B].encrypted_client_secret)

        providers = self.providers()
        self.assertEqual(list(providers), [PROVIDER_1, PROVIDER_2])  # ui_order is the config position
        p1, p2 = providers[PROVIDER_1], providers[PROVIDER_2]
        self.assertEqual((p1.ui_order, p2.ui_order), (0, 1))
        self.assertEqual(p1.scope, "email openid profile")
        self.assertEqual(p1.pkce_mode, "s256")
        self.assertEqual(p2.pkce_mode, "disabled")
        self.assertEqual(p1.token_endpoint_auth_method, "client_secret_post")
        assert p1.encrypted_client_secret is not None
        self.assertEqual(encrypter.decrypt_string(p1.encrypted_client_secret), "upstream-secret")
        self.assertEqual(
            p1.additional_authorization_parameters,
            (("prompt", "consent"), ("login_hint", "{{ params.login_hint }}")),
        )
        self.assertEqual(
            p1.claims_imports["localpart"], {"action": "require", "template": None, "on_conflict": "fail"}
        )
        self.assertEqual(p1.claims_imports["email"], {"action": "suggest", "template": None})
        self.assertEqual(p1.claims_imports["subject"], {"template": None})
        self.assertEqual(p2.token_endpoint_override, "https://other.example.com/token")
        self.assertEqual(p2.discovery_mode, "disabled")
        self.assertEqual(p1.created_at, int(self.START_TIME * 1000))
        self.assertIsNone(p1.disabled_at)

    def test_updates_in_place(self) -> None:
        self.sync()
        self.reactor.advance(60)
        clients = copy.deepcopy(CLIENTS)
        clients[0]["client_name"] = "Renamed"
        clients[0]["client_secret"] = "rotated"
        providers = copy.deepcopy(PROVIDERS)
        providers[0]["human_name"] = "Example 2"
        with self.assertLogs("mas_twisted.storage.config_sync", "INFO") as logs:
            report = self.sync(clients, providers)
        self.assertEqual(report.clients_updated, [CLIENT_A, CLIENT_B])
        self.assertEqual(report.providers_updated, [PROVIDER_1, PROVIDER_2])
        self.assertIn(f"INFO:mas_twisted.storage.config_sync:Updating client {CLIENT_A}", logs.output)

        a = self.clients()[CLIENT_A]
        self.assertEqual(a.client_name, "Renamed")
        assert a.encrypted_client_secret is not None
        self.assertEqual(
            Encrypter(bytes.fromhex(TEST_ENCRYPTION_KEY)).decrypt_string(a.encrypted_client_secret), "rotated"
        )
        p1 = self.providers()[PROVIDER_1]
        self.assertEqual(p1.human_name, "Example 2")
        self.assertEqual(p1.created_at, int(self.START_TIME * 1000))

    def test_removed_entries_are_kept_or_disabled_until_pruned(self) -> None:
        self.sync()
        self.get_success(
            self.db_pool.simple_insert(
                "oauth2_clients",
                {
                    "oauth2_client_id": DYNAMIC,
                    "grant_type_authorization_code": True,
                    "grant_type_refresh_token": True,
                },
            )
        )
        self.reactor.advance(10)

        with self.assertLogs("mas_twisted.storage.config_sync", "INFO") as logs:
            report = self.sync(CLIENTS[:1], PROVIDERS[:1])
        self.assertEqual(report.clients_kept, [CLIENT_B])
        self.assertEqual(report.providers_disabled, [PROVIDER_2])
        self.assertIn(f"INFO:mas_twisted.storage.config_sync:Disabling provider {PROVIDER_2}", logs.output)
        self.assertTrue(any("Run with `--prune` to delete it" in line for line in logs.output), logs.output)
        self.assertEqual(set(self.clients()), {CLIENT_A, CLIENT_B, DYNAMIC})
        self.assertEqual(self.providers()[PROVIDER_2].disabled_at, int((self.START_TIME + 10) * 1000))

        with self.assertLogs("mas_twisted.storage.config_sync", "INFO") as logs:
            report = self.sync(CLIENTS[:1], PROVIDERS[:1], prune=True)
        self.assertEqual(report.clients_deleted, [CLIENT_B])
        self.assertEqual(report.providers_deleted, [PROVIDER_2])
        self.assertIn(f"INFO:mas_twisted.storage.config_sync:Deleting client {CLIENT_B}", logs.output)
        # Dynamically registered clients are not the sync's business.
        self.assertEqual(set(self.clients()), {CLIENT_A, DYNAMIC})
        self.assertEqual(set(self.providers()), {PROVIDER_1})

    def test_disabled_provider_is_enabled_again(self) -> None:
        self.sync()
        self.sync(CLIENTS, PROVIDERS[:1])
        self.assertIsNotNone(self.providers()[PROVIDER_2].disabled_at)
        report = self.sync()
        self.assertEqual(report.providers_enabled, [PROVIDER_2])
        self.assertIsNone(self.providers()[PROVIDER_2].disabled_at)

    def test_provider_disabled_in_config_is_disabled_in_database(self) -> None:
        self.sync()
        providers = copy.deepcopy(PROVIDERS)
        providers[1]["enabled"] = False
        report = self.sync(CLIENTS, providers)
        self.assertEqual(report.providers_disabled, [PROVIDER_2])
        self.assertEqual(report.providers_kept, [PROVIDER_2])

    def test_dry_run_writes_nothing(self) -> None:
        report = self.sync(dry_run=True)
        self.assertEqual(report.clients_added, [CLIENT_A, CLIENT_B])
        self.assertEqual(report.providers_added, [PROVIDER_1, PROVIDER_2])
        self.assertEqual(self.clients(), {})
        self.assertEqual(self.providers(), {})

        self.sync()
        report = self.sync([], [], prune=True, dry_run=True)
        self.assertEqual(report.clients_deleted, [CLIENT_A, CLIENT_B])
        self.assertEqual(report.providers_deleted, [PROVIDER_1, PROVIDER_2])
        self.assertEqual(set(self.clients()), {CLIENT_A, CLIENT_B})
        self.assertTrue(all(p.enabled for p in self.providers().values()))

    def test_sign_in_with_apple_key_is_stored_encrypted(self) -> None:
        provider = {
            "id": PROVIDER_1,
            "issuer": "https://appleid.apple.com",
            "client_id": "com.example.service",
            "token_endpoint_auth_method": "sign_in_with_apple",
            "sign_in_with_apple": {"private_key": "PRIVATE KEY PEM", "team_id": "TEAM", "key_id": "KEY"},
        }
        self.sync([], [provider])
        stored = self.providers()[PROVIDER_1].encrypted_client_secret
        assert stored is not None
        document = json.loads(Encrypter(bytes.fromhex(TEST_ENCRYPTION_KEY)).decrypt_string(stored))
        self.assertEqual(document, {"private_key": "PRIVATE KEY PEM", "team_id": "TEAM", "key_id": "KEY"})


class BlockingConfigSyncTestCase(MasTestCase):
    """``run_config_sync``: what ``mas-cli config sync`` and the server's start call."""

    def test_blocking_sync_commits(self) -> None:
        db = EmptyDatabase(temp_dir(self))
        self.addCleanup(db.cleanup)
        prepare_database(db.db_config)
        raw = deep_merge(
            self.default_config(), {"clients": CLIENTS, "upstream_oauth2": {"providers": PROVIDERS}}
        )
        raw["database"] = db.config_section
        config = RootConfig(raw)

        report = run_config_sync(config, prune=False, dry_run=True, clock=lambda: 1234.5)
        self.assertEqual(report.clients_added, [CLIENT_A, CLIENT_B])
        self.assertEqual(db.query("SELECT COUNT(*) FROM oauth2_clients"), [(0,)])

        run_config_sync(config, prune=False, dry_run=False, clock=lambda: 1234.5)
        self.assertEqual(
            db.query("SELECT oauth2_client_id FROM oauth2_clients ORDER BY oauth2_client_id"),
            [(CLIENT_A,), (CLIENT_B,)],
        )
        self.assertEqual(
            db.query(
                "SELECT created_at FROM upstream_oauth_providers WHERE upstream_oauth_provider_id = ?",
                (PROVIDER_1,),
            ),
            [(1234500,)],
        )

    def test_unmigrated_database_is_a_one_line_error(self) -> None:
        db = EmptyDatabase(temp_dir(self))
        self.addCleanup(db.cleanup)
        raw = deep_merge(self.default_config(), {"clients": CLIENTS})
        raw["database"] = db.config_section
        with self.assertRaises(DatabaseError) as cm:
            run_config_sync(RootConfig(raw), prune=False, dry_run=False)
        self.assertIn("has `mas-cli database migrate` been run?", str(cm.exception))
        self.assertNotIn("\n", str(cm.exception))

    def test_commit_failure_is_a_one_line_error_and_nothing_is_stored(self) -> None:
        from unittest import mock

        from mas_twisted.storage import config_sync as config_sync_module
        from mas_twisted.storage.engines import create_engine

        db = EmptyDatabase(temp_dir(self))
        self.addCleanup(db.cleanup)
        prepare_database(db.db_config)
        raw = deep_merge(self.default_config(), {"clients": CLIENTS})
        raw["database"] = db.config_section
        config = RootConfig(raw)

        class _CommitFails:
            def __init__(self, conn: Any, error: Exception):
                self._conn, self._error = conn, error

            def __getattr__(self, name: str) -> Any:
                return getattr(self._conn, name)

            def commit(self) -> None:
                raise self._error

        def _engine(db_config: Any) -> Any:
            engine = create_engine(db_config)
            connect = engine.connect
            error = engine.module.OperationalError("could not write to the disk\nDETAIL: more text")
            engine.connect = lambda: _CommitFails(connect(), error)  # type: ignore[method-assign]
            return engine

        with mock.patch.object(config_sync_module, "create_engine", _engine):
            with self.assertRaises(DatabaseError) as cm:
                run_config_sync(config, prune=False, dry_run=False)
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertIn("config sync failed on the ", message)
        self.assertIn("could not write to the disk", message)
        self.assertEqual(db.query("SELECT COUNT(*) FROM oauth2_clients"), [(0,)])
