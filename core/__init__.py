"""Mosaic CRM's host application: the addon framework and the shared CRM data.

What an addon author imports comes from here::

    from core import Addon, hookimpl, MenuItem, Permission, Job, permission_required
"""

from core.hookspecs import hookimpl, hookspec
from core.manifest import Addon, Edition
from core.registry import Job, MenuItem, Permission

__all__ = ["Addon", "Edition", "Job", "MenuItem", "Permission", "hookimpl", "hookspec", "permission_required", "public"]


def __getattr__(name):  # the web helpers import Flask-Login lazily
    if name == "permission_required":
        from core.security import permission_required

        return permission_required
    if name == "public":
        from core.app import public

        return public
    raise AttributeError(name)
