"""Leads in the REST API: ``/api/v1/crm_lead.leads`` (list with filters and paging, fetch, create, update,
delete to the recycle bin) and the actions ``convert``, ``qualify``, ``disqualify`` and ``reopen`` on one lead.

The generic handlers of :mod:`core.crm.api_views` do the work (token, permissions, visibility, validation);
this module adds what the web form does on top: a way to reach the person is required, and a new or changed
lead is checked against the duplicate rules of leads — a blocking match answers 409 with the matches
(``error.matches``). The actions call the same
service as the pages (:mod:`addons.crm_lead.convert`).
"""

from __future__ import annotations

import re

from flask import g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.crm import dedup
from core.crm.api_auth import ApiError, forbidden
from core.crm.api_fields import serialise
from core.crm.customers import CONTACT_WRITE, CUSTOMER_WRITE
from core.extensions import db
from core.models import User
from core.params import is_id
from core.registry import ApiAction, ApiResource

from . import convert as service
from . import duplicates
from .forms import REACH_MESSAGE
from .leads import DISQUALIFY_REASON, LEAD_SOURCE
from .models import STATUSES, Lead

NAME = "crm_lead.leads"
#: the duplicate rules' object of leads and the values it compares (the leads area registers it)
DEDUP_OBJECT, DEDUP_SOURCES = duplicates.OBJECT, duplicates.SOURCES

FIELDS = (
    "id", "name", "company", "title", "mobile", "phone", "email", "website", "address", "region", "industry",
    "source", "campaign", "description", "status", "disqualify_reason", "owner_id", "team_id", "in_pool",
    "first_contacted_at", "last_contacted_at", "qualified_at", "disqualified_at", "converted_at",
    "converted_by_id", "converted_customer_id", "converted_contact_id", "converted_records", "created_by_id",
    "created_at", "updated_at", "custom",
)
WRITABLE = ("name", "company", "title", "mobile", "phone", "email", "website", "address", "region", "industry",
            "source", "campaign", "description", "owner_id", "custom")


def _matches_json(matches) -> list[dict]:
    return [dedup.as_json(m) for m in matches]


_PHONE = re.compile(r"^[\d\s+()\-.#*/转extEXT]*$")
_MOBILE = re.compile(r"^[\d\s+()\-.]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_lead(record, values: dict, user) -> None:
    """Before a POST or PATCH, what the lead form checks besides the columns: a way to reach the person
    (mobile, phone or e-mail), the numbers' and address's shapes (400), then the duplicate rules of leads
    (a blocking match is a 409 with the matches; customers and contacts only warn, as on the form)."""
    merged = {k: values[k] if k in values else (getattr(record, k, "") if record is not None else "")
              for k in DEDUP_SOURCES}
    merged = {k: (v or "").strip() for k, v in merged.items()}
    errors = {}
    if not any(merged[k] for k in ("mobile", "phone", "email")):
        errors["mobile"] = str(REACH_MESSAGE)
    if "mobile" in values and not _MOBILE.match(merged["mobile"]):
        errors["mobile"] = _("A phone number has digits, spaces and + - ( ) only.")
    if "phone" in values and not _PHONE.match(merged["phone"]):
        errors["phone"] = _("A phone number has digits, spaces and + - ( ) only.")
    if "email" in values and merged["email"] and not _EMAIL.match(merged["email"]):
        errors["email"] = _("Invalid email address.")
    if "website" in values and re.search(r"\s", values.get("website") or ""):
        errors["website"] = _("A web address has no spaces.")
    if errors:
        raise ApiError(400, "validation", _("Some fields are not valid."), errors)
    check_duplicates(record, merged, user)


def check_duplicates(record, values: dict, user) -> None:
    """The duplicate rules of leads; a blocking match is a 409 with the matches.

    Checked as the lead form and the core's customers and contacts API check (:func:`core.crm.dedup.edit_matches`):
    a new lead against every active rule; an edit only against the rules comparing a field whose *normalised*
    key it changes — a mobile re-formatted or a company given a legal suffix is no change, and a new e-mail is
    not refused for the mobile the lead already shared with another. A blocking rule's check and the save are
    serialised (the same mobile sent twice at once stores one lead)."""
    if DEDUP_OBJECT not in dedup.objects():
        return
    probe = {k: values.get(k, getattr(record, k, "") if record is not None else "") or "" for k in DEDUP_SOURCES}
    matches = dedup.edit_matches(DEDUP_OBJECT, probe, record, limit=10, user=user)
    blocking = [m for m in matches if m.action == "block"]
    if blocking:
        raise ApiError(409, "duplicate", _("Not saved: this record duplicates existing records."),
                       extra={"matches": _matches_json(blocking)})


def before_save(lead: Lead) -> None:
    """Like the form: the creator, and the team of an owner who has none yet."""
    user = g.get("api_user")
    if lead.id is None and user is not None and lead.created_by_id is None:
        lead.created_by_id = user.id
    if lead.owner_id is not None and lead.team_id is None:
        owner = db.session.get(User, lead.owner_id)
        lead.team_id = owner.department_id if owner is not None else None


def _refused(exc: service.ConversionError) -> ApiError:
    if exc.matches:
        return ApiError(409, "duplicate", exc.message, extra={"matches": _matches_json(exc.matches)})
    if exc.conflict:
        return ApiError(409, "conflict", exc.message)
    return ApiError(400, "validation", exc.message)


def _int_or_none(body: dict, key: str):
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "validation", _("Some fields are not valid."), {key: _("Must be an integer.")})
    if not is_id(value):  # beyond any id column: no such record (the database would refuse the number)
        raise ApiError(400, "validation", _("Some fields are not valid."),
                       {key: _("There is no such record, or you may not see it.")})
    return value


def _object(body: dict, key: str) -> dict | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
        raise ApiError(400, "validation", _("Some fields are not valid."),
                       {key: _("Must be an object of texts.")})
    return value


def run_convert(lead: Lead, body: dict, user):
    """``POST …/<id>/convert``: the conversion, with the choices of the body (all optional)."""
    customer_id = _int_or_none(body, "customer_id")
    contact_id = _int_or_none(body, "contact_id")
    create_contact = body.get("create_contact", True)
    if not isinstance(create_contact, bool):
        raise ApiError(400, "validation", _("Some fields are not valid."),
                       {"create_contact": _("Must be true or false.")})
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "validation", _("Some fields are not valid."), {"options": _("Must be an object.")})
    if (customer_id is None and not user.can(CUSTOMER_WRITE)) or (
            contact_id is None and create_contact and not user.can(CONTACT_WRITE)):
        raise forbidden()
    try:
        result = service.convert(
            lead, user=user, customer_id=customer_id, contact_id=contact_id, create_contact=create_contact,
            customer_values=_object(body, "customer"), contact_values=_object(body, "contact"),
            allow_warnings=body.get("allow_duplicates") is True, options=options)
    except service.ConversionError as exc:
        raise _refused(exc) from None
    return 200, {
        "lead": serialise(lead_resource(), lead),
        "customer_id": result.customer.id,
        "contact_id": result.contact.id if result.contact is not None else None,
        "created_customer": result.created_customer,
        "created_contact": result.created_contact,
        "records": result.records,
        "activities": result.activities,
        "skipped_fields": result.skipped_fields,
    }


def _status_action(change):
    def run(lead: Lead, body: dict, user):
        try:
            change(lead, body, user)
        except service.ConversionError as exc:
            raise _refused(exc) from None
        return 200, serialise(lead_resource(), lead)

    return run


def _disqualify(lead, body, user):
    reason, note = body.get("reason"), body.get("note") or ""
    if not isinstance(reason, str) or not isinstance(note, str):
        raise ApiError(400, "validation", _("Some fields are not valid."), {"reason": _("Must be a string.")})
    service.disqualify(lead, reason, note, user=user)


_CUSTOMER_SCHEMA = {"type": "object", "additionalProperties": {"type": ["string", "null"]},
                    "description": _l("The new customer's values (name, region, industry, phone, address, "
                                      "website, email); default: made of the lead.")}
_CONTACT_SCHEMA = {"type": "object", "additionalProperties": {"type": ["string", "null"]},
                   "description": _l("The new contact's values (name, title, mobile, phone, email); default: "
                                     "made of the lead.")}


def _convert_request() -> dict:
    return {"type": "object", "additionalProperties": False, "properties": {
        "customer_id": {"type": ["integer", "null"], "description": _l("Attach to this existing customer.")},
        "contact_id": {"type": ["integer", "null"],
                       "description": _l("An existing contact of that customer is the lead's person.")},
        "create_contact": {"type": "boolean", "default": True},
        "customer": _CUSTOMER_SCHEMA,
        "contact": _CONTACT_SCHEMA,
        "allow_duplicates": {"type": "boolean", "default": False,
                             "description": _l("Create the customer although duplicate rules warn.")},
        "options": {"type": "object", "description": _l("Passed to the addons that take part in the "
                                                         "conversion (e.g. an opportunity).")},
    }}


_CONVERT_RESPONSE = {"type": "object", "required": ["lead", "customer_id", "contact_id", "records"], "properties": {
    "lead": {"$ref": f"#/components/schemas/{NAME}"},
    "customer_id": {"type": "integer"},
    "contact_id": {"type": ["integer", "null"]},
    "created_customer": {"type": "boolean"},
    "created_contact": {"type": "boolean"},
    "records": {"type": "object"},
    "activities": {"type": "integer"},
    "skipped_fields": {"type": "array", "items": {"type": "string"}},
}}
_LEAD = {"$ref": f"#/components/schemas/{NAME}"}


def lead_resource() -> ApiResource:
    """The resource, built once (the API caches field descriptions per resource object; the lazy texts are
    translated when the OpenAPI document is written)."""
    global _RESOURCE
    if _RESOURCE is None:
        _RESOURCE = ApiResource(
            name=NAME, model=Lead, label=_l("Leads"), fields=FIELDS, writable=WRITABLE,
            permission_read="crm_lead.app.read", permission_write=service.WRITE,
            permission_delete="crm_lead.lead.delete",
            choices={"status": STATUSES},
            picklists={"source": LEAD_SOURCE, "region": "region", "industry": "industry",
                       "disqualify_reason": DISQUALIFY_REASON},
            filters=("status", "source", "region", "industry", "owner_id", "team_id", "in_pool",
                     "converted_customer_id", "campaign"),
            search=("search_name", "initials", "phone_digits", "email_key"),
            before_save=before_save, check=check_lead, order=50,
            actions=(
                ApiAction("convert", run_convert, _l("Convert a lead into a customer and a contact"),
                          permission=service.CONVERT, request_schema=_convert_request(),
                          response_schema=_CONVERT_RESPONSE, conflict=True),
                ApiAction("qualify", _status_action(lambda lead, body, user: service.qualify(lead, user=user)),
                          _l("Qualify a lead"), response_schema=_LEAD, conflict=True),
                ApiAction("disqualify", _status_action(_disqualify), _l("Disqualify a lead with a reason"),
                          request_schema={"type": "object", "required": ["reason"], "properties": {
                              "reason": {"type": "string", "description": _l("A code of the picklist "
                                                                                  "lead_disqualify_reason.")},
                              "note": {"type": "string"}}},
                          response_schema=_LEAD, conflict=True),
                ApiAction("reopen", _status_action(lambda lead, body, user: service.reopen(lead, user=user)),
                          _l("Reopen a disqualified lead"), response_schema=_LEAD, conflict=True),
            ),
        )
    return _RESOURCE


_RESOURCE: ApiResource | None = None
