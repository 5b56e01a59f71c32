"""Merging duplicate leads (合并), through the core's merge page ``/merge/lead?ids=…``.

The core does the page (the surviving lead, each field's value), the audit trail, the recycle bin entry of
the others and the undo; this module says which fields are chosen, how their values read, and moves the
leads' activities (``Activity.related_object == "lead"``) to the survivor.

A conversion is a unit: the status ``converted`` goes with the conversion's columns (``converted_at``,
``converted_customer_id``, ``converted_contact_id``, ``converted_records``, ``converted_by_id``) and the records
made of it (an opportunity's ``lead_id``), which are not merge fields. So a merge keeping them whole is the
only one done (:func:`check_conversion`, refused with a message otherwise): a converted lead can only be the
lead that stays — never merged away, never two converted leads at once — and it keeps its status.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.crm.merge import MergeRefused, move_rows
from core.crm.models import Activity
from core.crm.picklists import picklist_label
from core.extensions import db
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
        # a status taken from another lead comes with its reason and dates (a "disqualified" without its reason
        # would be counted under no reason by the reports, a "qualified" without its date in no period); an
        # owner with their team (the reports by team count the lead where its owner works)
        companions={"status": ("disqualify_reason", "qualified_at", "disqualified_at"), "owner_id": ("team_id",)},
    )


def _converted(lead: Lead) -> bool:
    """Converted: its status, or the conversion's columns (the status a merge may have just taken from another)."""
    return lead.status == "converted" or lead.converted_at is not None or lead.converted_by_id is not None


def check_conversion(survivor_id: int, loser_ids) -> None:
    """Refuse (:class:`~core.crm.merge.MergeRefused`) a merge that would split a conversion: a converted lead
    merged away (its status taken by another lead included), two converted leads, or a converted survivor
    taking another status. Run inside the merge, after the survivor took its chosen
    values; the page rolls everything back."""
    survivor = db.session.get(Lead, survivor_id)
    losers = [lead for lead in (db.session.get(Lead, i) for i in loser_ids) if lead is not None]
    if survivor is None:
        return
    converted = [lead for lead in losers if _converted(lead)]
    survivor_converted = survivor.converted_at is not None or survivor.converted_by_id is not None
    if len(converted) + survivor_converted > 1:
        raise MergeRefused(_("Two converted leads cannot be merged: each keeps its own conversion."))
    if converted:
        raise MergeRefused(_("“%(name)s” has been converted: it can only be the lead that stays. Choose it as "
                             "the record that stays, with its status.", name=converted[0].name))
    if survivor_converted and survivor.status != "converted":
        raise MergeRefused(_("A converted lead keeps the status “Converted”: choose its own status."))


def move_activities(survivor_id: int, loser_ids) -> list:
    """The merged-away leads' activities (follow-ups, calls, visits) now belong to the survivor — once the
    merge is known to keep any conversion whole (:func:`check_conversion`)."""
    check_conversion(survivor_id, loser_ids)
    return [move_rows(Activity, "related_id", survivor_id, loser_ids, only=Activity.related_object == "lead")]
