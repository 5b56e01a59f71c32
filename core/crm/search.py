"""The global search (/search?q=): every ``register_search_providers`` provider, the core's included.

The core's providers search customers (name, pinyin initials, phone) and contacts (name, initials, phone,
email) with prefix range scans, through :func:`core.crm.visibility.visible_to`.
"""

from __future__ import annotations

from flask import current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from core.crm import lists
from core.crm.customers import CONTACT_READ, CUSTOMER_READ, bp
from core.crm.models import Contact, Customer
from core.crm.visibility import visible_to
from core.extensions import db
from core.plugins import flatten
from core.registry import SearchHit

PER_PROVIDER = 10


def search_customers(user, query: str, limit: int) -> list[SearchHit]:
    if not user.can(CUSTOMER_READ):
        return []
    conditions = lists.text_conditions(query, (Customer.search_name, Customer.initials), Customer.phone_digits)
    if not conditions:
        return []
    stmt = visible_to(user, select(Customer).where(or_(*conditions)), Customer)
    rows = db.session.execute(stmt.order_by(Customer.search_name, Customer.id).limit(limit)).unique().scalars()
    return [
        SearchHit(
            title=c.name,
            url=url_for("crm_customers.view", customer_id=c.id),
            kind=_("Customer"),
            subtitle=" · ".join(x for x in (c.phone, c.owner.label if c.owner else "") if x),
        )
        for c in rows
    ]


def search_contacts(user, query: str, limit: int) -> list[SearchHit]:
    if not user.can(CONTACT_READ):
        return []
    from core.crm.contact_views import _email_search

    conditions = lists.text_conditions(query, (Contact.search_name, Contact.initials), Contact.phone_digits)
    conditions += _email_search(query)
    if not conditions:
        return []
    stmt = visible_to(user, select(Contact).where(or_(*conditions)), Contact)
    rows = db.session.execute(stmt.order_by(Contact.search_name, Contact.id).limit(limit)).unique().scalars()
    return [
        SearchHit(
            title=c.name,
            url=url_for("crm_customers.view_contact", contact_id=c.id),
            kind=_("Contact"),
            subtitle=" · ".join(x for x in (c.customer.name if c.customer else "", c.mobile or c.phone, c.email) if x),
        )
        for c in rows
    ]


def run_search(user, query: str, limit: int = PER_PROVIDER) -> list[tuple]:
    """``(provider, hits)`` of every provider that found something, in the providers' order."""
    providers = flatten(current_app.extensions["mosaic"].hook.register_search_providers())
    results = []
    for provider in sorted(providers, key=lambda p: (p.order, p.key)):
        hits = list(provider.search(user, query, limit) or [])[:limit]
        if hits:
            results.append((provider, hits))
    return results


@bp.route("/search")
def search():
    query = (request.args.get("q") or "").strip()[:100]
    results = run_search(current_user, query) if query else []
    return render_template("core/crm/search.html", query=query, results=results)
