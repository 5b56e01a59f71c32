"""Leads: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "crm_lead.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the Leads app"), addon="crm_lead")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Leads"), endpoint="crm_lead.index", permission=READ, order=10)]
