# SPDX-License-Identifier: AGPL-3.0-only
"""Translations of the pages and emails: gettext catalogs and ``Accept-Language`` negotiation.

MAS behaviour (``crates/i18n``, ``crates/templates``): the templates' strings go through a
translator; the language of a page is negotiated from the request's ``Accept-Language``
among the languages that have a catalog, English being the fallback, and the page's
``<html lang>`` says which one was chosen. ``templates.translations_path`` is where the
catalogs are read from.

Ours are gettext catalogs, ``<translations>/<lang>/LC_MESSAGES/messages.po`` (the template of
every message is ``messages.pot``), read from the ``.po`` files directly when the service
starts: Babel parses them and compiles them in memory, so a clean checkout needs no build
step. Fuzzy entries are left out, as ``msgfmt`` does. An operator's ``translations_path``
is read first and the shipped catalogs fill what it lacks (a catalog of a language we do not
ship adds that language).

Negotiation follows RFC 9110 §12.5.4: the ranges in order of their ``q`` weight (ties keep
their order, ``q=0`` means "not this one"), each range matched exactly (case-insensitive,
``-`` or ``_``) and then by its primary language (``fr-CA`` → ``fr``); ``*`` or nothing that
matches gives English.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable

import babel
import babel.dates
import babel.messages.mofile
import babel.messages.pofile
import babel.support

from mas_twisted.util.paths import data_dir
from mas_twisted.util.request_locale import accept_language

logger = logging.getLogger(__name__)

#: The language the templates are written in; always available, and the fallback.
DEFAULT_LOCALE = "en"

#: The gettext domain of the catalogs.
DOMAIN = "messages"


def N_(message: str) -> str:
    """Marks a string built in Python for extraction; it is translated where it is rendered
    (the template passes it to ``_()``)."""
    return message


def builtin_translations_dir() -> str:
    return str(data_dir("translations"))


def parse_accept_language(header: str | None) -> list[str]:
    """The language ranges of an ``Accept-Language`` value, preferred first (RFC 9110 §12.5.4).

    Ranges with ``q=0`` or a malformed weight are dropped; ``*`` is kept as it is.
    """
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        parts = [p.strip() for p in item.split(";")]
        tag = parts[0]
        if not tag or len(tag) > 64:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if not 0 < q <= 1:
            continue
        weighted.append((-q, index, tag))
    weighted.sort()
    return [tag for _q, _i, tag in weighted]


def _normalise(tag: str) -> str:
    return tag.replace("_", "-").lower()


def negotiate(header: str | None, available: Iterable[str], default: str = DEFAULT_LOCALE) -> str:
    """The available locale that best fits an ``Accept-Language`` value, else ``default``."""
    by_tag = {_normalise(locale): locale for locale in available}
    for tag in parse_accept_language(header):
        wanted = _normalise(tag)
        if wanted == "*":
            break
        if wanted in by_tag:
            return by_tag[wanted]
        primary = wanted.split("-", 1)[0]
        if primary in by_tag:
            return by_tag[primary]
    return default


def _read_catalog(path: str, locale: str) -> babel.support.Translations:
    with open(path, "rb") as f:
        catalog = babel.messages.pofile.read_po(f, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    # write_mo leaves fuzzy entries out unless asked otherwise, as msgfmt does.
    babel.messages.mofile.write_mo(buf, catalog)
    buf.seek(0)
    return babel.support.Translations(fp=buf, domain=DOMAIN)


def _catalogs_in(folder: str) -> dict[str, str]:
    """``{locale: path}`` of the ``<lang>/LC_MESSAGES/messages.po`` files of a folder."""
    found: dict[str, str] = {}
    if not os.path.isdir(folder):
        return found
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "LC_MESSAGES", f"{DOMAIN}.po")
        if os.path.isfile(path):
            found[name] = path
    return found


class I18n:
    """The catalogs of every language we can answer in; built by ``MasServer.get_i18n()``
    (through :meth:`from_config`).

    Args:
        folders: catalog folders, the first one winning where two have the same message.
    """

    def __init__(self, folders: Iterable[str]):
        self.folders = list(dict.fromkeys(folders))
        self._translations: dict[str, babel.support.Translations] = {}
        for folder in reversed(self.folders):
            for locale, path in _catalogs_in(folder).items():
                try:
                    babel.Locale.parse(locale)
                    translations = _read_catalog(path, locale)
                except (ValueError, babel.UnknownLocaleError) as e:
                    logger.warning("Ignoring the catalog %s: %s", path, e)
                    continue
                previous = self._translations.get(locale)
                if previous is not None:
                    translations.add_fallback(previous)
                self._translations[locale] = translations
        self.locales: tuple[str, ...] = (
            DEFAULT_LOCALE,
            *sorted(k for k in self._translations if k != DEFAULT_LOCALE),
        )

    @classmethod
    def from_config(cls, config: object) -> I18n:
        """The operator's ``templates.translations_path`` (when set and not the shipped one)
        before the shipped catalogs."""
        builtin = builtin_translations_dir()
        folders = []
        templates = getattr(config, "templates", None)
        configured = getattr(templates, "translations_path", None)
        if configured and os.path.abspath(configured) != os.path.abspath(builtin):
            if not os.path.isdir(configured):
                logger.warning(
                    "templates.translations_path %s is not a directory; using the shipped translations only",
                    configured,
                )
            folders.append(configured)
        folders.append(builtin)
        return cls(folders)

    def translations(self, locale: str) -> babel.support.NullTranslations:
        """The catalog of a locale (English: the messages as written)."""
        return self._translations.get(locale) or babel.support.NullTranslations()

    def negotiate(self, header: str | None) -> str:
        return negotiate(header, self.locales)

    def current_locale(self) -> str:
        """The locale negotiated from the ``Accept-Language`` of the request being handled
        (English outside a request)."""
        return self.negotiate(accept_language.get())


def format_datetime(ms: int | None, locale: str) -> str:
    """A time in epoch milliseconds as the locale writes a date and time (UTC, named)."""
    if ms is None:
        return ""
    import datetime

    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    text = babel.dates.format_datetime(moment, format="medium", tzinfo=datetime.UTC, locale=locale)
    return f"{text} UTC"
