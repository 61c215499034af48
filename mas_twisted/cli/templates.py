# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli templates``: check and export the page templates (MAS's
``crates/cli/src/commands/templates.rs``).

- ``templates check [--out-dir DIR] [--stabilise]`` renders every template (the pages, and
  the subject, text and HTML of each email) with every sample context, in strict mode (an
  undefined name is an error), with the ``templates``,
  ``branding``, ``matrix``, ``passwords`` and ``account`` sections of the configuration and
  ``https://example.com/`` as the public base, as MAS does; the links to optional pages are
  those the ``http`` section's listeners would serve. With ``--out-dir`` the renders
  are written to ``DIR`` (which must not exist or be empty) as
  ``<template path with / as _>-index=<n>.<ext>``; ``--stabilise`` fixes the clock and the
  random samples so that renders can be compared between versions. A template error prints
  one line and exits with status 1.
- ``templates save PATH [--overwrite]`` copies the shipped templates to ``PATH``, to start a
  customised set (then point ``templates.path`` at it). Existing files are left alone, and
  the command refuses, unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mas_twisted.api.errors import MasError

logger = logging.getLogger(__name__)

#: The fixed time of ``--stabilise`` renders: 2015-11-06T15:33:12Z, as MAS.
STABLE_NOW_MS = 1_446_823_992_000
#: The public base templates are checked with.
CHECK_PUBLIC_BASE = "https://example.com/"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "templates",
        parents=[common],
        help="Templates-related commands",
        description="Check the page templates, or copy the shipped ones to customise them.",
    )
    commands = parser.add_subparsers(dest="templates_command", metavar="COMMAND")
    commands.required = True

    check = commands.add_parser(
        "check", parents=[common], help="Check that the templates specified in the config are valid"
    )
    check.add_argument(
        "--out-dir", help="Write the renders to this directory (which must not exist or be empty)"
    )
    check.add_argument(
        "--stabilise",
        action="store_true",
        help="Use a fixed time and fixed sample data, for reproducible renders",
    )
    check.set_defaults(func=run_check)

    save = commands.add_parser("save", parents=[common], help="Copy the shipped templates to a directory")
    save.add_argument("path", help="Where to copy the templates")
    save.add_argument("--overwrite", action="store_true", help="Replace files that already exist there")
    save.set_defaults(func=run_save)


def load_site_config(config_files: list[str] | None) -> Any:
    """The sections the templates read, without requiring the rest of the file."""
    from mas_twisted.config._base import Reader
    from mas_twisted.config.account import AccountConfig
    from mas_twisted.config.branding import BrandingConfig
    from mas_twisted.config.http import HttpConfig
    from mas_twisted.config.loader import config_paths, load_raw_config
    from mas_twisted.config.matrix import MatrixConfig
    from mas_twisted.config.passwords import PasswordsConfig
    from mas_twisted.config.templates import TemplatesConfig

    classes = (TemplatesConfig, BrandingConfig, MatrixConfig, PasswordsConfig, AccountConfig, HttpConfig)
    paths = config_paths(config_files, os.environ)
    raw = load_raw_config(paths, os.environ, [cls.section for cls in classes])
    sections: dict[str, Any] = {}
    for cls in classes:
        section = cls()
        section.read_config(Reader(raw.get(cls.section), (cls.section,)), raw)
        sections[cls.section] = section
    return SimpleNamespace(**sections)


def run_check(args: argparse.Namespace) -> int:
    import jinja2

    from mas_twisted.email.templates import EmailTemplates
    from mas_twisted.rest.registry import listener_routes
    from mas_twisted.templating import Templates
    from mas_twisted.urls import UrlBuilder

    config = load_site_config(args.config_files)
    url_builder = UrlBuilder(SimpleNamespace(public_base=CHECK_PUBLIC_BASE, issuer=CHECK_PUBLIC_BASE))
    templates = Templates.from_config(
        config, url_builder, strict=True, routes=listener_routes(config.http.listeners)
    )
    now_ms = STABLE_NOW_MS if args.stabilise else int(time.time() * 1000)
    rng = random.Random(42) if args.stabilise else random.Random()
    try:
        renders = templates.check_render(now_ms, rng)
        for (name, index), rendered in EmailTemplates(config).check_render().items():
            for ext, text in (("subject", rendered.subject), ("txt", rendered.text), ("html", rendered.html)):
                renders[(f"emails/{name}.{ext}", f"index={index}")] = text
    except jinja2.TemplateSyntaxError as e:
        raise MasError(f"template error: {e.name or e.filename}:{e.lineno}: {e.message}") from None
    except Exception as e:  # an undefined name in strict mode, or a failing expression
        raise MasError(f"template error: {type(e).__name__}: {e}") from None
    logger.info("Rendered %d template samples from %s", len(renders), ", ".join(templates.search_path))

    if args.out_dir:
        out = Path(args.out_dir)
        if out.exists():
            if not out.is_dir() or any(out.iterdir()):
                raise MasError(f"Render directory {out} is not empty, refusing to write.")
        else:
            out.mkdir(parents=True)
        for (template, sample), html in renders.items():
            base, _, ext = template.rpartition(".")
            if not base:
                base, ext = template, "txt"
            (out / f"{base.replace('/', '_')}-{sample}.{ext}").write_text(html, encoding="utf-8")
        logger.info("Wrote the renders to %s", out)
    return 0


def run_save(args: argparse.Namespace) -> int:
    from mas_twisted.templating import builtin_templates_dir

    source = Path(builtin_templates_dir())
    target = Path(args.path)
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    existing = [f for f in files if (target / f).exists()]
    if existing and not args.overwrite:
        raise MasError(
            f"{len(existing)} file(s) already exist in {target} (first: {existing[0]}); use --overwrite to replace them"
        )
    for relative in files:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, destination)
    logger.info("Saved %d template files to %s", len(files), target)
    return 0
