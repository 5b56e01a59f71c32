"""Sales: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "crm_sales.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the Sales app"), addon="crm_sales")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Sales"), endpoint="crm_sales.index", permission=READ, order=20)]
