# SPDX-License-Identifier: AGPL-3.0-only
"""The ``database`` section: where the service keeps its state.

MAS (``crates/config/src/sections/database.rs``) accepts either a connection ``uri`` or the
separate libpq keys (``host``, ``port``, ``socket``, ``username``, ``password`` /
``password_file``, ``database``), never both, plus the TLS options (``ssl_mode``,
``ssl_ca``/``ssl_ca_file``, ``ssl_certificate``/``ssl_certificate_file``,
``ssl_key``/``ssl_key_file``, where a key and a certificate come together) and the pool
sizing (``max_connections`` 10, ``min_connections`` 0, ``connect_timeout`` 30 s,
``idle_timeout`` 600 s, ``max_lifetime`` 1800 s). Without the section MAS connects to
``postgresql://``, the local PostgreSQL socket with libpq's defaults; that default is kept
so that an operator's config loads unchanged.

``password_file`` is read (and trimmed, as MAS does) while the configuration loads, so a
missing or unreadable file is a configuration error naming ``database.password_file``;
``config dump`` still prints the path.

Our addition: ``uri: sqlite:///relative/path.db`` (three slashes, relative to the working
directory) or ``sqlite:////absolute/path.db`` (four) selects the embedded SQLite engine,
which is what ``mas-cli config generate`` writes; with it, ``sqlite_synchronous`` (``full``,
the default, or ``normal``) chooses whether each commit is flushed to disk before it is
answered (see :mod:`mas_twisted.storage.engines.sqlite`). MAS has neither: a MAS
configuration loads unchanged, and the key is refused with a PostgreSQL ``uri``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from mas_twisted.config._base import Config, JsonDict, Reader, describe, without_none

SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

DEFAULT_URI = "postgresql://"

POSTGRES_SCHEMES: tuple[str, ...] = ("postgresql", "postgres")
SQLITE_SCHEME = "sqlite"
#: ``database.sqlite_synchronous``: SQLite's ``PRAGMA synchronous`` in WAL mode.
SQLITE_SYNCHRONOUS: tuple[str, ...] = ("full", "normal")
DEFAULT_SQLITE_SYNCHRONOUS = "full"

#: The keys MAS refuses to combine with ``uri``.
_SPLIT_KEYS: tuple[str, ...] = ("host", "port", "socket", "username", "password", "password_file", "database")


def sqlite_path_from_uri(uri: str) -> str:
    """The file a ``sqlite:`` URI names: ``sqlite:///mas.db`` → ``mas.db``, ``sqlite:////var/mas.db`` → ``/var/mas.db``.

    ``sqlite:///:memory:`` gives ``:memory:`` (a private in-memory database, for tests).

    Raises:
        ValueError: the URI names no file.
    """
    rest = uri[len(SQLITE_SCHEME) + 1 :]
    if not rest.startswith("//"):
        raise ValueError("expected sqlite:///relative/path.db or sqlite:////absolute/path.db")
    rest = rest[2:]
    # Anything between "//" and the next "/" would be a host, which SQLite does not have.
    if not rest.startswith("/"):
        raise ValueError("a sqlite URI has no host part; use sqlite:///relative/path.db")
    path = unquote(rest[1:].split("?", 1)[0])
    if not path:
        raise ValueError("the sqlite URI names no file")
    return path


class DatabaseConfig(Config):
    """``database``: the connection and pool settings."""

    section = "database"

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        uri = r.str("uri", allow_empty=False)
        self.host: str | None = r.str("host", allow_empty=False)
        self.port: int | None = r.int("port", None, min=1, max=65535)
        self.socket: str | None = r.str("socket", allow_empty=False)
        self.username: str | None = r.str("username")
        if r.has("password") and r.has("password_file"):
            raise r.error("password", "password must not be specified if password_file is specified")
        self.password_file: str | None = r.str("password_file", allow_empty=False)
        #: The password given inline, or read (and trimmed, as MAS does) from ``password_file``.
        self.password: str | None = r.secret("password", strip=True)
        self.database: str | None = r.str("database", allow_empty=False)

        split = [key for key in _SPLIT_KEYS if r.has(key)]
        if uri is not None and split:
            raise r.error(
                "uri",
                "uri must not be specified if host, port, socket, username, password, password_file, "
                f"or database are specified (found {', '.join(split)})",
            )
        if uri is None and not split:
            # MAS then connects with libpq's defaults, which is what ``postgresql://`` means.
            uri = DEFAULT_URI
        self.uri: str | None = uri

        self.ssl_mode: str | None = r.enum("ssl_mode", SSL_MODES)
        self.ssl_ca: str | None = self._pem_pair(r, "ssl_ca")
        self.ssl_ca_file: str | None = r.str("ssl_ca_file", allow_empty=False)
        self.ssl_certificate: str | None = self._pem_pair(r, "ssl_certificate")
        self.ssl_certificate_file: str | None = r.str("ssl_certificate_file", allow_empty=False)
        self.ssl_key: str | None = self._pem_pair(r, "ssl_key")
        self.ssl_key_file: str | None = r.str("ssl_key_file", allow_empty=False)
        has_key = self.ssl_key is not None or self.ssl_key_file is not None
        has_cert = self.ssl_certificate is not None or self.ssl_certificate_file is not None
        if has_key != has_cert:
            raise r.error(
                "ssl_key" if has_key else "ssl_certificate",
                "both a ssl_certificate and a ssl_key must be set at the same time or none of them",
            )

        self.max_connections: int = r.int("max_connections", 10, min=1, max=2**32 - 1)
        self.min_connections: int = r.int("min_connections", 0, min=0, max=2**32 - 1)
        self.connect_timeout: int = r.int("connect_timeout", 30, min=0)
        self.idle_timeout: int | None = self._optional_seconds(r, "idle_timeout", 600)
        self.max_lifetime: int | None = self._optional_seconds(r, "max_lifetime", 1800)

        # Which engine, and what it needs.
        self.engine_name: str = "postgres"
        self.sqlite_path: str | None = None
        self.sqlite_synchronous: str = r.enum(
            "sqlite_synchronous", SQLITE_SYNCHRONOUS, DEFAULT_SQLITE_SYNCHRONOUS
        )
        if self.uri is not None:
            scheme = urlsplit(self.uri).scheme.lower() if ":" in self.uri else ""
            if scheme == SQLITE_SCHEME:
                try:
                    self.sqlite_path = sqlite_path_from_uri(self.uri)
                except ValueError as e:
                    raise r.error("uri", f"{e}, got {describe(self.uri)}")
                self.engine_name = "sqlite"
                tls = [
                    k
                    for k in (
                        "ssl_mode",
                        "ssl_ca",
                        "ssl_ca_file",
                        "ssl_certificate",
                        "ssl_certificate_file",
                        "ssl_key",
                        "ssl_key_file",
                    )
                    if r.has(k)
                ]
                if tls:
                    raise r.error(
                        tls[0], f"TLS options only apply to PostgreSQL, but uri is {describe(self.uri)}"
                    )
            elif scheme not in POSTGRES_SCHEMES:
                raise r.error(
                    "uri",
                    f"expected a postgresql://, postgres:// or sqlite:// URI, got {describe(self.uri)}",
                )
        if self.engine_name != "sqlite" and r.has("sqlite_synchronous"):
            raise r.error("sqlite_synchronous", "only applies to SQLite (a sqlite:// uri)")

    @staticmethod
    def _pem_pair(r: Reader, key: str) -> str | None:
        if r.has(key) and r.has(key + "_file"):
            raise r.error(key, f"{key} must not be specified if {key}_file is specified")
        return r.str(key, allow_empty=False)

    @staticmethod
    def _optional_seconds(r: Reader, key: str, default: int) -> int | None:
        # An explicit null disables the limit (MAS: ``Option<Duration>``); absent means the default.
        if key in r.data and r.data[key] is None:
            return None
        return r.int(key, default, min=0)

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises it: unset keys left out, the password file's path rather than its content."""
        return without_none(
            ("uri", self.uri),
            ("host", self.host),
            ("port", self.port),
            ("socket", self.socket),
            ("username", self.username),
            ("password", self.password if self.password_file is None else None),
            ("password_file", self.password_file),
            ("database", self.database),
            ("ssl_mode", self.ssl_mode),
            ("ssl_ca", self.ssl_ca),
            ("ssl_ca_file", self.ssl_ca_file),
            ("ssl_certificate", self.ssl_certificate),
            ("ssl_certificate_file", self.ssl_certificate_file),
            ("ssl_key", self.ssl_key),
            ("ssl_key_file", self.ssl_key_file),
            ("max_connections", self.max_connections),
            ("min_connections", self.min_connections),
            ("connect_timeout", self.connect_timeout),
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            (
                "sqlite_synchronous",
                self.sqlite_synchronous if self.sqlite_synchronous != DEFAULT_SQLITE_SYNCHRONOUS else None,
            ),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine_name == "sqlite"

    def describe_target(self) -> str:
        """Where the database is, for log lines, without any password."""
        if self.is_sqlite:
            return f"SQLite database {self.sqlite_path}"
        if self.uri is not None:
            parts = urlsplit(self.uri)
            host = parts.hostname or "local socket"
            name = parts.path.lstrip("/") or "(default database)"
            return f"PostgreSQL database {name} on {host}"
        host = self.socket or self.host or "local socket"
        return f"PostgreSQL database {self.database or '(default database)'} on {host}"

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return (
            "database:\n"
            "  # The embedded SQLite database, relative to the working directory. For PostgreSQL,\n"
            "  # use e.g. uri: postgresql://mas:password@localhost/mas (or host/port/username/...).\n"
            "  uri: sqlite:///mas.db\n"
        )
