"""Leads: hook implementations of the leads area (permissions, menus, picklists, duplicate rules, custom
fields, search, the record resolver, export, demo data). The other areas have modules of their own
(``hooks_assign``, ``hooks_webform``, ``hooks_convert``)."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

from . import followup, leads  # noqa: F401 - the events keeping every lead's keys and contact times

READ = "crm_lead.app.read"
WRITE = "crm_lead.lead.write"
DELETE = "crm_lead.lead.delete"
SETTINGS = "crm_lead.settings.manage"
#: the visibility (and custom field, duplicate rule, activity, recycle bin) object of leads
OBJECT = "lead"


@hookimpl
def register_permissions():
    return [
        Permission(READ, _l("Open the Leads app"), addon="crm_lead"),
        Permission(WRITE, _l("Create and edit leads, log follow-ups"), addon="crm_lead"),
        Permission(DELETE, _l("Delete leads"), addon="crm_lead"),
        Permission(SETTINGS, _l("Manage the lead settings (visit frequency)"), addon="crm_lead"),
    ]


@hookimpl
def register_menu():
    return [
        MenuItem(label=_l("Leads"), endpoint="crm_lead.index", permission=READ, order=10),
        MenuItem(label=_l("Follow-up reminders"), endpoint="crm_lead.reminders", permission=READ, order=12),
    ]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Lead settings"), endpoint="crm_lead.settings", permission=SETTINGS, order=60)]


@hookimpl
def register_picklists():
    return leads.picklists()


@hookimpl
def register_duplicate_objects():
    from .duplicates import duplicate_object

    return [duplicate_object(WRITE)]


@hookimpl
def register_custom_field_objects():
    from core.registry import CustomFieldObject

    from .models import Lead

    return [CustomFieldObject(name=OBJECT, model=Lead, label=_l("Leads"), order=30)]


@hookimpl
def register_search_providers():
    from core.registry import SearchProvider

    from .search import search_leads

    return [SearchProvider(key="crm_lead.leads", label=_l("Leads"), search=search_leads, order=30)]


@hookimpl
def resolve_record(object_name, record_id, user):
    """A lead (``"lead"``, id) the user may see: its name and page (activities on leads link to it)."""
    if object_name != OBJECT or user is None or not user.can(READ):
        return None
    from flask import url_for

    from core.crm.visibility import get_visible
    from core.registry import RecordRef

    from .models import Lead

    lead = get_visible(user, Lead, record_id)
    if lead is None:
        return None
    label = f"{lead.name} · {lead.company}" if lead.company else lead.name
    return RecordRef(label=label, url=url_for("crm_lead.view", lead_id=lead.id))


@hookimpl
def register_export_sources():
    from .lead_lists import export_source

    return [export_source()]


@hookimpl(trylast=True)  # after the core's demo users and roles exist
def load_demo_data(edition, language):
    from .demo import load

    load(language)
