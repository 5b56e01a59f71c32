"""Mobile: hook implementations."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

READ = "crm_mobile.app.read"


@hookimpl
def register_permissions():
    return [Permission(READ, _l("Open the Mobile app"), addon="crm_mobile")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Mobile"), endpoint="crm_mobile.index", permission=READ, order=60)]
