# SPDX-License-Identifier: AGPL-3.0-only
"""The ``policy`` section: the policy engine's entrypoints and data.

MAS behaviour (``crates/config/src/sections/policy.rs``): MAS evaluates OPA policies
compiled to ``wasm_module`` (default ``./share/policy.wasm``) at six entrypoints
(``client_registration/violation``, ``register/violation``,
``authorization_grant/violation``, ``compat_login/violation``, ``password/violation``,
``email/violation``) and passes them ``data`` (free-form JSON, default ``{}``: allowed email
domains, client-registration rules, ...). Our policies are written in Python, so the module
path and entrypoint names are read and kept for compatibility but select nothing; ``data``
is what the Python policies consume.
"""

from __future__ import annotations

import copy
from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader

DEFAULT_WASM_MODULE = "./share/policy.wasm"

#: (key, default) of every entrypoint, in MAS's order.
ENTRYPOINTS: tuple[tuple[str, str], ...] = (
    ("client_registration_entrypoint", "client_registration/violation"),
    ("register_entrypoint", "register/violation"),
    ("authorization_grant_entrypoint", "authorization_grant/violation"),
    ("compat_login_entrypoint", "compat_login/violation"),
    ("password_entrypoint", "password/violation"),
    ("email_entrypoint", "email/violation"),
)


class PolicyConfig(Config):
    """``config.policy``: policy data (and MAS's WASM settings, kept as read)."""

    section = "policy"

    wasm_module: str
    client_registration_entrypoint: str
    register_entrypoint: str
    authorization_grant_entrypoint: str
    compat_login_entrypoint: str
    password_entrypoint: str
    email_entrypoint: str
    #: The ``data`` tree, as parsed from YAML (a deep copy, safe to keep).
    data: Any

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.wasm_module = r.str("wasm_module", DEFAULT_WASM_MODULE)
        for key, default in ENTRYPOINTS:
            setattr(self, key, r.str(key, default))
        self.data = copy.deepcopy(r.raw("data", {}))

    def to_dict(self) -> dict[str, Any]:
        """The values that differ from MAS's defaults (MAS skips the others)."""
        out: dict[str, Any] = {}
        if self.wasm_module != DEFAULT_WASM_MODULE:
            out["wasm_module"] = self.wasm_module
        for key, default in ENTRYPOINTS:
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        if self.data != {}:
            out["data"] = copy.deepcopy(self.data)
        return out

    def is_default(self) -> bool:
        return not self.to_dict()

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Data for the built-in policies, e.g. which email domains may register.
#policy:
#  data:
#    emails:
#      allowed_addresses:
#        suffixes: ["@example.com"]
#    client_registration:
#      allow_insecure_uris: false
"""
