# SPDX-License-Identifier: AGPL-3.0-only
"""The email templates: each kind of message has a subject, a text and an HTML template in
``templates/emails/`` (``<kind>.subject``, ``<kind>.txt``, ``<kind>.html``, the file names MAS
uses in ``crates/templates/src/lib.rs``; the texts are ours).

They are looked up like the pages: ``templates.path`` first, then the shipped ones. Only the
``.html`` template is HTML-escaped. Every render receives the context the caller scheduled
(plain JSON values, see :data:`EMAIL_KINDS`), ``branding`` (the pages' :class:`SiteBranding`)
and ``lang`` (the language chosen when the email was scheduled, see
:func:`mas_twisted.handlers.email.email_job`), with gettext's callables bound to its catalog.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import attrs
import jinja2

from mas_twisted.email.message import RenderedEmail
from mas_twisted.templating import builtin_templates_dir
from mas_twisted.templating.context import site_branding
from mas_twisted.templating.i18n import DEFAULT_LOCALE, I18n

logger = logging.getLogger(__name__)


@attrs.frozen
class EmailKind:
    """One kind of message: its template name, the context keys it needs, and a sample."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    samples: tuple[Mapping[str, Any], ...]


#: The kinds of message, by template name (MAS's ``EmailVerificationContext`` and
#: ``EmailRecoveryContext``).
EMAIL_KINDS: dict[str, EmailKind] = {
    kind.name: kind
    for kind in (
        EmailKind(
            name="verification",
            # ``code``: the 6-digit code; ``username``: the user or registration it is for.
            required=("code",),
            optional=("username",),
            samples=({"code": "123456", "username": "alice"}, {"code": "000042"}),
        ),
        EmailKind(
            name="recovery",
            # ``recovery_url``: the single-use link; ``expires_in_minutes``: how long it lasts.
            required=("username", "recovery_url"),
            optional=("expires_in_minutes",),
            samples=(
                {
                    "username": "alice",
                    "recovery_url": "https://auth.example.com/account/password/recovery?ticket=abcdef",
                    "expires_in_minutes": 10,
                },
            ),
        ),
    )
}


class UnknownEmailKind(ValueError):
    pass


def check_context(template: str, context: Mapping[str, Any]) -> None:
    """Refuse a kind we have no templates for, or a context missing a key the kind needs.

    Raises:
        UnknownEmailKind: no such kind.
        ValueError: a required key is missing.
    """
    kind = EMAIL_KINDS.get(template)
    if kind is None:
        raise UnknownEmailKind(f"no email templates named {template!r}")
    missing = [key for key in kind.required if key not in context]
    if missing:
        raise ValueError(f"the {template!r} email needs {', '.join(missing)}")


class EmailTemplates:
    """Renders the three templates of a message.

    Args:
        config: the root config (``templates``, ``branding``, ``matrix``, ``passwords``, ``account``).
    """

    def __init__(self, config: Any):
        self.branding = site_branding(config)
        builtin = builtin_templates_dir()
        search_path: list[str] = []
        configured = getattr(config.templates, "path", None)
        if configured and configured != builtin and os.path.isdir(configured):
            search_path.append(configured)
        search_path.append(builtin)
        self._search_path = search_path
        self.i18n = I18n.from_config(config)
        self._envs: dict[str, jinja2.Environment] = {}
        self.env = self.environment(DEFAULT_LOCALE)

    def environment(self, locale: str) -> jinja2.Environment:
        """The environment of one locale (its catalog installed), built once and kept."""
        env = self._envs.get(locale)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self._search_path),
                autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
                auto_reload=False,
                extensions=["jinja2.ext.i18n"],
            )
            env.install_gettext_translations(self.i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
            env.globals["branding"] = self.branding
            self._envs[locale] = env
        return env

    def render(self, template: str, context: Mapping[str, Any], *, language: str = "en") -> RenderedEmail:
        """Render ``emails/<template>.{subject,txt,html}``.

        Raises:
            UnknownEmailKind: no such kind.
            jinja2.TemplateError: a template does not parse or fails to render.
        """
        kind = EMAIL_KINDS.get(template)
        if kind is None:
            raise UnknownEmailKind(f"no email templates named {template!r}")
        # The language was negotiated when the email was scheduled; one we no longer have a
        # catalog for falls back as negotiation would.
        locale = self.i18n.negotiate(language)
        values = dict.fromkeys(kind.optional)
        values.update(context)
        values["lang"] = locale
        env = self.environment(locale)
        return RenderedEmail(
            subject=env.get_template(f"emails/{template}.subject").render(values),
            text=env.get_template(f"emails/{template}.txt").render(values),
            html=env.get_template(f"emails/{template}.html").render(values),
        )

    def check_render(self, *, language: str = DEFAULT_LOCALE) -> dict[tuple[str, int], RenderedEmail]:
        """Every kind rendered with each of its samples in ``language`` (for ``templates
        check`` and the tests)."""
        return {
            (name, index): self.render(name, sample, language=language)
            for name, kind in EMAIL_KINDS.items()
            for index, sample in enumerate(kind.samples)
        }
