# SPDX-License-Identifier: AGPL-3.0-only
"""The ``matrix`` section: which homeserver this service works for, and how to reach it.

MAS behaviour (``crates/config/src/sections/matrix.rs``): the section is required; ``kind``
picks the homeserver API flavour, ``homeserver`` is the server name (default
``localhost:8008``), ``endpoint`` the client-API base URL (default
``http://localhost:8008/``), and the shared secret is given inline as ``secret`` or in a file
named by ``secret_file`` (exactly one of the two; a file's content is trimmed, as Synapse
does with ``secret_path``).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader
from mas_twisted.config.http import normalize_url

#: Synapse 1.135 or newer, using the ``/_synapse/mas`` API (the default).
KIND_SYNAPSE = "synapse"
#: The same API as ``synapse``, named explicitly.
KIND_SYNAPSE_MODERN = "synapse_modern"
#: Older Synapse, driven through the admin API.
KIND_SYNAPSE_LEGACY = "synapse_legacy"
#: The modern API, but nothing is ever written to the homeserver (for trial rollouts).
KIND_SYNAPSE_READ_ONLY = "synapse_read_only"

HOMESERVER_KINDS: tuple[str, ...] = (
    KIND_SYNAPSE,
    KIND_SYNAPSE_MODERN,
    KIND_SYNAPSE_LEGACY,
    KIND_SYNAPSE_READ_ONLY,
)

DEFAULT_HOMESERVER = "localhost:8008"
DEFAULT_ENDPOINT = "http://localhost:8008/"


class MatrixConfig(Config):
    """``config.matrix``: the homeserver's name, API kind, URL and shared secret."""

    section = "matrix"
    required = True

    kind: str
    homeserver: str
    secret: str
    secret_file: str | None
    endpoint: str

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.kind = r.enum("kind", HOMESERVER_KINDS, KIND_SYNAPSE)
        self.homeserver = r.str("homeserver", DEFAULT_HOMESERVER)
        self.secret_file = r.str("secret_file")
        self.secret = r.secret("secret", required=True, strip=True)
        self.endpoint = r.url("endpoint", DEFAULT_ENDPOINT)

    def to_dict(self) -> dict[str, Any]:
        """MAS prints ``secret_file`` when the secret came from a file, else ``secret``."""
        out: dict[str, Any] = {"kind": self.kind, "homeserver": self.homeserver}
        if self.secret_file is not None:
            out["secret_file"] = self.secret_file
        else:
            out["secret"] = self.secret
        out["endpoint"] = normalize_url(self.endpoint)
        return out

    @property
    def uses_legacy_api(self) -> bool:
        """Whether the homeserver is driven through Synapse's admin API rather than ``/_synapse/mas``."""
        return self.kind == KIND_SYNAPSE_LEGACY

    @property
    def read_only(self) -> bool:
        """Whether writes to the homeserver must be skipped."""
        return self.kind == KIND_SYNAPSE_READ_ONLY

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        """The section with ``secret`` (a new random one unless given)."""
        secret = kwargs.get("secret") or "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(32)
        )
        return f"""\
# The homeserver this service authenticates users for.
matrix:
  # The homeserver's server name: the part after the colon in user IDs.
  homeserver: {DEFAULT_HOMESERVER}
  # Where this service reaches the homeserver's client API.
  endpoint: "{DEFAULT_ENDPOINT}"
  # Which homeserver API to use: synapse (Synapse 1.135 and later), synapse_legacy
  # (older Synapse, through its admin API) or synapse_read_only (never writes).
  kind: synapse
  # The secret shared with Synapse's `matrix_authentication_service.secret`. It can
  # live in a file instead, named by `secret_file` (surrounding whitespace is ignored).
  secret: "{secret}"
"""
