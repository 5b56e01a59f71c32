"""The core's API resources: customers, contacts, products, activities."""

from __future__ import annotations

from functools import lru_cache

from flask_babel import lazy_gettext as _l

from core.crm import dedup, normalise
from core.crm.activities import PRODUCT_WRITE, activity_links, activity_saved
from core.crm.customers import (
    CONTACT_DELETE,
    CONTACT_READ,
    CONTACT_WRITE,
    CUSTOMER_DELETE,
    CUSTOMER_READ,
    CUSTOMER_WRITE,
    creates_cycle,
)
from core.registry import ApiResource
from core.timeutil import utcnow

# Picklist names (core.crm.picklists declares them with their defaults).
INDUSTRY, REGION, CUSTOMER_TYPE, CONTACT_ROLE = "industry", "region", "customer_type", "contact_role"


def customer_keys(customer) -> None:
    customer.search_name = normalise.search_key(customer.name)
    customer.initials = normalise.initials(customer.name)
    customer.phone_digits = normalise.phone_digits(customer.phone)


def contact_keys(contact) -> None:
    contact.search_name = normalise.search_key(contact.name)
    contact.initials = normalise.initials(contact.name)
    contact.phone_digits = normalise.phone_digits(contact.mobile or contact.phone)
    contact.email_key = (contact.email or "").strip().casefold()[:255]


def product_keys(product) -> None:
    product.search_name = normalise.search_key(product.name)


def activity_before_save(activity) -> None:
    """As the web form saves one: an activity on a contact is about the contact's customer; a done one has
    its ``done_at`` (now when not given), another none."""
    if activity.contact_id and not activity.customer_id:
        activity.customer_id = activity_links(None, activity.contact_id)[0]
    if activity.status == "done":
        if activity.done_at is None:
            activity.done_at = utcnow()
    else:
        activity.done_at = None


def activity_after_save(activity) -> None:
    """Like the web UI: a done contact activity moves its customer's ``last_contacted_at``."""
    activity_saved(activity)


def activity_check(record, values: dict, user) -> None:
    """A contact of another customer than the activity's is refused, as the web form refuses it."""
    from flask_babel import gettext as _

    from core.crm.api_auth import ApiError

    customer_id = values["customer_id"] if "customer_id" in values else getattr(record, "customer_id", None)
    contact_id = values["contact_id"] if "contact_id" in values else getattr(record, "contact_id", None)
    if not activity_links(customer_id, contact_id)[1]:
        raise ApiError(400, "validation", _("Some fields are not valid."), {
            "contact_id": _("This contact belongs to another customer.")})


def _customer_check(duplicates):
    """A customer's API write: a parent that would close a loop is refused as the form refuses it (a loop
    saved through the API made the customer's form refuse every later save), then the duplicate rules."""

    def check(record, values: dict, user) -> None:
        from flask_babel import gettext as _

        from core.crm.api_auth import ApiError
        from core.crm.models import Customer
        from core.extensions import db

        parent_id = values.get("parent_id")
        if record is not None and parent_id is not None and parent_id != record.parent_id:
            parent = db.session.get(Customer, parent_id)
            if parent is not None and creates_cycle(record, parent):
                raise ApiError(400, "validation", _("Some parameters are not valid."), {
                    "parent_id": _("A customer cannot be its own parent or a parent of its parents.")})
        duplicates(record, values, user)

    return check


@lru_cache(maxsize=1)
def core_resources() -> tuple[ApiResource, ...]:
    """Built once (field descriptions are cached per resource object)."""
    from core.crm.labels import CUSTOMER_STATUS_LABELS
    from core.crm.models import (
        ACTIVITY_KINDS,
        ACTIVITY_STATES,
        CLASSIFICATIONS,
        Activity,
        Contact,
        Currency,
        Customer,
        Product,
    )

    customers = ApiResource(
        name="customers",
        model=Customer,
        label=_l("Customers"),
        fields=(
            "id", "name", "classification", "industry", "region", "type", "status", "owner_id", "parent_id",
            "address", "phone", "email", "website", "last_contacted_at", "created_at", "updated_at", "custom",
        ),
        writable=(
            "name", "classification", "industry", "region", "type", "status", "owner_id", "parent_id",
            "address", "phone", "email", "website", "custom",
        ),
        permission_read=CUSTOMER_READ,
        permission_write=CUSTOMER_WRITE,
        permission_delete=CUSTOMER_DELETE,
        choices={"classification": CLASSIFICATIONS, "status": tuple(CUSTOMER_STATUS_LABELS)},
        picklists={"industry": INDUSTRY, "region": REGION, "type": CUSTOMER_TYPE},
        references={"parent_id": Customer},
        filters=("classification", "industry", "region", "type", "status", "owner_id", "parent_id"),
        search=("search_name", "initials", "phone_digits"),
        before_save=customer_keys,
        check=_customer_check(dedup.api_check("customer", ("name", "phone", "email"))),
        order=10,
    )
    contacts = ApiResource(
        name="contacts",
        model=Contact,
        label=_l("Contacts"),
        fields=(
            "id", "customer_id", "name", "title", "mobile", "phone", "email", "birthday", "decision_role",
            "owner_id", "created_at", "updated_at", "custom",
        ),
        writable=("customer_id", "name", "title", "mobile", "phone", "email", "birthday", "decision_role", "owner_id",
                  "custom"),
        permission_read=CONTACT_READ,
        permission_write=CONTACT_WRITE,
        permission_delete=CONTACT_DELETE,
        picklists={"decision_role": CONTACT_ROLE},
        references={"customer_id": Customer},
        filters=("customer_id", "owner_id"),
        search=("search_name", "initials", "phone_digits", "email_key"),
        before_save=contact_keys,
        check=dedup.api_check("contact", ("name", "mobile", "phone", "email")),
        order=20,
    )
    products = ApiResource(
        name="products",
        model=Product,
        label=_l("Products"),
        fields=("id", "code", "name", "category", "unit", "list_price", "currency", "active"),
        writable=("code", "name", "category", "unit", "list_price", "currency", "active"),
        permission_write=PRODUCT_WRITE,  # everyone signed in sees products; products are deactivated, not deleted
        deletable=False,
        owned=False,
        references={"currency": Currency},
        filters=("code", "category", "currency", "active"),
        search=("search_name",),
        before_save=product_keys,
        order=30,
    )
    activities = ApiResource(
        name="activities",
        model=Activity,
        label=_l("Activities"),
        title_field="subject",
        fields=(
            "id", "kind", "subject", "notes", "status", "due_at", "done_at", "next_follow_up", "customer_id",
            "contact_id", "related_object", "related_id", "owner_id", "created_at",
        ),
        writable=(
            "kind", "subject", "notes", "status", "due_at", "done_at", "next_follow_up", "customer_id",
            "contact_id", "owner_id",
        ),
        # as in the web UI (its page's Delete): whoever may change an activity moves it to the recycle bin
        choices={"kind": ACTIVITY_KINDS, "status": ACTIVITY_STATES},
        references={"customer_id": Customer, "contact_id": Contact},
        filters=("kind", "status", "customer_id", "contact_id", "owner_id"),
        before_save=activity_before_save,
        after_save=activity_after_save,
        check=activity_check,
        order=40,
    )
    return customers, contacts, products, activities
