"""Sales: the opportunity list and record page (stage path, guidance, what is missing for the next stages, moves
with reasons, the stage history with durations).

The list runs on the core's list engine (:data:`OPPORTUNITIES`, :mod:`core.crm.lists`) like the customer and
lead lists: visibility first, keyset pages on ``(owner_id, id)``/``id`` (newest first), a search on the name's key,
filters on status, stage, owner and the custom fields (``cf.<key>``), the custom fields chosen as columns, saved
views, and the same rows in its export (:func:`.data_links.export_source`). The form creates (in the process the
rep chooses, the default one preselected, at its first stage, whose required fields it checks) and edits, with the
product lines, competitors and custom fields; the process never changes afterwards and the stage changes only
through a move.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core.crm import conflicts, custom_fields, list_views, lists
from core.crm.models import Customer
from core.crm.money import amount_too_large, too_large_message
from core.crm.picklists import picklist_choices
from core.crm.visibility import get_visible, get_visible_or_404, visible_to
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.security import permission_required

from . import processes, stages
from .forms import OpportunityForm
from .hooks import OBJECT, READ, WRITE
from .models import STATUSES, Competitor, Opportunity, OpportunityProduct, Stage, StageChange
from .opportunities import create_opportunity, default_close_date
from .views import bp

CENT = Decimal("0.01")
#: the largest amount a Numeric(18, 2) column holds


def money(value) -> str:
    return "" if value is None else f"{value:,.2f}"


def _status_filter(value: str, _user=None):
    """``status=open|won|lost|abandoned``; any other value is not valid (``ValueError``) rather than ignored."""
    if value not in STATUSES:
        raise ValueError(value)
    return Opportunity.status == value


def _stage_filter(value: str, _user=None):
    """``stage=<id>``; what no stage id can be is not valid (``ValueError``) rather than ignored."""
    stage_id = ascii_int(value)
    if not stage_id or stage_id >= 2**31:
        raise ValueError(value)
    return Opportunity.stage_id == stage_id


OPPORTUNITIES = lists.ListSpec(
    model=Opportunity,
    sorts={"id": Opportunity.id, "close_date": Opportunity.close_date},
    default_sort="-id",
    conditions={"status": _status_filter, "stage": _stage_filter},
    search_columns=(Opportunity.search_name,),
    custom_object="opportunity",
    object_name="opportunity",
    # the row's customer name and owner in the page's query (not one query per row); not the owner's roles
    # nor the customer's own eager relationships
    options=(joinedload(Opportunity.owner).lazyload(User.roles),
             joinedload(Opportunity.customer).load_only(Customer.id, Customer.name).lazyload("*")),
)
#: the same filters without the reader's visibility, which the bulk delete adds with write access
_UNSCOPED = replace(OPPORTUNITIES, base=lambda _user: select(Opportunity))


def filtered(args, user=None):
    """``select(Opportunity)`` with the list's filters of ``args`` (``q``, ``status``, ``stage``, ``owner``, the
    custom fields' ``cf.…``); the caller adds visibility. The bulk delete takes all of it, after
    :func:`.data_links.bad_filter` refused a filter this would drop (so taking more than the list shows)."""
    params, errors = lists.normalise_params(OPPORTUNITIES, args)
    return lists.filtered_select(_UNSCOPED, user if user is not None else current_user, params, errors)


def _read_lookups(columns, rows) -> str:
    """Read the names of the page's lookup cells in one query per lookup column (a cell would read its own);
    ``""``, for the template to call it before the table."""
    for field in columns:
        if field.type == "lookup":
            values = [field.from_json((row.custom or {}).get(field.key)) for row in rows]
            custom_fields.lookup_labels(field.rules.get("target", "customer"), values)
    return ""


@bp.route("/", endpoint="index")
@permission_required(READ)
def index():
    from core.crm.customer_views import visible_customer_names

    from . import views_data  # imports this module

    stage_choices = [(str(s.id), stages.stage_label(s.name)) for s in stages.default_process().stages if s.active]
    return list_views.list_page(OPPORTUNITIES, "crm_sales.index", "crm_sales/opportunity_list.html",
                                money=money, statuses=stages.KIND_LABELS, stage_choices=stage_choices,
                                stage_label=stages.stage_label, max_bulk=views_data.MAX_BULK,
                                read_lookups=_read_lookups, customer_names=lambda rows: visible_customer_names(
                                    current_user, {row.customer_id for row in rows}))


@bp.route("/views", methods=["POST"], endpoint="save_view")
@permission_required(READ)
def save_view():
    return list_views.save_view(OPPORTUNITIES, "crm_sales.index")


@bp.route("/views/<int:view_id>/delete", methods=["POST"], endpoint="delete_view")
@permission_required(READ)
def delete_view(view_id: int):
    return list_views.delete_view(OPPORTUNITIES, "crm_sales.index", view_id)


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
    elsewhere = {i for c in history for i in (c.from_stage_id, c.to_stage_id) if i and i not in names}
    if elsewhere:  # stages of the process it was in before a change of process
        names.update({sid: stages.stage_label(name) for sid, name in
                      db.session.execute(select(Stage.id, Stage.name).where(Stage.id.in_(elsewhere)))})
    other_processes = [p for p in processes.active_processes() if p.id != process.id]
    return render_template("crm_sales/opportunity_record.html", opp=opportunity, path=path, history=history,
                           names=names, money=money, stage_label=stages.stage_label, error=error,
                           missing=list(missing), reasons=picklist_choices(stages.LOST_REASON),
                           can_move=current_user.can(WRITE), other_processes=other_processes), status


@bp.route("/<int:opportunity_id>/move", methods=["POST"], endpoint="move")
@permission_required(WRITE)
def move(opportunity_id: int):
    return _stage_form(opportunity_id, stages.move,
                       lambda stage: _("Moved to “%(stage)s”.", stage=stages.stage_label(stage.name)))


@bp.route("/<int:opportunity_id>/process", methods=["POST"], endpoint="change_process")
@permission_required(WRITE)
def change_process(opportunity_id: int):
    """Into another sales process, at the chosen stage of it (same checks as a move)."""
    return _stage_form(opportunity_id, stages.change_process,
                       lambda stage: _("Now in the sales process “%(process)s”, at the stage “%(stage)s”.",
                                       process=stages.stage_label(stage.process.name),
                                       stage=stages.stage_label(stage.name)))


def _stage_form(opportunity_id: int, action, done):
    """The record page's move forms: ``action(opportunity, stage, user, reason=…, note=…)``; a refusal shows the
    page again with the message and the missing fields (400), nothing changed."""
    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id, access="write")
    stage = db.session.get(Stage, ascii_int(request.form.get("stage_id")) or 0)
    if stage is None:
        abort(400)
    try:
        action(opportunity, stage, current_user, reason=request.form.get("reason") or None,
               note=(request.form.get("note") or "")[:2000])
    except stages.StageError as exc:
        db.session.rollback()
        opportunity = db.session.get(Opportunity, opportunity_id)
        return _record(opportunity, error=str(exc), missing=exc.missing, status=400)
    db.session.commit()
    flash(done(stage), "success")
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
# Product lines and competitors are sub-tables of fixed rows: a blank row to fill in, "add a row" buttons that
# submit the form back with one more (no JS needed; opportunity_form.js adds rows in place when it runs), a
# "remove" box per row. The amount stays what the rep typed, unless "amount = sum of the product lines" is ticked
# or the amount is left empty while there are lines: then it is Σ quantity × unit price, to the fen (half up).
# A unit price left empty is the product's list price (when the product is priced in the opportunity's currency).
# Everything — the opportunity, its lines, its competitors, its custom fields — is written in one transaction.
def line_amount(line) -> Decimal:
    """Quantity × unit price of a product line, to the fen (half up)."""
    return (Decimal(line.quantity) * Decimal(line.unit_price)).quantize(CENT, ROUND_HALF_UP)


def lines_total(opportunity) -> Decimal:
    """The sum of the opportunity's product lines (what "amount = sum of the product lines" sets)."""
    return sum((Decimal(line.quantity) * Decimal(line.unit_price) for line in opportunity.products),
               Decimal(0)).quantize(CENT, ROUND_HALF_UP)


@bp.context_processor
def _opportunity_lines_helpers():
    """What the record page's lines slot (_opportunity_lines.html) needs beyond ``opp`` and ``money``."""
    from core.crm import custom_fields

    return {"opportunity_custom_values": custom_fields.record_display, "opportunity_line_amount": line_amount,
            "opportunity_lines_total": lines_total}


def _build_form(opportunity=None, **formdata):
    """The form with the opportunity's custom fields (``cf_<key>``), filled from ``opportunity`` on a GET (or
    from ``formdata=``: the posted form as :meth:`core.crm.conflicts.EditGuard.formdata` gives it, ``None``:
    none)."""
    from core.crm import custom_field_forms

    form_class = custom_field_forms.extend_form(OpportunityForm, OBJECT, opportunity)
    data = custom_field_forms.form_data(OBJECT, opportunity)
    if opportunity is None:
        return form_class(data=data, **formdata)
    return form_class(obj=opportunity, data=data, **formdata)


def _line_total(line) -> Decimal | None:
    if line.quantity.data is None or line.unit_price.data is None:
        return None
    return (Decimal(line.quantity.data) * Decimal(line.unit_price.data)).quantize(CENT, ROUND_HALF_UP)


def _form_page(form, opportunity=None, error: str | None = None, status: int = 200):
    form.keep_blank_rows()
    return render_template("crm_sales/opportunity_form.html", form=form, opp=opportunity, error=error,
                           line_total=_line_total, money=money), status


def _add_row_requested(form) -> bool:
    """The "add a row" buttons: one more blank row, nothing checked, nothing saved."""
    products, competitors = "add_product" in request.form, "add_competitor" in request.form
    if products or competitors:
        form.add_blank_rows(products=int(products), competitors=int(competitors))
    return products or competitors


def _lines(form, opportunity, currency: str | None) -> tuple[list, list] | None:
    """``(product lines, competitors)`` of the rows filled in and not removed, each checked (the product exists
    and is sold; a price, a quantity); ``None`` with the rows' errors set."""
    from core.crm.models import Product

    held = {line.product_id for line in (opportunity.products if opportunity is not None else [])}
    rows = [entry.form for entry in form.products if not entry.form.remove.data and not entry.form.is_blank()]
    wanted = {n for row in rows if (n := ascii_int(row.product_id.data)) is not None}
    known = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(wanted or {0})))}
    ok, lines = True, []
    for row in rows:
        raw = str(row.product_id.data or "")
        product = known.get(ascii_int(raw))
        if product is None:
            row.product_id.errors = [*row.product_id.errors, _("Unknown product.")]
            ok = False
            continue
        if not product.active and product.id not in held:
            row.product_id.errors = [*row.product_id.errors,
                                     _("“%(name)s” is no longer sold.", name=product.name)]
            ok = False
            continue
        price = row.unit_price.data
        if price is None:
            if product.currency != currency:
                row.unit_price.errors = [*row.unit_price.errors, _(
                    "Give the unit price: the list price of “%(name)s” is in %(currency)s.", name=product.name,
                    currency=product.currency)]
                ok = False
                continue
            price = product.list_price
        lines.append((product.id, Decimal(row.quantity.data), Decimal(price)))
    competitors = [(row.name.data.strip(), row.price.data, (row.strengths.data or "").strip(),
                    (row.weaknesses.data or "").strip())
                   for row in (entry.form for entry in form.competitors)
                   if not row.remove.data and not row.is_blank()]
    return (lines, competitors) if ok else None


def _apply(form, opportunity_or_values, user):
    """The form's values checked against the database (customer visible, contact of that customer, owner
    active, products that exist, the amount or lines to sum); ``None`` with the fields' errors set.

    ``"products"`` and ``"competitors"`` of the result are the rows to write (:func:`_write_lines`)."""
    from core.crm.customer_views import resolve_customer, resolve_owner
    from core.crm.models import Contact

    opportunity = opportunity_or_values if isinstance(opportunity_or_values, Opportunity) else None
    customer = resolve_customer(form.customer, user, opportunity.customer if opportunity is not None else None)
    owner = resolve_owner(form.owner, user, opportunity.owner if opportunity is not None else None, "opportunity")
    contact_id = ascii_int(form.contact_id.data)
    ok = customer is not None and owner is not None
    if contact_id is not None and customer is not None:
        if db.session.scalar(select(Contact.customer_id).where(Contact.id == contact_id)) != customer.id:
            form.contact_id.errors = [*form.contact_id.errors,
                                      _("The decision maker must be a contact of the opportunity's customer.")]
            ok = False
    rows = _lines(form, opportunity, form.currency.data)
    if rows is None:
        return None
    lines, competitors = rows
    amount = form.amount.data
    if lines and (form.amount_from_lines.data or amount is None):
        amount = sum((quantity * price for _pid, quantity, price in lines), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
        if amount_too_large(amount):
            form.amount.errors = [*form.amount.errors, _("The sum of the product lines is too large.")]
            ok = False
    elif amount is None:
        form.amount.errors = [*form.amount.errors, _("Give the amount, or add product lines to sum.")]
        ok = False
    elif amount_too_large(amount):  # more than every database keeps exactly (SQLite: ~15 digits)
        form.amount.errors = [*form.amount.errors, too_large_message()]
        ok = False
    for field in (form.budget, form.expense_budget):
        if amount_too_large(field.data):
            field.errors = [*field.errors, too_large_message()]
            ok = False
    if not ok:
        return None
    return {"name": form.name.data.strip(), "customer_id": customer.id, "contact_id": contact_id,
            "amount": amount, "currency": form.currency.data, "close_date": form.close_date.data,
            "source": form.source.data or None, "budget_known": bool(form.budget_known.data),
            "budget": form.budget.data, "pain_points": form.pain_points.data or "", "goals": form.goals.data or "",
            "purchase_date": form.purchase_date.data, "expense_budget": form.expense_budget.data,
            "description": form.description.data or "", "owner_id": owner.id,
            "products": lines, "competitors": competitors}


def _write_lines(opportunity, lines, competitors) -> None:
    """Make the opportunity's product lines and competitors these rows (existing rows are reused in order)."""
    current = list(opportunity.products)
    for index, (product_id, quantity, price) in enumerate(lines):
        row = current[index] if index < len(current) else OpportunityProduct()
        row.product_id, row.quantity, row.unit_price = product_id, quantity, price
        if index >= len(current):
            opportunity.products.append(row)
    for row in current[len(lines):]:
        opportunity.products.remove(row)
    current = list(opportunity.competitors)
    for index, (name, price, strengths, weaknesses) in enumerate(competitors):
        row = current[index] if index < len(current) else Competitor()
        row.name, row.price, row.strengths, row.weaknesses = name, price, strengths, weaknesses
        if index >= len(current):
            opportunity.competitors.append(row)
    for row in current[len(competitors):]:
        opportunity.competitors.remove(row)


def _customer_id_of(form) -> int | None:
    from core.crm import lists

    return lists.reference_id(form.customer.data or "")


def _chosen_process(form):
    """The process chosen on the form (an active one; empty: the default); ``None`` with the field's error."""
    raw = (form.process_id.data or "").strip()
    if not raw:
        return stages.default_process()
    process = db.session.get(stages.SalesProcess, n) if (n := ascii_int(raw)) is not None else None
    if process is None or not process.active:
        form.process_id.errors = [*form.process_id.errors, _("Choose one of the active sales processes.")]
        return None
    return process


@bp.route("/new", methods=["GET", "POST"], endpoint="new")
@permission_required(WRITE)
def new():
    from core.crm import custom_field_forms
    from core.crm.customer_views import customer_ref
    from core.crm.models import Customer

    form = _build_form()
    if request.method == "GET":
        customer = get_visible(current_user, Customer, request.args.get("customer_id", type=int) or 0)
        form.customer.data = customer_ref(customer)
        form.close_date.data = default_close_date()
        from core.crm import money as money_module

        form.currency.data = money_module.company_currency()
        form.process_id.data = str(stages.default_process().id)
    form.set_choices(_customer_id_of(form))
    if request.method == "POST" and _add_row_requested(form):
        return _form_page(form)
    if not form.validate_on_submit():
        return _form_page(form, status=400 if request.method == "POST" else 200)
    values = _apply(form, None, current_user)
    if values is None:
        return _form_page(form, status=400)
    lines, competitors = values.pop("products"), values.pop("competitors")
    process = _chosen_process(form)
    if process is None:
        return _form_page(form, status=400)
    values["process_id"] = process.id
    try:
        opportunity = create_opportunity(values, user=current_user)
        _write_lines(opportunity, lines, competitors)
        stages.check_enter(opportunity, opportunity.stage)  # a first stage may require products or competitors
    except stages.StageError as exc:
        db.session.rollback()
        return _form_page(form, error=str(exc), status=400)
    if not custom_field_forms.apply(form, opportunity, current_user):
        db.session.rollback()
        return _form_page(form, status=400)
    db.session.commit()
    flash(_("Opportunity “%(name)s” created.", name=opportunity.name), "success")
    return redirect(url_for("crm_sales.view", opportunity_id=opportunity.id))


@bp.route("/<int:opportunity_id>/edit", methods=["GET", "POST"], endpoint="edit")
@permission_required(WRITE)
def edit(opportunity_id: int):
    from core.crm import custom_field_forms
    from core.crm.customer_views import customer_ref

    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id, access="write")

    def filled(form):  # as a new page shows the opportunity
        form.customer.data = customer_ref(opportunity.customer, current_user)
        form.owner.data = f"{opportunity.owner.label} #{opportunity.owner_id}" if opportunity.owner else ""
        form.contact_id.data = str(opportunity.contact_id or "")
        form.amount_from_lines.data = bool(opportunity.products) and lines_total(opportunity) == opportunity.amount
        return form

    guard = conflicts.EditGuard(opportunity)  # changed since the page was drawn: the current values where untouched
    form = _build_form(opportunity, formdata=guard.formdata(lambda: filled(_build_form(opportunity, formdata=None)),
                                                            {"owner_id": "owner", "customer_id": "customer"}))
    del form.process_id  # an opportunity stays in its process
    if request.method == "GET":
        filled(form)
    form.set_choices(_customer_id_of(form) or opportunity.customer_id, opportunity)
    if request.method == "POST" and _add_row_requested(form):
        return _form_page(form, opportunity)
    if not form.validate_on_submit():
        return _form_page(form, opportunity, status=400 if request.method == "POST" else 200)
    before = stages.snapshot(opportunity)
    values = _apply(form, opportunity, current_user)
    if values is None:
        return _form_page(form, opportunity, status=400)
    lines, competitors = values.pop("products"), values.pop("competitors")
    for key, value in values.items():
        setattr(opportunity, key, value)
    _write_lines(opportunity, lines, competitors)
    try:  # what the current stage requires stays filled in
        stages.check_kept(before, opportunity, opportunity.stage)
    except stages.StageError as exc:
        db.session.rollback()
        return _form_page(form, db.session.get(Opportunity, opportunity_id), error=str(exc), status=400)
    if not custom_field_forms.apply(form, opportunity, current_user):
        db.session.rollback()
        return _form_page(form, db.session.get(Opportunity, opportunity_id), status=400)
    if guard.check(current_user):  # changed by someone else since the form was shown
        db.session.rollback()
        return _form_page(form, db.session.get(Opportunity, opportunity_id), status=409)
    db.session.commit()
    flash(_("Opportunity “%(name)s” saved.", name=opportunity.name), "success")
    return redirect(url_for("crm_sales.view", opportunity_id=opportunity.id))
