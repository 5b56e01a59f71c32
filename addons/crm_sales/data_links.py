"""Sales records in the core's data-quality tools: customer and contact merges, handover, the recycle bin.

- Merging customers (contacts) moves their opportunities, quotes and orders (decision makers, quote and
  order contacts) to the survivor, set-based with :func:`core.crm.merge.move_rows` (undone from the bin).
- Handing a departing rep's records over moves all their opportunities (open and closed: the history goes
  with the customer), quotes, orders and expenses in one ``UPDATE`` per table; an opportunity's team follows
  its new owner's department (the funnel by team counts it there).
- Deleting a customer takes its opportunities, quotes and orders into the same bin entry (their lines,
  products, competitors and stage changes follow through ``ON DELETE CASCADE``); deleting an opportunity
  takes its expenses and only cuts the link of its quotes and orders; deleting a contact cuts the links.
- Merging opportunities (``/merge/opportunity``, :func:`merge_object`) keeps the survivor's stage and stage
  history; the others' products, competitors, expenses, quotes, orders and activities move to the survivor,
  and they go to the recycle bin with their own stage history (restoring the entry undoes the merge). The
  amount comes with its currency, the budget is converted into that currency, and a merge leaving the
  opportunity with a decision maker, quotes or orders of another customer is refused (:func:`check_merge`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core.crm import audit
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.registry import HandoverResult, RecycleDependents

from .models import Competitor, Expense, Opportunity, OpportunityProduct, Order, Quote

#: the attributes a merge picks a value for (the stage, its history and the status stay the survivor's)
#: the currency is not picked on its own: it goes with the amount it is the currency of (``companions``); the
#: budget, in the opportunity's currency too, is converted into it (``currency_amounts``)
MERGE_FIELDS = ("name", "customer_id", "contact_id", "amount", "close_date", "source", "owner_id",
                "budget_known", "budget", "pain_points", "goals", "purchase_date", "expense_budget", "description")
MERGE_LABELS = {"name": _l("Name"), "customer_id": _l("Customer"), "contact_id": _l("Decision maker"),
                "amount": _l("Amount"), "currency": _l("Currency"), "close_date": _l("Close date"),
                "source": _l("Source"), "budget_known": _l("Budget known"), "budget": _l("Budget"),
                "pain_points": _l("Pain points"), "goals": _l("Goals"),
                "purchase_date": _l("Expected purchase date"), "expense_budget": _l("Expense budget"),
                "description": _l("Description")}

#: (model, its object name, label) of the records a rep owns
OWNED = ((Opportunity, "crm_sales.opportunity", _l("Opportunities")), (Quote, "crm_sales.quote", _l("Quotes")),
         (Order, "crm_sales.order", _l("Orders")), (Expense, "crm_sales.expense", _l("Expenses")))


def merge_moves(object_name: str, survivor_id: int, loser_ids) -> list | None:
    from core.crm.merge import move_rows

    if object_name == "customer":
        return [move_rows(model, "customer_id", survivor_id, loser_ids) for model in (Opportunity, Quote, Order)]
    if object_name == "contact":  # a decision maker (quote, order contact) of the record's own customer only
        from core.crm.merge import contact_fits

        return [move_rows(model, "contact_id", survivor_id, loser_ids, keep=contact_fits(model, survivor_id))
                for model in (Opportunity, Quote, Order)]
    if object_name == "opportunity":
        from core.crm.models import Activity

        check_merge(survivor_id, loser_ids)
        return [*[move_rows(model, "opportunity_id", survivor_id, loser_ids)
                  for model in (OpportunityProduct, Competitor, Expense, Quote, Order)],
                move_rows(Activity, "related_id", survivor_id, loser_ids, only=Activity.related_object == "opportunity")]
    return None


def check_merge(survivor_id: int, loser_ids) -> None:
    """Refuse (:class:`~core.crm.merge.MergeRefused`) an opportunity merge whose result no form could save: a
    decision maker that is not a contact of the customer kept (both picked from different opportunities), or
    quotes or orders — the survivor's or the others', all of which it would hold — of another customer than the
    one kept. They are refused rather than detached: a quote's link to its opportunity is what the user sees
    of it, and the user decides which customer is right (keep it, or move the quotes first). Run inside the
    merge, after the survivor took its chosen values; the page rolls everything back."""
    from core.crm.merge import MergeRefused
    from core.crm.models import Contact

    survivor = db.session.get(Opportunity, survivor_id)
    if survivor is None:
        return
    if survivor.contact_id is not None and survivor.customer_id != db.session.scalar(
            select(Contact.customer_id).where(Contact.id == survivor.contact_id)):
        raise MergeRefused(_("The decision maker kept is not a contact of the customer kept: keep the customer and "
                             "the decision maker of the same opportunity."))
    ids = [survivor_id, *loser_ids]
    for model in (Quote, Order):
        other = db.session.scalar(select(model.id).where(model.opportunity_id.in_(ids),
                                                         model.customer_id != survivor.customer_id).limit(1))
        if other is not None:
            raise MergeRefused(_("Quotes or orders of another customer than the one kept are attached to these "
                                 "opportunities: keep that customer, or move them to another opportunity first."))


def _merge_formatters(user) -> dict:
    """How the merge page shows the values: the names of the customer and decision maker (``#id`` when the user
    may not see it), the source's label, yes or no, dates in the reader's format, and amounts as the rest of the
    app shows them, with their currency — the opportunity's for the amount and the budget, the company's for the
    expense budget (``expense_budget``)."""
    from flask_babel import format_date

    from core.crm.models import Contact, Customer
    from core.crm.money import company_currency
    from core.crm.picklists import picklist_label
    from core.crm.visibility import visible_to

    from .opportunities import SOURCE

    def names(model):
        def show(values):
            ids = {n for v in values if (n := ascii_int(v)) is not None}
            stmt = visible_to(user, select(model.id, model.name).where(model.id.in_(ids)), model)
            found = {str(i): name for i, name in db.session.execute(stmt)} if ids else {}
            return {v: found.get(v) or f"#{v}" for v in values}
        return show

    def yes_no(values):
        return {v: str(_l("Yes") if v == "true" else _l("No")) for v in values}

    def dates(values):
        return {v: format_date(date.fromisoformat(v)) for v in values}

    def amounts(field):
        return lambda values: _amounts(field, values, user, company_currency())

    return {"customer_id": names(Customer), "contact_id": names(Contact),
            "source": lambda values: {v: picklist_label(SOURCE, v) for v in values},
            "budget_known": yes_no, "close_date": dates, "purchase_date": dates,
            "amount": amounts("amount"), "budget": amounts("budget"), "expense_budget": amounts("expense_budget")}


def _amounts(field: str, values, user, company: str) -> dict:
    """``{text: "CNY 100,000.00"}`` of the amounts ``values`` of ``field``. A formatter sees the values, not the
    records: the currency is read from the records on the merge page (its ``ids``) that hold the value — left out
    when records in different currencies hold the same amount."""
    from flask import has_request_context, request

    from core.crm.visibility import visible_to

    from .views_opportunities import money

    if field == "expense_budget":
        held = {v: {company} for v in values}
    else:
        ids = {n for v in request.values.getlist("ids") if (n := ascii_int(v)) is not None} \
            if has_request_context() else set()
        column = getattr(Opportunity, field)
        stmt = visible_to(user, select(column, Opportunity.currency).where(Opportunity.id.in_(ids)), Opportunity)
        held = {}
        for amount, currency in (db.session.execute(stmt) if ids else ()):
            if amount is not None:
                held.setdefault(format(amount, "f"), set()).add(currency)
    shown = {}
    for text in values:
        number, currencies = money(Decimal(text)), held.get(text, set())
        shown[text] = f"{next(iter(currencies))} {number}" if len(currencies) == 1 else number
    return shown


def merge_object(write_permission: str, delete_permission: str):
    from core.registry import MergeObject

    return MergeObject(
        name="opportunity", model=Opportunity, title=_l("Merge opportunities"), fields=MERGE_FIELDS,
        permissions=(write_permission, delete_permission), list_endpoint="crm_sales.index",
        endpoint="crm_sales.view", id_arg="opportunity_id", labels=MERGE_LABELS, formatters=_merge_formatters,
        companions={"amount": ("currency",)},  # USD 100 taken beside a CNY currency would count as CNY 100
        # the budget is in the opportunity's currency: CNY 100,000 kept beside a USD amount becomes USD 13,333.33
        # at 7.5 CNY per USD (today's rates, as ``amount_company``); the merge is refused without a rate
        currency_amounts={"budget": "currency"},
    )


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


# -- export of the opportunity list ---------------------------------------------------------------------
def bad_filter(args) -> str | None:
    """The first of the list's filters in ``args`` that the list would drop (so showing more), else ``None``: a
    value it refuses, or a custom field's ``cf.…`` it no longer has (deactivated since the page was drawn). An
    action over "the list" refuses it rather than take a wider list."""
    from flask_login import current_user

    from core.crm import lists

    from .views_opportunities import OPPORTUNITIES

    known = OPPORTUNITIES.param_keys
    gone = [key for key in args if key.startswith("cf.") and key not in known]
    if gone:
        return gone[0]
    params, errors = lists.normalise_params(OPPORTUNITIES, args)
    lists.filtered_select(OPPORTUNITIES, current_user, params, errors)  # drops what it refuses from params
    return next((key for key in known if key != "sort" and str(args.get(key) or "").strip() and key not in params),
                None)


def export_source():
    """The opportunity list to CSV / XLSX (``/export/crm_sales.opportunities.csv?status=…``): the list's spec
    (:data:`.views_opportunities.OPPORTUNITIES`) — its filters, custom fields' included, sort and saved view, the
    reader's visibility, newest first; bad values and unknown parameters refused —, then every active custom
    field as a column; headers named as the import recognises them (an export re-imports by id)."""
    from sqlalchemy.orm import aliased

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
    from core.crm.export_views import list_rows, visible_name_column
    from core.crm.models import Contact, Customer

    from . import stages
    from .hooks import READ
    from .models import SalesProcess, Stage
    from .opportunities import SOURCE
    from .views_opportunities import OPPORTUNITIES

    owner = aliased(User, name="opp_owner")
    customer = aliased(Customer, name="opp_customer")
    contact = aliased(Contact, name="opp_contact")
    stage = aliased(Stage, name="opp_stage")
    process = aliased(SalesProcess, name="opp_process")

    def columns(user):
        tz = local_time(user_timezone())
        o = Opportunity
        return [
            Column("id", _l("ID"), (o.id.label("o_id"),), cell("o_id"), "number"),
            Column("name", _l("Name"), (o.name.label("name"),), cell("name")),
            visible_name_column("customer", _l("Customer"), user, customer, Customer, o.customer_id),
            visible_name_column("contact", _l("Decision maker"), user, contact, Contact, o.contact_id),
            Column("process", _l("Sales process"), (process.name.label("process_name"),),
                   cell("process_name", stages.stage_label)),
            Column("stage", _l("Stage"), (stage.name.label("stage_name"),), cell("stage_name", stages.stage_label)),
            Column("status", _l("Status"), (o.status.label("status"),), mapped("status", labels_of(stages.KIND_LABELS))),
            Column("probability", _l("Probability (%)"), (o.probability.label("probability"),), cell("probability"),
                   "number"),
            Column("amount", _l("Amount"), (o.amount.label("amount"),), cell("amount"), "number"),
            Column("currency", _l("Currency"), (o.currency.label("currency"),), cell("currency")),
            Column("amount_company", _l("Amount (company currency)"), (o.amount_company.label("amount_company"),),
                   cell("amount_company"), "number"),
            Column("close_date", _l("Close date"), (o.close_date.label("close_date"),), cell("close_date"), "date"),
            Column("source", _l("Source"), (o.source.label("source"),), mapped("source", picklist_labels(SOURCE))),
            owner_column(owner),
            Column("created_at", _l("Created"), (o.created_at.label("created_at"),), cell("created_at", tz),
                   "datetime"),
        ]

    return ExportSource(
        name="crm_sales.opportunities", label=_l("Opportunities"), permission=READ, model=Opportunity,
        rows=list_rows(OPPORTUNITIES),
        columns=columns, custom_object="opportunity", order=60,
        joins=lambda stmt: stmt.outerjoin(owner, owner.id == Opportunity.owner_id)
                               .outerjoin(customer, customer.id == Opportunity.customer_id)
                               .outerjoin(contact, contact.id == Opportunity.contact_id)
                               .outerjoin(stage, stage.id == Opportunity.stage_id)
                               .outerjoin(process, process.id == Opportunity.process_id),
    )
