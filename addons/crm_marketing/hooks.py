"""Marketing: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "crm_marketing.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the Marketing app"), addon="crm_marketing")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Marketing"), endpoint="crm_marketing.index", permission=READ, order=50)]
