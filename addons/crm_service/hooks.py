"""Service: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "crm_service.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the Service app"), addon="crm_service")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Service"), endpoint="crm_service.index", permission=READ, order=40)]
