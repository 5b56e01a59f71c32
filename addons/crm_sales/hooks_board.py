"""Sales: hook implementations of the kanban board and the close-date calendar."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, hookimpl

from .hooks import READ


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Pipeline board"), endpoint="crm_sales.board", permission=READ, order=21),
            MenuItem(label=_l("Close-date calendar"), endpoint="crm_sales.calendar", permission=READ, order=22)]
