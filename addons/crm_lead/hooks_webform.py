"""Leads: hook implementations of the web-to-lead area (permission, settings link, rate-limit job)."""

from flask_babel import lazy_gettext as _l

from core import Job, MenuItem, Permission, hookimpl

from . import webform_models  # noqa: F401 - the web forms' tables join the metadata

MANAGE = "crm_lead.webform.manage"


@hookimpl
def register_permissions():
    return [Permission(MANAGE, _l("Design web forms (web-to-lead)"), addon="crm_lead")]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Web forms"), endpoint="crm_lead.webforms", permission=MANAGE, order=62)]


@hookimpl
def register_jobs():
    return [Job(id="crm_lead:webform_hits", func="addons.crm_lead.webforms:prune_hits", trigger="interval",
                trigger_args={"hours": 1}, title=_l("Remove old web form rate-limit counters"))]
