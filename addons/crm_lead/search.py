"""The global search's leads (``register_search_providers``): name, pinyin initials, company, phone, e-mail
by prefix range scans on the indexed keys, within the reader's visibility."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from core.crm import lists
from core.crm.visibility import visible_to
from core.extensions import db
from core.registry import SearchHit

from .hooks import READ
from .lead_lists import extra_search
from .leads import status_label
from .models import Lead


def search_leads(user, query: str, limit: int) -> list[SearchHit]:
    if not user.can(READ):
        return []
    conditions = lists.text_conditions(query, (Lead.search_name, Lead.initials), Lead.phone_digits)
    conditions += extra_search(query)
    if not conditions:
        return []
    stmt = visible_to(user, select(Lead).where(or_(*conditions)), Lead)
    rows = db.session.execute(stmt.order_by(Lead.search_name, Lead.id).limit(limit)).unique().scalars()
    return [
        SearchHit(
            title=lead.name,
            url=url_for("crm_lead.view", lead_id=lead.id),
            kind=_("Lead"),
            subtitle=" · ".join(x for x in (lead.company, lead.mobile or lead.phone, status_label(lead.status),
                                            lead.owner.label if lead.owner else "") if x),
        )
        for lead in rows
    ]
