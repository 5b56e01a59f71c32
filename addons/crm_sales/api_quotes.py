"""Quotes and orders in the REST API: ``/api/v1/crm_sales.quotes`` and ``/api/v1/crm_sales.orders``.

The generic handlers of :mod:`core.crm.api_views` list, fetch, create, update and delete (to the recycle bin);
this module adds what the web form does, through :mod:`.quotes`:

- a new quote gets its number and version 1 and starts as a draft; the customer, contact, opportunity and
  currency are checked together; only a draft may be changed (**409** ``not_draft`` otherwise);
- actions on a quote: ``lines`` (replace the lines of a draft: ``{"lines": [{"product_id", "description",
  "quantity", "unit", "unit_price", "discount_percent", "tax_percent"}, …]}``, the totals computed again),
  a comma in a number separates thousands only ("1,5" is refused), and quantities, prices, amounts and totals
  are at most what every database keeps exactly (:data:`core.crm.money.MAX_AMOUNT`, :data:`.quotes.MAX_QUANTITY`: as the form, :func:`.quotes.parse_lines`
  and :func:`.quotes.check_amounts`);
  ``send``, ``reject``, ``new_version`` and ``accept`` (creates the order; **409** ``refused`` with the
  reason when the quote was accepted already, is expired, superseded or rejected). Every action answers the
  quote (or the order, for ``accept``) with its ``lines``;
- orders are created only by accepting a quote; their ``status`` changes through PATCH along
  open → confirmed → delivered (or cancelled before delivery).
"""

from __future__ import annotations

from datetime import date

from flask import g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.crm import money
from core.crm.api_auth import ApiError
from core.crm.api_fields import serialise
from core.crm.models import Contact, Currency, Customer
from core.extensions import db
from core.registry import ApiAction, ApiResource

from . import quotes
from .hooks import READ
from .hooks_quotes import ORDER_DELETE, ORDER_WRITE, QUOTE_DELETE, QUOTE_WRITE
from .models import ORDER_STATUSES, QUOTE_STATUSES, Opportunity, Order, Quote

QUOTES = "crm_sales.quotes"
ORDERS = "crm_sales.orders"
QUOTE_FIELDS = ("id", "number", "version", "opportunity_id", "customer_id", "contact_id", "status", "currency",
                "quote_date", "valid_until", "discount_percent", "subtotal", "tax_total", "total", "terms", "notes",
                "owner_id", "accepted_at", "created_by_id", "created_at", "updated_at", "custom")
QUOTE_WRITABLE = ("opportunity_id", "customer_id", "contact_id", "currency", "quote_date", "valid_until",
                  "discount_percent", "terms", "notes", "owner_id", "custom")
ORDER_FIELDS = ("id", "number", "quote_id", "opportunity_id", "customer_id", "contact_id", "status", "currency",
                "order_date", "discount_percent", "subtotal", "tax_total", "total", "total_company", "terms", "notes",
                "owner_id", "created_by_id", "created_at", "updated_at", "custom")
ORDER_WRITABLE = ("status", "terms", "notes", "owner_id", "custom")
_INVALID = _l("Some fields are not valid.")
LINE_OUT = ("id", "sequence", "product_id", "description", "quantity", "unit", "unit_price", "discount_percent",
            "tax_percent", "amount")


def _with_lines(resource, record) -> dict:
    data = serialise(resource, record)
    data["lines"] = [{key: _plain(getattr(line, key)) for key in LINE_OUT} for line in record.lines]
    return data


def _plain(value):
    from core.crm.api_fields import serialise_value

    return serialise_value(value)


# -- quotes ------------------------------------------------------------------------------------------------
def check_quote(record, values: dict, user) -> None:
    """Before a POST or PATCH: only a draft changes; the links hold together; the discount is a percentage."""
    if record is not None and record.status != "draft":
        raise ApiError(409, "not_draft", _("Only a draft can be changed; make a new version instead."))
    merged = {key: values.get(key, getattr(record, key, None)) for key in
              ("customer_id", "contact_id", "opportunity_id", "currency", "quote_date", "valid_until",
               "discount_percent")}
    try:
        quotes.check_links(merged["customer_id"], merged["contact_id"], merged["opportunity_id"],
                           merged["currency"] or _company_currency(), user)
        if merged["discount_percent"] is not None:
            quotes.percent(merged["discount_percent"], _("Quote discount in percent"))
    except quotes.QuoteError as exc:
        raise ApiError(400, "validation", str(exc)) from None
    quote_date = merged["quote_date"] or date.today()  # a new quote without one is dated today (before_save)
    dates_changed = record is None or "quote_date" in values or "valid_until" in values
    if dates_changed and merged["valid_until"] is not None and merged["valid_until"] < quote_date:
        raise ApiError(400, "validation", str(_INVALID),
                       {"valid_until": _("A quote cannot be valid until a day before its date.")})


def _company_currency() -> str:

    return money.company_currency()


def before_save_quote(quote: Quote) -> None:
    """A new quote: its number, version 1, draft, its creator and defaults; the totals in every case."""
    if quote.id is None:
        user = g.get("api_user")
        with db.session.no_autoflush:
            from datetime import date

            quote.quote_date = quote.quote_date or date.today()
            quote.currency = quote.currency or _company_currency()
            quote.number = quotes.next_number("Q", quote.quote_date)
        quote.version, quote.status = 1, "draft"
        quote.created_by_id = getattr(user, "id", None)
        quote.terms, quote.notes = quote.terms or "", quote.notes or ""
    if quote.discount_percent is None:
        quote.discount_percent = quotes.ZERO
    with db.session.no_autoflush:
        quotes.recompute(quote)


def _refused(exc: quotes.QuoteError) -> ApiError:
    return ApiError(409, "refused", str(exc))


def run_lines(quote: Quote, body: dict, user):
    """``POST …/<id>/lines`` with ``{"lines": [...]}``: replace the lines of a draft."""
    if quote.status != "draft":
        raise ApiError(409, "not_draft", _("Only a draft can be changed; make a new version instead."))
    try:
        lines = quotes.parse_lines(body.get("lines"))
        quotes.check_amounts(lines, quote.discount_percent)
    except quotes.QuoteError as exc:
        raise ApiError(400, "validation", str(exc), {"lines": str(exc)}) from None
    quotes.update_quote(quote, {}, lines)
    return 200, _with_lines(quote_resource(), quote)


def _step(run):
    def action(quote: Quote, _body: dict, user):
        try:
            result = run(quote, user)
        except quotes.QuoteError as exc:
            raise _refused(exc) from None
        if isinstance(result, Order):
            return 201, _with_lines(order_resource(), result)
        return (201 if result is not quote else 200), _with_lines(quote_resource(), result)

    return action


def quote_resource() -> ApiResource:
    global _QUOTES
    if _QUOTES is None:
        quote_schema = {"$ref": f"#/components/schemas/{QUOTES}"}
        line = {"type": "object", "properties": {
            "product_id": {"type": ["integer", "null"]}, "description": {"type": "string"},
            "quantity": {"type": "string"}, "unit": {"type": "string"}, "unit_price": {"type": "string"},
            "discount_percent": {"type": "string"}, "tax_percent": {"type": "string"}}}
        _QUOTES = ApiResource(
            name=QUOTES, model=Quote, label=_l("Quotes"), fields=QUOTE_FIELDS, writable=QUOTE_WRITABLE,
            required=("customer_id",),
            permission_read=READ, permission_write=QUOTE_WRITE, permission_delete=QUOTE_DELETE,
            choices={"status": QUOTE_STATUSES},
            references={"customer_id": Customer, "contact_id": Contact, "opportunity_id": Opportunity,
                        "currency": Currency},
            filters=("status", "number", "customer_id", "opportunity_id", "owner_id", "currency"),
            title_field="number", check=check_quote, before_save=before_save_quote, order=62,
            descriptions={"number": _l("Given by the server (Q2026-000001), shared by the versions."),
                          "status": _l("Changed only by the actions send, reject, new_version and accept."),
                          "total": _l("Computed from the lines: subtotal (after the discounts) plus tax.")},
            actions=(
                ApiAction("lines", run_lines, _l("Replace the lines of a draft quote"),
                          request_schema={"type": "object", "required": ["lines"],
                                          "properties": {"lines": {"type": "array", "items": line}}},
                          response_schema=quote_schema, conflict=True),
                ApiAction("send", _step(quotes.send), _l("Mark a draft quote as sent"), response_schema=quote_schema,
                          conflict=True),
                ApiAction("reject", _step(quotes.reject), _l("Mark a quote as rejected"), response_schema=quote_schema,
                          conflict=True),
                ApiAction("new_version", _step(quotes.new_version), _l("Copy a quote into a new version"),
                          response_schema=quote_schema, conflict=True),
                ApiAction("accept", _step(quotes.accept), _l("Accept a quote and create its order"),
                          response_schema={"$ref": f"#/components/schemas/{ORDERS}"}, conflict=True),
            ),
        )
    return _QUOTES


# -- orders ------------------------------------------------------------------------------------------------
def check_order(record, values: dict, user) -> None:
    """Orders come from accepted quotes; their status follows the order flow."""
    if record is None:
        raise ApiError(405, "method_not_allowed", _("Orders are created by accepting a quote (action accept)."))
    status = values.get("status")
    if status is not None and status != record.status and status not in quotes.order_next_statuses(record):
        raise ApiError(409, "refused", _("An order that is %(old)s cannot become %(new)s.",
                                         old=quotes.order_status_label(record.status),
                                         new=quotes.order_status_label(status)))


def order_resource() -> ApiResource:
    global _ORDERS
    if _ORDERS is None:
        _ORDERS = ApiResource(
            name=ORDERS, model=Order, label=_l("Orders"), fields=ORDER_FIELDS, writable=ORDER_WRITABLE,
            required=(), permission_read=READ, permission_write=ORDER_WRITE, permission_delete=ORDER_DELETE,
            choices={"status": ORDER_STATUSES}, check=check_order,
            filters=("status", "number", "quote_id", "customer_id", "opportunity_id", "owner_id", "currency"),
            title_field="number", order=63,
            descriptions={"status": _l("open → confirmed → delivered, or cancelled before delivery."),
                          "total_company": _l("The total in the company currency, at the rate of the order date.")},
        )
    return _ORDERS


_QUOTES: ApiResource | None = None
_ORDERS: ApiResource | None = None
