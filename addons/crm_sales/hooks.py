"""Sales: hook implementations of the opportunities area (permissions, menus, picklists, custom fields, the
record resolver). The other areas have modules of their own: ``hooks_quotes`` (quotes and orders),
``hooks_targets`` (targets, forecasts, expenses), ``hooks_reports`` (funnel, pipeline, dashboard) and
``hooks_data`` (REST API, import, merge, handover, lead conversion)."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

from . import opportunities  # noqa: F401 - the events keeping every opportunity's derived columns

READ = "crm_sales.app.read"
WRITE = "crm_sales.opportunity.write"
DELETE = "crm_sales.opportunity.delete"
#: define sales processes, their stages, required fields and guidance
PROCESS_MANAGE = "crm_sales.process.manage"
#: the visibility (and custom field, activity, recycle bin) object of opportunities
OBJECT = "opportunity"


@hookimpl
def register_permissions():
    return [
        Permission(READ, _l("Open the Sales app"), addon="crm_sales"),
        Permission(WRITE, _l("Create and edit opportunities, move them through the stages"), addon="crm_sales"),
        Permission(DELETE, _l("Delete opportunities"), addon="crm_sales"),
        Permission(PROCESS_MANAGE, _l("Define the sales processes and their stages"), addon="crm_sales"),
    ]


@hookimpl
def register_picklists():
    return opportunities.picklists()


@hookimpl
def register_custom_field_objects():
    from core.registry import CustomFieldObject

    from .models import Opportunity

    return [CustomFieldObject(name=OBJECT, model=Opportunity, label=_l("Opportunities"), order=40)]


@hookimpl
def resolve_record(object_name, record_id, user):
    """An opportunity (``"opportunity"``, id) the user may see: its name and page."""
    if object_name != OBJECT or user is None or not user.can(READ):
        return None
    from flask import url_for

    from core.crm.visibility import get_visible
    from core.registry import RecordRef

    from .models import Opportunity

    opportunity = get_visible(user, Opportunity, record_id)
    if opportunity is None:
        return None
    return RecordRef(label=opportunity.name, url=url_for("crm_sales.view", opportunity_id=opportunity.id))


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Opportunities"), endpoint="crm_sales.index", permission=READ, order=20)]


@hookimpl
def register_admin_links():
    """The sales processes (业务模式) settings page."""
    return [MenuItem(label=_l("Sales processes"), endpoint="crm_sales.processes", permission=PROCESS_MANAGE,
                     order=62)]


@hookimpl
def addon_enabled(name, app):
    """The default sales process with its ten stages, when crm_sales is enabled (idempotent)."""
    if name != "crm_sales":
        return
    from core.extensions import db

    from .stages import ensure_default_process

    ensure_default_process()
    db.session.commit()


@hookimpl
def register_customer_panels():
    from core.registry import CustomerPanel

    from .views_opportunities import customer_panel

    return [CustomerPanel(key="crm_sales.opportunities", title=_l("Opportunities"), render=customer_panel, order=50,
                          permission=READ)]


@hookimpl(trylast=True)  # after the core's demo users and roles exist
def load_demo_data(edition, language):
    from .demo import load

    load(language)
