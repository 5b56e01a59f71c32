"""Languages: which locale a request is in, and where the catalogues are.

Each addon ships its own ``translations/`` folder (``<locale>/LC_MESSAGES/messages.po``); Flask-Babel is
given the core's folder and every discovered addon's, and merges them. Catalogues are compiled from the
``.po`` files (no ``.mo`` is committed): by ``mosaic i18n compile`` at install time, and again at
start-up for any catalogue whose ``.mo`` is missing or older than its ``.po``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, request, session
from flask_login import current_user

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


def instance_language() -> str:
    from core.models import Setting

    try:
        return normalise(Setting.get("default_language")) or current_app.config["DEFAULT_LANGUAGE"]
    except Exception:  # noqa: BLE001 - before initialisation there is no setting table
        from core.extensions import db

        db.session.rollback()
        return current_app.config["DEFAULT_LANGUAGE"]


def select_locale() -> str:
    """The user's choice, else the session's, else the browser's, else the instance default."""
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
            except OSError as exc:  # a read-only install: say so, serve English
                log.warning("cannot compile %s: %s", po_path, exc)
    return written
