"""Quotes (报价单) and orders (订单): the totals, numbering, the quote's life and the order made from it.

Every writer — the form, the REST API — goes through these functions; none of them commits (the caller does,
so a refused step leaves nothing half-written).

**Totals** (all ``Decimal``, rounded half-up to the fen at each step):

- a line's ``amount`` = quantity × unit price × (1 − line discount %), rounded;
- the quote discount applies to each line before tax: base = amount × (1 − quote discount %), rounded;
- the line's tax = base × tax %, rounded (a tax rate per line);
- ``subtotal`` = Σ bases (before tax), ``tax_total`` = Σ taxes, ``total`` = subtotal + tax_total.

**Numbers** come from the core's counters (``core_counter``, one per prefix and year, bumped by a single
``UPDATE``): ``Q2026-000001`` for quotes (shared by the versions), ``SO2026-000001`` for orders.

**Life of a quote**: ``draft`` (editable) → ``sent`` → ``accepted`` (an order with the same lines, in the same
transaction) or ``rejected``; a draft or sent quote past ``valid_until`` is ``expired`` (the daily job
:func:`expiry_job`, and accepting checks the date itself); :func:`new_version` copies a quote into
``version + 1`` and marks the old one ``superseded``. Orders go ``open`` → ``confirmed`` → ``delivered``, or
``cancelled`` before delivery.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from core.crm import audit, money
from core.crm.models import Contact, Currency, Customer, Product
from core.extensions import db
from core.models import Counter
from core.params import ascii_int, is_id
from core.timeutil import utcnow

from .models import Opportunity, Order, OrderLine, Quote, QuoteLine

FEN = Decimal("0.01")
HUNDRED = Decimal("100")
ZERO = Decimal("0.00")
MAX_LINES = 200
#: what every database keeps exactly (SQLite holds a Numeric as a binary float: about 15 significant digits)
MAX_QUANTITY = Decimal("99999999999.9999")
MAX_QUANTITY_TEXT = "99,999,999,999.9999"
MAX_PRICE = money.MAX_AMOUNT
#: statuses a quote may be accepted, sent or rejected from; edited only as a draft
OPEN_STATUSES = ("draft", "sent")
ORDER_FLOW = {"open": ("confirmed", "cancelled"), "confirmed": ("delivered", "cancelled")}
LINE_FIELDS = ("product_id", "description", "quantity", "unit", "unit_price", "discount_percent", "tax_percent")
HEADER_FIELDS = ("customer_id", "contact_id", "opportunity_id", "currency", "quote_date", "valid_until",
                 "discount_percent", "terms", "notes", "owner_id")


class QuoteError(ValueError):
    """Bad input, or a step the quote (order) cannot take: ``str(exc)`` is a translated message."""


# -- totals ---------------------------------------------------------------------------------------------
def _fen(value: Decimal) -> Decimal:
    return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


def line_amount(quantity, unit_price, discount_percent) -> Decimal:
    """quantity × unit price × (1 − discount %), to the fen."""
    factor = (HUNDRED - Decimal(discount_percent or 0)) / HUNDRED
    return _fen(Decimal(quantity) * Decimal(unit_price) * factor)


def compute(lines, discount_percent) -> tuple[Decimal, Decimal, Decimal]:
    """Set each line's ``amount``; return ``(subtotal, tax_total, total)`` (see the module)."""
    quote_factor = (HUNDRED - Decimal(discount_percent or 0)) / HUNDRED
    subtotal = tax_total = ZERO
    for line in lines:
        line.amount = line_amount(line.quantity, line.unit_price, line.discount_percent)
        base = _fen(line.amount * quote_factor)
        subtotal += base
        tax_total += _fen(base * Decimal(line.tax_percent or 0) / HUNDRED)
    return subtotal, tax_total, subtotal + tax_total


def recompute(record) -> None:
    """Store the totals of a quote or an order from its lines."""
    record.subtotal, record.tax_total, record.total = compute(record.lines, record.discount_percent)


def line_tax(line, discount_percent) -> Decimal:
    """The tax of one line (what :func:`compute` added for it), for the printed quote."""
    base = _fen(Decimal(line.amount) * (HUNDRED - Decimal(discount_percent or 0)) / HUNDRED)
    return _fen(base * Decimal(line.tax_percent or 0) / HUNDRED)


# -- numbers -----------------------------------------------------------------------------------------------
def next_number(prefix: str, on: date | None = None) -> str:
    """The next number of ``prefix`` for the year of ``on``: ``Q2026-000001`` (a core counter per prefix and
    year, bumped by one ``UPDATE``: concurrent writers wait on the row, never share a number)."""
    year = (on or date.today()).year
    name = f"crm_sales.{prefix}.{year}"
    bump = update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
    if not db.session.execute(bump).rowcount:
        # the year's first number: create the counter (a concurrent writer may just have), then bump it;
        # a plain statement, no savepoint, so the caller's pending objects are not flushed half-made
        insert = sqlite_insert if db.session.get_bind().dialect.name == "sqlite" else pg_insert
        db.session.execute(insert(Counter).values(name=name, value=0).on_conflict_do_nothing())
        db.session.execute(bump)
    value = db.session.scalar(select(Counter.value).where(Counter.name == name))
    return f"{prefix}{year}-{value:06d}"


# -- parsing input ---------------------------------------------------------------------------------------
def _decimal(raw, label, *, places: int, low: Decimal, high: Decimal, line: int | None = None,
             default: Decimal | None = None) -> Decimal:
    where = _("Line %(n)d: ", n=line) if line is not None else ""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is not None:
            return default
        raise QuoteError(where + _("%(field)s is required.", field=label))
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise QuoteError(where + _("%(field)s is not a number.", field=label))
    try:  # a comma separates thousands only: "1,5", ",5" and "1_5" are no 15, 5 and 15
        value = money.parse_amount(raw if isinstance(raw, str) else Decimal(str(raw)))
    except money.AmountGroupingError:
        raise QuoteError(where + money.grouping_message(raw)) from None
    except (ValueError, InvalidOperation):
        raise QuoteError(where + _("%(field)s “%(value)s” is not a number.", field=label, value=str(raw)[:40])) \
            from None
    if not value.is_finite() or value < low or value > high:
        raise QuoteError(where + _("%(field)s must be between %(low)s and %(high)s.", field=label, low=low,
                                   high=high))
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise QuoteError(where + _("%(field)s has at most %(places)d decimals.", field=label, places=places))
    return value


def percent(raw, label, line: int | None = None) -> Decimal:
    return _decimal(raw, label, places=2, low=Decimal(0), high=HUNDRED, line=line, default=Decimal("0"))


def _blank(row: dict) -> bool:
    return all(row.get(key) in (None, "") or (isinstance(row.get(key), str) and not row[key].strip())
               for key in LINE_FIELDS)


def parse_lines(rows) -> list[dict]:
    """Checked line values of ``rows`` (dicts of :data:`LINE_FIELDS`; blank rows are skipped). Raises
    :class:`QuoteError` naming the line. A product fills an empty description, unit and price."""
    if not isinstance(rows, list | tuple):
        raise QuoteError(_("The lines must be a list."))
    out = []
    rows = [row for row in rows if not (isinstance(row, dict) and _blank(row))]
    if len(rows) > MAX_LINES:
        raise QuoteError(_("A quote has at most %(max)d lines.", max=MAX_LINES))
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise QuoteError(_("Line %(n)d: not valid.", n=number))
        unknown = set(row) - set(LINE_FIELDS)
        if unknown:
            raise QuoteError(_("Line %(n)d: unknown field “%(field)s”.", n=number, field=sorted(unknown)[0]))
        product = None
        raw_product = row.get("product_id")
        if raw_product not in (None, ""):
            product_id = raw_product if is_id(raw_product) else ascii_int(raw_product) \
                if isinstance(raw_product, str) else None
            product = db.session.get(Product, product_id) if product_id else None
            if product is None or not product.active:
                raise QuoteError(_("Line %(n)d: choose an active product from the list.", n=number))
        description = row.get("description") or ""
        unit = row.get("unit") or ""
        if not isinstance(description, str) or not isinstance(unit, str):
            raise QuoteError(_("Line %(n)d: not valid.", n=number))
        description, unit = description.strip(), unit.strip()
        if product is not None:
            description = description or product.name
            unit = unit or product.unit
        if not description:
            raise QuoteError(_("Line %(n)d: choose a product or describe the item.", n=number))
        if len(description) > 500 or len(unit) > 32:
            raise QuoteError(_("Line %(n)d: the description or the unit is too long.", n=number))
        quantity = _decimal(row.get("quantity"), _("Quantity"), places=4, low=Decimal("0.0001"),
                            high=MAX_QUANTITY, line=number)
        price = _decimal(row.get("unit_price"), _("Unit price"), places=2, low=Decimal(0), high=MAX_PRICE,
                         line=number, default=Decimal(product.list_price) if product is not None else None)
        out.append({"product_id": product.id if product is not None else None, "description": description,
                    "quantity": quantity, "unit": unit, "unit_price": price,
                    "discount_percent": percent(row.get("discount_percent"), _("Discount in percent"), number),
                    "tax_percent": percent(row.get("tax_percent"), _("Tax rate in percent"), number)})
    return out


def check_amounts(lines: list[dict], discount_percent) -> None:
    """Lines (of :func:`parse_lines`) whose amounts and totals every database keeps exactly (at most
    :data:`core.crm.money.MAX_AMOUNT`), with the quote's discount. Raises :class:`QuoteError` naming the line."""
    from types import SimpleNamespace

    probes = [SimpleNamespace(**line) for line in lines]
    totals = compute(probes, discount_percent)
    for number, probe in enumerate(probes, start=1):
        if money.amount_too_large(probe.amount):
            raise QuoteError(_("Line %(n)d: the amount is too large: at most %(max)s.", n=number,
                               max=money.MAX_AMOUNT_TEXT))
    if any(money.amount_too_large(total) for total in totals):
        raise QuoteError(_("The total of the quote is too large: at most %(max)s.", max=money.MAX_AMOUNT_TEXT))


def check_links(customer_id, contact_id, opportunity_id, currency, user) -> None:
    """The customer is visible, the contact is one of its contacts, the opportunity is a visible one of that
    customer, the currency is active. Raises :class:`QuoteError`."""
    from core.crm.visibility import get_visible

    if get_visible(user, Customer, customer_id or 0) is None:
        raise QuoteError(_("Pick a customer from the suggestions."))
    if contact_id is not None and db.session.scalar(select(Contact.customer_id).where(Contact.id == contact_id)) \
            != customer_id:
        raise QuoteError(_("The contact must be a contact of the quote's customer."))
    if opportunity_id is not None:
        opp = get_visible(user, Opportunity, opportunity_id)
        if opp is None or opp.customer_id != customer_id:
            raise QuoteError(_("The opportunity must be one of the quote's customer."))
    row = db.session.get(Currency, currency or "")
    if row is None or not row.active:
        raise QuoteError(_("Unknown currency “%(code)s”.", code=currency))


# -- quotes ------------------------------------------------------------------------------------------------
def _set_lines(quote: Quote, lines: list[dict]) -> None:
    quote.lines = [QuoteLine(sequence=(i + 1) * 10, **values) for i, values in enumerate(lines)]
    recompute(quote)


def create_quote(values: dict, lines: list[dict], user) -> Quote:
    """A new draft (``values``: :data:`HEADER_FIELDS` already checked, ``custom`` allowed) with its number;
    flushed, not committed."""
    data = {key: values.get(key) for key in (*HEADER_FIELDS, "custom") if key in values}
    data.setdefault("owner_id", user.id)
    data["owner_id"] = data["owner_id"] or user.id
    data.setdefault("quote_date", date.today())
    data["quote_date"] = data["quote_date"] or date.today()
    data["currency"] = data.get("currency") or money.company_currency()
    data["discount_percent"] = data.get("discount_percent") or Decimal("0")
    data["terms"], data["notes"] = data.get("terms") or "", data.get("notes") or ""
    quote = Quote(number=next_number("Q", data["quote_date"]), version=1, status="draft",
                  created_by_id=user.id, **data)
    _set_lines(quote, lines)
    db.session.add(quote)
    db.session.flush()
    return quote


def require_draft(quote: Quote) -> None:
    if quote.status != "draft":
        raise QuoteError(_("Only a draft can be changed; this quote is %(status)s. Make a new version instead.",
                           status=status_label(quote.status)))


def update_quote(quote: Quote, values: dict, lines: list[dict] | None) -> Quote:
    """Change a draft (``lines`` ``None``: keep them) and recompute its totals; flushed, not committed."""
    require_draft(quote)
    for key, value in values.items():
        if key in (*HEADER_FIELDS, "custom"):
            setattr(quote, key, value)
    if quote.discount_percent is None:
        quote.discount_percent = Decimal("0")
    if lines is not None:
        _set_lines(quote, lines)
    else:
        recompute(quote)
    db.session.flush()
    return quote


def is_past_validity(quote: Quote, today: date | None = None) -> bool:
    return quote.valid_until is not None and quote.valid_until < (today or date.today())


def effective_status(quote: Quote, today: date | None = None) -> str:
    """The status, ``expired`` for an open quote past its validity even before the daily job marked it."""
    if quote.status in OPEN_STATUSES and is_past_validity(quote, today):
        return "expired"
    return quote.status


def _change_status(quote: Quote, allowed: tuple, new: str, today: date | None = None, **extra) -> None:
    """Move ``quote`` from one of ``allowed`` to ``new`` with one guarded ``UPDATE`` (a concurrent change
    loses: nothing written, a message)."""
    if effective_status(quote, today) == "expired" and new != "expired":
        raise QuoteError(_("This quote expired on %(day)s; make a new version to quote again.",
                           day=quote.valid_until.isoformat()))
    if quote.status not in allowed:
        raise QuoteError(_refusal(quote))
    where = (Quote.id == quote.id) & Quote.status.in_(allowed)
    changes = {"status": new, **extra}
    db.session.flush()
    audit.record_set_change(Quote, where, changes)
    done = db.session.execute(update(Quote).where(where).values(updated_at=utcnow(), **changes)
                              .execution_options(synchronize_session=False)).rowcount
    if not done:
        db.session.refresh(quote)
        raise QuoteError(_refusal(quote))
    db.session.refresh(quote)


def _refusal(quote: Quote) -> str:
    if quote.status == "accepted":
        return _("This quote was already accepted.")
    if quote.status == "superseded":
        return _("This version was replaced by a newer one; use the latest version.")
    if quote.status == "expired":
        return _("This quote expired; make a new version to quote again.")
    if quote.status == "rejected":
        return _("This quote was rejected.")
    return _("This quote is %(status)s; that cannot be done now.", status=status_label(quote.status))


def send(quote: Quote, _user=None) -> Quote:
    """Mark a draft quote as sent; returns it (as :func:`new_version` and :func:`accept` return their result)."""
    if not quote.lines:
        raise QuoteError(_("Add at least one line before sending the quote."))
    _change_status(quote, ("draft",), "sent")
    return quote


def reject(quote: Quote, _user=None) -> Quote:
    """Mark an open quote as rejected; returns it."""
    _change_status(quote, OPEN_STATUSES, "rejected")
    return quote


def new_version(quote: Quote, user) -> Quote:
    """A draft copy with ``version + 1`` (same number, lines, terms; quote date today, the same validity
    length); the old version becomes ``superseded``. Flushed, not committed."""
    if quote.status in ("accepted", "superseded"):
        raise QuoteError(_refusal(quote))
    latest = db.session.scalar(select(Quote.version).where(Quote.number == quote.number)
                               .order_by(Quote.version.desc()).limit(1))
    if latest != quote.version:
        raise QuoteError(_("This version was replaced by a newer one; use the latest version."))
    old_status = quote.status
    where = (Quote.id == quote.id) & (Quote.status == old_status)
    db.session.flush()
    audit.record_set_change(Quote, where, {"status": "superseded"})
    if not db.session.execute(update(Quote).where(where).values(status="superseded", updated_at=utcnow())
                              .execution_options(synchronize_session=False)).rowcount:
        raise QuoteError(_("This quote was changed meanwhile; reload the page."))
    today = date.today()
    valid_until = None
    if quote.valid_until is not None:
        valid_until = today + max(quote.valid_until - quote.quote_date, timedelta(0))
    copy = Quote(number=quote.number, version=quote.version + 1, status="draft", quote_date=today,
                 valid_until=valid_until, created_by_id=user.id,
                 **{key: getattr(quote, key) for key in ("opportunity_id", "customer_id", "contact_id", "currency",
                                                         "discount_percent", "terms", "notes", "owner_id")},
                 custom=dict(quote.custom) if quote.custom else None)
    copy.lines = [QuoteLine(sequence=line.sequence, **{key: getattr(line, key) for key in LINE_FIELDS})
                  for line in quote.lines]
    recompute(copy)
    db.session.add(copy)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise QuoteError(_("This quote was changed meanwhile; reload the page.")) from None
    db.session.refresh(quote)
    return copy


def accept(quote: Quote, user, today: date | None = None) -> Order:
    """Accept the quote and create its order (same lines, totals, ``total_company`` at today's rate); the
    quote's ``accepted_at`` is set. Refused — nothing written — when it was accepted already, is expired,
    superseded or rejected, has no line, or its currency has no exchange rate."""
    today = today or date.today()
    if not quote.lines:
        raise QuoteError(_("A quote without lines cannot be accepted."))
    if quote.status not in OPEN_STATUSES:
        raise QuoteError(_refusal(quote))
    try:
        total_company = money.convert(Decimal(quote.total), quote.currency, money.company_currency(), today)
    except money.MoneyError as exc:
        raise QuoteError(_("The order cannot be valued in the company currency: %(reason)s", reason=str(exc))) \
            from None
    if money.amount_too_large(total_company):
        raise QuoteError(_("In the company currency the total is %(amount)s: at most %(max)s.",
                           amount=f"{total_company:,.2f}", max=money.MAX_AMOUNT_TEXT))
    now = utcnow()
    _change_status(quote, OPEN_STATUSES, "accepted", today, accepted_at=now)
    order = Order(number=next_number("SO", today), quote_id=quote.id, opportunity_id=quote.opportunity_id,
                  customer_id=quote.customer_id, contact_id=quote.contact_id, status="open",
                  currency=quote.currency, order_date=today, discount_percent=quote.discount_percent,
                  subtotal=quote.subtotal, tax_total=quote.tax_total, total=quote.total, total_company=total_company,
                  terms=quote.terms, notes=quote.notes, owner_id=quote.owner_id, created_by_id=user.id)
    order.lines = [OrderLine(sequence=line.sequence, amount=line.amount,
                             **{key: getattr(line, key) for key in LINE_FIELDS}) for line in quote.lines]
    db.session.add(order)
    db.session.flush()
    return order


def expire_due(today: date | None = None) -> int:
    """Mark every draft or sent quote past its validity ``expired`` (one ``UPDATE``, audited); the count."""
    where = Quote.status.in_(OPEN_STATUSES) & (Quote.valid_until < (today or date.today()))
    audit.record_set_change(Quote, where, {"status": "expired"})
    return int(db.session.execute(update(Quote).where(where).values(status="expired", updated_at=utcnow())
                                  .execution_options(synchronize_session=False)).rowcount or 0)


def expiry_job() -> str:
    """The daily job ``crm_sales:quote_expiry`` (idempotent)."""
    count = expire_due()
    db.session.commit()
    return f"{count} quote(s) expired"


# -- orders ------------------------------------------------------------------------------------------------
def order_next_statuses(order: Order) -> tuple:
    return ORDER_FLOW.get(order.status, ())


def set_order_status(order: Order, status: str) -> None:
    """``open`` → ``confirmed`` → ``delivered``; ``cancelled`` before delivery. Raises :class:`QuoteError`."""
    if status not in order_next_statuses(order):
        raise QuoteError(_("An order that is %(old)s cannot become %(new)s.", old=order_status_label(order.status),
                           new=order_status_label(status)))
    where = (Order.id == order.id) & (Order.status == order.status)
    db.session.flush()
    audit.record_set_change(Order, where, {"status": status})
    if not db.session.execute(update(Order).where(where).values(status=status, updated_at=utcnow())
                              .execution_options(synchronize_session=False)).rowcount:
        raise QuoteError(_("This order was changed meanwhile; reload the page."))
    db.session.refresh(order)


# -- labels ------------------------------------------------------------------------------------------------
def status_labels() -> dict:
    return {"draft": _("Draft"), "sent": _("Sent"), "accepted": _("Accepted"), "rejected": _("Rejected"),
            "expired": _("Expired"), "superseded": _("Superseded")}


def order_status_labels() -> dict:
    return {"open": _("Open"), "confirmed": _("Confirmed"), "delivered": _("Delivered"),
            "cancelled": _("Cancelled")}


def status_label(status: str) -> str:
    return status_labels().get(status, status)


def order_status_label(status: str) -> str:
    return order_status_labels().get(status, status)
