"""Sales: quotes and orders — the lists (visibility, keyset pages, export), the quote form with its lines, the
record pages with their steps (send, new version, reject, accept → order, delete to the recycle bin), the
printable quote (HTML and PDF), the order's status changes, and the panels of the opportunity and the
customer's 360° view. The rules live in :mod:`.quotes`."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.crm import audit, custom_field_forms, custom_fields, list_views, lists, recycle
from core.crm.customer_forms import ActionForm
from core.crm.visibility import get_visible, get_visible_or_404, visible_to
from core.extensions import db
from core.params import ascii_int
from core.security import permission_required

from . import quotes
from .hooks import READ
from .hooks_quotes import ORDER_DELETE, ORDER_WRITE, QUOTE_DELETE, QUOTE_OBJECT, QUOTE_WRITE
from .models import Opportunity, Order, Quote
from .quote_forms import MORE_ROWS, QuoteForm, blank_rows, lines_from_form, lines_of, product_choices
from .quote_lists import ORDERS, QUOTES, VERSIONS
from .views import bp

PANEL_LIMIT = 50


def money(value) -> str:
    return "" if value is None else f"{Decimal(value):,.2f}"


def qty(value) -> str:
    """A quantity or a percentage without its trailing zeros (``3.0000`` → ``3``, ``12.50`` → ``12.5``)."""
    if value is None:
        return ""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _labels() -> dict:
    return {"money": money, "qty": qty, "status_labels": quotes.status_labels(),
            "order_labels": quotes.order_status_labels(), "effective_status": quotes.effective_status}


def _context() -> dict:
    return {**_labels(), "action_form": ActionForm()}


# -- lists --------------------------------------------------------------------------------------------------
@bp.route("/quotes/", endpoint="quotes")
@permission_required(READ)
def quote_list():
    return list_views.list_page(QUOTES, "crm_sales.quotes", "crm_sales/quote_list.html", versions=VERSIONS,
                                **_labels())


@bp.route("/orders/", endpoint="orders")
@permission_required(READ)
def order_list():
    return list_views.list_page(ORDERS, "crm_sales.orders", "crm_sales/order_list.html", **_labels())


# -- the form -------------------------------------------------------------------------------------------------
def _form_page(form, rows, quote=None, error=None, status=200):
    return render_template("crm_sales/quote_form.html", form=form, rows=rows, quote=quote, error=error,
                           products=product_choices(), **_context()), status


def _header(form, quote) -> dict:
    """The form's header values checked against the database; raises :class:`.quotes.QuoteError`."""
    from core.crm.customer_views import resolve_owner

    customer_id = lists.reference_id(form.customer.data or "")
    contact_id = ascii_int(form.contact_id.data)
    opportunity_id = ascii_int(form.opportunity_id.data)
    if (form.contact_id.data or "") and contact_id is None or (form.opportunity_id.data or "") and \
            opportunity_id is None:
        raise quotes.QuoteError(_("The contact or the opportunity is not valid."))
    quotes.check_links(customer_id, contact_id, opportunity_id, form.currency.data, current_user)
    owner = resolve_owner(form.owner, quote.owner if quote is not None else current_user,
                          quote.owner if quote is not None else None, "quote")
    if owner is None:  # (the field says why: not an active user, or one the user may not give quotes to)
        raise quotes.QuoteError(form.owner.errors[-1] if form.owner.errors else
                                _("Pick an active user from the suggestions."))
    if form.valid_until.data and form.valid_until.data < form.quote_date.data:
        raise quotes.QuoteError(_("A quote cannot be valid until a day before its date."))
    return {"customer_id": customer_id, "contact_id": contact_id, "opportunity_id": opportunity_id,
            "currency": form.currency.data, "quote_date": form.quote_date.data, "valid_until": form.valid_until.data,
            "discount_percent": quotes.percent(form.discount_percent.data, _("Quote discount in percent")),
            "terms": form.terms.data or "", "notes": form.notes.data or "", "owner_id": owner.id}


def _save(form, quote=None):
    """POST of the form: "More lines" redraws it with more blank rows; a save checks everything, then writes
    the quote, its lines and custom values in one transaction (400 with a message, nothing written)."""
    original = quote
    rows = lines_from_form(request.form)
    if request.form.get("add_lines"):
        return _form_page(form, blank_rows(rows, MORE_ROWS), quote)
    if not form.validate_on_submit():
        return _form_page(form, rows, quote, error=_("Some fields are not valid."), status=400)
    try:
        values = _header(form, quote)
        lines = quotes.parse_lines(rows)
        if not lines:
            raise quotes.QuoteError(_("Add at least one line: a product or a description, a quantity and a price."))
        quotes.check_amounts(lines, values["discount_percent"])
        if quote is None:
            quote = quotes.create_quote(values, lines, current_user)
        else:
            quotes.update_quote(quote, values, lines)
    except quotes.QuoteError as exc:
        db.session.rollback()
        return _form_page(form, rows, original, error=str(exc), status=400)
    if not custom_field_forms.apply(form, quote, current_user):
        db.session.rollback()
        return _form_page(form, rows, original, error=_("Some fields are not valid."), status=400)
    db.session.commit()
    flash(_("Quote %(number)s saved.", number=quote.number), "success")
    return redirect(url_for("crm_sales.quote", quote_id=quote.id))


@bp.route("/quotes/new", methods=["GET", "POST"], endpoint="quote_new")
@permission_required(QUOTE_WRITE)
def quote_new():
    from core.crm.customer_views import customer_ref
    from core.crm.models import Customer

    data = custom_field_forms.form_data(QUOTE_OBJECT, None)
    rows = []
    if request.method == "GET":
        opp = get_visible(current_user, Opportunity, request.args.get("opportunity_id", type=int) or 0)
        customer = opp.customer if opp is not None else \
            get_visible(current_user, Customer, request.args.get("customer_id", type=int) or 0)
        from core.crm import money as money_module

        data.update(customer=customer_ref(customer), quote_date=date.today(),
                    valid_until=date.today() + timedelta(days=30),
                    currency=opp.currency if opp is not None else money_module.company_currency(),
                    opportunity_id=str(opp.id) if opp is not None else "",
                    contact_id=str(opp.contact_id or "") if opp is not None else "", discount_percent="0")
        if opp is not None:
            rows = [{"product_id": p.product_id, "description": p.product.name if p.product else "",
                     "quantity": p.quantity, "unit": p.product.unit if p.product else "", "unit_price": p.unit_price,
                     "discount_percent": "", "tax_percent": ""} for p in opp.products]
    form = custom_field_forms.extend_form(QuoteForm, QUOTE_OBJECT)(data=data)
    form.set_choices(lists.reference_id(form.customer.data or ""), current_user)
    if request.method == "POST":
        return _save(form)
    return _form_page(form, blank_rows(rows))


@bp.route("/quotes/<int:quote_id>/edit", methods=["GET", "POST"], endpoint="quote_edit")
@permission_required(QUOTE_WRITE)
def quote_edit(quote_id: int):
    from core.crm.customer_views import customer_ref

    quote = get_visible_or_404(current_user, Quote, quote_id, access="write")
    if quote.status != "draft":
        flash(_("Only a draft can be changed; make a new version instead."), "error")
        return redirect(url_for("crm_sales.quote", quote_id=quote.id))
    data = custom_field_forms.form_data(QUOTE_OBJECT, quote)
    data.update(customer=customer_ref(quote.customer, current_user), contact_id=str(quote.contact_id or ""),
                opportunity_id=str(quote.opportunity_id or ""), currency=quote.currency, quote_date=quote.quote_date,
                valid_until=quote.valid_until, discount_percent=str(quote.discount_percent), terms=quote.terms,
                notes=quote.notes, owner=f"{quote.owner.label} #{quote.owner_id}" if quote.owner else "")
    form = custom_field_forms.extend_form(QuoteForm, QUOTE_OBJECT, quote)(data=data)
    form.set_choices(lists.reference_id(form.customer.data or "") or quote.customer_id, current_user)
    if request.method == "POST":
        return _save(form, quote)
    return _form_page(form, blank_rows(lines_of(quote)), quote)


# -- the record page and its steps -------------------------------------------------------------------------
def _quote_page(quote, error=None, status=200):
    versions = db.session.execute(visible_to(current_user, select(Quote).where(Quote.number == quote.number), Quote)
                                  .order_by(Quote.version.desc())).unique().scalars().all()
    orders = db.session.execute(visible_to(current_user, select(Order).where(Order.quote_id == quote.id), Order)
                                .order_by(Order.id)).unique().scalars().all()
    writable = get_visible(current_user, Quote, quote.id, access="write") is not None
    return render_template("crm_sales/quote_record.html", quote=quote, versions=versions, orders=orders,
                           error=error, writable=writable, line_tax=quotes.line_tax,
                           custom_values=custom_fields.record_display(quote),
                           history=audit.describe(Quote, audit.history(Quote, quote.id), current_user),
                           **_context()), status


@bp.route("/quotes/<int:quote_id>", endpoint="quote")
@permission_required(READ)
def quote_view(quote_id: int):
    return _quote_page(get_visible_or_404(current_user, Quote, quote_id))


def _step(quote_id: int, run, done_message):
    quote = get_visible_or_404(current_user, Quote, quote_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        target = run(quote)
    except quotes.QuoteError as exc:
        db.session.rollback()
        return _quote_page(db.session.get(Quote, quote_id), error=str(exc), status=400)
    db.session.commit()
    flash(done_message(target), "success")
    if isinstance(target, Order):
        return redirect(url_for("crm_sales.order", order_id=target.id))
    return redirect(url_for("crm_sales.quote", quote_id=target.id))


@bp.route("/quotes/<int:quote_id>/send", methods=["POST"], endpoint="quote_send")
@permission_required(QUOTE_WRITE)
def quote_send(quote_id: int):
    return _step(quote_id, quotes.send, lambda q: _("Quote %(number)s marked as sent.", number=q.number))


@bp.route("/quotes/<int:quote_id>/reject", methods=["POST"], endpoint="quote_reject")
@permission_required(QUOTE_WRITE)
def quote_reject(quote_id: int):
    return _step(quote_id, quotes.reject, lambda q: _("Quote %(number)s marked as rejected.", number=q.number))


@bp.route("/quotes/<int:quote_id>/version", methods=["POST"], endpoint="quote_version")
@permission_required(QUOTE_WRITE)
def quote_version(quote_id: int):
    return _step(quote_id, lambda quote: quotes.new_version(quote, current_user),
                 lambda q: _("Version %(version)d of quote %(number)s created.", version=q.version, number=q.number))


@bp.route("/quotes/<int:quote_id>/accept", methods=["POST"], endpoint="quote_accept")
@permission_required(QUOTE_WRITE)
def quote_accept(quote_id: int):
    return _step(quote_id, lambda quote: quotes.accept(quote, current_user),
                 lambda o: _("Quote accepted: order %(number)s created.", number=o.number))


@bp.route("/quotes/<int:quote_id>/delete", methods=["POST"], endpoint="quote_delete")
@permission_required(QUOTE_DELETE)
def quote_delete(quote_id: int):
    quote = get_visible_or_404(current_user, Quote, quote_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    label = f"{quote.number} v{quote.version}"
    try:
        recycle.trash([quote], user=current_user)
    except recycle.RecordsInUse as exc:
        db.session.rollback()
        return _quote_page(db.session.get(Quote, quote_id), error=str(exc), status=400)
    db.session.commit()
    flash(_("Quote %(number)s moved to the recycle bin.", number=label), "success")
    return redirect(url_for("crm_sales.quotes"))


# -- printing ----------------------------------------------------------------------------------------------
@bp.route("/quotes/<int:quote_id>/print", endpoint="quote_print")
@permission_required(READ)
def quote_print(quote_id: int):
    quote = get_visible_or_404(current_user, Quote, quote_id)
    return render_template("crm_sales/quote_print.html", quote=quote, line_tax=quotes.line_tax,
                           custom_values=custom_fields.record_display(quote), **_context())


@bp.route("/quotes/<int:quote_id>/pdf", endpoint="quote_pdf")
@permission_required(READ)
def quote_pdf(quote_id: int):
    from .quote_pdf import render_pdf

    quote = get_visible_or_404(current_user, Quote, quote_id)
    data = render_pdf(quote)
    filename = f"{quote.number}-v{quote.version}.pdf"
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- orders --------------------------------------------------------------------------------------------------
def _order_page(order, error=None, status=200):
    writable = get_visible(current_user, Order, order.id, access="write") is not None
    quote = get_visible(current_user, Quote, order.quote_id) if order.quote_id else None
    return render_template("crm_sales/order_record.html", order=order, quote=quote, error=error, writable=writable,
                           next_statuses=quotes.order_next_statuses(order),
                           custom_values=custom_fields.record_display(order),
                           history=audit.describe(Order, audit.history(Order, order.id), current_user),
                           **_context()), status


@bp.route("/orders/<int:order_id>", endpoint="order")
@permission_required(READ)
def order_view(order_id: int):
    return _order_page(get_visible_or_404(current_user, Order, order_id))


@bp.route("/orders/<int:order_id>/status", methods=["POST"], endpoint="order_status")
@permission_required(ORDER_WRITE)
def order_status(order_id: int):
    order = get_visible_or_404(current_user, Order, order_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    status = request.form.get("status") or ""
    try:
        quotes.set_order_status(order, status)
    except quotes.QuoteError as exc:
        db.session.rollback()
        return _order_page(db.session.get(Order, order_id), error=str(exc), status=400)
    db.session.commit()
    flash(_("Order %(number)s is now %(status)s.", number=order.number,
            status=quotes.order_status_label(order.status)), "success")
    return redirect(url_for("crm_sales.order", order_id=order.id))


@bp.route("/orders/<int:order_id>/delete", methods=["POST"], endpoint="order_delete")
@permission_required(ORDER_DELETE)
def order_delete(order_id: int):
    order = get_visible_or_404(current_user, Order, order_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    number = order.number
    try:
        recycle.trash([order], user=current_user)
    except recycle.RecordsInUse as exc:
        db.session.rollback()
        return _order_page(db.session.get(Order, order_id), error=str(exc), status=400)
    db.session.commit()
    flash(_("Order %(number)s moved to the recycle bin.", number=number), "success")
    return redirect(url_for("crm_sales.orders"))


# -- panels ------------------------------------------------------------------------------------------------
def _related(column_name: str, value: int, user) -> tuple[list, list]:
    found = []
    for model in (Quote, Order):
        stmt = select(model).where(getattr(model, column_name) == value)
        found.append(list(db.session.execute(visible_to(user, stmt, model).order_by(model.id.desc())
                                             .limit(PANEL_LIMIT)).unique().scalars()))
    return found[0], found[1]


def opportunity_quotes(opp) -> dict:
    """The opportunity's quotes and orders the current user may see, with the status labels (the record
    page's card, ``_opportunity_quotes.html``)."""
    rows, orders = _related("opportunity_id", opp.id, current_user)
    return {"quotes": rows, "orders": orders, "status_labels": quotes.status_labels(),
            "order_labels": quotes.order_status_labels(), "effective_status": quotes.effective_status}


bp.add_app_template_global(opportunity_quotes, "crm_sales_opportunity_quotes")


def customer_panel(customer, user):
    """The 360° view's panel: the customer's quotes and orders the reader may see, newest first."""
    rows, orders = _related("customer_id", customer.id, user)
    return render_template("crm_sales/_customer_quotes_panel.html", quotes=rows, orders=orders, customer=customer,
                           **_context())
