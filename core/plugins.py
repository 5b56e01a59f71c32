"""The plugin manager and the one place that decides which hook implementations run.

Every loadable addon's hooks module is registered with the plugin manager at start-up, under the addon's
name; the core's own features are registered too, as plugins that cannot be disabled (Datasette's
``DEFAULT_PLUGINS``). :class:`HookRelay` hands out hook callers that leave out the implementations of
disabled addons, so no implementation ever checks whether its addon is enabled.
"""

from __future__ import annotations

import importlib
import threading

import pluggy

from core import hookspecs

# The core's features that are written as hook implementations. They always run.
CORE_PLUGINS = (
    "core.core_hooks",
    "core.crm.org",  # departments, data scopes, sharing rules, picklists
    "core.crm.customers",  # customers, contacts, the 360° view, lists and search
    "core.crm.activities",  # activities, agenda, calendar, reminders; products and currencies
    "core.crm.api",  # the REST API and its tokens
    "core.crm.handover",  # handover (交接) of a departing user's records
    "core.crm.pool",  # the public pool (公海): recycling job, pool page, claims
    "core.crm.recycle",  # the recycle bin (回收站): snapshots, restore, purge job
    "core.crm.merge",  # merging duplicates (合并) and its undo
    "core.crm.custom_field_views",  # custom fields (自定义字段): definitions page, the core's objects
    "core.crm.export_views",  # export of lists to CSV and XLSX
    "core.crm.dedup",  # duplicate rules (查重): objects, rules, checks, "Find duplicates"
    "core.crm.imports",  # import (导入) of customers and contacts from CSV and XLSX, with undo
    "core.notify_views",  # notifications (通知): the bell, the delivery retry job
)

# The core's blueprints, "module:attribute".
CORE_BLUEPRINTS = (
    "core.views.main:bp",
    "core.views.auth:bp",
    "core.views.admin:bp",
    "core.crm.org:bp",
    "core.crm.customers:bp",
    "core.crm.activities:bp",
    "core.crm.api:bp",
    "core.crm.handover:bp",
    "core.crm.pool:bp",
    "core.crm.recycle_views:bp",
    "core.crm.merge_views:bp",
    "core.crm.custom_field_views:bp",
    "core.crm.export_views:bp",
    "core.crm.dedup_views:bp",
    "core.crm.imports:bp",
    "core.notify_views:bp",
)


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("mosaic")
    pm.add_hookspecs(hookspecs)
    for dotted in CORE_PLUGINS:
        pm.register(importlib.import_module(dotted), name=dotted)
    return pm


def unknown_hooks(pm: pluggy.PluginManager, plugin) -> list[str]:
    """Names of the hook implementations of ``plugin`` that match no hookspec (typos)."""
    names = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.spec is None and not all(impl.optionalhook for impl in caller.get_hookimpls()):
            names.append(caller.name)
    return names


class HookRelay:
    """``relay.register_menu()`` calls the implementations of the core and of enabled addons only.

    ``disabled_plugins`` is a callable returning ``(version, plugins)``: a key that changes whenever the
    set changes, and the plugin objects to leave out.
    """

    def __init__(self, pm: pluggy.PluginManager, disabled_plugins):
        self._pm = pm
        self._disabled_plugins = disabled_plugins
        self._cache: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        key, remove = self._disabled_plugins()
        if not remove:
            return getattr(self._pm.hook, name)
        cache_key = (key, name)
        caller = self._cache.get(cache_key)
        if caller is None:
            with self._lock:
                if len(self._cache) > 512:
                    self._cache.clear()
                caller = self._pm.subset_hook_caller(name, remove_plugins=remove)
                self._cache[cache_key] = caller
        return caller


def flatten(results) -> list:
    """Collected hook results (lists, single items or ``None``) as one flat list."""
    out = []
    for result in results:
        if result is None:
            continue
        if isinstance(result, list | tuple):
            out.extend(result)
        else:
            out.append(result)
    return out
