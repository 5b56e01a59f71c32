"""Languages: which locale a request is in, and where the catalogues are.

Each addon ships its own ``translations/`` folder (``<locale>/LC_MESSAGES/messages.po``); Flask-Babel is
given the core's folder and every discovered addon's, and merges them. Catalogues are compiled from the
``.po`` files (no ``.mo`` is committed): by ``mosaic i18n compile`` at install time, and again at
start-up for any catalogue whose ``.mo`` is missing or older than its ``.po``.

Catalogue folders are named by our language codes (``zh_CN``, ``zh_TW``, ``en``), but Babel parses
``"zh_CN"`` as ``Locale("zh", script="Hans", territory="CN")`` (``str()`` -> ``zh_Hans_CN``), and
gettext's lookup would then only try ``zh_Hans_CN/`` and ``zh/``. :class:`MosaicDomain` therefore maps
the active locale back to one of our codes (:func:`locale_code`) and opens that folder's catalogue.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import current_app, g, request, session
from flask_babel import Domain, get_locale
from flask_login import current_user

from core.extensions import babel as _babel

log = logging.getLogger(__name__)

#: locale code -> the language's own name, as the language menu shows it
LANGUAGES = {"zh_CN": "简体中文", "en": "English", "zh_TW": "繁體中文"}
DEFAULT_LANGUAGE = "zh_CN"
CORE_TRANSLATIONS = Path(__file__).parent / "translations"


def normalise(code: str | None) -> str | None:
    """``zh-cn``/``zh_Hans``/``en_US`` -> a supported locale code, or ``None``."""
    if not code:
        return None
    code = code.replace("-", "_")
    low = code.lower()
    if low in ("zh_tw", "zh_hk", "zh_hant", "zh_hant_tw", "zh_mo"):
        return "zh_TW"
    if low.startswith("zh"):
        return "zh_CN"
    if low.startswith("en"):
        return "en"
    return None


def locale_code(locale: Locale | str | None) -> str | None:
    """A Babel locale (``zh_Hans_CN``, ``zh_Hant_TW``, ``en``...) -> ``zh_CN``/``zh_TW``/``en``, or ``None``."""
    if locale is None:
        return None
    if isinstance(locale, str):
        try:
            locale = Locale.parse(locale.replace("-", "_"))
        except (ValueError, TypeError):
            return normalise(locale)
    if locale.language == "zh":
        traditional = locale.script == "Hant" or (not locale.script and locale.territory in ("TW", "HK", "MO"))
        return "zh_TW" if traditional else "zh_CN"
    return normalise(locale.language)


def current_language() -> str:
    """The active language as one of :data:`LANGUAGES`' codes (for templates: ``<html lang>``, the menu)."""
    return locale_code(get_locale()) or "en"


def list_separator() -> str:
    """What joins the items of a list in a sentence, in the active language: "、" in Chinese, ", " otherwise."""
    from flask_babel import pgettext

    return pgettext("list separator", ", ")


class MosaicDomain(Domain):
    """Flask-Babel's message domain, looking catalogues up by our folder names (see the module doc).

    Translations are cached per set of translation directories and language, so that apps with other
    addons (tests, the CLI's bare message context) never share a merged catalogue.
    """

    def get_translations(self):
        locale = get_locale()
        if locale is None:  # outside any app or request context
            return NullTranslations()
        code = locale_code(locale) or str(locale)
        directories = tuple(self.translation_directories)
        key = (directories, code, self.domain[0])
        try:
            return self.cache[key]
        except KeyError:
            pass
        translations = Translations()
        for index, dirname in enumerate(directories):
            domain = self.domain[0] if len(self.domain) == 1 else self.domain[index]
            path = Path(dirname) / code / "LC_MESSAGES" / f"{domain}.mo"
            if not path.is_file():
                continue
            with path.open("rb") as fh:
                catalog = Translations(fp=fh, domain=domain)
            translations.merge(catalog)
            translations.plural = catalog.plural  # merge() does not copy it
        self.cache[key] = translations
        return translations


#: the domain of every app (the web app, the CLI's message context): installed on the shared Babel
#: extension object when this module is imported, before any app exists
DOMAIN = MosaicDomain()
_babel.domain_instance = DOMAIN  # overrides Flask-Babel's cached_property


@functools.cache
def _wtforms_catalogue(code: str) -> Translations:
    from wtforms.i18n import messages_path

    return Translations.load(messages_path(), [code], domain="wtforms")


def wtforms_translations() -> None:
    """WTForms' own messages ("Not a valid integer value.") in our language: Flask-WTF looks its catalogue up by
    Babel's locale, and for ``zh_Hant_TW`` gettext finds WTForms' ``zh`` (Simplified) catalogue before its
    ``zh_TW`` one — a 繁體 user read 简体 messages. Flask-WTF takes the catalogue a request already holds
    (``request.wtforms_translations``): set it to the one of our code (a request hook, :mod:`core.app`)."""
    if (request.endpoint or "").rsplit(".", 1)[-1] == "static":
        return  # (a file: no form, and no need to look the user's language up)
    if current_language() == "zh_TW":
        request.wtforms_translations = _wtforms_catalogue("zh_TW")


def instance_language() -> str:
    from core.models import Setting

    try:
        return normalise(Setting.get("default_language")) or current_app.config["DEFAULT_LANGUAGE"]
    except Exception:  # noqa: BLE001 - before initialisation there is no setting table
        from core.extensions import db

        db.session.rollback()
        return current_app.config["DEFAULT_LANGUAGE"]


@functools.lru_cache(maxsize=64)
def parsed_locale(code: str) -> Locale:
    """``Locale.parse(code)``, once per code: parsing scans Babel's list of locales on disk (~1.5 ms), and
    Flask-Babel would do it on every request (it keeps a ``Locale`` it is given as it is)."""
    return Locale.parse(code)


def locale_selector() -> Locale:
    """Flask-Babel's locale selector: :func:`select_locale`, parsed once per code."""
    return parsed_locale(select_locale())


def select_locale() -> str:
    """The user's choice, else the session's, else the browser's (or API client's), else an API token owner's,
    else the instance default."""
    forced = current_app.config.get("FORCE_LANGUAGE")
    if forced:
        return forced
    if request:
        if current_user and current_user.is_authenticated and current_user.language in LANGUAGES:
            return current_user.language
        chosen = session.get("language")
        if chosen in LANGUAGES:
            return chosen
        header = request.headers.get("Accept-Language")
        if header:
            for code, _quality in request.accept_languages:
                found = normalise(code)
                if found:
                    return found
        # An API client that names no language is answered in its token owner's (``g.api_user``: set once the
        # token is read, :func:`core.crm.api_auth.token_required`, which refreshes the locale).
        api_user = g.get("api_user")
        if api_user is not None and api_user.language in LANGUAGES:
            return api_user.language
    return instance_language()


def translation_directories(addons) -> list[str]:
    dirs = [str(CORE_TRANSLATIONS)]
    for info in addons:
        if info.loadable and info.manifest.translations_dir is not None:
            dirs.append(str(info.manifest.translations_dir))
    return dirs


def compile_catalogues(directories, force: bool = False) -> list[Path]:
    """Compile every ``.po`` under ``directories`` whose ``.mo`` is missing or stale; return those written."""
    written = []
    for directory in directories:
        for po_path in Path(directory).glob("*/LC_MESSAGES/*.po"):
            mo_path = po_path.with_suffix(".mo")
            if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                continue
            try:
                with po_path.open("rb") as fh:
                    catalog = read_po(fh, locale=po_path.parent.parent.name)
                tmp = mo_path.with_suffix(f".mo.{os.getpid()}")
                with tmp.open("wb") as fh:
                    write_mo(fh, catalog)
                tmp.replace(mo_path)
                written.append(mo_path)
                DOMAIN.cache.clear()  # the next request reads the new catalogue
            except OSError as exc:  # a read-only install: say so, serve English
                log.warning("cannot compile %s: %s", po_path, exc)
    return written
