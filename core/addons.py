"""The addons of one application: what was discovered, which are enabled, enabling and disabling.

Addon state lives in the database (``core_addon_state``). Every change bumps the ``addons`` counter;
each worker process compares that counter with the one it last saw at the start of every request
(:meth:`AddonRuntime.refresh`) and reloads the enabled set when it moved. So enabling or disabling an
addon takes effect on the next request in every process, with no restart.
"""

from __future__ import annotations

import logging
import threading

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from core import migrate
from core.discovery import ADDON_GROUP, AddonInfo, discover_addons
from core.extensions import db
from core.models import AddonState, Counter
from core.plugins import HookRelay, make_plugin_manager, unknown_hooks
from core.timeutil import utcnow

log = logging.getLogger(__name__)


class AddonError(Exception):
    """A refused addon operation; the message is translated and meant for the user."""


class AddonRuntime:
    def __init__(self, app, groups: tuple[str, ...] = (ADDON_GROUP,)):
        self.app = app
        self.addons: dict[str, AddonInfo] = discover_addons(groups)
        self.pm = make_plugin_manager()
        self._plugins: dict[str, object] = {}  # addon name (":<n>" for its n-th hooks module) -> module
        self._register_plugins()
        self.hook = HookRelay(self.pm, self._disabled_plugins)
        # (counter value, enabled names), replaced as one object so that readers never see a mix
        self._snapshot: tuple[int | None, frozenset[str]] = (None, frozenset())
        self.states: dict[str, AddonState] = {}
        self._lock = threading.Lock()

    @property
    def version(self) -> int | None:
        return self._snapshot[0]

    @property
    def enabled(self) -> frozenset[str]:
        return self._snapshot[1]

    # -- discovery ------------------------------------------------------------------------------
    def _register_plugins(self) -> None:
        import importlib

        for info in self.loadable():
            if info.manifest.hookspecs:
                self.pm.add_hookspecs(importlib.import_module(info.manifest.hookspecs))
        for info in self.loadable():
            modules = []
            for dotted in info.manifest.hook_modules:
                module = importlib.import_module(dotted)
                self.pm.register(module, name=info.name if not modules else f"{info.name}:{dotted}")
                modules.append(module)
            typos = [name for module in modules for name in unknown_hooks(self.pm, module)]
            if typos:
                for module in modules:
                    self.pm.unregister(module)
                info.error = _l("unknown hook implementation(s): %(names)s", names=", ".join(typos))
            else:
                self._plugins.update({f"{info.name}:{i}" if i else info.name: m for i, m in enumerate(modules)})

    def loadable(self) -> list[AddonInfo]:
        return [info for info in self.addons.values() if info.loadable]

    def get(self, name: str) -> AddonInfo:
        info = self.addons.get(name)
        if info is None:
            known = ", ".join(sorted(self.addons)) or "-"
            raise AddonError(_("Unknown addon “%(name)s”. Known addons: %(known)s", name=name, known=known))
        return info

    def _disabled_plugins(self):
        version, enabled = self._snapshot
        return version, [p for name, p in self._plugins.items() if name.partition(":")[0] not in enabled]

    # -- state ----------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload the enabled set from the database if another process (or this one) changed it."""
        try:
            version = db.session.execute(select(Counter.value).where(Counter.name == "addons")).scalar()
        except SQLAlchemyError:
            db.session.rollback()  # not initialised yet: nothing is enabled
            self.states, self._snapshot = {}, (None, frozenset())
            return
        if version == self.version and not force:
            return
        with self._lock:
            rows = db.session.execute(select(AddonState)).scalars().all()
            states = {row.name: row for row in rows}
            for row in rows:
                db.session.expunge(row)
            self.states = states
            enabled = frozenset(
                name
                for name, row in states.items()
                if row.state == "enabled" and name in self.addons and self.addons[name].loadable
            )
            self._snapshot = (version, enabled)

    def state_of(self, name: str) -> str:
        """``enabled``, ``disabled`` (installed, off), ``available`` (never installed) or ``broken``."""
        info = self.addons.get(name)
        if info is not None and not info.loadable:
            return "broken"
        row = self.states.get(name)
        return row.state if row is not None else "available"

    def is_enabled(self, name: str) -> bool:
        return name == "core" or name in self.enabled

    def _bump(self) -> None:
        db.session.execute(update(Counter).where(Counter.name == "addons").values(value=Counter.value + 1))

    def dependencies(self, name: str) -> list[str]:
        """``name``'s transitive dependencies, dependencies first (``name`` not included)."""
        seen: list[str] = []

        def visit(n: str) -> None:
            for dep in self.addons[n].depends:
                if dep not in seen:
                    visit(dep)
                    seen.append(dep)

        visit(name)
        return seen

    def dependents(self, name: str, only_enabled: bool = True) -> list[str]:
        """Addons that depend on ``name``, directly or not, dependents of dependents first."""
        out: list[str] = []

        def visit(n: str) -> None:
            for dep in sorted(self.addons[n].dependents):
                if dep not in out:
                    visit(dep)
                    out.append(dep)

        visit(name)
        return [n for n in out if not only_enabled or n in self.enabled]

    def migration_config(self):
        return migrate.alembic_config(self.addons.values())

    def enable(self, name: str) -> list[str]:
        """Enable ``name`` and whatever it depends on, migrating each; return the names enabled now."""
        self.refresh()
        info = self.get(name)
        if not info.loadable:
            raise AddonError(_("The addon “%(name)s” is broken: %(error)s", name=name, error=info.error))
        wanted = [n for n in [*self.dependencies(name), name] if n not in self.enabled]
        if not wanted:
            return []
        migrate.upgrade(self.migration_config(), ["core", *wanted])
        now = utcnow()
        for n in wanted:
            row = db.session.get(AddonState, n)
            version = self.addons[n].manifest.version
            if row is None:
                db.session.add(AddonState(name=n, state="enabled", installed_version=version, changed_at=now))
            else:
                row.state, row.installed_version, row.changed_at = "enabled", version, now
        self._bump()
        db.session.commit()
        self.refresh(force=True)
        for n in wanted:
            self.hook.addon_enabled(name=n, app=self.app)
        return wanted

    def disable(self, name: str, with_dependents: bool = False) -> list[str]:
        """Disable ``name`` (and, if asked, the enabled addons depending on it); keep all their data."""
        self.refresh()
        self.get(name)
        if name not in self.enabled:
            return []
        dependents = self.dependents(name)
        if dependents and not with_dependents:
            raise AddonError(
                _(
                    "Cannot disable “%(name)s”: enabled addons depend on it: %(dependents)s. "
                    "Disable them first, or disable them together.",
                    name=name,
                    dependents=", ".join(dependents),
                )
            )
        victims = [*dependents, name]
        now = utcnow()
        for n in victims:
            row = db.session.get(AddonState, n)
            row.state, row.changed_at = "disabled", now
        self._bump()
        db.session.commit()
        self.refresh(force=True)
        for n in victims:
            self.hook.addon_disabled(name=n, app=self.app)
        return victims

    def upgrade_enabled(self) -> list[str]:
        """Migrate the core and every enabled addon to its latest revision (``mosaic db upgrade``)."""
        self.refresh(force=True)
        order = ["core", *[n for n in self.addons if n in self.enabled]]
        migrate.upgrade(self.migration_config(), order)
        now = utcnow()
        for n in order[1:]:
            row = db.session.get(AddonState, n)
            row.installed_version, row.changed_at = self.addons[n].manifest.version, now
        self._bump()
        db.session.commit()
        self.refresh(force=True)
        from core.crm import custom_index  # (the core's own module) fields made before their indexes existed

        custom_index.ensure_all()
        db.session.commit()
        return order
