"""Contracts: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "crm_contract.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the Contracts app"), addon="crm_contract")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Contracts"), endpoint="crm_contract.index", permission=READ, order=30)]
