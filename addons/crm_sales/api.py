"""Opportunities in the REST API: ``/api/v1/crm_sales.opportunities`` (list with filters and paging, fetch,
create, update, delete to the recycle bin) and the action ``move`` (to another stage of its process).

The generic handlers of :mod:`core.crm.api_views` do the work (token, permissions, visibility, validation);
this module adds what the form does: the decision maker must be a contact of the opportunity's customer, a
new opportunity starts at its process's first open stage (or the default process's) with its first stage
change recorded, and the stage only changes through ``move`` — which applies the stage's required fields
exactly as the record page and the kanban board do (:func:`.stages.move`). A refused move answers **409**
with ``error.code = "stage_requirements"`` and ``error.missing``: the missing fields' codes and labels; so does
an update that would empty a field the opportunity's current stage requires (:func:`.stages.check_kept`).
"""

from __future__ import annotations

from flask import g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.crm import money
from core.crm.api_auth import ApiError
from core.crm.api_fields import serialise
from core.crm.models import Contact, Currency, Customer
from core.extensions import db
from core.params import is_id
from core.registry import ApiAction, ApiResource

from . import stages
from .hooks import DELETE, READ, WRITE
from .models import STATUSES, Opportunity, SalesProcess, Stage, StageChange
from .opportunities import LOST_REASON, SOURCE, company_amount
from .opportunity_import import MONEY_FIELDS, company_too_large

NAME = "crm_sales.opportunities"
FIELDS = (
    "id", "name", "customer_id", "contact_id", "process_id", "stage_id", "status", "probability", "amount",
    "currency", "amount_company", "close_date", "source", "description", "budget_known", "budget", "pain_points",
    "goals", "purchase_date", "expense_budget", "lost_reason", "lost_note", "owner_id", "team_id", "lead_id",
    "stage_entered_at", "closed_at", "created_by_id", "created_at", "updated_at", "custom",
)
WRITABLE = ("name", "customer_id", "contact_id", "process_id", "amount", "currency", "close_date", "source",
            "description", "budget_known", "budget", "pain_points", "goals", "purchase_date", "expense_budget",
            "owner_id", "custom")
_INVALID = _l("Some fields are not valid.")


def check_opportunity(record, values: dict, user) -> None:
    """Before a POST or PATCH: the amounts are at most what every database keeps exactly
    (:func:`amount_errors`); the decision maker belongs to the customer; the process is active and is not
    changed on an existing opportunity (its stage belongs to it)."""
    errors = {}
    customer_id = values.get("customer_id", getattr(record, "customer_id", None))
    contact_id = values.get("contact_id", getattr(record, "contact_id", None))
    if contact_id is not None and customer_id is not None:
        owner = db.session.scalar(select(Contact.customer_id).where(Contact.id == contact_id))
        if owner != customer_id:
            errors["contact_id"] = _("The decision maker must be a contact of the opportunity's customer.")
    errors.update(amount_errors(record, values))
    if "process_id" in values:
        if record is not None and values["process_id"] != record.process_id:
            errors["process_id"] = _("The sales process of an opportunity cannot be changed.")
        elif values["process_id"] is not None:
            process = db.session.get(SalesProcess, values["process_id"])
            if process is None or not process.active:
                errors["process_id"] = _("Choose an active sales process.")
    if errors:
        raise ApiError(400, "validation", str(_INVALID), errors)
    if record is not None and record.stage is not None:  # an update must not empty what its stage requires
        try:
            stages.check_kept(stages.snapshot(record), stages.snapshot(record, **values), record.stage)
        except stages.StageError as exc:
            raise ApiError(409, "stage_requirements", str(exc), extra={
                "missing": [{"code": f.code, "label": str(f.label)} for f in exc.missing]}) from None


def amount_errors(record, values: dict) -> dict[str, str]:
    """``{field: reason}`` of the amounts beyond :data:`core.crm.money.MAX_AMOUNT` — what SQLite would not keep
    exactly (1234567890123456.78 became …56.75) — the amount in the company currency (what the funnel sums)
    included. A value the record holds already is kept, as the generic validation keeps it."""
    errors = {}
    for name in MONEY_FIELDS:
        value = values.get(name)
        if value is None or (record is not None and value == getattr(record, name)):
            continue
        if value < 0:  # as the form: an amount, a budget is 0 or more (a negative one counted in the funnel)
            errors[name] = _("An amount cannot be negative.")
        elif money.amount_too_large(value):
            errors[name] = money.too_large_message()
    if "amount" not in errors and ("amount" in values or "currency" in values):
        amount = values.get("amount", getattr(record, "amount", None))
        currency = values.get("currency", getattr(record, "currency", None))
        try:
            in_company = company_amount(amount, currency)
        except money.MoneyError as exc:  # an unknown currency, or one without a rate: the save cannot value it
            errors["currency" if "currency" in values else "amount"] = str(exc)
            return errors
        if money.amount_too_large(in_company):
            errors["amount"] = company_too_large(in_company)
    return errors


def before_save(opportunity: Opportunity) -> None:
    """A new opportunity: its creator, and the first open stage of its process (the default process)."""
    user = g.get("api_user")
    if opportunity.id is None:
        with db.session.no_autoflush:
            _start(opportunity, user)


def _start(opportunity: Opportunity, user) -> None:
    """The creator, the process (default: the default process), its first open stage, the defaults."""
    if user is not None and opportunity.created_by_id is None:
        opportunity.created_by_id = user.id
    process = (db.session.get(SalesProcess, opportunity.process_id) if opportunity.process_id
               else stages.default_process())
    first = stages.first_stage(process)
    opportunity.process_id, opportunity.stage_id, opportunity.stage = process.id, first.id, first
    opportunity.status, opportunity.probability = first.kind, first.probability
    for column in ("description", "pain_points", "goals", "lost_note"):
        if getattr(opportunity, column) is None:
            setattr(opportunity, column, "")
    if not opportunity.close_date:
        from .opportunities import default_close_date

        opportunity.close_date = default_close_date()


def after_save(opportunity: Opportunity) -> None:
    """The first stage change of a new opportunity (the stage durations start there)."""
    has_history = db.session.scalar(select(func.count()).select_from(StageChange)
                                    .where(StageChange.opportunity_id == opportunity.id))
    if not has_history:
        user = g.get("api_user")
        db.session.add(StageChange(opportunity_id=opportunity.id, from_stage_id=None,
                                   to_stage_id=opportunity.stage_id, changed_at=opportunity.stage_entered_at,
                                   changed_by_id=getattr(user, "id", None)))


def _stage_action(opportunity: Opportunity, body: dict, user, action):
    """``{"stage_id": …, "reason": …, "note": …}`` checked, then ``action(opportunity, stage, user, …)`` —
    :func:`.stages.move` or :func:`.stages.change_process`; a refusal answers 409 with the missing fields."""
    stage_id, reason, note = body.get("stage_id"), body.get("reason"), body.get("note") or ""
    if isinstance(stage_id, bool) or not isinstance(stage_id, int):
        raise ApiError(400, "validation", str(_INVALID), {"stage_id": _("Must be an integer.")})
    if reason is not None and not isinstance(reason, str) or not isinstance(note, str):
        raise ApiError(400, "validation", str(_INVALID), {"reason": _("Must be a string.")})
    stage = db.session.get(Stage, stage_id) if is_id(stage_id) else None
    if stage is None:
        raise ApiError(400, "validation", str(_INVALID), {"stage_id": _("Unknown stage.")})
    try:
        action(opportunity, stage, user, reason=reason, note=note)
    except stages.StageError as exc:
        raise ApiError(409, "stage_requirements", str(exc), extra={
            "missing": [{"code": f.code, "label": str(f.label)} for f in exc.missing]}) from None
    return 200, serialise(opportunity_resource(), opportunity)


def run_move(opportunity: Opportunity, body: dict, user):
    """``POST …/<id>/move`` with ``{"stage_id": …, "reason": …, "note": …}``."""
    return _stage_action(opportunity, body, user, stages.move)


def run_change_process(opportunity: Opportunity, body: dict, user):
    """``POST …/<id>/change_process`` with ``{"stage_id": …, "reason": …, "note": …}``: a stage of another
    (active) process."""
    return _stage_action(opportunity, body, user, stages.change_process)


def opportunity_resource() -> ApiResource:
    """The resource, built once (the API caches its field descriptions per resource object)."""
    global _RESOURCE
    if _RESOURCE is None:
        _RESOURCE = ApiResource(
            name=NAME, model=Opportunity, label=_l("Opportunities"), fields=FIELDS, writable=WRITABLE,
            required=("name", "customer_id"),
            permission_read=READ, permission_write=WRITE, permission_delete=DELETE,
            choices={"status": STATUSES},
            picklists={"source": SOURCE, "lost_reason": LOST_REASON},
            references={"customer_id": Customer, "contact_id": Contact, "currency": Currency},
            filters=("status", "stage_id", "process_id", "customer_id", "owner_id", "team_id", "source", "lead_id"),
            search=("search_name",),
            before_save=before_save, after_save=after_save, check=check_opportunity, order=60,
            descriptions={"amount_company": _l("The amount in the company currency (what the funnel sums)."),
                          "stage_id": _l("Changed only by the action move.")},
            actions=(
                ApiAction("move", run_move, _l("Move an opportunity to another stage of its process"),
                          request_schema={"type": "object", "required": ["stage_id"], "properties": {
                              "stage_id": {"type": "integer"},
                              "reason": {"type": "string", "description": _l(
                                  "For lost and abandoned: a code of the picklist opportunity_lost_reason.")},
                              "note": {"type": "string"}}},
                          response_schema={"$ref": f"#/components/schemas/{NAME}"}, conflict=True),
                ApiAction("change_process", run_change_process,
                          _l("Move an opportunity into another sales process, at one of its stages"),
                          request_schema={"type": "object", "required": ["stage_id"], "properties": {
                              "stage_id": {"type": "integer", "description": _l("A stage of the other process.")},
                              "reason": {"type": "string", "description": _l(
                                  "For lost and abandoned: a code of the picklist opportunity_lost_reason.")},
                              "note": {"type": "string"}}},
                          response_schema={"$ref": f"#/components/schemas/{NAME}"}, conflict=True),
            ),
        )
    return _RESOURCE


_RESOURCE: ApiResource | None = None
