# SPDX-License-Identifier: AGPL-3.0-only
"""What ``syn2mas check`` (and the seed's ``--command=advisor``) reports before a migration
(inventory §13; MAS's ``crates/syn2mas/src/synapse_reader/checks.rs`` and
``mas_writer/checks.rs``).

An error blocks the migration (``check`` and ``migrate`` exit with status 10); a warning is
something to decide on first (``check`` exits with 11). Each finding says what to do.

Beyond MAS's own checks, the ones real migrations with MAS's tool tripped over (issue 16):
users of another server name (MAS stops halfway through on the first one), appservice users
whose localpart holds a ``:`` (skipped), upper-case localparts and ids equal but for case,
one email address on several accounts, admin "login as user" tokens (not migrated) and
device-less tokens, and accounts without a password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import attrs

from mas_twisted.config.passwords import ALGORITHM_BCRYPT
from mas_twisted.storage.synapse_reader import DELETE_OAUTH_DELEGATED_SQL

if TYPE_CHECKING:
    from mas_twisted.config.root import RootConfig
    from mas_twisted.syn2mas.synapse_config import SynapseConfig

#: The ``passwords.schemes`` version imported Synapse hashes are stored under (MAS's
#: ``MIGRATED_PASSWORD_VERSION``).
MIGRATED_PASSWORD_VERSION = 1

ERROR = "ERROR"
WARN = "WARN"

#: ``mas-cli syn2mas`` exit statuses (MAS's ``EXIT_CODE_CHECK_ERRORS`` / ``_WARNINGS``).
EXIT_ERRORS = 10
EXIT_WARNINGS = 11


@attrs.frozen
class Finding:
    level: str
    message: str

    def line(self) -> str:
        return f"{self.level} {self.message}"


def _error(message: str) -> Finding:
    return Finding(ERROR, message)


def _warn(message: str) -> Finding:
    return Finding(WARN, message)


def _examples(names: list[str]) -> str:
    return f" (e.g. {', '.join(names)})" if names else ""


class SynapseFacts(Protocol):
    """What the database checks ask of Synapse's database (``storage.synapse_reader.SynapseReader``)."""

    def count_guests(self) -> int: ...
    def count_non_email_threepids(self) -> int: ...
    def external_id_providers(self) -> list[tuple[str, int]]: ...
    def users_of_other_servers(self, server_name: str, limit: int = 3) -> tuple[int, list[str]]: ...
    def appservice_users_with_colon(self, server_name: str, limit: int = 3) -> tuple[int, list[str]]: ...
    def upper_case_users(self, limit: int = 3) -> tuple[int, list[str]]: ...
    def users_differing_only_by_case(self, limit: int = 3) -> tuple[int, list[str]]: ...
    def emails_shared_by_accounts(self, limit: int = 3) -> tuple[int, list[str]]: ...
    def count_puppet_tokens(self) -> int: ...
    def count_deviceless_tokens(self) -> int: ...
    def other_sessions(self) -> int: ...


def synapse_config_checks(synapse: SynapseConfig) -> list[Finding]:
    """Checks of Synapse's configuration alone."""
    found: list[Finding] = []
    if synapse.enable_registration:
        found.append(
            _warn(
                "Synapse has registration enabled (enable_registration). Set it to false before"
                " starting Synapse again after the migration: accounts are then created here."
            )
        )
    if synapse.user_consent:
        found.append(
            _warn(
                "Synapse has user_consent configured. Remove it after the migration; terms of"
                " service are then shown by this service."
            )
        )
    for system, enabled in (
        ("CAS", synapse.cas_enabled),
        ("SAML2", synapse.saml2_enabled),
        ("JWT", synapse.jwt_enabled),
    ):
        if enabled:
            found.append(
                _warn(
                    f"Synapse has {system} login configured. Its users can only keep logging in if"
                    " you map it by hand to an upstream OAuth 2.0 provider (upstream_oauth2.providers)."
                )
            )
    if synapse.password_enabled and not synapse.password_localdb_enabled:
        found.append(
            _warn(
                "Synapse checks passwords with a password provider module (password_config."
                "localdb_enabled is false). Those passwords are not in Synapse's database; map the"
                " provider by hand to an upstream OAuth 2.0 provider."
            )
        )
    if synapse.enable_3pid_changes is True:
        found.append(
            _error(
                "Synapse sets enable_3pid_changes: true. Remove it (or set it to false): email"
                " addresses are managed by this service after the migration."
            )
        )
    if synapse.login_via_existing_session:
        found.append(
            _error(
                "Synapse sets login_via_existing_session.enabled: true. Disable it: this service"
                " handles logging in new devices after the migration."
            )
        )
    return found


def mas_config_checks(synapse: SynapseConfig, mas: RootConfig) -> list[Finding]:
    """Checks of Synapse's configuration against ours."""
    found: list[Finding] = []
    scheme = next((s for s in mas.passwords.schemes if s.version == MIGRATED_PASSWORD_VERSION), None)
    pepper_hint = (
        "secret set to Synapse's password_config.pepper"
        if synapse.pepper
        else "no secret (Synapse has no pepper)"
    )
    wanted = (
        f"passwords.schemes needs {{version: {MIGRATED_PASSWORD_VERSION}, algorithm: bcrypt,"
        f" unicode_normalization: true}} with {pepper_hint}, and a higher version (argon2id) for new hashes"
    )
    if scheme is None:
        found.append(
            _error(
                f"Our configuration has no password scheme version {MIGRATED_PASSWORD_VERSION}, under which"
                f" Synapse's password hashes are imported: {wanted}."
            )
        )
    else:
        if scheme.algorithm != ALGORITHM_BCRYPT:
            found.append(
                _error(
                    f"Password scheme version {MIGRATED_PASSWORD_VERSION} uses {scheme.algorithm}, but"
                    f" Synapse's hashes are bcrypt: {wanted}."
                )
            )
        synapse_pepper = synapse.pepper.encode("utf-8") if synapse.pepper else None
        if (scheme.secret or None) != synapse_pepper:
            if synapse_pepper is not None and scheme.secret is None:
                problem = "has no secret but Synapse has a pepper: every imported password would be refused"
            elif synapse_pepper is None:
                problem = "has a secret but Synapse has no pepper: every imported password would be refused"
            else:
                problem = "has a secret that differs from Synapse's pepper: every imported password would be refused"
            found.append(_error(f"Password scheme version {MIGRATED_PASSWORD_VERSION} {problem}: {wanted}."))
        if not scheme.unicode_normalization and scheme.algorithm == ALGORITHM_BCRYPT:
            found.append(
                _warn(
                    f"Password scheme version {MIGRATED_PASSWORD_VERSION} does not set"
                    " unicode_normalization: true. Synapse normalises passwords (NFKC) before hashing,"
                    " so users with non-ASCII passwords could not log in."
                )
            )
    if synapse.allow_guest_access:
        found.append(
            _error(
                "Synapse allows guest access (allow_guest_access: true). Guests are not supported"
                " here: set it to false (MAS issue #1445)."
            )
        )
    if synapse.server_name != mas.matrix.homeserver:
        found.append(
            _error(
                f"matrix.homeserver is {mas.matrix.homeserver!r} in our configuration but Synapse's"
                f" server_name is {synapse.server_name!r}: set matrix.homeserver to {synapse.server_name!r}."
            )
        )
    if synapse.enable_registration_captcha and mas.captcha.service is None:
        found.append(
            _warn(
                "Synapse asks for a CAPTCHA at registration, but captcha is not configured here:"
                " configure captcha.service if you want one."
            )
        )
    if synapse.user_consent and mas.branding.tos_uri is None:
        found.append(
            _warn(
                "Synapse has user_consent but branding.tos_uri is not set here: set it to your terms"
                " of service to keep asking users to accept them."
            )
        )
    return found


def database_checks(
    synapse: SynapseConfig,
    mas: RootConfig | None,
    db: SynapseFacts,
    *,
    ignore_missing_auth_providers: bool,
    provider_mapping: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Checks of Synapse's database; ``mas`` None when run without our configuration (the seed's
    advisor), which skips what needs it. ``provider_mapping`` adds ``synapse_idp_id`` → provider
    pairs given on the command line (the seed's ``--upstreamProviderMapping``)."""
    found: list[Finding] = []
    server_name = synapse.server_name

    count, names = db.users_of_other_servers(server_name)
    if count:
        found.append(
            _error(
                f"Synapse's database has {count} user(s) whose id does not end in ':{server_name}'"
                f"{_examples(names)}. Check that --synapse-config names the configuration of the"
                " server this database belongs to (server_name)."
            )
        )

    guests = db.count_guests()
    if guests:
        found.append(
            _warn(
                f"Synapse's database has {guests} guest account(s). They are migrated as guest users,"
                " which this service does not let log in (MAS issue #1445); deactivate them in Synapse"
                " first if nobody needs them."
            )
        )
    non_email = db.count_non_email_threepids()
    if non_email:
        found.append(
            _warn(
                f"Synapse's database has {non_email} third-party id(s) other than email addresses"
                " (phone numbers). They are kept (user_unsupported_third_party_ids) but cannot be used"
                " to log in or recover an account here."
            )
        )

    count, names = db.appservice_users_with_colon(server_name)
    if count:
        found.append(
            _warn(
                f"Synapse's database has {count} appservice user(s) whose localpart contains ':'"
                f"{_examples(names)}. They are skipped, as all appservice users are; the appservice keeps"
                " working through its as_token."
            )
        )
    count, names = db.upper_case_users()
    if count:
        found.append(
            _warn(
                f"Synapse's database has {count} user(s) with upper-case letters in their id"
                f"{_examples(names)}. They are migrated as they are and log in with any case."
            )
        )
    count, names = db.users_differing_only_by_case()
    if count:
        found.append(
            _warn(
                f"Synapse's database has {count} group(s) of users whose ids differ only by case"
                f"{_examples(names)}. A login that does not give the exact case gets the one whose id"
                " matches exactly, or none: tell these users to log in with their exact user id."
            )
        )
    count, addresses = db.emails_shared_by_accounts()
    if count:
        found.append(
            _warn(
                f"Synapse's database has {count} email address(es) on more than one account"
                f" (compared without case){_examples(addresses)}. Each account keeps its address, but"
                " password recovery by email cannot tell the accounts apart: remove the extra ones."
            )
        )
    puppets = db.count_puppet_tokens()
    if puppets:
        found.append(
            _warn(
                f"Synapse's database has {puppets} access token(s) made by an admin to act as another"
                " user (admin API login). They are not migrated and stop working; issue new ones after"
                " the migration (mas-cli manage issue-compatibility-token)."
            )
        )
    deviceless = db.count_deviceless_tokens()
    if deviceless:
        found.append(
            _warn(
                f"Synapse's database has {deviceless} access token(s) without a device. Each becomes a"
                " session of its own without a device, which clients that need one (end-to-end"
                " encryption) cannot use."
            )
        )

    providers = db.external_id_providers()
    mapped = set(provider_mapping or ())
    if mas is not None:
        mapped.update(p.synapse_idp_id for p in mas.upstream_oauth2.providers if p.synapse_idp_id)
    for provider, users in providers:
        if provider == "oauth-delegated":
            found.append(
                _error(
                    f"Synapse's database has {users} link(s) left by an earlier delegation to an"
                    " authentication service (auth_provider 'oauth-delegated'). If they come from an"
                    f" earlier migration attempt, delete them in Synapse's database"
                    f" ({DELETE_OAUTH_DELEGATED_SQL}) and run again."
                )
            )
            continue
        configured = synapse.oidc_provider(provider)
        if configured is None:
            message = (
                f"Synapse's database links {users} user(s) to the provider {provider!r}, which Synapse's"
                " configuration does not have."
            )
            if ignore_missing_auth_providers:
                found.append(
                    _warn(message + " These links are not migrated (--ignore-missing-auth-providers).")
                )
            else:
                found.append(
                    _error(
                        message + " Add the provider's configuration with --synapse-config, or pass"
                        " --ignore-missing-auth-providers to migrate without these links."
                    )
                )
            continue
        if provider not in mapped and mas is not None:
            found.append(
                _error(
                    f"Synapse's provider {provider!r} (issuer {configured.issuer or '<unspecified>'}) links"
                    f" {users} user(s), but no entry of upstream_oauth2.providers has synapse_idp_id:"
                    f" {provider!r}: configure that provider here with that synapse_idp_id, or those users"
                    " cannot log in."
                )
            )
    for oidc in synapse.oidc_providers:
        if oidc.idp_id not in mapped:
            found.append(
                _warn(
                    f"Synapse is configured with the OpenID Connect provider {oidc.idp_id!r} (issuer"
                    f" {oidc.issuer or '<unspecified>'}). Map it by hand: an upstream_oauth2.providers"
                    f" entry with synapse_idp_id: {oidc.idp_id!r}."
                )
            )
    return found


def _pid_running(pid_file: str | None) -> int | None:
    """The pid in Synapse's ``pid_file`` if that process is alive (synctl's test, without its
    zombie check)."""
    if not pid_file:
        return None
    try:
        with open(pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def running_synapse_checks(synapse: SynapseConfig, db: SynapseFacts, *, migrating: bool) -> list[Finding]:
    """Whether Synapse looks alive: its ``pid_file`` names a live process, or other sessions
    use its PostgreSQL database. An error for a real migration (what Synapse writes meanwhile
    would be lost), a warning otherwise (``check`` and dry runs may run beside Synapse)."""
    found: list[Finding] = []
    make = _error if migrating else _warn
    pid = _pid_running(synapse.pid_file)
    if pid is not None:
        found.append(
            make(
                f"Synapse seems to be running: its pid_file {synapse.pid_file} names the live process {pid}."
                " Stop Synapse (and its workers) before migrating."
            )
        )
    sessions = db.other_sessions()
    if sessions:
        found.append(
            make(
                f"{sessions} other session(s) are connected to Synapse's database: Synapse (or one of its"
                " workers) is probably running. Stop it before migrating."
            )
        )
    return found


def exit_status(findings: list[Finding], *, warnings_count: bool) -> int:
    """10 with any error; 11 with warnings when ``warnings_count`` (``check``); else 0."""
    if any(f.level == ERROR for f in findings):
        return EXIT_ERRORS
    if warnings_count and any(f.level == WARN for f in findings):
        return EXIT_WARNINGS
    return 0


def render(findings: list[Finding]) -> list[str]:
    """The report, errors first: one ``ERROR``/``WARN`` line per finding."""
    errors = [f for f in findings if f.level == ERROR]
    warnings = [f for f in findings if f.level == WARN]
    return [f.line() for f in errors + warnings]
