"""Sales records in the core's data-quality tools: customer and contact merges, handover, the recycle bin.

- Merging customers (contacts) moves their opportunities, quotes and orders (decision makers, quote and
  order contacts) to the survivor, set-based with :func:`core.crm.merge.move_rows` (undone from the bin).
- Handing a departing rep's records over moves all their opportunities (open and closed: the history goes
  with the customer), quotes, orders and expenses in one ``UPDATE`` per table; an opportunity's team follows
  its new owner's department (the funnel by team counts it there).
- Deleting a customer takes its opportunities, quotes and orders into the same bin entry (their lines,
  products, competitors and stage changes follow through ``ON DELETE CASCADE``); deleting an opportunity
  takes its expenses and only cuts the link of its quotes and orders; deleting a contact cuts the links.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core.crm import audit
from core.extensions import db
from core.models import User
from core.registry import HandoverResult, RecycleDependents

from .models import Expense, Opportunity, Order, Quote

#: (model, its object name, label) of the records a rep owns
OWNED = ((Opportunity, "crm_sales.opportunity", _l("Opportunities")), (Quote, "crm_sales.quote", _l("Quotes")),
         (Order, "crm_sales.order", _l("Orders")), (Expense, "crm_sales.expense", _l("Expenses")))


def merge_moves(object_name: str, survivor_id: int, loser_ids) -> list | None:
    from core.crm.merge import move_rows

    if object_name == "customer":
        return [move_rows(model, "customer_id", survivor_id, loser_ids) for model in (Opportunity, Quote, Order)]
    if object_name == "contact":
        return [move_rows(model, "contact_id", survivor_id, loser_ids) for model in (Opportunity, Quote, Order)]
    return None


def handover(from_user_id: int, to_user_id: int, dry_run: bool) -> list[HandoverResult]:
    results = []
    for model, object_name, label in OWNED:
        owned = model.owner_id == from_user_id
        if dry_run:
            count = db.session.scalar(select(func.count()).select_from(model).where(owned))
        else:
            values = {"owner_id": to_user_id}
            if model is Opportunity:
                values["team_id"] = db.session.scalar(select(User.department_id).where(User.id == to_user_id))
            audit.record_set_change(model, owned, values)  # before the UPDATE: the old owners
            count = db.session.execute(update(model).where(owned).values(values)
                                       .execution_options(synchronize_session=False)).rowcount
        results.append(HandoverResult(object=object_name, label=label, count=int(count or 0)))
    return results


def dependents(object_name: str) -> list[RecycleDependents] | None:
    if object_name == "customer":
        return [RecycleDependents(Opportunity, "customer_id", object="opportunity"),
                RecycleDependents(Quote, "customer_id", object="quote"),
                RecycleDependents(Order, "customer_id", object="order")]
    if object_name == "contact":
        return [RecycleDependents(model, "contact_id", detach=True) for model in (Opportunity, Quote, Order)]
    if object_name == "opportunity":
        return [RecycleDependents(Expense, "opportunity_id"),
                RecycleDependents(Quote, "opportunity_id", detach=True),
                RecycleDependents(Order, "opportunity_id", detach=True)]
    if object_name == "quote":
        return [RecycleDependents(Order, "quote_id", detach=True)]
    return None
