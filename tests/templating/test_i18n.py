# SPDX-License-Identifier: AGPL-3.0-only
"""Translations (issue 12 item 6): ``Accept-Language`` negotiation (RFC 9110 §12.5.4), catalogs
read from ``.po`` files in ``templates.translations_path`` without a build step, pages rendered
in the negotiated language with ``<html lang>`` set, and emails in the language stored when
they were scheduled."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mas_twisted.config.root import RootConfig
from mas_twisted.email.templates import EmailTemplates
from mas_twisted.templating import NotFoundContext, Templates
from mas_twisted.templating.i18n import I18n, negotiate, parse_accept_language
from mas_twisted.urls import UrlBuilder
from mas_twisted.util.request_locale import accept_language
from tests.unittest import MasTestCase

PO = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"

msgid "Page not found"
msgstr "Page introuvable"

msgid "There is nothing at this address."
msgstr "Il n'y a rien à cette adresse."

#, fuzzy
msgid "Go to the start page"
msgstr "Aller à l'accueil (brouillon)"
"""


def config(**extra: Any) -> RootConfig:
    raw = MasTestCase.default_config(MasTestCase("run"))
    raw.update(extra)
    return RootConfig(raw)


def write_catalog(folder: Path, locale: str, text: str = PO) -> None:
    path = folder / locale / "LC_MESSAGES"
    path.mkdir(parents=True)
    (path / "messages.po").write_text(text, encoding="utf-8")


class NegotiationTests(MasTestCase):
    def test_q_values_order_the_ranges(self) -> None:
        self.assertEqual(parse_accept_language("en;q=0.5, fr, de;q=0.8"), ["fr", "de", "en"])

    def test_q_zero_and_bad_weights_are_dropped(self) -> None:
        self.assertEqual(parse_accept_language("fr;q=0, de;q=abc, it;q=0.1"), ["it"])

    def test_region_falls_back_to_the_language(self) -> None:
        self.assertEqual(negotiate("fr-CA, en;q=0.5", ["en", "fr"]), "fr")

    def test_exact_match_ignores_case_and_separator(self) -> None:
        self.assertEqual(negotiate("PT-br", ["en", "pt_BR", "pt"]), "pt_BR")

    def test_higher_weight_wins(self) -> None:
        self.assertEqual(negotiate("fr;q=0.4, de;q=0.9", ["en", "fr", "de"]), "de")

    def test_unknown_or_missing_is_english(self) -> None:
        self.assertEqual(negotiate("xx-YY, zz", ["en", "fr"]), "en")
        self.assertEqual(negotiate(None, ["en", "fr"]), "en")
        self.assertEqual(negotiate("*", ["en", "fr"]), "en")


class CatalogTests(MasTestCase):
    def setUp(self) -> None:
        super().setUp()
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.folder = Path(self._tmp.name)
        write_catalog(self.folder, "fr")

    def templates(self, **extra: Any) -> Templates:
        cfg = config(templates={"translations_path": str(self.folder)}, **extra)
        return Templates.from_config(cfg, UrlBuilder(cfg.http), strict=True)

    def test_operator_catalog_adds_its_language(self) -> None:
        i18n = I18n([str(self.folder)])
        self.assertIn("fr", i18n.locales)
        self.assertEqual(i18n.negotiate("fr-FR"), "fr")

    def test_page_renders_in_the_negotiated_language(self) -> None:
        ctx = NotFoundContext(method="GET", uri="/nowhere", version="HTTP/1.1")
        html = self.templates().render(ctx.TEMPLATE, ctx, locale="fr")
        self.assertIn('<html lang="fr">', html)
        self.assertIn("Page introuvable", html)
        self.assertIn("Il n'y a rien à cette adresse.", html)
        # A fuzzy entry is left out, as msgfmt does: the English text shows.
        self.assertIn("Go to the start page", html)
        english = self.templates().render(ctx.TEMPLATE, ctx, locale="en")
        self.assertIn('<html lang="en">', english)
        self.assertIn("Page not found", english)

    def test_email_renders_in_the_scheduled_language(self) -> None:
        cfg = config(templates={"translations_path": str(self.folder)})
        rendered = EmailTemplates(cfg).render("verification", {"code": "123456"}, language="fr")
        self.assertIn("123456", rendered.text)


class RequestLocaleTests(CatalogTests):
    """The ``Accept-Language`` of the request being handled (the context variable the listener's
    request sets) picks the language of a render that names none."""

    def test_context_header_chooses_the_language(self) -> None:
        ctx = NotFoundContext(method="GET", uri="/nowhere", version="HTTP/1.1")
        templates = self.templates()
        token = accept_language.set("fr-CA,fr;q=0.9,en;q=0.5")
        try:
            html = templates.render(ctx.TEMPLATE, ctx)
        finally:
            accept_language.reset(token)
        self.assertIn('<html lang="fr">', html)
        self.assertIn("Page introuvable", html)
        self.assertIn('<html lang="en">', templates.render(ctx.TEMPLATE, ctx))
