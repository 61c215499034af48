# SPDX-License-Identifier: AGPL-3.0-only
"""The whole configuration: one attribute per MAS section (``config.http``, ``config.secrets``…)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from mas_twisted.api.errors import ConfigError
from mas_twisted.config._base import Config, Reader
from mas_twisted.config.account import AccountConfig
from mas_twisted.config.branding import BrandingConfig
from mas_twisted.config.captcha import CaptchaConfig
from mas_twisted.config.clients import ClientsConfig
from mas_twisted.config.database import DatabaseConfig
from mas_twisted.config.email import EmailConfig
from mas_twisted.config.experimental import ExperimentalConfig
from mas_twisted.config.http import HttpConfig
from mas_twisted.config.loader import config_paths, load_raw_config
from mas_twisted.config.matrix import MatrixConfig
from mas_twisted.config.oauth import OAuthConfig
from mas_twisted.config.passwords import PasswordsConfig
from mas_twisted.config.policy import PolicyConfig
from mas_twisted.config.rate_limiting import RateLimitingConfig
from mas_twisted.config.secrets import SecretsConfig
from mas_twisted.config.telemetry import TelemetryConfig
from mas_twisted.config.templates import TemplatesConfig
from mas_twisted.config.upstream_oauth2 import UpstreamOAuth2Config

#: In the order ``mas-cli config generate`` writes them (MAS's ``RootConfig`` field order).
SECTIONS: tuple[type[Config], ...] = (
    ClientsConfig,
    HttpConfig,
    DatabaseConfig,
    TelemetryConfig,
    TemplatesConfig,
    EmailConfig,
    SecretsConfig,
    PasswordsConfig,
    MatrixConfig,
    PolicyConfig,
    RateLimitingConfig,
    UpstreamOAuth2Config,
    BrandingConfig,
    CaptchaConfig,
    AccountConfig,
    OAuthConfig,
    ExperimentalConfig,
)

SECTION_NAMES: tuple[str, ...] = tuple(cls.section for cls in SECTIONS)


class RootConfig:
    """Every section of a MAS ``config.yaml``, parsed and validated."""

    clients: ClientsConfig
    http: HttpConfig
    database: DatabaseConfig
    telemetry: TelemetryConfig
    templates: TemplatesConfig
    email: EmailConfig
    secrets: SecretsConfig
    passwords: PasswordsConfig
    matrix: MatrixConfig
    policy: PolicyConfig
    rate_limiting: RateLimitingConfig
    upstream_oauth2: UpstreamOAuth2Config
    branding: BrandingConfig
    captcha: CaptchaConfig
    account: AccountConfig
    oauth: OAuthConfig
    experimental: ExperimentalConfig

    def __init__(self, raw: Mapping[str, Any], *, paths: Sequence[str] = ()):
        self.raw: dict[str, Any] = dict(raw)
        self.paths = tuple(paths)
        for cls in SECTIONS:
            value = self.raw.get(cls.section)
            if value is None and cls.required:
                raise ConfigError("missing required section", (cls.section,))
            section = cls(self)
            # A list section (``clients``) reads its list from ``raw``; its Reader is empty.
            reader_value = None if cls.list_section else value
            section.read_config(Reader(reader_value, (cls.section,)), self.raw)
            setattr(self, cls.section, section)
        for cls in SECTIONS:
            getattr(self, cls.section).validate_config(self)

    @classmethod
    def load(
        cls, cli_paths: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> RootConfig:
        """Read the files named by ``-c`` (else ``MAS_CONFIG``, else ``./config.yaml``)."""
        environ = os.environ if environ is None else environ
        paths = config_paths(cli_paths, environ)
        raw = load_raw_config(paths, environ, SECTION_NAMES)
        return cls(raw, paths=paths)

    def dump_tree(self) -> dict[str, Any]:
        """The parsed configuration as MAS's ``config dump`` prints it.

        MAS serialises its parsed ``RootConfig``: every section in its field order, with its
        defaults, except the sections it skips while they hold only defaults (``clients``,
        ``telemetry``, ``templates``, ``policy``, ``rate_limiting``, ``upstream_oauth2``,
        ``branding``, ``captcha``, ``account``, ``oauth``, ``experimental``). Values read
        from files are printed as their ``*_file`` paths; inline secrets as written.
        """
        tree: dict[str, Any] = {}
        for cls in SECTIONS:
            section = getattr(self, cls.section)
            if section.is_default():
                continue
            tree[cls.section] = section.to_dict()
        return tree
