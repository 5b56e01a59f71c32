"""Find addons and editions through entry points, and check their dependencies.

Discovery never fails as a whole: an addon that cannot be imported, depends on an addon that is not
there (or at the wrong version), or sits in a dependency cycle is kept as a *broken* entry with a
message, and every other addon is loaded as usual.
"""

from __future__ import annotations

import graphlib
import importlib
import importlib.metadata
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from stevedore import ExtensionManager

from core.manifest import Addon, Edition

log = logging.getLogger(__name__)

ADDON_GROUP = "mosaic.addons"
EDITION_GROUP = "mosaic.editions"
_DEP_RE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(.*)$")


@dataclass
class AddonInfo:
    """What discovery learnt about one entry point of the ``mosaic.addons`` group."""

    name: str
    manifest: Addon | None = None
    origin: str = ""
    error: Any = None  # a lazily translated message, or the text of an import error
    dependents: set[str] = field(default_factory=set)

    @property
    def loadable(self) -> bool:
        return self.error is None and self.manifest is not None

    @property
    def depends(self) -> tuple[str, ...]:
        return tuple(parse_dependency(d)[0] for d in self.manifest.depends) if self.manifest else ()


def parse_dependency(text: str) -> tuple[str, SpecifierSet]:
    """``"crm_sales>=1.0"`` -> ``("crm_sales", SpecifierSet(">=1.0"))``."""
    match = _DEP_RE.match(text)
    if not match:
        raise ValueError(f"invalid dependency {text!r}")
    return match.group(1), SpecifierSet(match.group(2).strip())


def _distributions(group: str) -> dict[tuple[str, str], str]:
    """(entry-point name, value) -> "distribution version", from the installed metadata."""
    out = {}
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            out[(ep.name, ep.value)] = f"{dist.metadata['Name']} {dist.version}"
    return out


def _origin(ext_or_ep, dists: dict) -> str:
    ep = getattr(ext_or_ep, "entry_point", ext_or_ep)
    return f"{dists.get((ep.name, ep.value), '?')} ({ep.value})"


def discover_addons(groups: tuple[str, ...] = (ADDON_GROUP,)) -> dict[str, AddonInfo]:
    """Load every addon manifest of the entry-point ``groups`` and resolve their dependencies.

    Returns the addons by name, in dependency order (dependencies before their dependents), broken
    ones included with ``error`` set.
    """
    found: dict[str, AddonInfo] = {}
    dists: dict = {}

    def on_failure(_manager, entry_point, exc):
        log.warning("addon %s failed to load: %s", entry_point.name, exc)
        found[entry_point.name] = AddonInfo(
            name=entry_point.name, origin=_origin(entry_point, dists), error=f"{type(exc).__name__}: {exc}"
        )

    for group in groups:
        dists.update(_distributions(group))
        manager = ExtensionManager(
            namespace=group, invoke_on_load=False, on_load_failure_callback=on_failure
        )
        for ext in manager.extensions:
            info = AddonInfo(name=ext.name, origin=_origin(ext, dists))
            manifest = ext.plugin
            if not isinstance(manifest, Addon):
                info.error = _l("the entry point does not lead to an Addon manifest but to %(obj)s", obj=repr(manifest))
            elif manifest.name != ext.name:
                info.error = _l("the entry point %(ep)s leads to a manifest called %(name)s", ep=repr(ext.name), name=repr(manifest.name))
            else:
                info.manifest = manifest
            if ext.name in found:
                info.error = _l("two distributions provide the addon %(name)s: %(other)s", name=repr(ext.name), other=found[ext.name].origin)
            found[ext.name] = info
    return resolve(found)


def resolve(found: dict[str, AddonInfo]) -> dict[str, AddonInfo]:
    """Mark missing dependencies, version mismatches and cycles; return the addons in dependency order."""
    for info in found.values():
        if not info.loadable:
            continue
        for dep in info.manifest.depends:
            try:
                dep_name, spec = parse_dependency(dep)
            except (ValueError, InvalidSpecifier):
                info.error = _l("invalid dependency %(dep)s", dep=repr(dep))
                break
            other = found.get(dep_name)
            if other is None:
                info.error = _l("depends on %(dep)s, which is not installed", dep=repr(dep_name))
                break
            if other.manifest is not None and spec:
                try:
                    ok = Version(other.manifest.version) in spec
                except InvalidVersion:
                    ok = False
                if not ok:
                    info.error = _l(
                        "depends on %(dep)s, but version %(version)s is installed",
                        dep=f"{dep_name}{spec}",
                        version=other.manifest.version,
                    )
                    break

    graph = {name: set(info.depends) for name, info in found.items() if info.loadable}
    while True:
        sorter = graphlib.TopologicalSorter(graph)
        try:
            order = list(sorter.static_order())
            break
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            text = " -> ".join(cycle)
            for name in set(cycle):
                found[name].error = _l("dependency cycle: %(cycle)s", cycle=text)
                graph.pop(name, None)
            for deps in graph.values():
                deps.difference_update(cycle)

    # In dependency order: a broken dependency (including one that failed to import its modules just
    # now) breaks its dependents.
    for name in order:
        info = found.get(name)
        if info is None or not info.loadable:
            continue
        broken = [dep for dep in info.depends if not found[dep].loadable]
        if broken:
            info.error = _l("depends on %(dep)s, which is broken", dep=repr(broken[0]))
        else:
            _import_parts(info)

    for info in found.values():
        for dep in info.depends:
            if dep in found:
                found[dep].dependents.add(info.name)

    ordered = [n for n in order if n in found]
    ordered += sorted(n for n in found if n not in ordered)
    return {n: found[n] for n in ordered}


def _import_parts(info: AddonInfo) -> None:
    """Import the modules a manifest names, so that import errors show as a broken addon."""
    manifest = info.manifest
    try:
        for module in (manifest.models, *manifest.hook_modules, manifest.hookspecs):
            if module:
                importlib.import_module(module)
        if manifest.blueprint:
            load_object(manifest.blueprint)
    except Exception as exc:  # noqa: BLE001 - any failure of third-party code is reported, not fatal
        log.warning("addon %s failed to import: %s", info.name, exc)
        info.error = f"{type(exc).__name__}: {exc}"


def load_object(reference: str):
    """``"package.module:attribute"`` -> the attribute."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    obj = module
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


def discover_editions(group: str = EDITION_GROUP) -> dict[str, Edition]:
    """Every edition of the ``mosaic.editions`` group, by name. A broken entry point is logged and skipped."""
    editions: dict[str, Edition] = {}

    def on_failure(_manager, entry_point, exc):
        log.warning("edition %s failed to load: %s", entry_point.name, exc)

    for ext in ExtensionManager(namespace=group, invoke_on_load=False, on_load_failure_callback=on_failure):
        if isinstance(ext.plugin, Edition):
            editions[ext.name] = ext.plugin
        else:
            log.warning("edition entry point %s is not an Edition", ext.name)
    return editions
