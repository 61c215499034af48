# SPDX-License-Identifier: AGPL-3.0-only
"""The ``branding`` section: names and legal links shown on pages and in emails.

MAS behaviour (``crates/config/src/sections/branding.rs``): ``service_name`` (defaults to the
server's address when unset), ``policy_uri`` and ``tos_uri`` (URLs, also advertised as
``op_policy_uri``/``op_tos_uri`` in discovery; a ``tos_uri`` adds the terms checkbox to
registration) and ``imprint`` (free text for the footer).
"""

from __future__ import annotations

from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader, without_none
from mas_twisted.config.http import normalize_url


class BrandingConfig(Config):
    """``config.branding``: every attribute is None unless configured."""

    section = "branding"

    service_name: str | None
    policy_uri: str | None
    tos_uri: str | None
    imprint: str | None

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.service_name = r.str("service_name")
        self.policy_uri = r.url("policy_uri")
        self.tos_uri = r.url("tos_uri")
        self.imprint = r.str("imprint")

    def to_dict(self) -> dict[str, Any]:
        return without_none(
            ("service_name", self.service_name),
            ("policy_uri", normalize_url(self.policy_uri) if self.policy_uri is not None else None),
            ("tos_uri", normalize_url(self.tos_uri) if self.tos_uri is not None else None),
            ("imprint", self.imprint),
        )

    def is_default(self) -> bool:
        return not self.to_dict()

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# How the service presents itself.
#branding:
#  service_name: "Example Accounts"
#  policy_uri: https://example.com/privacy
#  tos_uri: https://example.com/terms   # registration then asks users to accept these
#  imprint: "Example Ltd, 1 Example Street"
"""
