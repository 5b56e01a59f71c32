"""Qualifying, disqualifying and converting (转换) a lead.

:func:`convert` turns a lead into a customer (new, or an existing one the duplicate rules found) and a
contact (new, an existing one of that customer, or none) in **one** transaction: custom field values carry
over by key, the lead's activities get the customer and contact (they keep their link to the lead), and
the ``lead_converted`` hook (:mod:`addons.crm_lead.hookspecs`) lets other addons add what they make of a
converted lead — crm_sales an opportunity — without this addon importing them. Everything runs in a
savepoint of the caller's transaction: if anything fails (a hook raises, the database refuses a row),
nothing of the conversion stays and :class:`ConversionError` carries a translated message. The caller
commits.

:func:`qualify`, :func:`disqualify` (with a reason of the picklist ``lead_disqualify_reason`` and an
optional note, kept as a note activity on the lead) and :func:`reopen` move a lead between statuses; the
audit trail records the changes (the model's ``__audit_fields__``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.crm import custom_fields, dedup
from core.crm.models import Activity, Contact, Customer, PicklistValue
from core.crm.visibility import get_visible
from core.extensions import db
from core.plugins import flatten
from core.timeutil import utcnow

from .leads import DISQUALIFY_REASON
from .models import Lead

log = logging.getLogger(__name__)

CONVERT = "crm_lead.lead.convert"
WRITE = "crm_lead.lead.write"
#: the ``related_object`` of activities on a lead (core Activity); the namespaced spelling is accepted too
ACTIVITY_OBJECTS = ("lead", "crm_lead.lead")
NOTE_MAX = 2000
#: the statuses a lead is never converted (nor claimed from the pool) from
CLOSED_STATUSES = ("converted", "disqualified")

CUSTOMER_FIELDS = ("name", "region", "industry", "phone", "address", "website", "email")
CONTACT_FIELDS = ("name", "title", "mobile", "phone", "email")


class ConversionError(Exception):
    """The lead was not converted (or its status not changed); ``str(error)`` is a translated message.

    ``matches``: the duplicate rules' matches that refused a new customer, when that was the reason;
    ``conflict``: the lead's state (or the data) refused it, not the values given (the API's 409).
    """

    def __init__(self, message: str, matches: list | None = None, conflict: bool = False):
        super().__init__(message)
        self.message = message
        self.matches = matches or []
        self.conflict = conflict or bool(matches)


@dataclass
class ConversionResult:
    """What a conversion made: the customer and contact (new or existing) and what the hook added."""

    lead: Lead
    customer: Customer
    contact: Contact | None
    created_customer: bool
    created_contact: bool
    records: dict = field(default_factory=dict)
    activities: int = 0
    #: custom field keys of the lead that could not be carried over (the target refused the value)
    skipped_fields: list = field(default_factory=list)


# -- proposals (what the conversion form shows first) --------------------------------------------------
def customer_proposal(lead: Lead) -> dict:
    """A new customer's values made of the lead: the company (or, for a private person, the name)."""
    return {"name": (lead.company or lead.name or "").strip(), "region": lead.region or "",
            "industry": lead.industry or "", "phone": lead.phone or "", "address": lead.address or "",
            "website": lead.website or "", "email": lead.email if not lead.company else ""}


def contact_proposal(lead: Lead) -> dict:
    return {"name": lead.name or "", "title": lead.title or "", "mobile": lead.mobile or "",
            "phone": lead.phone or "", "email": lead.email or ""}


def customer_matches(lead: Lead, values: dict | None = None, user=None, limit: int = 10) -> list:
    """Existing customers the duplicate rules say the lead's company is (``dedup.Match``, strongest first)."""
    values = values or customer_proposal(lead)
    probe = {"name": values.get("name") or "", "phone": values.get("phone") or lead.phone or "",
             "email": values.get("email") or lead.email or ""}
    if not any(probe.values()):
        return []
    return dedup.check("customer", probe, limit=limit, user=user)


def contact_matches(lead: Lead, customer_ids=None, user=None, limit: int = 10) -> list[tuple]:
    """``(match, contact)`` of existing visible contacts the rules say are the lead's person; with
    ``customer_ids``, only contacts of those customers."""
    probe = {"name": lead.name or "", "mobile": lead.mobile or "", "phone": lead.phone or "",
             "email": lead.email or ""}
    if not any(probe.values()):
        return []
    out = []
    for match in dedup.check("contact", probe, limit=limit, user=user):
        contact = get_visible(user, Contact, match.record_id) if match.visible and match.record_id else None
        if contact is not None and (customer_ids is None or contact.customer_id in customer_ids):
            out.append((match, contact))
    return out


# -- statuses -------------------------------------------------------------------------------------------
def _note(lead: Lead, user, subject: str, notes: str) -> None:
    """A done note activity on the lead (its timeline shows why its status changed)."""
    if user is None:
        return
    now = utcnow()
    db.session.add(Activity(kind="note", subject=subject[:255], notes=notes, status="done", due_at=now,
                            done_at=now, related_object=ACTIVITY_OBJECTS[0], related_id=lead.id,
                            owner_id=user.id))


def qualify(lead: Lead, *, user=None) -> None:
    """A new or worked lead is qualified (a real prospect). No commit."""
    if lead.status not in ("new", "working"):
        raise ConversionError(_("Only a new or worked lead can be qualified."), conflict=True)
    lead.status = "qualified"
    lead.qualified_at = utcnow()
    db.session.flush()


def reason_codes() -> set[str]:
    return set(db.session.execute(select(PicklistValue.code).where(
        PicklistValue.picklist == DISQUALIFY_REASON, PicklistValue.active.is_(True))).scalars())


def disqualify(lead: Lead, reason: str, note: str = "", *, user=None) -> None:
    """Disqualify an open lead with a reason (a code of the picklist) and an optional note. No commit."""
    reason = (reason or "").strip()
    note = (note or "").strip()
    if lead.status not in ("new", "working", "qualified"):
        raise ConversionError(_("Only an open lead can be disqualified."), conflict=True)
    if not reason:
        raise ConversionError(_("Choose why the lead is disqualified."))
    if reason not in reason_codes():
        raise ConversionError(_("“%(value)s” is not a value of this list.", value=reason))
    if len(note) > NOTE_MAX:
        raise ConversionError(_("At most %(max)d characters.", max=NOTE_MAX))
    from core.crm.picklists import picklist_label

    lead.status = "disqualified"
    lead.disqualify_reason = reason
    lead.disqualified_at = utcnow()
    _leave_pool(lead)
    _note(lead, user, _("Disqualified: %(reason)s", reason=picklist_label(DISQUALIFY_REASON, reason)), note)
    db.session.flush()


def reopen(lead: Lead, *, user=None) -> None:
    """A disqualified lead is worked again: ``working`` if it was ever contacted, else ``new``. No commit."""
    if lead.status != "disqualified":
        raise ConversionError(_("Only a disqualified lead can be reopened."), conflict=True)
    lead.status = "working" if lead.first_contacted_at is not None else "new"
    lead.disqualify_reason = None
    lead.disqualified_at = None
    db.session.flush()


# -- converting -----------------------------------------------------------------------------------------
def _carry_custom(lead: Lead, target, object_name: str, user, skipped: list) -> None:
    """The lead's custom field values whose key the target object also defines; refused values are skipped."""
    if target is None:
        return
    try:
        values = custom_fields.get_values(lead)
    except ValueError:  # leads carry no custom fields (the leads area did not register them)
        return
    known = {d.key for d in custom_fields.definitions(object_name)}
    own = dict(getattr(target, "custom", None) or {})
    for key, value in values.items():
        if key not in known or key in own:
            continue
        try:
            custom_fields.set_values(target, {key: value}, user=user)
        except custom_fields.CustomFieldErrors:
            skipped.append(key)


def _missing_required(target, object_name: str) -> list[str]:
    if target is None:
        return []
    values = custom_fields.get_values(target)
    missing = custom_fields.missing_required(object_name, values)
    return [d.label for d in custom_fields.definitions(object_name) if d.key in missing]


def _clean(values: dict | None, names: tuple, defaults: dict) -> dict:
    values = values or {}
    return {n: (values.get(n) if values.get(n) is not None else defaults.get(n, "")) or "" for n in names}


def _hook_records(lead, customer, contact, user, options, owner_id: int) -> dict:
    if not has_app_context() or "mosaic" not in current_app.extensions:
        return {}
    records: dict = {}
    results = flatten(current_app.extensions["mosaic"].hook.lead_converted(
        lead=lead, customer=customer, contact=contact, user=user, options=options, owner_id=owner_id))
    for result in results:
        if isinstance(result, dict):
            records.update({str(k): v for k, v in result.items()})
    return records


def _leave_pool(lead: Lead) -> None:
    """A converted or disqualified lead is nobody's to claim: out of the pool, through the ORM (the audit
    trail records ``in_pool`` as for a lead returned by hand)."""
    if lead.in_pool:
        lead.in_pool = False


def _claim_for_conversion(lead: Lead) -> None:
    """Mark the lead converted in the database before anything else of the conversion — one guarded
    ``UPDATE … WHERE id = :id AND status NOT IN ('converted', 'disqualified')``: of conversions of the same
    lead running at once, exactly one changes the row (PostgreSQL makes the others wait for its commit and
    re-check the condition; SQLite serialises writers); the others are refused as already converted."""
    table = Lead.__table__
    won = db.session.execute(
        update(table).where(table.c.id == lead.id, table.c.status.notin_(CLOSED_STATUSES))
        .values(status="converted", in_pool=False)
    ).rowcount == 1
    if won:
        return
    status = db.session.execute(select(table.c.status).where(table.c.id == lead.id)).scalar()
    if status == "disqualified":
        raise ConversionError(_("A disqualified lead cannot be converted: reopen it first."), conflict=True)
    raise ConversionError(_("This lead has already been converted."), conflict=True)


def convert(lead: Lead, *, user, customer_id: int | None = None, options: dict | None = None,
            customer_values: dict | None = None, contact_values: dict | None = None,
            contact_id: int | None = None, create_contact: bool = True, owner_id: int | None = None,
            allow_warnings: bool = False) -> ConversionResult:
    """Convert ``lead`` in one step; the caller checked the user's permissions and commits.

    ``customer_id``: attach to this existing customer (visible to ``user``) instead of creating one from
    ``customer_values`` (default: :func:`customer_proposal`). ``contact_id``: an existing contact of that
    customer is the lead's person; else a contact is created from ``contact_values`` unless
    ``create_contact`` is false. ``owner_id``: of the new records — the customer, the contact and what the
    ``lead_converted`` implementations create (they get it as ``owner_id``) — default the lead's owner, else
    ``user``. A new customer the duplicate rules block is refused (``ConversionError.matches``); one they
    warn about is refused unless ``allow_warnings``. ``options`` go to the ``lead_converted`` hook.

    The lead is claimed first (:func:`_claim_for_conversion`): a lead converted meanwhile by someone else —
    ``lead`` read before that — is refused as already converted. A lead in the lead pool leaves it.
    """
    options = dict(options or {})
    if lead.status == "converted":
        raise ConversionError(_("This lead has already been converted."), conflict=True)
    if lead.status == "disqualified":
        raise ConversionError(_("A disqualified lead cannot be converted: reopen it first."), conflict=True)
    owner_id = owner_id or lead.owner_id or user.id
    created_customer = created_contact = False
    skipped: list = []
    db.session.flush()
    try:
        with db.session.begin_nested():
            _claim_for_conversion(lead)
            if customer_id is not None:
                customer = get_visible(user, Customer, customer_id)
                if customer is None:
                    raise ConversionError(_("Pick a customer from the suggestions."))
            else:
                values = _clean(customer_values, CUSTOMER_FIELDS, customer_proposal(lead))
                values = {k: v.strip() for k, v in values.items()}
                if not values["name"]:
                    raise ConversionError(_("The customer needs a name."))
                if any(rule.action == "block" for rule in dedup.rules("customer")):
                    dedup.lock_object("customer")  # two conversions at once: the second checks after the first
                matches = customer_matches(lead, values, user)
                blocking = [m for m in matches if m.action == "block"]
                if blocking or (matches and not allow_warnings):
                    raise ConversionError(
                        _("Not converted: the customer may already exist. Attach the lead to it, or confirm "
                          "that it is a new customer.") if not blocking else
                        _("Not converted: this customer already exists. Attach the lead to it."),
                        matches=blocking or matches)
                customer = Customer(owner_id=owner_id, **{k: (v or None) if k in ("region", "industry") else v
                                                          for k, v in values.items()})
                db.session.add(customer)
                created_customer = True
                _carry_custom(lead, customer, "customer", user, skipped)
                missing = _missing_required(customer, "customer")
                if missing:
                    raise ConversionError(_("The new customer needs a value for: %(fields)s.",
                                            fields=", ".join(missing)))
                db.session.flush()
            contact = None
            if contact_id is not None:
                contact = get_visible(user, Contact, contact_id)
                if contact is None or contact.customer_id != customer.id:
                    raise ConversionError(_("Pick a contact of the chosen customer."))
            elif create_contact:
                values = {k: v.strip() for k, v in _clean(contact_values, CONTACT_FIELDS,
                                                          contact_proposal(lead)).items()}
                if not values["name"]:
                    raise ConversionError(_("The contact needs a name."))
                contact = Contact(customer_id=customer.id, owner_id=owner_id, **values)
                db.session.add(contact)
                created_contact = True
                _carry_custom(lead, contact, "contact", user, skipped)
                missing = _missing_required(contact, "contact")
                if missing:
                    raise ConversionError(_("The new contact needs a value for: %(fields)s.",
                                            fields=", ".join(missing)))
                db.session.flush()
            moved = db.session.execute(
                update(Activity)
                .where(Activity.related_object.in_(ACTIVITY_OBJECTS), Activity.related_id == lead.id)
                .values(customer_id=customer.id,
                        contact_id=Activity.contact_id if contact is None else
                        func.coalesce(Activity.contact_id, contact.id))
                .execution_options(synchronize_session=False)
            ).rowcount or 0
            if lead.last_contacted_at is not None and (customer.last_contacted_at is None
                                                       or customer.last_contacted_at < lead.last_contacted_at):
                customer.last_contacted_at = lead.last_contacted_at
            lead.status = "converted"
            lead.converted_at = utcnow()
            lead.converted_by_id = user.id
            lead.converted_customer_id = customer.id
            lead.converted_contact_id = contact.id if contact is not None else None
            _leave_pool(lead)
            db.session.flush()
            records = _hook_records(lead, customer, contact, user, options, owner_id)
            lead.converted_records = records or None
            db.session.flush()
    except ConversionError:
        raise
    except SQLAlchemyError as exc:
        log.warning("lead %s not converted: %s", lead.id, exc)
        raise ConversionError(_("The lead was not converted: the database refused the change. Nothing was "
                                "saved."), conflict=True) from exc
    except Exception as exc:  # a lead_converted implementation refused (or failed)
        log.info("lead %s not converted: %s", lead.id, exc)
        raise ConversionError(_("The lead was not converted: %(reason)s", reason=str(exc) or type(exc).__name__),
                              conflict=True) from exc
    return ConversionResult(lead=lead, customer=customer, contact=contact, created_customer=created_customer,
                            created_contact=created_contact, records=records, activities=moved,
                            skipped_fields=skipped)


def converted_from(customer_id: int, user=None, limit: int = 50) -> list[Lead]:
    """The leads converted into a customer (the 360° view's panel), newest first, visible to ``user``."""
    from core.crm.visibility import visible_to

    stmt = select(Lead).where(Lead.converted_customer_id == customer_id)
    if user is not None:
        stmt = visible_to(user, stmt, Lead)
    return list(db.session.execute(stmt.order_by(Lead.converted_at.desc(), Lead.id.desc()).limit(limit))
                .unique().scalars())


__all__ = ["CLOSED_STATUSES", "CONVERT", "ConversionError", "ConversionResult", "contact_matches", "convert",
           "converted_from", "customer_matches", "customer_proposal", "disqualify", "qualify", "reopen"]
