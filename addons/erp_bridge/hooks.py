"""ERP bridge: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "erp_bridge.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the ERP bridge app"), addon="erp_bridge")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("ERP bridge"), endpoint="erp_bridge.index", permission=READ, order=70)]
