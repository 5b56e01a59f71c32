"""The small value objects that hooks return (menu items, permissions, jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MenuItem:
    """An entry of the main menu or of the administration menu.

    :param label: lazily translated text.
    :param endpoint: Flask endpoint the entry links to (``"crm_lead.index"``).
    :param permission: a permission name the user needs to see the entry, or ``None``.
    :param order: position; lower comes first.
    :param icon: name of an icon in the core icon set (optional).
    """

    label: Any
    endpoint: str
    permission: str | None = None
    order: int = 100
    icon: str = ""


@dataclass(frozen=True)
class Permission:
    """A permission an admin can grant to a role.

    :param name: namespaced by the addon, ``"<addon>.<object>.<action>"``.
    :param label: lazily translated description.
    :param addon: the addon that defines it (``"core"`` for the core's own).
    """

    name: str
    label: Any
    addon: str = "core"


@dataclass(frozen=True)
class Job:
    """A scheduled job.

    :param id: namespaced by the addon, ``"<addon>:<job>"``.
    :param func: ``"module:function"``; imported when the job runs, called with no arguments inside an
        application context.
    :param trigger: an APScheduler trigger name: ``"interval"``, ``"cron"`` or ``"date"``.
    :param trigger_args: the trigger's arguments, e.g. ``{"minutes": 5}`` or ``{"hour": 2}``.
    :param title: lazily translated text for the admin's job page.
    """

    id: str
    func: str
    trigger: str = "interval"
    trigger_args: dict = field(default_factory=dict)
    title: Any = ""

    def __hash__(self) -> int:  # trigger_args is a dict
        return hash((self.id, self.func, self.trigger, tuple(sorted(self.trigger_args.items()))))


@dataclass(frozen=True)
class CustomerPanel:
    """A panel of the 360° customer view.

    :param key: unique, namespaced by the addon (``"crm_sales.opportunities"``).
    :param title: lazily translated heading.
    :param render: ``render(customer, user) -> Markup``: the panel's HTML.
    :param order: position; lower comes first.
    :param permission: a permission the user needs to see the panel, or ``None``.
    """

    key: str
    title: Any
    render: Any
    order: int = 100
    permission: str | None = None


@dataclass(frozen=True)
class SearchHit:
    """One result of the global search."""

    title: str
    url: str
    kind: Any = ""
    subtitle: str = ""


@dataclass(frozen=True)
class SearchProvider:
    """A search of the global search box: ``search(user, query, limit) -> list[SearchHit]``."""

    key: str
    label: Any
    search: Any
    order: int = 100


@dataclass(frozen=True)
class Picklist:
    """An admin-editable list of values (industry, region...).

    :param name: namespaced for addons (``"crm_lead.source"``); the core's are plain (``"industry"``).
    :param label: lazily translated name of the list.
    :param defaults: ``[(code, {"zh_CN": ..., "en": ..., "zh_TW": ...}), ...]`` created once.
    """

    name: str
    label: Any
    defaults: tuple = ()
