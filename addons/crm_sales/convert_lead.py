"""Sales: what a converted lead becomes here — an opportunity in the default sales process (issue item 9).

crm_lead calls its ``lead_converted`` hook inside the conversion's transaction (addons/crm_lead/hookspecs.py);
crm_lead never imports this addon. The form's inputs come from ``crm_lead_conversion_options``: a checkbox
"Create an opportunity" (on by default) and its name (the lead's company, else its name).
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.crm import custom_fields

from . import stages
from .hooks import OBJECT, WRITE
from .opportunities import create_opportunity


def conversion_options(lead, user) -> list[dict] | None:
    if user is None or not user.can(WRITE):
        return None
    return [
        {"name": "opportunity", "label": _l("Create an opportunity"), "type": "checkbox", "default": True,
         "help": _l("In the default sales process, at its first stage.")},
        {"name": "opportunity_name", "label": _l("Opportunity name"), "type": "text",
         "default": lead.company or lead.name},
    ]


def lead_converted(lead, customer, contact, user, options, owner_id=None) -> dict | None:
    """The opportunity of a converted lead, or ``None`` when the user unticked it (or may not create one).

    It belongs to the conversion's owner (``owner_id``), like the customer and contact the conversion made —
    not to the lead's owner when the user chose another."""
    if not options.get("opportunity") or user is None or not user.can(WRITE):
        return None
    owner_id = owner_id or lead.owner_id or user.id
    name = (options.get("opportunity_name") or lead.company or lead.name or "").strip()[:255]
    process = stages.default_process()
    opportunity = create_opportunity(
        {"name": name or _("Opportunity"), "customer_id": customer.id,
         "contact_id": contact.id if contact is not None else None,
         "owner_id": owner_id, "source": "lead", "lead_id": lead.id,
         "description": lead.description or ""},
        user=user, stage=stages.first_stage(process), check=False)
    _carry_custom(lead, opportunity, user)
    return {OBJECT: opportunity.id}


def _carry_custom(lead, opportunity, user) -> None:
    """The lead's custom field values whose key opportunities also define (refused values are skipped)."""
    try:
        values = custom_fields.get_values(lead)
    except ValueError:  # leads carry no custom fields here
        return
    known = {d.key for d in custom_fields.definitions(OBJECT)}
    for key, value in values.items():
        if key in known:
            try:
                custom_fields.set_values(opportunity, {key: value}, user=user)
            except custom_fields.CustomFieldErrors:
                pass
