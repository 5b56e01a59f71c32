"""Merging duplicate leads (合并), through the core's merge page ``/merge/lead?ids=…``.

The core does the page (the surviving lead, each field's value), the audit trail, the recycle bin entry of
the others and the undo; this module says which fields are chosen, how their values read, and moves the
leads' activities (``Activity.related_object == "lead"``) to the survivor.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.crm.merge import move_rows
from core.crm.models import Activity
from core.crm.picklists import picklist_label
from core.registry import MergeObject

from .leads import LEAD_SOURCE, STATUS_LABELS
from .models import Lead

FIELDS = ("name", "company", "title", "mobile", "phone", "email", "website", "address", "region", "industry",
          "source", "campaign", "status", "owner_id", "description")
LABELS = {
    "company": _l("Company"), "website": _l("Website"), "address": _l("Address"), "source": _l("Lead source"),
    "campaign": _l("Campaign"), "status": _l("Status"), "description": _l("Description"),
}


def _formatters(_user) -> dict:
    def picklist(name):
        return lambda values: {v: picklist_label(name, v) for v in values}

    return {
        "source": picklist(LEAD_SOURCE),
        "region": picklist("region"),
        "industry": picklist("industry"),
        "status": lambda values: {v: str(STATUS_LABELS.get(v, v)) for v in values},
    }


def merge_object(write_permission: str, delete_permission: str) -> MergeObject:
    return MergeObject(
        name="lead", model=Lead, title=_l("Merge leads"), fields=FIELDS,
        permissions=(write_permission, delete_permission), list_endpoint="crm_lead.index",
        endpoint="crm_lead.view", id_arg="lead_id", labels=LABELS, formatters=_formatters,
    )


def move_activities(survivor_id: int, loser_ids) -> list:
    """The merged-away leads' activities (follow-ups, calls, visits) now belong to the survivor."""
    return [move_rows(Activity, "related_id", survivor_id, loser_ids, only=Activity.related_object == "lead")]
