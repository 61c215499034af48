# SPDX-License-Identifier: AGPL-3.0-only
"""The ``templates`` section: where page and email templates, translations and the assets
manifest are read from.

MAS behaviour (``crates/config/src/sections/templates.rs``): ``path``, ``assets_manifest`` and
``translations_path``, each defaulting to the copy shipped with the build. Ours ship in the
project's data folders (:func:`mas_twisted.util.paths.data_dir`), so the defaults point there:
``templates/``, ``res/manifest.json`` and ``translations/``. Relative paths given in the file
are relative to the working directory, as in MAS.
"""

from __future__ import annotations

from typing import Any

from mas_twisted.config._base import Config, JsonDict, Reader
from mas_twisted.util.paths import data_dir


def default_templates_path() -> str:
    return str(data_dir("templates"))


def default_assets_manifest() -> str:
    return str(data_dir("res") / "manifest.json")


def default_translations_path() -> str:
    return str(data_dir("translations"))


class TemplatesConfig(Config):
    """``config.templates``: filesystem locations of the presentation files."""

    section = "templates"

    path: str
    assets_manifest: str
    translations_path: str
    #: Whether ``path`` was left to the shipped templates.
    path_is_default: bool

    def read_config(self, r: Reader, raw: JsonDict) -> None:
        self.path_is_default = r.data.get("path") is None
        self.path = r.str("path", None) or default_templates_path()
        self.assets_manifest = r.str("assets_manifest", None) or default_assets_manifest()
        self.translations_path = r.str("translations_path", None) or default_translations_path()

    def to_dict(self) -> dict[str, str]:
        """The paths that differ from the defaults (MAS skips the others)."""
        out: dict[str, str] = {}
        for key, default in (
            ("path", default_templates_path),
            ("assets_manifest", default_assets_manifest),
            ("translations_path", default_translations_path),
        ):
            if getattr(self, key) != default():
                out[key] = getattr(self, key)
        return out

    def is_default(self) -> bool:
        return not self.to_dict()

    @classmethod
    def generate_config_section(cls, **kwargs: Any) -> str:
        return """\
# Override the shipped templates (defaults: the templates/, res/manifest.json and
# translations/ folders installed with mas-twisted).
#templates:
#  path: /etc/mas/templates/
#  assets_manifest: /etc/mas/manifest.json
#  translations_path: /etc/mas/translations/
"""
