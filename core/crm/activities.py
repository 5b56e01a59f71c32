"""Activities, agenda, team calendar and reminders; products, currencies and exchange rates.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS). The pages live in
:mod:`core.crm.activity_views` (activities), :mod:`core.crm.agenda` (agenda and calendar) and
:mod:`core.crm.products` (products, currencies, exchange rates); money in :mod:`core.crm.money`.

**Activities on an addon's records.** An activity belongs to a customer and/or a contact, or to any
addon's record through the pair ``related_object`` / ``related_id``: an addon links an activity to its
opportunity 42 with ``related_object="crm_sales.opportunity", related_id=42`` (the object name is the
addon's visibility object name, ``<addon>.<object>``). Its pages link to
``/activities/new?related_object=crm_sales.opportunity&related_id=42`` (add ``customer_id`` when the record
has a customer) and list its activities with::

    visible_to(user, select(Activity).where(Activity.related_object == "crm_sales.opportunity",
                                            Activity.related_id == 42), Activity)

The core stores and shows the pair; it does not check the addon's record (the addon's page that links
here does, and the activity itself is still subject to :func:`core.crm.visibility.visible_to`).

**Reminders.** The top bar's badge is computed live for the current user (one ``COUNT`` query with two
conditional sums: planned activities of the user due within the next 15 minutes, and overdue ones). The
job ``core:activity_reminders`` runs every 5 minutes and stores the same counts for every user as the
setting ``reminders.<user_id>`` = ``{"due": n, "overdue": n, "at": iso}`` (one ``GROUP BY`` query; users
with nothing pending lose their key): a snapshot the phone UI, the API or a later e-mail step can read
without touching the activity table. It is idempotent: running it twice writes the same counts.
"""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Blueprint, current_app, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import and_, case, delete, func, select, update

from core.crm.labels import ACTIVITY_KIND_LABELS, ACTIVITY_STATE_LABELS
from core.extensions import db
from core.hookspecs import hookimpl
from core.registry import CustomerPanel, Job, MenuItem, Permission
from core.timeutil import utcnow

bp = Blueprint("crm_activities", __name__)

PRODUCT_WRITE = "core.product.write"
CURRENCY_MANAGE = "core.currency.manage"

#: kinds that count as contacting the customer: marking one done updates Customer.last_contacted_at
CONTACT_KINDS = ("call", "visit", "meeting", "email", "sms")
REMINDER_WINDOW = timedelta(minutes=15)
REMINDER_KEY = "reminders."

KIND_LABELS = ACTIVITY_KIND_LABELS  # kept under the names the activity modules use
STATUS_LABELS = ACTIVITY_STATE_LABELS


@hookimpl
def register_permissions():
    return [
        Permission(PRODUCT_WRITE, _l("Create and edit products")),
        Permission(CURRENCY_MANAGE, _l("Manage currencies and exchange rates")),
    ]


@hookimpl
def register_menu():
    return [
        MenuItem(label=_l("Activities"), endpoint="crm_activities.activity_list", order=30),
        MenuItem(label=_l("Agenda"), endpoint="crm_activities.agenda", order=31),
        MenuItem(label=_l("Calendar"), endpoint="crm_activities.calendar", order=32),
        MenuItem(label=_l("Products"), endpoint="crm_activities.product_list", order=40),
    ]


@hookimpl
def register_admin_links():
    return [
        MenuItem(label=_l("Currencies and exchange rates"), endpoint="crm_activities.currencies",
                 permission=CURRENCY_MANAGE, order=60),
    ]


@hookimpl
def register_jobs():
    return [
        Job(
            id="core:activity_reminders",
            func="core.crm.activities:activity_reminders",
            trigger="interval",
            trigger_args={"minutes": 5},
            title=_l("Count due and overdue activities for each user's reminders"),
        )
    ]


def related_record(activity):
    """The :class:`core.registry.RecordRef` of the addon record an activity is about, or ``None``."""
    from flask import current_app
    from flask_login import current_user

    if not activity.related_object or activity.related_id is None:
        return None
    return current_app.extensions["mosaic"].hook.resolve_record(
        object_name=activity.related_object, record_id=activity.related_id, user=current_user
    )


@hookimpl
def register_template_context():
    return {
        "activity_reminders": _current_user_reminders,
        "activity_customer_url": customer_url,
        "activity_related_record": related_record,
    }


#: the endpoint of a customer's 360° view (core.crm.customer_views)
CUSTOMER_ENDPOINTS = ("crm_customers.view",)


def customer_url(customer_id: int | None) -> str | None:
    """The URL of a customer's page, or ``None`` (no link) if the customers pages are not there."""
    if not customer_id:
        return None
    for endpoint in CUSTOMER_ENDPOINTS:
        if endpoint in current_app.view_functions:
            return url_for(endpoint, customer_id=customer_id)
    return None


@hookimpl
def register_customer_panels():
    return [CustomerPanel(key="core.activities", title=_l("Activities"), render=render_customer_panel, order=20)]


@hookimpl
def load_demo_data(edition, language):
    """Demo products and this year's exchange rates (:func:`load_demo_products`)."""
    load_demo_products(language)


#: the demo products: code, name (Simplified Chinese, English), category and unit (Chinese, English), list price,
#: currency. A 繁體中文 demo writes the Chinese ones in Traditional characters (``mosaic demo``).
DEMO_PRODUCTS = (
    ("CRM-STD", ("CRM 标准版（年）", "CRM Standard (year)"), ("软件", "Software"), ("用户", "user"), "1200.00", "CNY"),
    ("CRM-ENT", ("CRM 企业版（年）", "CRM Enterprise (year)"), ("软件", "Software"), ("用户", "user"), "2400.00", "CNY"),
    ("SVC-IMPL", ("实施服务", "Implementation service"), ("服务", "Service"), ("人天", "day"), "3000.00", "CNY"),
    ("HW-PAD", ("销售平板", "Sales tablet"), ("硬件", "Hardware"), ("台", "pc"), "399.00", "USD"),
)


def load_demo_products(language: str) -> None:
    """The demo products and this year's exchange rates, named in ``language`` (idempotent: existing codes and
    days are skipped). Addons whose demo records need them (crm_sales's quotes) call it first: the order in
    which the addons' ``load_demo_data`` run is not theirs to choose."""
    from datetime import date
    from decimal import Decimal

    from core.crm.models import ExchangeRate, Product
    from core.crm.money import ensure_currencies
    from core.crm.normalise import search_key

    ensure_currencies()
    day = date(date.today().year, 1, 1)
    for code, rate in (("USD", "7.1234"), ("EUR", "7.8125"), ("HKD", "0.9120"), ("JPY", "0.04851")):
        exists = db.session.execute(
            select(ExchangeRate.id).where(ExchangeRate.currency == code, ExchangeRate.day == day)
        ).first()
        if exists is None:
            db.session.add(ExchangeRate(currency=code, day=day, rate=Decimal(rate)))
    which = 0 if language in ("zh_CN", "zh_TW") else 1
    for code, names, categories, units, price, currency in DEMO_PRODUCTS:
        if db.session.execute(select(Product.id).where(Product.code == code)).first() is None:
            name = names[which]
            db.session.add(Product(code=code, name=name, search_name=search_key(name), category=categories[which],
                                   unit=units[which], list_price=Decimal(price), currency=currency))
    db.session.flush()


# -- reminders ----------------------------------------------------------------------------------------
def _reminder_counts():
    """The two conditional counts (due within the window, overdue) of planned activities."""
    from core.crm.models import Activity

    now = utcnow()
    due = func.sum(case((and_(Activity.due_at >= now, Activity.due_at < now + REMINDER_WINDOW), 1), else_=0))
    overdue = func.sum(case((Activity.due_at < now, 1), else_=0))
    planned = and_(Activity.status == "planned", Activity.due_at.is_not(None), Activity.due_at < now + REMINDER_WINDOW)
    return now, due, overdue, planned


def reminder_counts_for(user_id: int) -> dict:
    """``{"due": n, "overdue": n}`` for one user's own planned activities (one query)."""
    from core.crm.models import Activity

    _now, due, overdue, planned = _reminder_counts()
    row = db.session.execute(select(due, overdue).where(planned, Activity.owner_id == user_id)).one()
    return {"due": int(row[0] or 0), "overdue": int(row[1] or 0)}


def _current_user_reminders():
    if not current_user.is_authenticated:
        return None
    return reminder_counts_for(current_user.id)


def activity_reminders() -> str:
    """The scheduled job: store each user's due/overdue counts as the setting ``reminders.<user_id>``."""
    from core.crm.models import Activity
    from core.models import Setting

    now, due, overdue, planned = _reminder_counts()
    rows = db.session.execute(
        select(Activity.owner_id, due, overdue).where(planned).group_by(Activity.owner_id)
    ).all()
    at = now.isoformat(timespec="seconds") + "Z"
    keys = []
    for owner_id, due_count, overdue_count in rows:
        key = f"{REMINDER_KEY}{owner_id}"
        keys.append(key)
        Setting.put(key, json.dumps({"due": int(due_count or 0), "overdue": int(overdue_count or 0), "at": at}))
    stale = delete(Setting).where(Setting.key.startswith(REMINDER_KEY, autoescape=True))
    if keys:
        stale = stale.where(Setting.key.not_in(keys))
    db.session.execute(stale.execution_options(synchronize_session=False))
    db.session.commit()
    return f"reminders for {len(rows)} users"


# -- customers ----------------------------------------------------------------------------------------
def touch_last_contacted(customer_ids) -> int:
    """Set ``Customer.last_contacted_at`` to the latest done contact activity when that is later.

    One set-based ``UPDATE`` with a correlated subquery, for any number of customers; returns the rows
    changed. ``updated_at`` is kept: the customer record itself was not edited.
    """
    from core.crm.models import Activity, Customer

    ids = sorted({i for i in customer_ids if i is not None})
    if not ids:
        return 0
    latest = (
        select(func.max(Activity.done_at))
        .where(
            Activity.customer_id == Customer.id,
            Activity.status == "done",
            Activity.kind.in_(CONTACT_KINDS),
            Activity.done_at.is_not(None),
        )
        .scalar_subquery()
    )
    stmt = (
        update(Customer)
        .where(Customer.id.in_(ids), latest.is_not(None))
        .where((Customer.last_contacted_at.is_(None)) | (Customer.last_contacted_at < latest))
        .values(last_contacted_at=latest, updated_at=Customer.updated_at)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(stmt).rowcount


def activity_links(customer_id, contact_id) -> tuple[int | None, bool]:
    """``(customer_id, matches)`` of an activity linked to ``customer_id`` and/or ``contact_id``.

    The customer is the contact's when none is given (an activity with a contact is about its customer:
    its timeline, its ``last_contacted_at``); ``matches`` is false when both are given and the contact is
    one of another customer's — the web form and the API refuse that pair. A contact that does not exist
    changes nothing (the callers check that the records exist and are visible).
    """
    from core.crm.models import Contact

    if not contact_id:
        return customer_id, True
    with db.session.no_autoflush:  # (called with a half-changed activity in the session)
        contact_customer_id = db.session.scalar(select(Contact.customer_id).where(Contact.id == contact_id))
    if contact_customer_id is None:
        return customer_id, True
    if customer_id and customer_id != contact_customer_id:
        return customer_id, False
    return contact_customer_id, True


def activity_saved(activity) -> None:
    """After an activity is saved (web form, API): a done contact activity moves its customer's
    ``last_contacted_at`` (which the public pool's job reads)."""
    if activity.status == "done" and activity.kind in CONTACT_KINDS and activity.customer_id:
        db.session.flush()
        touch_last_contacted([activity.customer_id])


def render_customer_panel(customer, user) -> Markup:
    """The 360° view's activity timeline: the customer's latest visible activities."""
    from core.crm.models import Activity
    from core.crm.visibility import visible_to

    stmt = select(Activity).where(Activity.customer_id == customer.id).order_by(Activity.id.desc()).limit(20)
    rows = db.session.execute(visible_to(user, stmt, Activity)).scalars().all()
    return Markup(render_template(
        "core/crm/activity_panel.html", activities=rows, customer=customer, activity_kind_labels=KIND_LABELS,
        activity_status_labels=STATUS_LABELS,
    ))


# the pages register themselves on ``bp``
from core.crm import activity_views, agenda, products  # noqa: E402,F401
