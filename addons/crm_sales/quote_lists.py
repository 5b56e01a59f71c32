"""The quote and order lists (core.crm.lists specs: visibility, filters, keyset pages on ``(owner_id, id)``) and
their CSV/XLSX exports (exactly the rows the list shows its reader)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import aliased, joinedload

from core.crm import lists
from core.crm.export import Column, cell
from core.models import User

from .hooks import READ
from .models import Order, Quote


def _number_search(model):
    def search(q: str) -> list:
        text = q.strip().upper()
        return [model.number.startswith(text, autoescape=True)] if text else []

    return search


def _versions(value: str, _user):
    """``versions=latest``: each quote's current version only (the older ones are superseded)."""
    if value != "latest":
        raise ValueError(value)
    return Quote.status != "superseded"


#: the choice of the "Versions" filter (its empty choice: every version)
VERSIONS = {"latest": _l("Latest versions only")}

QUOTES = lists.ListSpec(
    model=Quote,
    sorts={"id": Quote.id, "date": Quote.quote_date, "valid": Quote.valid_until, "total": Quote.total},
    default_sort="-id",
    filters={"status": Quote.status, "customer": Quote.customer_id, "opportunity": Quote.opportunity_id,
             "currency": Quote.currency},
    conditions={"versions": _versions},
    extra_search=_number_search(Quote),
    custom_object="quote",
    object_name="quote",
    options=(joinedload(Quote.owner).lazyload(User.roles), joinedload(Quote.customer)),
)

ORDERS = lists.ListSpec(
    model=Order,
    sorts={"id": Order.id, "date": Order.order_date, "total": Order.total},
    default_sort="-id",
    filters={"status": Order.status, "customer": Order.customer_id, "opportunity": Order.opportunity_id,
             "currency": Order.currency},
    extra_search=_number_search(Order),
    custom_object="order",
    object_name="order",
    options=(joinedload(Order.owner).lazyload(User.roles), joinedload(Order.customer)),
)


def _export(name: str, label, model, spec, status_labels, extra_columns):
    from core.crm.export import ExportSource, labels_of, local_time, mapped, owner_column, user_timezone
    from core.crm.export_views import list_rows, visible_name_column
    from core.crm.models import Customer

    owner = aliased(User, name=f"{model.__tablename__}_owner")
    customer = aliased(Customer, name=f"{model.__tablename__}_customer")

    def money(key):
        return lambda row, _c: None if row[key] is None else str(row[key])

    def columns(user):
        tz = local_time(user_timezone())
        labels = labels_of(status_labels())
        return [
            Column("id", _l("ID"), (model.id.label("r_id"),), cell("r_id"), "number"),
            Column("number", _l("Number"), (model.number.label("number"),), cell("number")),
            *extra_columns(),
            visible_name_column("customer", _l("Customer"), user, customer, Customer, model.customer_id),
            Column("status", _l("Status"), (model.status.label("status"),), mapped("status", labels)),
            Column("currency", _l("Currency"), (model.currency.label("currency"),), cell("currency")),
            Column("subtotal", _l("Subtotal"), (model.subtotal.label("subtotal"),), money("subtotal")),
            Column("tax_total", _l("Tax"), (model.tax_total.label("tax_total"),), money("tax_total")),
            Column("total", _l("Total"), (model.total.label("total"),), money("total")),
            owner_column(owner),
            Column("created_at", _l("Created"), (model.created_at.label("created_at"),), cell("created_at", tz),
                   "datetime"),
        ]

    return ExportSource(
        name=name, label=label, permission=READ, model=model, rows=list_rows(spec), columns=columns,
        custom_object=spec.custom_object, order=61,
        joins=lambda stmt: stmt.outerjoin(owner, owner.id == model.owner_id)
                               .outerjoin(customer, customer.id == model.customer_id),
    )


def quote_export_source():
    from .quotes import status_labels

    def extra():
        return [Column("version", _l("Version"), (Quote.version.label("version"),), cell("version"), "number"),
                Column("quote_date", _l("Quote date"), (Quote.quote_date.label("quote_date"),), cell("quote_date"),
                       "date"),
                Column("valid_until", _l("Valid until"), (Quote.valid_until.label("valid_until"),),
                       cell("valid_until"), "date")]

    return _export("crm_sales.quotes", _l("Quotes"), Quote, QUOTES, status_labels, extra)


def order_export_source():
    from .quotes import order_status_labels

    def extra():
        return [Column("order_date", _l("Order date"), (Order.order_date.label("order_date"),), cell("order_date"),
                       "date")]

    return _export("crm_sales.orders", _l("Orders"), Order, ORDERS, order_status_labels, extra)
