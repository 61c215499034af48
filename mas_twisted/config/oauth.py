# SPDX-License-Identifier: AGPL-3.0-only
"""The ``oauth`` section: protocol switches for the OAuth 2.0 server.

MAS behaviour (``crates/config/src/sections/oauth.rs``): ``device_code_grant_enabled``
(default true) turns the RFC 8628 device authorization grant on or off everywhere (endpoint,
discovery metadata, client registration); ``device_code_user_code_auto_fill_enabled``
(default false) adds ``verification_uri_complete`` to device authorization responses and
lets ``/link?code=`` fill the code in.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader


class OAuthConfig(Config):
    """``config.oauth``: optional OAuth 2.0 features."""

    section = "oauth"

    device_code_grant_enabled: bool
    device_code_user_code_auto_fill_enabled: bool

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.device_code_grant_enabled = r.bool("device_code_grant_enabled", True)
        self.device_code_user_code_auto_fill_enabled = r.bool(
            "device_code_user_code_auto_fill_enabled", False
        )

    def to_dict(self) -> dict[str, bool]:
        """The switches that differ from MAS's defaults (MAS skips the others)."""
        out: dict[str, bool] = {}
        if not self.device_code_grant_enabled:
            out["device_code_grant_enabled"] = False
        if self.device_code_user_code_auto_fill_enabled:
            out["device_code_user_code_auto_fill_enabled"] = True
        return out

    def is_default(self) -> bool:
        return not self.to_dict()

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# OAuth 2.0 features (the values shown are the defaults).
#oauth:
#  # The device authorization grant (RFC 8628), used by TVs and command-line tools.
#  device_code_grant_enabled: true
#  # Offer a link that fills in the device code on the /link page.
#  device_code_user_code_auto_fill_enabled: false
"""
