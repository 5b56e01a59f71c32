"""Leads: hook implementations of the convert area (qualify, disqualify, convert; API; merge; recycle bin;
the customer 360° panel)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core import Permission, hookimpl
from core.registry import CustomerPanel, RecycleDependents

from .convert import CONVERT
from .models import Lead


@hookimpl
def register_permissions():
    return [Permission(CONVERT, _l("Convert leads into customers and contacts"), addon="crm_lead")]


@hookimpl
def register_api_resources():
    from .api import lead_resource

    return [lead_resource()]


@hookimpl
def register_customer_panels():
    from .views_convert import leads_panel

    return [CustomerPanel(key="crm_lead.leads", title=_l("Leads"), render=leads_panel, order=60,
                          permission="crm_lead.app.read")]


@hookimpl
def register_template_context():
    from .views_convert import conversion_info

    return {"crm_lead_conversion": conversion_info}


@hookimpl
def merge_records(object_name, survivor_id, loser_ids):
    """Leads converted into a merged-away customer (contact) now point at the surviving one — a contact only when
    it is a contact of the customer the lead was converted into (merged across customers, the lead's contact link
    is cleared instead, as every other link to a contact is: undoing the merge gives it back)."""
    from core.crm.merge import contact_fits, move_rows

    if object_name == "customer":
        return [move_rows(Lead, "converted_customer_id", survivor_id, loser_ids)]
    if object_name == "contact":
        return [move_rows(Lead, "converted_contact_id", survivor_id, loser_ids,
                          keep=contact_fits(Lead, survivor_id, column="converted_customer_id"))]
    return None


@hookimpl
def recycle_dependents(object_name, ids):
    """A converted lead is history: deleting its customer (contact) only cuts the link, and restoring the
    customer from the recycle bin puts it back. A deleted lead's activities (``related_object`` "lead") lose
    their link while it is in the bin — SQLite may give its number to a new lead, which must not show them —
    and get it back on restore, under the lead's new number if its own was taken."""
    from core.crm.models import Activity

    from .convert import ACTIVITY_OBJECTS

    if object_name == "customer":
        return [RecycleDependents(Lead, "converted_customer_id", detach=True)]
    if object_name == "contact":
        return [RecycleDependents(Lead, "converted_contact_id", detach=True)]
    if object_name == "lead":
        return [RecycleDependents(Activity, "related_id", detach=True,
                                  only=Activity.related_object.in_(ACTIVITY_OBJECTS), refers_to=Lead.__tablename__)]
    return None
