"""The two declarative objects a distribution hands to Mosaic: an addon manifest and an edition.

Both are plain frozen dataclasses, found through entry points (``mosaic.addons`` and
``mosaic.editions``). Neither contains behaviour: an addon's behaviour lives in the modules its
manifest names, and an edition is only a title and a list of addon names.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Addon:
    """The manifest of an addon (Odoo's ``__manifest__``, as an object).

    :param name: unique, lower-case, a Python identifier; it prefixes the addon's tables, permissions,
        job ids, blueprint and migration branch.
    :param version: the addon's version, e.g. ``"1.0.0"``.
    :param title: lazily translated title shown in the Apps page.
    :param summary: one sentence for the Apps page (lazily translated).
    :param category: e.g. ``"Sales"``, ``"Marketing"`` (lazily translated).
    :param depends: names of addons this one imports; ``"core"`` is implicit.
    :param application: shown as an application card in the Apps page.
    :param package: the dotted name of the addon's Python package; its folder holds ``templates/``,
        ``static/``, ``translations/`` and ``migrations/versions/`` when they exist.
    :param hooks: dotted module holding ``@hookimpl`` functions (loaded when discovered), or a tuple of such
        modules: a big addon may keep each area's hooks in a module of its own (a hook may be implemented
        in several of them; pluggy calls each).
    :param models: dotted module defining the addon's SQLAlchemy models (imported when discovered).
    :param blueprint: ``"module:attribute"`` of the addon's Flask blueprint, or ``None``.
    :param hookspecs: dotted module of hookspecs the addon publishes for other addons, or ``None``.
    """

    name: str
    version: str
    title: Any
    package: str
    summary: Any = ""
    category: Any = ""
    depends: tuple[str, ...] = ()
    application: bool = True
    hooks: str | tuple[str, ...] | None = None
    models: str | None = None
    blueprint: str | None = None
    hookspecs: str | None = None
    author: str = ""
    website: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid addon name {self.name!r}: use lower-case letters, digits and _")
        object.__setattr__(self, "depends", tuple(d for d in self.depends if d != "core"))

    @property
    def hook_modules(self) -> tuple[str, ...]:
        """The dotted names of the addon's hooks modules (``hooks`` as a tuple)."""
        if not self.hooks:
            return ()
        return (self.hooks,) if isinstance(self.hooks, str) else tuple(self.hooks)

    @property
    def path(self) -> Path:
        """The folder of the addon's package."""
        module = importlib.import_module(self.package)
        return Path(module.__file__).parent

    def folder(self, name: str) -> Path | None:
        """A sub-folder of the addon (``templates``, ``static``, ...) if it exists."""
        candidate = self.path / name
        return candidate if candidate.is_dir() else None

    @property
    def migrations_dir(self) -> Path | None:
        return self.folder("migrations/versions")

    @property
    def translations_dir(self) -> Path | None:
        return self.folder("translations")


@dataclass(frozen=True)
class Edition:
    """An edition: a title and the addons it enables. Editions contain no code.

    A reseller's distribution adds one through the ``mosaic.editions`` entry-point group.
    """

    name: str
    title: Any
    addons: tuple[str, ...] = field(default_factory=tuple)
    description: Any = ""
