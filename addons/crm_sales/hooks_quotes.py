"""Sales: hook implementations of quotes (报价单) and orders (订单): permissions, menus, custom field objects,
the 360° panel, the REST resources, the list exports, the record resolver and the daily expiry job."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

from .hooks import READ

QUOTE_WRITE = "crm_sales.quote.write"
QUOTE_DELETE = "crm_sales.quote.delete"
ORDER_WRITE = "crm_sales.order.write"
ORDER_DELETE = "crm_sales.order.delete"
#: the visibility (custom field, recycle bin) objects
QUOTE_OBJECT = "quote"
ORDER_OBJECT = "order"


@hookimpl
def register_permissions():
    return [
        Permission(QUOTE_WRITE, _l("Create, edit, send, accept and reject quotes"), addon="crm_sales"),
        Permission(QUOTE_DELETE, _l("Delete quotes"), addon="crm_sales"),
        Permission(ORDER_WRITE, _l("Change the status of orders"), addon="crm_sales"),
        Permission(ORDER_DELETE, _l("Delete orders"), addon="crm_sales"),
    ]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Quotes"), endpoint="crm_sales.quotes", permission=READ, order=22),
            MenuItem(label=_l("Orders"), endpoint="crm_sales.orders", permission=READ, order=23)]


@hookimpl
def register_custom_field_objects():
    from core.registry import CustomFieldObject

    from .models import Order, Quote

    return [CustomFieldObject(name=QUOTE_OBJECT, model=Quote, label=_l("Quotes"), order=41),
            CustomFieldObject(name=ORDER_OBJECT, model=Order, label=_l("Orders"), order=42)]


@hookimpl
def register_customer_panels():
    from core.registry import CustomerPanel

    from .views_quotes import customer_panel

    return [CustomerPanel(key="crm_sales.quotes", title=_l("Quotes and orders"), render=customer_panel, order=51,
                          permission=READ)]


@hookimpl
def register_api_resources():
    from .api_quotes import order_resource, quote_resource

    return [quote_resource(), order_resource()]


@hookimpl
def register_export_sources():
    from .quote_lists import order_export_source, quote_export_source

    return [quote_export_source(), order_export_source()]


@hookimpl
def register_jobs():
    from core.registry import Job

    return [Job(id="crm_sales:quote_expiry", func="addons.crm_sales.quotes:expiry_job", trigger="cron",
                trigger_args={"hour": 0, "minute": 20}, title=_l("Mark the quotes past their validity as expired"))]


@hookimpl
def resolve_record(object_name, record_id, user):
    """A quote or an order the user may see: its number and page."""
    if object_name not in (QUOTE_OBJECT, ORDER_OBJECT) or user is None or not user.can(READ):
        return None
    from flask import url_for

    from core.crm.visibility import get_visible
    from core.registry import RecordRef

    from .models import Order, Quote

    if object_name == QUOTE_OBJECT:
        quote = get_visible(user, Quote, record_id)
        return None if quote is None else RecordRef(label=f"{quote.number} v{quote.version}",
                                                    url=url_for("crm_sales.quote", quote_id=quote.id))
    order = get_visible(user, Order, record_id)
    return None if order is None else RecordRef(label=order.number, url=url_for("crm_sales.order", order_id=order.id))
