# SPDX-License-Identifier: AGPL-3.0-only
"""The ``passwords`` section: whether password login is on, and how passwords are hashed.

MAS behaviour (``crates/config/src/sections/passwords.rs``, ``crates/cli/src/util.rs``):
``enabled`` (default true); ``schemes``, a list of ``{version, algorithm, cost, secret |
secret_file, unicode_normalization}`` (default one argon2id scheme, version 1), where the
highest version hashes new passwords and older ones only verify (and are upgraded on login);
``minimum_complexity``, the lowest accepted zxcvbn score (default 3). When enabled, at least
one scheme is required and versions must be distinct. A pepper read from ``secret_file`` is
used byte for byte (not trimmed). bcrypt's cost defaults to 12.
"""

from __future__ import annotations

from typing import Any

import attrs

from mas_twisted.api.errors import ConfigError
from mas_twisted.config._base import Config, JsonDict, Reader

ALGORITHM_ARGON2ID = "argon2id"
ALGORITHM_BCRYPT = "bcrypt"
ALGORITHM_PBKDF2 = "pbkdf2"
ALGORITHMS: tuple[str, ...] = (ALGORITHM_BCRYPT, ALGORITHM_ARGON2ID, ALGORITHM_PBKDF2)

DEFAULT_BCRYPT_COST = 12
DEFAULT_MINIMUM_COMPLEXITY = 3
# The bcrypt library's own bounds on the cost (log2 of the rounds).
_BCRYPT_MIN_COST = 4
_BCRYPT_MAX_COST = 31


@attrs.frozen
class PasswordScheme:
    """One entry of ``passwords.schemes``."""

    version: int
    algorithm: str
    #: The configured bcrypt cost, or None for the default (see :attr:`bcrypt_cost`).
    cost: int | None = None
    #: The pepper, as bytes (from ``secret`` or ``secret_file``), or None.
    secret: bytes | None = None
    #: Apply NFKC normalization before hashing (what Synapse does; for imported hashes).
    unicode_normalization: bool = False
    #: The file the pepper was read from, if it was (``config dump`` prints this path).
    secret_file: str | None = attrs.field(default=None, eq=False)

    @property
    def bcrypt_cost(self) -> int:
        return DEFAULT_BCRYPT_COST if self.cost is None else self.cost

    @classmethod
    def parse(cls, r: Reader, *, load_secret: bool = True) -> PasswordScheme:
        version = r.int("version", required=True, min=0, max=65535)
        algorithm = r.enum("algorithm", ALGORITHMS, required=True)
        cost = r.int("cost", None, min=0, max=2**32 - 1)
        if (
            algorithm == ALGORITHM_BCRYPT
            and cost is not None
            and not _BCRYPT_MIN_COST <= cost <= _BCRYPT_MAX_COST
        ):
            raise r.error(
                "cost", f"bcrypt cost must be between {_BCRYPT_MIN_COST} and {_BCRYPT_MAX_COST}, got {cost}"
            )
        secret_file = r.str("secret_file")
        if load_secret:
            secret = r.secret("secret", binary=True)
        else:
            # A disabled section is never used, so its pepper file is not read (as in MAS).
            inline = r.str("secret")
            secret = inline.encode() if inline is not None else None
        return cls(
            version=version,
            algorithm=algorithm,
            cost=cost,
            secret=secret,
            unicode_normalization=r.bool("unicode_normalization", False),
            secret_file=secret_file,
        )

    def to_dict(self) -> dict[str, Any]:
        """As MAS serialises a ``HashingScheme``."""
        out: dict[str, Any] = {"version": self.version, "algorithm": self.algorithm}
        if self.unicode_normalization:
            out["unicode_normalization"] = True
        if self.cost is not None:
            out["cost"] = self.cost
        if self.secret_file is not None:
            out["secret_file"] = self.secret_file
        elif self.secret is not None:
            out["secret"] = self.secret.decode("utf-8", errors="replace")
        return out


DEFAULT_SCHEMES: tuple[PasswordScheme, ...] = (PasswordScheme(version=1, algorithm=ALGORITHM_ARGON2ID),)


class PasswordsConfig(Config):
    """``config.passwords``: password login switch, hashing schemes and complexity floor."""

    section = "passwords"

    enabled: bool
    #: The schemes in configuration order; see :attr:`current_scheme`.
    schemes: list[PasswordScheme]
    minimum_complexity: int

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.enabled = r.bool("enabled", True)
        self.minimum_complexity = r.int("minimum_complexity", DEFAULT_MINIMUM_COMPLEXITY, min=0, max=255)
        if r.data.get("schemes") is None:
            self.schemes = list(DEFAULT_SCHEMES)
        else:
            self.schemes = [
                PasswordScheme.parse(sr, load_secret=self.enabled) for sr in r.children("schemes")
            ]
        if not self.enabled:
            return
        if not self.schemes:
            raise r.error(
                "schemes", "at least one password scheme is required when passwords are enabled, got []"
            )
        seen: dict[int, int] = {}
        for i, scheme in enumerate(self.schemes):
            if scheme.version in seen:
                raise ConfigError(
                    f"version {scheme.version} is already used by schemes[{seen[scheme.version]}]",
                    r.at("schemes") + (i, "version"),
                )
            seen[scheme.version] = i

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "schemes": [scheme.to_dict() for scheme in self.schemes],
            "minimum_complexity": self.minimum_complexity,
        }

    @property
    def current_scheme(self) -> PasswordScheme | None:
        """The scheme new passwords are hashed with: the highest version (None only when disabled)."""
        return max(self.schemes, key=lambda s: s.version, default=None)

    def schemes_by_version(self) -> list[PasswordScheme]:
        """Every scheme, highest version first (the order MAS tries them in)."""
        return sorted(self.schemes, key=lambda s: s.version, reverse=True)

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Password login.
passwords:
  # Set to false to allow logging in through upstream providers only.
  enabled: true
  # How passwords are hashed. The scheme with the highest version hashes new passwords;
  # the others are only used to check existing hashes, which are then upgraded.
  # Each scheme may have a pepper (`secret` or `secret_file`); bcrypt takes a `cost`.
  schemes:
    - version: 1
      algorithm: argon2id   # argon2id, bcrypt or pbkdf2
  # The lowest accepted password strength, as a zxcvbn score from 0 to 4.
  minimum_complexity: 3
"""
