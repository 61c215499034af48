# SPDX-License-Identifier: AGPL-3.0-only
"""``config sync``: write the static clients and upstream providers of the config to the database.

What MAS's ``crates/cli/src/sync.rs`` does, in one transaction under a lock:

- Upstream providers: an enabled provider in the database that is no longer enabled in the
  config is disabled (``disabled_at``); with ``--prune`` every disabled provider is deleted,
  otherwise a warning says how many are left. Then every enabled provider of the config is
  upserted ("Adding provider" / "Updating provider" / "Enabling and updating provider"),
  with its position in the config as ``ui_order``, its client secret (or its Sign in with
  Apple key, as JSON) encrypted with ``secrets.encryption``, ``pkce_method`` mapped to the
  stored ``pkce_mode`` (``always`` → ``s256``, ``never`` → ``disabled``) and the deprecated
  ``forward_login_hint`` turned into a ``login_hint`` authorization parameter.
- Static clients: a static client that left the config is deleted with ``--prune`` ("Deleting
  client"), otherwise only counted in a warning. Every client of the config is upserted
  ("Adding client" / "Updating client"), its secret encrypted.
- ``--dry-run`` logs the same lines, writes nothing and rolls the transaction back.

:func:`run_config_sync` blocks (``mas-cli config sync`` and the server's start);
:func:`config_sync` is the same on the server's pool, for use inside the reactor.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from mas_twisted.api.errors import DatabaseError
from mas_twisted.storage.database import LoggingTransaction, run_txn
from mas_twisted.storage.engines import create_engine
from mas_twisted.storage.engines._base import first_line
from mas_twisted.storage.stores.oauth2_clients import (
    delete_oauth2_client_txn,
    list_static_oauth2_clients_txn,
    upsert_static_oauth2_client_txn,
)
from mas_twisted.storage.stores.upstream_oauth_providers import (
    delete_upstream_oauth_provider_txn,
    disable_upstream_oauth_provider_txn,
    list_upstream_oauth_providers_txn,
    upsert_upstream_oauth_provider_txn,
)
from mas_twisted.types.upstream import UpstreamOAuthProvider, UpstreamOAuthProviderParams

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.config.upstream_oauth2 import ClaimsImports, UpstreamProvider
    from mas_twisted.jose.encrypter import Encrypter
    from mas_twisted.server import MasServer

logger = logging.getLogger(__name__)

#: pg_advisory_xact_lock key held during a sync: the bytes of "mas-cfg" as an integer.
_SYNC_LOCK_KEY = int.from_bytes(b"mas-cfg", "big")

_PKCE_MODES = {"auto": "auto", "always": "s256", "never": "disabled"}

LOGIN_HINT_TEMPLATE = "{{ params.login_hint }}"


@attrs.define
class SyncReport:
    """What a sync did (or, with ``dry_run``, would have done), by id."""

    prune: bool
    dry_run: bool
    clients_added: list[str] = attrs.field(factory=list)
    clients_updated: list[str] = attrs.field(factory=list)
    clients_deleted: list[str] = attrs.field(factory=list)
    #: Static clients in the database but not in the config, kept because ``prune`` was off.
    clients_kept: list[str] = attrs.field(factory=list)
    providers_added: list[str] = attrs.field(factory=list)
    providers_updated: list[str] = attrs.field(factory=list)
    providers_enabled: list[str] = attrs.field(factory=list)
    providers_disabled: list[str] = attrs.field(factory=list)
    providers_deleted: list[str] = attrs.field(factory=list)
    #: Disabled providers left in the database because ``prune`` was off.
    providers_kept: list[str] = attrs.field(factory=list)


def _scope(scope: str) -> str:
    # MAS stores the parsed scope, a sorted set of tokens.
    return " ".join(sorted(set(scope.split(" ")) - {""}))


def _with_on_login(preference: dict[str, Any], on_login: str) -> dict[str, Any]:
    """Our extension (``on_login: sync``, beyond MAS) is stored only when set, so that a MAS
    configuration stores exactly MAS's JSON."""
    return {**preference, "on_login": on_login} if on_login != "keep" else preference


def _claims_imports_json(claims: ClaimsImports) -> dict[str, Any]:
    """MAS's ``ClaimsImports`` JSON (data-model ``upstream_oauth2/provider.rs``)."""
    return {
        "subject": {"template": claims.subject_template},
        "skip_confirmation": claims.skip_confirmation,
        "localpart": {
            "action": claims.localpart.action,
            "template": claims.localpart.template,
            "on_conflict": claims.localpart.on_conflict,
        },
        "displayname": _with_on_login(
            {"action": claims.displayname.action, "template": claims.displayname.template},
            claims.displayname.on_login,
        ),
        "email": _with_on_login(
            {"action": claims.email.action, "template": claims.email.template}, claims.email.on_login
        ),
        "account_name": {"template": claims.account_name_template},
    }


def _encrypted_provider_secret(provider: UpstreamProvider, encrypter: Encrypter) -> str | None:
    if provider.client_secret is not None:
        return encrypter.encrypt_to_string(provider.client_secret)
    siwa = provider.sign_in_with_apple
    if siwa is not None:
        # The key file's content is what gets stored, as MAS does; the file path is dropped.
        document: dict[str, Any] = {}
        if siwa.private_key is not None:
            document["private_key"] = siwa.private_key
        document["team_id"] = siwa.team_id
        document["key_id"] = siwa.key_id
        return encrypter.encrypt_to_string(json.dumps(document, separators=(",", ":")))
    return None


def _authorization_parameters(provider: UpstreamProvider) -> list[tuple[str, str]]:
    params = [(str(k), str(v)) for k, v in provider.additional_authorization_parameters.items()]
    if provider.forward_login_hint and not any(k == "login_hint" for k, _ in params):
        logger.warning(
            "Provider %s: `forward_login_hint` is deprecated; prefer setting "
            '`login_hint: "%s"` in `additional_authorization_parameters`',
            provider.id,
            LOGIN_HINT_TEMPLATE,
        )
        params.append(("login_hint", LOGIN_HINT_TEMPLATE))
    return params


def _provider_params(
    provider: UpstreamProvider, index: int, encrypter: Encrypter
) -> UpstreamOAuthProviderParams:
    if provider.discovery_mode == "disabled":
        if provider.authorization_endpoint is None:
            logger.error("Provider %s has discovery disabled but no authorization endpoint set", provider.id)
        if provider.token_endpoint is None:
            logger.error("Provider %s has discovery disabled but no token endpoint set", provider.id)
        if provider.jwks_uri is None:
            logger.warning("Provider %s has discovery disabled but no JWKS URI set", provider.id)
    return UpstreamOAuthProviderParams(
        issuer=provider.issuer,
        human_name=provider.human_name,
        brand_name=provider.brand_name,
        scope=_scope(provider.scope),
        token_endpoint_auth_method=provider.token_endpoint_auth_method,
        token_endpoint_signing_alg=provider.token_endpoint_auth_signing_alg,
        id_token_signed_response_alg=provider.id_token_signed_response_alg,
        fetch_userinfo=provider.fetch_userinfo,
        userinfo_signed_response_alg=provider.userinfo_signed_response_alg,
        client_id=provider.client_id,
        encrypted_client_secret=_encrypted_provider_secret(provider, encrypter),
        claims_imports=_claims_imports_json(provider.claims_imports),
        authorization_endpoint_override=provider.authorization_endpoint,
        token_endpoint_override=provider.token_endpoint,
        userinfo_endpoint_override=provider.userinfo_endpoint,
        jwks_uri_override=provider.jwks_uri,
        discovery_mode=provider.discovery_mode,
        pkce_mode=_PKCE_MODES[provider.pkce_method],
        response_mode=provider.response_mode,
        additional_authorization_parameters=_authorization_parameters(provider),
        forward_login_hint=provider.forward_login_hint,
        ui_order=min(index, 2**31 - 1),
        on_backchannel_logout=provider.on_backchannel_logout,
        registration_token_required=provider.registration_token_required,
    )


def _sync_providers_txn(
    txn: LoggingTransaction,
    config: RootConfig,
    encrypter: Encrypter,
    now_ms: int,
    report: SyncReport,
) -> None:
    providers = list(config.upstream_oauth2.providers)
    config_ids = {p.id for p in providers if p.enabled}

    existing_enabled: set[str] = set()
    existing_disabled: dict[str, UpstreamOAuthProvider] = {}
    for provider in list_upstream_oauth_providers_txn(txn):
        if provider.enabled:
            if provider.id in config_ids:
                existing_enabled.add(provider.id)
                continue
            logger.info("Disabling provider %s", provider.id)
            report.providers_disabled.append(provider.id)
            if not report.dry_run:
                disable_upstream_oauth_provider_txn(txn, provider.id, now_ms)
        existing_disabled[provider.id] = provider

    if report.prune:
        for provider_id in existing_disabled:
            logger.info("Deleting provider %s", provider_id)
            report.providers_deleted.append(provider_id)
            if not report.dry_run:
                delete_upstream_oauth_provider_txn(txn, provider_id)
    else:
        report.providers_kept.extend(existing_disabled)
        if len(existing_disabled) == 1:
            logger.warning(
                "A provider is soft-deleted in the database. Run `mas-cli config sync --prune` to delete it."
            )
        elif existing_disabled:
            logger.warning(
                "%d providers are soft-deleted in the database. Run `mas-cli config sync --prune` to delete them.",
                len(existing_disabled),
            )

    for index, configured in enumerate(providers):
        if not configured.enabled:
            continue
        if configured.id in existing_enabled:
            logger.info("Updating provider %s", configured.id)
            report.providers_updated.append(configured.id)
        elif configured.id in existing_disabled:
            logger.info("Enabling and updating provider %s", configured.id)
            report.providers_enabled.append(configured.id)
        else:
            logger.info("Adding provider %s", configured.id)
            report.providers_added.append(configured.id)
        if report.dry_run:
            continue
        upsert_upstream_oauth_provider_txn(
            txn, configured.id, _provider_params(configured, index, encrypter), now_ms
        )


def _sync_clients_txn(
    txn: LoggingTransaction, config: RootConfig, encrypter: Encrypter, report: SyncReport
) -> None:
    clients = list(config.clients.clients)
    config_ids = {c.client_id for c in clients}
    existing = list_static_oauth2_clients_txn(txn)
    existing_ids = {c.id for c in existing}
    to_delete = [c.id for c in existing if c.id not in config_ids]

    if report.prune:
        for client_id in to_delete:
            logger.info("Deleting client %s", client_id)
            report.clients_deleted.append(client_id)
            if not report.dry_run:
                delete_oauth2_client_txn(txn, client_id)
    else:
        report.clients_kept.extend(to_delete)
        if len(to_delete) == 1:
            logger.warning(
                "A static client in the database is not in the config. Run with `--prune` to delete it."
            )
        elif to_delete:
            logger.warning(
                "%d static clients in the database are not in the config. Run with `--prune` to delete them.",
                len(to_delete),
            )

    for client in clients:
        if client.client_id in existing_ids:
            logger.info("Updating client %s", client.client_id)
            report.clients_updated.append(client.client_id)
        else:
            logger.info("Adding client %s", client.client_id)
            report.clients_added.append(client.client_id)
        if report.dry_run:
            continue
        secret = client.client_secret
        upsert_static_oauth2_client_txn(
            txn,
            client.client_id,
            client_name=client.client_name,
            client_uri=client.client_uri,
            client_auth_method=client.client_auth_method,
            encrypted_client_secret=encrypter.encrypt_to_string(secret) if secret is not None else None,
            jwks=client.jwks,
            jwks_uri=client.jwks_uri,
            redirect_uris=client.redirect_uris,
            post_logout_redirect_uris=client.post_logout_redirect_uris,
        )


def config_sync_txn(
    txn: LoggingTransaction,
    config: RootConfig,
    encrypter: Encrypter,
    now_ms: int,
    *,
    prune: bool,
    dry_run: bool,
) -> SyncReport:
    """The whole sync inside one transaction (the caller commits, or rolls back for a dry run)."""
    if txn.engine.name == "postgres":
        logger.info("Acquiring configuration lock")
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_SYNC_LOCK_KEY,))
    logger.info(
        "Syncing providers and clients defined in config to database (prune=%s, dry_run=%s)", prune, dry_run
    )
    report = SyncReport(prune=prune, dry_run=dry_run)
    _sync_providers_txn(txn, config, encrypter, now_ms, report)
    _sync_clients_txn(txn, config, encrypter, report)
    return report


def _encrypter(config: RootConfig) -> Encrypter:
    from mas_twisted.jose.encrypter import Encrypter

    return Encrypter(config.secrets.encryption_key)


def run_config_sync(
    config: RootConfig,
    *,
    prune: bool,
    dry_run: bool,
    clock: Callable[[], float] = time.time,
) -> SyncReport:
    """Sync on a connection of its own, blocking; commits unless ``dry_run``.

    Raises:
        DatabaseError: the database cannot be reached, has no schema yet, or the
            transaction (its commit included) failed.
    """
    encrypter = _encrypter(config)
    engine = create_engine(config.database)
    conn = engine.connect()
    try:

        def _sync_txn(txn: LoggingTransaction) -> SyncReport:
            report = config_sync_txn(
                txn, config, encrypter, int(clock() * 1000), prune=prune, dry_run=dry_run
            )
            if dry_run:
                logger.info("Dry run, rolling back changes")
            return report

        return run_txn(conn, engine, "config_sync", _sync_txn, write=True, rollback=dry_run)
    except engine.module.Error as e:
        raise DatabaseError(
            f"config sync failed on the {config.database.describe_target()}: {first_line(e)}"
            " (has `mas-cli database migrate` been run?)"
        )
    finally:
        conn.close()


class _RollBack(Exception):
    def __init__(self, report: SyncReport):
        super().__init__("dry run")
        self.report = report


async def config_sync(
    server: MasServer, *, prune: bool, dry_run: bool, config: RootConfig | None = None
) -> SyncReport:
    """:func:`run_config_sync` on the server's pool, without blocking the reactor.

    ``config`` defaults to the server's; a reloaded configuration can be passed instead.
    """
    if config is None or config is server.config:
        config = server.config
        encrypter = server.get_encrypter()
    else:
        encrypter = _encrypter(config)
    now_ms = server.get_clock().time_msec()

    def _sync_txn(txn: LoggingTransaction) -> SyncReport:
        report = config_sync_txn(txn, config, encrypter, now_ms, prune=prune, dry_run=dry_run)
        if dry_run:
            # Raising is how a transaction function asks for a rollback.
            raise _RollBack(report)
        return report

    try:
        return await server.get_db_pool().runInteraction("config_sync", _sync_txn)
    except _RollBack as e:
        logger.info("Dry run, rolling back changes")
        return e.report
