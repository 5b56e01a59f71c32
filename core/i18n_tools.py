"""Maintaining the translation catalogues: ``mosaic i18n extract`` and ``mosaic i18n update``.

Every catalogue lives next to the code it translates: the core's in ``core/translations/``, each addon's
in ``<addon package>/translations/``. ``extract`` scans one package folder (Python files and Jinja
templates, mapped by the project's ``babel.cfg``) into its ``translations/messages.pot``; ``update``
merges that template into ``translations/<locale>/LC_MESSAGES/messages.po`` for every supported locale,
creating missing catalogues and keeping the translations already made. Everything goes through Babel's
Python API (:mod:`babel.messages.extract`, :mod:`babel.messages.pofile`); no ``pybabel`` subprocess.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from core import i18n

ROOT = Path(__file__).resolve().parent.parent
CORE_DIR = Path(__file__).resolve().parent
MAPPING_FILE = ROOT / "babel.cfg"
DOMAIN = "messages"
PROJECT = "Mosaic CRM"
#: the locales every catalogue has (English is the source language: its msgstr may stay empty)
LOCALES: tuple[str, ...] = tuple(i18n.LANGUAGES)
#: gettext, plus Flask-Babel's lazy variants (``_l``)
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
    "_lp": ((1, "c"), 2),
}
COMMENT_TAGS = ("TRANSLATORS:",)
#: used when the project's babel.cfg is not there (an installed copy)
DEFAULT_METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
#: %(name)s, %s, %d, %%... as Python's %-formatting sees them
PLACEHOLDER_RE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[hlL]?[diouxXeEfFgGcrsa%]")


@dataclass(frozen=True)
class Target:
    """One catalogue: ``name`` (``core`` or an addon's name), the folder it is extracted from, and its
    ``translations`` folder."""

    name: str
    source: Path

    @property
    def translations(self) -> Path:
        return self.source / "translations"

    @property
    def pot(self) -> Path:
        return self.translations / f"{DOMAIN}.pot"

    def po(self, locale: str) -> Path:
        return self.translations / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def method_map(mapping_file: Path = MAPPING_FILE):
    """``(method_map, options_map)`` from ``babel.cfg`` (or the built-in default)."""
    if not mapping_file.is_file():
        return list(DEFAULT_METHOD_MAP), {}
    from babel.messages import frontend

    parse = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping  # Babel < 2.14
    with mapping_file.open(encoding="utf-8") as fh:
        return parse(fh)


def targets(addons: Iterable[str] | None = None, everywhere: bool = False) -> list[Target]:
    """The core and the discovered addons.

    With ``addons`` (names; ``"core"`` for the core), exactly those. Otherwise the core and every loadable
    addon whose package folder is inside this project (not installed copies in site-packages), unless
    ``everywhere``.
    """
    from core.discovery import ADDON_GROUP, discover_addons

    wanted = set(addons) if addons else None
    found = [Target("core", CORE_DIR)]
    groups = tuple(g.strip() for g in os.environ.get("MOSAIC_ADDON_GROUPS", ADDON_GROUP).split(",") if g.strip())
    for name, info in sorted(discover_addons(groups).items()):
        if not info.loadable:
            continue
        folder = info.manifest.path.resolve()
        if wanted is None and not everywhere and not folder.is_relative_to(ROOT):
            continue
        found.append(Target(name, folder))
    if wanted is None:
        return found
    unknown = wanted - {t.name for t in found}
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))
    return [t for t in found if t.name in wanted]


def _location(path: Path) -> str:
    path = path.resolve()
    base = ROOT if path.is_relative_to(ROOT) else path.parent
    return path.relative_to(base).as_posix()


def extract(target: Target, mapping_file: Path = MAPPING_FILE) -> Catalog:
    """The messages of ``target``'s folder, as a template catalogue (not written anywhere)."""
    methods, options = method_map(mapping_file)
    catalog = Catalog(project=PROJECT, version="1.0", copyright_holder=PROJECT, charset="utf-8", fuzzy=False)
    translations = target.translations.resolve()

    def outside_translations(dirpath: str) -> bool:
        name = os.path.basename(dirpath)
        if name.startswith((".", "_")) and name not in (".", ".."):
            return False
        return Path(dirpath).resolve() != translations

    for filename, lineno, message, comments, context in extract_from_dir(
        target.source,
        methods,
        options,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
        directory_filter=outside_translations,
    ):
        where = _location(target.source / filename)
        catalog.add(message, None, [(where, lineno)], auto_comments=comments, context=context)
    return catalog


def _render(catalog: Catalog, **options) -> bytes:
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, include_lineno=False, **options)
    return buf.getvalue()


_VOLATILE = re.compile(rb'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"\n', re.MULTILINE)


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already says the same (dates aside). True if written."""
    if path.exists() and _VOLATILE.sub(b"", path.read_bytes()) == _VOLATILE.sub(b"", data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def write_template(target: Target, catalog: Catalog | None = None) -> tuple[int, bool]:
    """Extract ``target`` into its ``messages.pot``; return (number of messages, whether written)."""
    catalog = catalog if catalog is not None else extract(target)
    return len(catalog), _write_if_changed(target.pot, _render(catalog))


def _new_catalogue(template: Catalog, locale: str) -> Catalog:
    catalog = Catalog(
        locale=locale,
        domain=DOMAIN,
        project=PROJECT,
        version="1.0",
        charset="utf-8",
        fuzzy=False,
        copyright_holder=PROJECT,
        language_team=i18n.LANGUAGES.get(locale, locale),
    )
    catalog.creation_date = template.creation_date
    return catalog


def update_catalogue(target: Target, locale: str, template: Catalog | None = None) -> tuple[str, bool]:
    """Merge the template into ``target``'s catalogue for ``locale`` (created if missing).

    Translations of messages still in the template are kept; a message that disappears is kept as an
    obsolete (``#~``) entry, and its translation comes back if the message does. Returns
    (``"created"``/``"updated"``/``"unchanged"``, whether written).
    """
    if template is None:
        with target.pot.open("rb") as fh:
            template = read_po(fh)
    path = target.po(locale)
    created = not path.exists()
    if created:
        catalog = _new_catalogue(template, locale)
    else:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
    old_obsolete = dict(catalog.obsolete)
    catalog.update(template, no_fuzzy_matching=True, update_creation_date=True)
    for message in catalog:
        previous = old_obsolete.get(message.id) if message.id and not message.string else None
        if previous is not None and previous.context == message.context:
            message.string = previous.string
            catalog.obsolete.pop(message.id, None)
    written = _write_if_changed(path, _render(catalog))
    return ("created" if created else "updated" if written else "unchanged"), written


@dataclass
class Report:
    target: str
    messages: int
    pot_written: bool
    catalogues: dict[str, str]


def extract_all(chosen: Iterable[str] | None = None) -> list[Report]:
    """``mosaic i18n extract``: write every target's ``messages.pot``."""
    reports = []
    for target in targets(chosen):
        count, written = write_template(target)
        reports.append(Report(target.name, count, written, {}))
    return reports


def update_all(chosen: Iterable[str] | None = None, locales: Iterable[str] = LOCALES, extract_first: bool = True):
    """``mosaic i18n update``: (re-extract, then) update every target's catalogues for ``locales``."""
    reports = []
    for target in targets(chosen):
        if extract_first or not target.pot.exists():
            template = extract(target)
            count, pot_written = write_template(target, template)
        else:
            with target.pot.open("rb") as fh:
                template = read_po(fh)
            count, pot_written = len(template), False
        results = {locale: update_catalogue(target, locale, template)[0] for locale in locales}
        reports.append(Report(target.name, count, pot_written, results))
    return reports


# -- checks (used by the tests, handy before a release) ----------------------------------------------
def _ids(message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def read_catalogue(target: Target, locale: str) -> Catalog | None:
    path = target.po(locale)
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def missing_translations(target: Target, locale: str, template: Catalog | None = None) -> list[str]:
    """The msgids of ``target``'s code with no (or only a fuzzy) translation in ``locale``."""
    template = template if template is not None else extract(target)
    catalog = read_catalogue(target, locale)
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context) if catalog is not None else None
        if found is None or found.fuzzy or not all(s.strip() for s in _strings(found)):
            missing.append(_ids(message)[0])
    return missing


def placeholders(text: str) -> list[str]:
    return sorted(p for p in PLACEHOLDER_RE.findall(text or "") if p != "%%")


def placeholder_mismatches(target: Target, locale: str) -> list[str]:
    """``msgid -> msgstr`` descriptions of translations whose placeholders differ from the msgid's."""
    catalog = read_catalogue(target, locale)
    problems = []
    for message in catalog or ():
        if not message.id:
            continue
        expected = placeholders(_ids(message)[-1])  # the plural form's, when there is one
        for string in _strings(message):
            if string and placeholders(string) != expected:
                problems.append(f"{_ids(message)[0]!r} -> {string!r}")
    return problems
