"""Sales: the opportunity list and record page (stage path, guidance, what is missing for the next stages, moves
with reasons, the stage history with durations).

The list pages by keyset on ``(owner_id, id)``/``id`` (newest first) within visibility, with a search on the
name's key and filters on status and stage. The form creates (at the first stage of the default process, whose
required fields it checks) and edits; the stage itself changes only through a move.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.crm import normalise
from core.crm.normalise import prefix_upper_bound
from core.crm.picklists import picklist_choices
from core.crm.visibility import get_visible, get_visible_or_404, visible_to
from core.extensions import db
from core.security import permission_required

from . import stages
from .forms import OpportunityForm
from .hooks import READ, WRITE
from .models import STATUSES, Opportunity, Stage, StageChange
from .opportunities import create_opportunity, default_close_date
from .views import bp

PAGE = 50


def money(value) -> str:
    return "" if value is None else f"{value:,.2f}"


@bp.route("/", endpoint="index")
@permission_required(READ)
def index():
    args = request.args
    stmt = select(Opportunity)
    status = args.get("status") or ""
    if status in STATUSES:
        stmt = stmt.where(Opportunity.status == status)
    stage_id = args.get("stage", type=int)
    if stage_id:
        stmt = stmt.where(Opportunity.stage_id == stage_id)
    query = (args.get("q") or "").strip()
    if query:
        key = normalise.search_key(query)
        stmt = stmt.where(Opportunity.search_name >= key, Opportunity.search_name < prefix_upper_bound(key))
    before = args.get("before", type=int)
    if before:
        stmt = stmt.where(Opportunity.id < before)
    stmt = visible_to(current_user, stmt, Opportunity).order_by(Opportunity.id.desc()).limit(PAGE + 1)
    rows = list(db.session.execute(stmt).unique().scalars())
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    stage_choices = [(s.id, stages.stage_label(s.name)) for s in stages.default_process().stages if s.active]
    return render_template("crm_sales/opportunity_list.html", rows=rows, more=more, args=args, money=money,
                           statuses=stages.KIND_LABELS, stage_choices=stage_choices, stage_label=stages.stage_label,
                           next_before=rows[-1].id if rows and more else None)


@bp.route("/<int:opportunity_id>", endpoint="view")
@permission_required(READ)
def view(opportunity_id: int):
    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id)
    return _record(opportunity)


def _record(opportunity, error: str | None = None, missing=(), status: int = 200):
    process = opportunity.process
    path = [(stage, stages.missing_fields(opportunity, stage)) for stage in process.stages if stage.active]
    history = db.session.execute(
        select(StageChange).where(StageChange.opportunity_id == opportunity.id).order_by(StageChange.id)
    ).scalars().all()
    names = {stage.id: stages.stage_label(stage.name) for stage in process.stages}
    return render_template("crm_sales/opportunity_record.html", opp=opportunity, path=path, history=history,
                           names=names, money=money, stage_label=stages.stage_label, error=error,
                           missing=list(missing), reasons=picklist_choices(stages.LOST_REASON),
                           can_move=current_user.can(WRITE)), status


@bp.route("/<int:opportunity_id>/move", methods=["POST"], endpoint="move")
@permission_required(WRITE)
def move(opportunity_id: int):
    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id, access="write")
    stage = db.session.get(Stage, request.form.get("stage_id", type=int) or 0)
    if stage is None:
        abort(400)
    try:
        stages.move(opportunity, stage, current_user, reason=request.form.get("reason") or None,
                    note=(request.form.get("note") or "")[:2000])
    except stages.StageError as exc:
        db.session.rollback()
        opportunity = db.session.get(Opportunity, opportunity_id)
        return _record(opportunity, error=str(exc), missing=exc.missing, status=400)
    db.session.commit()
    flash(_("Moved to “%(stage)s”.", stage=stages.stage_label(stage.name)), "success")
    return redirect(url_for("crm_sales.view", opportunity_id=opportunity.id))


def customer_panel(customer, user):
    """The 360° view's panel: the customer's opportunities the reader may see, open ones first, newest first."""
    stmt = select(Opportunity).where(Opportunity.customer_id == customer.id)
    stmt = visible_to(user, stmt, Opportunity).order_by((Opportunity.status == "open").desc(),
                                                         Opportunity.id.desc()).limit(50)
    rows = list(db.session.execute(stmt).unique().scalars())
    return render_template("crm_sales/_customer_panel.html", rows=rows, money=money, stage_label=stages.stage_label,
                           customer=customer)


# -- the form ----------------------------------------------------------------------------------------------------
def _form_page(form, opportunity=None, error: str | None = None, status: int = 200):
    return render_template("crm_sales/opportunity_form.html", form=form, opp=opportunity, error=error), status


def _apply(form, opportunity_or_values, user):
    """The form's values checked against the database (customer visible, contact of that customer, owner
    active); ``None`` with the fields' errors set."""
    from core.crm.customer_views import resolve_customer, resolve_owner
    from core.crm.models import Contact

    customer = resolve_customer(form.customer, user)
    owner = resolve_owner(form.owner, user)
    contact_id = int(form.contact_id.data) if (form.contact_id.data or "").isdigit() else None
    if contact_id is not None and customer is not None:
        if db.session.scalar(select(Contact.customer_id).where(Contact.id == contact_id)) != customer.id:
            form.contact_id.errors = [*form.contact_id.errors,
                                      _("The decision maker must be a contact of the opportunity's customer.")]
            return None
    if customer is None or owner is None:
        return None
    return {"name": form.name.data.strip(), "customer_id": customer.id, "contact_id": contact_id,
            "amount": form.amount.data, "currency": form.currency.data, "close_date": form.close_date.data,
            "source": form.source.data or None, "budget_known": bool(form.budget_known.data),
            "budget": form.budget.data, "pain_points": form.pain_points.data or "", "goals": form.goals.data or "",
            "purchase_date": form.purchase_date.data, "expense_budget": form.expense_budget.data,
            "description": form.description.data or "", "owner_id": owner.id}


def _customer_id_of(form) -> int | None:
    from core.crm import lists

    return lists.reference_id(form.customer.data or "")


@bp.route("/new", methods=["GET", "POST"], endpoint="new")
@permission_required(WRITE)
def new():
    from core.crm.customer_views import customer_ref
    from core.crm.models import Customer

    form = OpportunityForm()
    if request.method == "GET":
        customer = get_visible(current_user, Customer, request.args.get("customer_id", type=int) or 0)
        form.customer.data = customer_ref(customer)
        form.close_date.data = default_close_date()
        from core.crm import money as money_module

        form.currency.data = money_module.company_currency()
    form.set_choices(_customer_id_of(form))
    if not form.validate_on_submit():
        return _form_page(form, status=400 if request.method == "POST" else 200)
    values = _apply(form, None, current_user)
    if values is None:
        return _form_page(form, status=400)
    try:
        opportunity = create_opportunity(values, user=current_user)
    except stages.StageError as exc:
        db.session.rollback()
        return _form_page(form, error=str(exc), status=400)
    db.session.commit()
    flash(_("Opportunity “%(name)s” created.", name=opportunity.name), "success")
    return redirect(url_for("crm_sales.view", opportunity_id=opportunity.id))


@bp.route("/<int:opportunity_id>/edit", methods=["GET", "POST"], endpoint="edit")
@permission_required(WRITE)
def edit(opportunity_id: int):
    from core.crm.customer_views import customer_ref

    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id, access="write")
    form = OpportunityForm(obj=opportunity)
    if request.method == "GET":
        form.customer.data = customer_ref(opportunity.customer)
        form.owner.data = f"{opportunity.owner.label} #{opportunity.owner_id}" if opportunity.owner else ""
        form.contact_id.data = str(opportunity.contact_id or "")
    form.set_choices(_customer_id_of(form) or opportunity.customer_id, opportunity)
    if not form.validate_on_submit():
        return _form_page(form, opportunity, status=400 if request.method == "POST" else 200)
    values = _apply(form, opportunity, current_user)
    if values is None:
        return _form_page(form, opportunity, status=400)
    for key, value in values.items():
        setattr(opportunity, key, value)
    db.session.commit()
    flash(_("Opportunity “%(name)s” saved.", name=opportunity.name), "success")
    return redirect(url_for("crm_sales.view", opportunity_id=opportunity.id))
