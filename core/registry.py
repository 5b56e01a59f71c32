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
