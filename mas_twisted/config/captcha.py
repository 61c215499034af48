# SPDX-License-Identifier: AGPL-3.0-only
"""The ``captcha`` section: CAPTCHA protection of registration.

MAS behaviour (``crates/config/src/sections/captcha.rs``): ``service`` is one of
``recaptcha_v2``, ``cloudflare_turnstile`` or ``hcaptcha`` (none by default), with
``site_key`` and ``secret_key``; MAS insists on both keys for ``recaptcha_v2`` only.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader, without_none

SERVICE_RECAPTCHA_V2 = "recaptcha_v2"
SERVICE_CLOUDFLARE_TURNSTILE = "cloudflare_turnstile"
SERVICE_HCAPTCHA = "hcaptcha"
CAPTCHA_SERVICES: tuple[str, ...] = (SERVICE_RECAPTCHA_V2, SERVICE_CLOUDFLARE_TURNSTILE, SERVICE_HCAPTCHA)


class CaptchaConfig(Config):
    """``config.captcha``: which CAPTCHA service to use, if any."""

    section = "captcha"

    service: str | None
    site_key: str | None
    secret_key: str | None

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.service = r.enum("service", CAPTCHA_SERVICES)
        self.site_key = r.str("site_key")
        self.secret_key = r.str("secret_key")
        if self.service == SERVICE_RECAPTCHA_V2:
            for key in ("site_key", "secret_key"):
                if getattr(self, key) is None:
                    raise r.error(key, f"missing required value for service {self.service!r}")

    def to_dict(self) -> dict[str, Any]:
        return without_none(
            ("service", self.service), ("site_key", self.site_key), ("secret_key", self.secret_key)
        )

    def is_default(self) -> bool:
        return not self.to_dict()

    @property
    def enabled(self) -> bool:
        return self.service is not None

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Protect registration with a CAPTCHA.
#captcha:
#  service: hcaptcha   # recaptcha_v2, cloudflare_turnstile or hcaptcha
#  site_key: "..."
#  secret_key: "..."
"""
