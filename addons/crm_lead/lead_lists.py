"""The lead list and the reminder list (core.crm.lists specs), their bulk actions and the CSV/XLSX export.

Both lists run on the core's list engine: visibility first, whitelisted filters, keyset pages on the
model's ``(owner_id, sort column, id)`` indexes (a manager's list is one short range scan per team member).
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from flask_login import current_user
from sqlalchemy import and_
from sqlalchemy.orm import aliased, joinedload

from core.crm import dedup_normalise, lists, merge
from core.crm.normalise import prefix_upper_bound
from core.extensions import db
from core.models import User
from core.timeutil import utcnow

from . import followup
from .hooks import DELETE, READ, WRITE
from .leads import LEAD_SOURCE, STATUS_LABELS
from .models import Lead


# -- filters ------------------------------------------------------------------------------------------
def _prefix(column, key: str):
    return and_(column >= key, column < prefix_upper_bound(key))


def extra_search(q: str) -> list:
    """Besides name, initials and phone: the company (its key, ``上海某某`` finds 某某科技) and the e-mail."""
    conditions = []
    company = dedup_normalise.name_key(q)
    if company:
        conditions.append(_prefix(Lead.company_key, company))
    if "@" in q:
        conditions.append(_prefix(Lead.email_key, dedup_normalise.email_key(q)))
    return conditions


def created_within(text, _user=None):
    """``created=30``: created in the last 30 days."""
    return Lead.created_at >= utcnow() - timedelta(days=followup.parse_days(text))


def not_contacted_for(text, _user=None):
    """``idle=30``: not contacted (nor created) in the last 30 days."""
    return followup.idle_condition(followup.parse_days(text))


# -- bulk actions -------------------------------------------------------------------------------------
def _has_assignment() -> bool:
    return importlib.util.find_spec(f"{__package__}.assignment") is not None


def assign_to(records: list[Lead], owner, *, by_user) -> str | None:
    """Give ``records`` to ``owner`` through the assignment area (:func:`.assignment.assign`: permission,
    team, time, the new owner's notification) — or, without it, by setting owner and team. Returns the
    translated reason when ``by_user`` may not (nothing changed), else ``None``."""
    if _has_assignment():
        from .assignment import AssignError, assign

        try:
            assign(records, owner.id, by_user=by_user)
        except AssignError as exc:
            return str(exc)
        return None
    now = utcnow()
    for lead in records:
        lead.owner_id, lead.team_id, lead.assigned_at, lead.in_pool = owner.id, owner.department_id, now, False
    return None


def _assign_action(records, form):
    owner_id = lists.reference_id(form.get("owner"))
    owner = db.session.get(User, owner_id) if owner_id else None
    if owner is None or not owner.active:
        return 0, _l("Pick the new owner among the active users.")
    if not lists.may_give_to(current_user, "lead", owner):  # the rule of the forms, the API and the import
        return 0, lists.owner_refusal(owner)
    changed = [lead for lead in records if lead.owner_id != owner.id or lead.in_pool]
    error = assign_to(changed, owner, by_user=current_user) if changed else None
    return (0, error) if error else (len(changed), None)


def assignment_actions() -> tuple:
    """The assignment area's bulk actions ("Assign to…", "Return to the lead pool"), or a plain "Assign
    owner" while that area is absent."""
    if _has_assignment():
        from .assignment import bulk_actions

        return tuple(bulk_actions())
    return (lists.BulkAction("assign_owner", _l("Assign owner"), WRITE, _assign_action),)


SORTS = {
    "name": Lead.search_name,
    "status": Lead.status,
    "source": Lead.source,
    "region": Lead.region,
    "created": Lead.created_at,
    "contacted": Lead.last_contacted_at,
    "touched": Lead.touched_at,
}

LEADS = lists.ListSpec(
    model=Lead,
    sorts=SORTS,
    default_sort="-created",
    # "lead_source", not "source": the export's URL (/export/<source>.csv) has a "source" of its own
    filters={"status": Lead.status, "lead_source": Lead.source, "region": Lead.region, "industry": Lead.industry,
             "team": Lead.team_id},
    conditions={"created": created_within, "idle": not_contacted_for},
    search_columns=(Lead.search_name, Lead.initials),
    phone_column=Lead.phone_digits,
    extra_search=extra_search,
    custom_object="lead",
    object_name="lead",
    # the owner's name only: not their roles (User.roles loads eagerly elsewhere)
    options=(joinedload(Lead.owner).lazyload(User.roles),),
    bulk_actions=(*assignment_actions(), lists.delete_action(DELETE), merge.merge_action("lead", WRITE)),
)

#: the reminders: open leads not contacted for ``days`` days (or overdue by their visit frequency), the
#: longest idle first
REMINDERS = lists.ListSpec(
    model=Lead,
    sorts={"touched": Lead.touched_at},
    default_sort="touched",
    filters={"status": Lead.status},
    conditions={"days": followup.not_contacted, "overdue": followup.overdue},
    search_columns=(Lead.search_name, Lead.initials),
    phone_column=Lead.phone_digits,
    object_name="lead.reminders",
    options=(joinedload(Lead.owner).lazyload(User.roles),),
)


# -- export -------------------------------------------------------------------------------------------
def export_source():
    from core.crm.export import (
        Column,
        ExportSource,
        cell,
        labels_of,
        local_time,
        mapped,
        owner_column,
        picklist_labels,
        user_timezone,
    )
    from core.crm.export_views import list_rows

    owner = aliased(User, name="lead_owner")

    def columns(user):
        tz = local_time(user_timezone())
        c = Lead
        text = [(key, label, getattr(c, key)) for key, label in (
            ("name", _l("Name")), ("company", _l("Company")), ("title", _l("Job title")),
            ("mobile", _lp("phone number", "Mobile")), ("phone", _l("Phone")), ("email", _l("Email")))]
        return [
            Column("id", _l("ID"), (c.id.label("l_id"),), cell("l_id"), "number"),
            *[Column(key, label, (col.label(key),), cell(key)) for key, label, col in text],
            Column("source", _l("Source"), (c.source.label("source"),), mapped("source", picklist_labels(LEAD_SOURCE))),
            Column("status", _l("Status"), (c.status.label("status"),), mapped("status", labels_of(STATUS_LABELS))),
            Column("region", _l("Region"), (c.region.label("region"),), mapped("region", picklist_labels("region"))),
            Column("industry", _l("Industry"), (c.industry.label("industry"),),
                   mapped("industry", picklist_labels("industry"))),
            Column("campaign", _l("Campaign"), (c.campaign.label("campaign"),), cell("campaign")),
            owner_column(owner),
            Column("created_at", _l("Created"), (c.created_at.label("created_at"),), cell("created_at", tz),
                   "datetime"),
            Column("last_contacted_at", _l("Last contacted"), (c.last_contacted_at.label("last_contacted_at"),),
                   cell("last_contacted_at", tz), "datetime"),
        ]

    return ExportSource(
        name="crm_lead.leads", label=_l("Leads"), permission=READ, model=Lead, rows=list_rows(LEADS),
        columns=columns, custom_object="lead", order=50,
        joins=lambda stmt: stmt.outerjoin(owner, owner.id == Lead.owner_id),
    )
