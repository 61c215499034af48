# SPDX-License-Identifier: AGPL-3.0-only
"""The parts of Synapse's ``homeserver.yaml`` a migration needs (MAS's
``crates/syn2mas/src/synapse_reader/config/``, synapse-integration.md §8a).

Synapse reads several ``-c`` files, and every ``*.yaml`` of a directory given as one, and
merges their top-level keys in order: a later file replaces a whole top-level key of an
earlier one (``synapse/config/_base.py``, ``read_config_files``). :func:`load_synapse_config`
does the same with the ``--synapse-config`` files.

The database section is Synapse's own: ``database.name`` is ``psycopg2`` (``args`` in
libpq's keywords: ``user``, ``password``, ``dbname`` or ``database``, ``host``, ``port``) or
``sqlite3`` (``args.database`` the file). Beyond MAS, SQLite is read too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
import yaml

from mas_twisted.api.errors import ConfigError

#: Synapse's name for its legacy single-provider ``oidc_config`` (and for ``idp_id: oidc``).
LEGACY_OIDC_IDP_ID = "oidc"


@attrs.frozen
class SynapseDatabase:
    """Where Synapse's database is: ``kind`` is ``postgres`` (``dsn`` a libpq DSN or URI) or
    ``sqlite`` (``path`` the file)."""

    kind: str
    dsn: str | None = None
    path: str | None = None

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"Synapse SQLite database {self.path}"
        parts = urlsplit(self.dsn or "") if (self.dsn or "").startswith("postgres") else None
        if parts is not None:
            return f"Synapse PostgreSQL database {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        return "Synapse PostgreSQL database"

    @classmethod
    def from_uri(cls, uri: str) -> SynapseDatabase:
        """``--synapse-database-uri``: a ``postgresql://`` URI (as MAS), or, beyond MAS,
        ``sqlite:///path/to/homeserver.db``."""
        if uri.startswith(("postgres://", "postgresql://", "postgresql:", "postgres:")):
            return cls(kind="postgres", dsn=uri)
        if uri.startswith("sqlite:"):
            path = uri[len("sqlite:") :]
            if path.startswith("//"):
                path = path[2:]
            if not path:
                raise ConfigError("the SQLite URI names no file", ("--synapse-database-uri",))
            return cls(kind="sqlite", path=path)
        raise ConfigError(
            f"expected a postgresql:// or sqlite:/// URI, got {uri!r}", ("--synapse-database-uri",)
        )


@attrs.frozen
class SynapseOidcProvider:
    """One OIDC provider of Synapse, under the id Synapse stores in ``user_external_ids``."""

    idp_id: str
    issuer: str | None


def _dsn_from_args(args: Mapping[str, Any]) -> str:
    """A libpq URI from psycopg2's connection keywords (what Synapse passes to ``connect``)."""
    user = args.get("user")
    password = args.get("password")
    host = args.get("host")
    port = args.get("port")
    dbname = args.get("dbname", args.get("database"))
    auth = ""
    if user is not None:
        auth = quote(str(user), safe="")
        if password is not None:
            auth += ":" + quote(str(password), safe="")
        auth += "@"
    netloc = auth
    query = ""
    if host is not None and str(host).startswith("/"):
        query = "?host=" + quote(str(host), safe="")
    elif host is not None:
        netloc += str(host)
    if port is not None:
        netloc += f":{port}"
    path = "/" + quote(str(dbname), safe="") if dbname is not None else ""
    extra = [
        f"{k}={quote(str(v), safe='')}"
        for k, v in args.items()
        if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name")
    ]
    if extra:
        query = (query + "&" if query else "?") + "&".join(extra)
    return f"postgresql://{netloc}{path}{query}"


def _enabled(section: Any, default: bool = False) -> bool:
    if not isinstance(section, Mapping):
        return default
    return bool(section.get("enabled", default))


@attrs.frozen
class SynapseConfig:
    """What a migration reads of Synapse's configuration (synapse-integration.md §8a)."""

    server_name: str
    public_baseurl: str | None
    database: SynapseDatabase | None
    password_enabled: bool
    password_localdb_enabled: bool
    pepper: str | None
    bcrypt_rounds: int
    allow_guest_access: bool
    enable_registration: bool
    enable_registration_captcha: bool
    enable_3pid_changes: bool | None
    user_consent: bool
    login_via_existing_session: bool
    cas_enabled: bool
    saml2_enabled: bool
    jwt_enabled: bool
    oidc_providers: tuple[SynapseOidcProvider, ...]
    paths: tuple[str, ...] = ()
    #: Where a daemonized Synapse writes its process id (``pid_file``).
    pid_file: str | None = None

    def oidc_provider(self, idp_id: str) -> SynapseOidcProvider | None:
        for provider in self.oidc_providers:
            if provider.idp_id == idp_id:
                return provider
        return None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], paths: Iterable[str] = ()) -> SynapseConfig:
        server_name = raw.get("server_name")
        if not isinstance(server_name, str) or not server_name:
            raise ConfigError("Synapse's configuration has no server_name", ("server_name",))
        password = raw.get("password_config") or {}
        if not isinstance(password, Mapping):
            raise ConfigError("expected a mapping", ("password_config",))
        pepper = password.get("pepper")
        return cls(
            server_name=server_name,
            public_baseurl=raw.get("public_baseurl"),
            database=_database(raw.get("database")),
            password_enabled=bool(password.get("enabled", True)),
            password_localdb_enabled=bool(password.get("localdb_enabled", True)),
            pepper=str(pepper) if pepper not in (None, "") else None,
            bcrypt_rounds=int(raw.get("bcrypt_rounds", 12)),
            allow_guest_access=bool(raw.get("allow_guest_access", False)),
            enable_registration=bool(raw.get("enable_registration", False)),
            enable_registration_captcha=bool(raw.get("enable_registration_captcha", False)),
            enable_3pid_changes=(
                None if raw.get("enable_3pid_changes") is None else bool(raw["enable_3pid_changes"])
            ),
            user_consent=bool(raw.get("user_consent")),
            login_via_existing_session=_enabled(raw.get("login_via_existing_session")),
            cas_enabled=_enabled(raw.get("cas_config")),
            # Synapse turns SAML on when the section has an `sp_config` (or `enabled: true`).
            saml2_enabled=isinstance(raw.get("saml2_config"), Mapping)
            and bool(raw["saml2_config"].get("enabled", "sp_config" in raw["saml2_config"])),
            jwt_enabled=_enabled(raw.get("jwt_config")),
            oidc_providers=_oidc_providers(raw),
            paths=tuple(paths),
            pid_file=str(raw["pid_file"]) if raw.get("pid_file") else None,
        )


def _database(section: Any) -> SynapseDatabase | None:
    if section is None:
        # Synapse's default: SQLite in homeserver.db next to where it runs.
        return SynapseDatabase(kind="sqlite", path="homeserver.db")
    if not isinstance(section, Mapping):
        raise ConfigError("expected a mapping", ("database",))
    name = section.get("name")
    args = section.get("args") or {}
    if name == "psycopg2":
        return SynapseDatabase(kind="postgres", dsn=_dsn_from_args(args))
    if name in ("sqlite3", "sqlite"):
        path = args.get("database")
        if not path:
            raise ConfigError("the SQLite database names no file", ("database", "args", "database"))
        return SynapseDatabase(kind="sqlite", path=str(path))
    raise ConfigError(f"unknown database engine {name!r}", ("database", "name"))


def stored_idp_id(configured: Any) -> str:
    """The ``auth_provider`` Synapse stores for an OIDC provider configured with ``idp_id``:
    ``oidc`` when it is absent or ``oidc``, else ``oidc-<idp_id>``, even when the configured id
    already starts with ``oidc-`` (``_parse_oidc_config_dict`` in ``synapse/config/oidc.py``)."""
    idp_id = str(configured) if configured not in (None, "") else LEGACY_OIDC_IDP_ID
    return idp_id if idp_id == LEGACY_OIDC_IDP_ID else "oidc-" + idp_id


def oidc_provider_sections(raw: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Synapse's OIDC provider sections with their YAML paths, in Synapse's order: every
    ``oidc_providers`` entry, then the legacy ``oidc_config`` when it is ``enabled``."""
    found: list[tuple[tuple[str | int, ...], Mapping[str, Any]]] = []
    for i, provider in enumerate(raw.get("oidc_providers") or ()):
        if not isinstance(provider, Mapping):
            raise ConfigError("expected a mapping", ("oidc_providers", i))
        if not provider.get("enabled", True):
            continue
        found.append((("oidc_providers", i), provider))
    legacy = raw.get("oidc_config")
    if isinstance(legacy, Mapping) and legacy.get("enabled", False):
        found.append((("oidc_config",), legacy))
    return found


def _oidc_providers(raw: Mapping[str, Any]) -> tuple[SynapseOidcProvider, ...]:
    """Synapse's providers under the ids it stores (:func:`stored_idp_id`)."""
    return tuple(
        SynapseOidcProvider(idp_id=stored_idp_id(section.get("idp_id")), issuer=section.get("issuer"))
        for _, section in oidc_provider_sections(raw)
    )


def _config_files(paths: Iterable[str]) -> list[Path]:
    """The files, with a directory standing for its ``*.yaml`` files in name order (Synapse's
    ``find_config_files``)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix == ".yaml" and p.is_file()))
        else:
            files.append(path)
    return files


def load_synapse_config(paths: Iterable[str]) -> SynapseConfig:
    """Read and merge Synapse's configuration files.

    Raises:
        ConfigError: no file given, a file missing or unreadable, or a value of the wrong shape;
            the message names the file or the key.
    """
    merged, _ = read_synapse_config_files(paths)
    return SynapseConfig.from_dict(merged, _file_names(paths))


def _file_names(paths: Iterable[str]) -> list[str]:
    return [str(p) for p in _config_files(paths)]


def read_synapse_config_files(paths: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Synapse's files merged as Synapse merges them, and for each top-level key the file whose
    value was kept (to tell an operator where a setting is).

    Raises:
        ConfigError: as :func:`load_synapse_config`.
    """
    files = _config_files(paths)
    if not files:
        raise ConfigError("give Synapse's configuration with --synapse-config homeserver.yaml")
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"cannot read Synapse's configuration {path}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"Synapse's configuration {path} is not valid YAML: {e}") from None
        if data is None:
            continue
        if not isinstance(data, Mapping):
            raise ConfigError(f"Synapse's configuration {path} is not a mapping")
        merged.update(data)
        origins.update((str(key), str(path)) for key in data)
    return merged, origins
