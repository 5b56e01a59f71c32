"""Customers, contacts, the 360° view, lists and search.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS). This module holds
the blueprint and the hook implementations; the pages live in :mod:`core.crm.customer_views`,
:mod:`core.crm.contact_views` and :mod:`core.crm.search`, the list engine in :mod:`core.crm.lists`.

Every save of a customer or contact (form, import, API) stores its search keys (``search_name``,
``initials``, ``phone_digits``, ``email_key``) through :mod:`core.crm.normalise`, and the duplicate rules'
match keys (``name_key``, ``phone_key``, ``mobile_key``) through :mod:`core.crm.dedup_normalise`: see the
mapper events below.
"""

from __future__ import annotations

from flask import Blueprint
from flask_babel import lazy_gettext as _l
from sqlalchemy import event

from core.crm import dedup_normalise, normalise
from core.crm.models import Contact, Customer
from core.hookspecs import hookimpl
from core.registry import CustomerPanel, MenuItem, Permission, SearchProvider

bp = Blueprint("crm_customers", __name__)


def creates_cycle(customer: Customer, parent: Customer) -> bool:
    """Whether ``parent`` as ``customer``'s parent customer closes a loop (it is the customer, or one of its
    subsidiaries at any depth) — refused by the form and the API alike."""
    from core.extensions import db

    node, steps = parent, 0
    while node is not None and steps < 100:
        if node.id == customer.id:
            return True
        node = db.session.get(Customer, node.parent_id) if node.parent_id else None
        steps += 1
    return node is not None

CUSTOMER_READ = "core.customer.read"
CUSTOMER_WRITE = "core.customer.write"
CUSTOMER_DELETE = "core.customer.delete"
CONTACT_READ = "core.contact.read"
CONTACT_WRITE = "core.contact.write"
CONTACT_DELETE = "core.contact.delete"


# -- search keys on every save ------------------------------------------------------------------------
@event.listens_for(Customer, "before_insert")
@event.listens_for(Customer, "before_update")
def _customer_keys(_mapper, _connection, customer: Customer) -> None:
    customer.search_name = normalise.search_key(customer.name)
    customer.initials = normalise.initials(customer.name)
    customer.phone_digits = normalise.phone_digits(customer.phone)
    customer.name_key = dedup_normalise.name_key(customer.name)
    customer.phone_key = dedup_normalise.phone_key(customer.phone)
    customer.email_key = dedup_normalise.email_key(customer.email)


@event.listens_for(Contact, "before_insert")
@event.listens_for(Contact, "before_update")
def _contact_keys(_mapper, _connection, contact: Contact) -> None:
    contact.search_name = normalise.search_key(contact.name)
    contact.initials = normalise.initials(contact.name)
    contact.phone_digits = normalise.phone_digits(contact.mobile or contact.phone)
    contact.email_key = (contact.email or "").strip().casefold()[:255]
    contact.mobile_key = dedup_normalise.phone_key(contact.mobile)
    contact.phone_key = dedup_normalise.phone_key(contact.phone)


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def register_permissions():
    return [
        Permission(CUSTOMER_READ, _l("See customers")),
        Permission(CUSTOMER_WRITE, _l("Create and edit customers")),
        Permission(CUSTOMER_DELETE, _l("Delete customers")),
        Permission(CONTACT_READ, _l("See contacts")),
        Permission(CONTACT_WRITE, _l("Create and edit contacts")),
        Permission(CONTACT_DELETE, _l("Delete contacts")),
    ]


@hookimpl
def register_menu():
    return [
        MenuItem(label=_l("Customers"), endpoint="crm_customers.index", permission=CUSTOMER_READ, order=10),
        MenuItem(label=_l("Contacts"), endpoint="crm_customers.contacts", permission=CONTACT_READ, order=11),
    ]


@hookimpl
def register_customer_panels():
    from core.crm.contact_views import contacts_panel

    return [CustomerPanel(key="core.contacts", title=_l("Contacts"), render=contacts_panel, order=10,
                          permission=CONTACT_READ)]


@hookimpl
def register_search_providers():
    from core.crm.search import search_contacts, search_customers

    return [
        SearchProvider(key="core.customers", label=_l("Customers"), search=search_customers, order=10),
        SearchProvider(key="core.contacts", label=_l("Contacts"), search=search_contacts, order=20),
    ]


@hookimpl(trylast=True)  # after the core's demo users exist
def load_demo_data(edition, language):
    from core.crm.customer_demo import load

    load(language)


from core.crm import contact_views, customer_views, search  # noqa: E402,F401 - the pages register on bp
