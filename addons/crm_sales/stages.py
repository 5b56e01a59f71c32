"""Sales processes and their stages (业务模式/销售阶段): the default process, the fields required to enter a
stage (the BANT "销售兵法"), and moving an opportunity from a stage to another.

Every move — from the form, the kanban board, the REST API — goes through :func:`move`: it refuses a stage
whose required fields are missing (:class:`StageError` names exactly which), asks a reason for lost and
abandoned, and records a :class:`~.models.StageChange` (who, when, how long in the previous stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from sqlalchemy import select

from core.crm.picklists import picklist_values
from core.extensions import db
from core.timeutil import utcnow

from .models import STAGE_KINDS, SalesProcess, Stage, StageChange

LOST_REASON = "opportunity_lost_reason"


@dataclass(frozen=True)
class RequiredField:
    """A field a stage may require: its code, label and whether an opportunity has it."""

    code: str
    label: object
    #: ``filled(opportunity) -> bool``
    filled: object


def _text(attr):
    return lambda opp: bool((getattr(opp, attr) or "").strip())


#: the fields a stage may require, in the order the settings page lists them (codes are stored in
#: ``Stage.required_fields``). Budget, Authority, Need, Time — and the usual others.
REQUIRED_FIELDS: dict[str, RequiredField] = {f.code: f for f in (
    RequiredField("amount", _l("Amount"), lambda opp: opp.amount is not None and opp.amount > 0),
    RequiredField("budget", _l("Budget known"), lambda opp: bool(opp.budget_known) and opp.budget is not None),
    RequiredField("decision_maker", _l("Decision maker"), lambda opp: opp.contact_id is not None),
    RequiredField("pain_points", _l("Pain points"), _text("pain_points")),
    RequiredField("goals", _l("Goals"), _text("goals")),
    RequiredField("purchase_date", _l("Expected purchase date"), lambda opp: opp.purchase_date is not None),
    RequiredField("close_date", _l("Close date"), lambda opp: opp.close_date is not None),
    RequiredField("products", _l("Products"), lambda opp: bool(opp.products)),
    RequiredField("competitors", _l("Competitors"), lambda opp: bool(opp.competitors)),
    RequiredField("description", _l("Description"), _text("description")),
)}

KIND_LABELS = {"open": _l("Open"), "won": _l("Won"), "lost": _l("Lost"), "abandoned": _l("Abandoned")}
assert tuple(KIND_LABELS) == STAGE_KINDS

#: the default process "标准销售流程" of the product documents: (name, probability, kind, required, guidance).
#: Names and guidance are stored as these English texts and shown translated (:func:`stage_label`); an
#: administrator's own names are shown as typed. Stage names have the message context "sales stage":
#: "Order" the stage (订单) is not "Order" the sort order (顺序), nor "Opportunity" the stage (机会) the record (商机).
DEFAULT_PROCESS_NAME = _l("Standard sales process")
DEFAULT_STAGES = (
    (_lp("sales stage", "Opportunity"), 10, "open", (),
     _l("Qualify the need: who is the customer, what do they want to buy?")),
    (_lp("sales stage", "Project approved"), 20, "open", ("amount", "budget"),
     _l("The customer has approved the project: confirm the budget and the amount.")),
    (_lp("sales stage", "Key decision maker won"), 50, "open", ("amount", "budget", "decision_maker"),
     _l("Identify the decision maker among the customer's contacts and win their support.")),
    (_lp("sales stage", "Solution proposal"), 60, "open",
     ("amount", "budget", "decision_maker", "pain_points", "goals"),
     _l("Present a solution to the customer's pain points and goals.")),
    (_lp("sales stage", "Bidding"), 70, "open",
     ("amount", "budget", "decision_maker", "pain_points", "goals", "purchase_date"),
     _l("Prepare the bid; know the expected purchase date and the competitors.")),
    (_lp("sales stage", "Contract negotiation"), 80, "open",
     ("amount", "budget", "decision_maker", "pain_points", "goals", "purchase_date"),
     _l("Negotiate the contract and the commercial terms.")),
    (_lp("sales stage", "Order"), 90, "open",
     ("amount", "budget", "decision_maker", "pain_points", "goals", "purchase_date"),
     _l("The order is being placed: prepare delivery and invoicing.")),
    (_lp("sales stage", "Won"), 100, "won", ("amount",), _l("Won: hand over to delivery and service.")),
    (_lp("sales stage", "Lost"), 0, "lost", (), _l("Lost: record why, to learn from it.")),
    (_lp("sales stage", "Abandoned"), 0, "abandoned", (), _l("Abandoned: record why.")),
)


def _msgid(lazy) -> str:
    """The untranslated text of a lazy string (what the database stores): its message id, without the
    context of a ``lazy_pgettext``."""
    return lazy._args[-1]


_DEFAULT_TEXTS = {_msgid(text): text for row in DEFAULT_STAGES for text in (row[0], row[4])}
_DEFAULT_TEXTS[_msgid(DEFAULT_PROCESS_NAME)] = DEFAULT_PROCESS_NAME


def stage_label(text: str | None) -> str:
    """A stage's (or process's, or guidance's) text to show: the default texts translated, others as typed."""
    lazy = _DEFAULT_TEXTS.get(text or "")
    return str(lazy) if lazy is not None else (text or "")


class StageError(ValueError):
    """A move is refused: ``str(exc)`` is a translated message; ``missing`` the required fields missing."""

    def __init__(self, message: str, missing: list[RequiredField] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])

    @property
    def missing_codes(self) -> list[str]:
        return [field.code for field in self.missing]


# -- processes --------------------------------------------------------------------------------------------
def ensure_default_process() -> SalesProcess:
    """The default process, created with the default stages when there is none (idempotent). Flushes."""
    process = db.session.scalar(select(SalesProcess).where(SalesProcess.is_default.is_(True)).limit(1))
    if process is not None:
        return process  # no flush: callers may hold a pending record (the REST API's before_save)
    if process is None:
        process = db.session.scalar(select(SalesProcess).where(SalesProcess.active.is_(True))
                                    .order_by(SalesProcess.sequence, SalesProcess.id).limit(1))
        if process is not None:
            process.is_default = True
    if process is None:
        process = SalesProcess(name=_msgid(DEFAULT_PROCESS_NAME), is_default=True, sequence=10)
        for index, (name, probability, kind, required, guidance) in enumerate(DEFAULT_STAGES):
            process.stages.append(Stage(name=_msgid(name), probability=probability, kind=kind,
                                        required_fields=list(required), guidance=_msgid(guidance),
                                        sequence=(index + 1) * 10))
        db.session.add(process)
    db.session.flush()
    return process


def default_process() -> SalesProcess:
    return ensure_default_process()


def active_stages(process: SalesProcess) -> list[Stage]:
    return [stage for stage in process.stages if stage.active]


def first_stage(process: SalesProcess) -> Stage:
    """The first open stage of ``process`` (where a new opportunity starts)."""
    for stage in active_stages(process):
        if stage.kind == "open":
            return stage
    raise StageError(_("The sales process “%(name)s” has no open stage.", name=stage_label(process.name)))


# -- the gate ---------------------------------------------------------------------------------------------
def required_of(stage: Stage) -> list[RequiredField]:
    return [REQUIRED_FIELDS[code] for code in (stage.required_fields or []) if code in REQUIRED_FIELDS]


def missing_fields(opportunity, stage: Stage) -> list[RequiredField]:
    """The fields ``stage`` requires that ``opportunity`` does not have."""
    return [field for field in required_of(stage) if not field.filled(opportunity)]


def check_kept(before, after, stage: Stage) -> None:
    """Raise :class:`StageError` when an edit empties a field the opportunity's current ``stage`` requires:
    filled in ``before`` (the opportunity as it was), missing in ``after`` (as the edit would leave it). A field
    that was already missing — the stage's requirements changed since it was entered — does not block an edit
    of something else."""
    had = {field.code for field in missing_fields(before, stage)}
    emptied = [field for field in missing_fields(after, stage) if field.code not in had]
    if emptied:
        raise StageError(_("The stage “%(stage)s” requires: %(fields)s.", stage=stage_label(stage.name),
                           fields=_(", ").join(str(field.label) for field in emptied)), emptied)


#: the attributes :data:`REQUIRED_FIELDS` read (for a copy of an opportunity as it was before an edit)
REQUIRED_ATTRIBUTES = ("amount", "budget", "budget_known", "contact_id", "pain_points", "goals", "purchase_date",
                       "close_date", "products", "competitors", "description")


def snapshot(opportunity, **changes):
    """A copy of what the stage requirements read of ``opportunity``, with ``changes`` applied."""
    values = {name: getattr(opportunity, name, None) for name in REQUIRED_ATTRIBUTES}
    values["products"], values["competitors"] = list(values["products"] or ()), list(values["competitors"] or ())
    values.update({k: v for k, v in changes.items() if k in REQUIRED_ATTRIBUTES})
    return SimpleNamespace(**values)


def check_enter(opportunity, stage: Stage, reason: str | None = None) -> None:
    """Raise :class:`StageError` unless ``opportunity`` may enter ``stage`` (with ``reason`` for lost and
    abandoned)."""
    if stage.process_id != opportunity.process_id and opportunity.process_id is not None:
        raise StageError(_("The stage “%(stage)s” is not a stage of this opportunity's sales process.",
                           stage=stage_label(stage.name)))
    if not stage.active:
        raise StageError(_("The stage “%(stage)s” is no longer in use.", stage=stage_label(stage.name)))
    missing = missing_fields(opportunity, stage)
    if missing:
        raise StageError(_("To move to “%(stage)s”, fill in: %(fields)s.", stage=stage_label(stage.name),
                           fields=_(", ").join(str(field.label) for field in missing)), missing)
    if stage.kind in ("lost", "abandoned"):
        codes = {value.code for value in picklist_values(LOST_REASON, active_only=True)}
        if not reason:
            raise StageError(_("Give the reason why the opportunity is %(kind)s.",
                               kind=str(KIND_LABELS[stage.kind]).lower()))
        if reason not in codes:
            raise StageError(_("“%(reason)s” is not a reason of the list.", reason=reason))


def change_process(opportunity, stage: Stage, user, reason: str | None = None, note: str = "",
                   now: datetime | None = None) -> StageChange:
    """Move ``opportunity`` into another sales process, at ``stage`` of it (业务模式变更): checked as a move into
    that stage is (its required fields, a reason for lost and abandoned), recorded as a stage change; flushes.

    The process must be active and not the opportunity's own. On refusal (:class:`StageError`) the opportunity
    keeps its process and stage."""
    process = stage.process
    if process is None or process.id == opportunity.process_id:
        raise StageError(_("The opportunity is already in this sales process: move it to another stage instead."))
    if not process.active:
        raise StageError(_("The sales process “%(name)s” is no longer in use.", name=stage_label(process.name)))
    old_id, old_process = opportunity.process_id, opportunity.process
    opportunity.process_id, opportunity.process = process.id, process
    try:
        return move(opportunity, stage, user, reason=reason, note=note, now=now)
    except StageError:
        opportunity.process_id, opportunity.process = old_id, old_process
        raise


def move(opportunity, stage: Stage, user, reason: str | None = None, note: str = "",
         now: datetime | None = None) -> StageChange | None:
    """Move ``opportunity`` to ``stage`` (checked by :func:`check_enter`), record the change and flush.

    Returns the :class:`StageChange`, or ``None`` when the opportunity is already in ``stage``. The status
    follows the stage's kind, the probability the stage's, ``closed_at`` is set on won/lost/abandoned and
    cleared when the opportunity is reopened; the reason is kept for lost and abandoned.
    """
    if opportunity.stage_id == stage.id:
        return None
    check_enter(opportunity, stage, reason)
    now = now or utcnow()
    previous_at = opportunity.stage_entered_at
    change = StageChange(opportunity_id=opportunity.id, from_stage_id=opportunity.stage_id, to_stage_id=stage.id,
                         changed_at=now, changed_by_id=getattr(user, "id", None),
                         seconds_in_previous=int((now - previous_at).total_seconds()) if previous_at else None,
                         reason=reason if stage.kind in ("lost", "abandoned") else None, note=note or "")
    opportunity.stage_id = stage.id
    opportunity.stage = stage
    opportunity.status = stage.kind
    opportunity.probability = stage.probability
    opportunity.stage_entered_at = now
    if stage.kind == "open":
        opportunity.closed_at = None
        opportunity.lost_reason = None
        opportunity.lost_note = ""
    else:
        opportunity.closed_at = now
        # the close date becomes the day it closed: the funnel and the targets count it in that period
        opportunity.close_date = now.date()
        if stage.kind in ("lost", "abandoned"):
            opportunity.lost_reason = reason
            opportunity.lost_note = note or ""
        else:
            opportunity.lost_reason = None
            opportunity.lost_note = ""
    db.session.add(change)
    db.session.flush()
    return change
