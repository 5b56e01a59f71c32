"""Opportunities (销售机会): creating them, keeping their derived columns, picklists.

Every writer — the form, the kanban board, the REST API, the import, lead conversion — creates opportunities
with :func:`create_opportunity` and moves them with :func:`.stages.move`. The mapper events below keep the
derived columns of every ORM save: the search key of the name, the amount in the company currency
(``amount_company``, what the funnel sums), and the team (the owner's department) when the owner changes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import event, inspect

from core.crm import money, normalise
from core.extensions import db
from core.models import User
from core.registry import Picklist
from core.timeutil import utcnow

from . import stages
from .models import LOST_REASONS, SOURCES, Opportunity, StageChange

OBJECT = "opportunity"
SOURCE = "opportunity_source"
LOST_REASON = stages.LOST_REASON
EXPENSE_CATEGORY = "expense_category"

_SOURCE_LABELS = {
    "lead": ("线索转换", "Converted lead", "線索轉換"),
    "referral": ("转介绍", "Referral", "轉介紹"),
    "website": ("网站", "Website", "網站"),
    "event": ("会议活动", "Event", "會議活動"),
    "call": ("电话", "Phone call", "電話"),
    "partner": ("合作伙伴", "Partner", "合作夥伴"),
    "existing": ("老客户", "Existing customer", "老客戶"),
    "other": ("其他", "Other", "其他"),
}
_LOST_LABELS = {
    "price": ("价格", "Price", "價格"),
    "competitor": ("输给竞争对手", "Lost to a competitor", "輸給競爭對手"),
    "no_budget": ("无预算", "No budget", "無預算"),
    "no_decision": ("客户未决策", "No decision", "客戶未決策"),
    "timing": ("时机不对", "Timing", "時機不對"),
    "product_fit": ("产品不匹配", "Product does not fit", "產品不匹配"),
    "other": ("其他", "Other", "其他"),
}
_EXPENSE_LABELS = (
    ("travel", "差旅", "Travel", "差旅"),
    ("entertainment", "招待", "Entertainment", "招待"),
    ("gift", "礼品", "Gifts", "禮品"),
    ("sample", "样品", "Samples", "樣品"),
    ("other", "其他", "Other", "其他"),
)


def _defaults(rows) -> tuple:
    return tuple((code, {"zh_CN": zh_cn, "en": en, "zh_TW": zh_tw}) for code, zh_cn, en, zh_tw in rows)


def picklists() -> list[Picklist]:
    """The addon's picklists (``register_picklists``)."""
    return [
        Picklist(SOURCE, _l("Opportunity source"), _defaults((c, *_SOURCE_LABELS[c]) for c in SOURCES)),
        Picklist(LOST_REASON, _l("Reason an opportunity was lost or abandoned"),
                 _defaults((c, *_LOST_LABELS[c]) for c in LOST_REASONS)),
        Picklist(EXPENSE_CATEGORY, _l("Expense category"), _defaults(_EXPENSE_LABELS)),
    ]


# -- derived columns --------------------------------------------------------------------------------------
def company_amount(amount: Decimal | None, currency: str | None, on: date | None = None) -> Decimal:
    """``amount`` of ``currency`` in the company currency at the rate of ``on`` (today)."""
    if amount is None:
        return Decimal("0")
    return money.convert(Decimal(amount), currency or money.company_currency(), money.company_currency(),
                         on or date.today())


def _department_of(user_id: int | None) -> int | None:
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    return user.department_id if user is not None else None


@event.listens_for(Opportunity, "before_insert")
@event.listens_for(Opportunity, "before_update")
def _derived(_mapper, _connection, opp: Opportunity) -> None:
    key = normalise.search_key(opp.name)
    if opp.search_name != key:
        opp.search_name = key
    state = inspect(opp)
    if state.transient or state.pending or state.attrs.amount.history.has_changes() \
            or state.attrs.currency.history.has_changes():
        with db.session.no_autoflush:
            value = company_amount(opp.amount, opp.currency)
        if opp.amount_company != value:
            opp.amount_company = value
    if state.transient or state.pending or state.attrs.closed_at.history.has_changes() \
            or state.attrs.created_at.history.has_changes():
        if opp.created_at is None:  # the column default is applied after this event: apply it now
            opp.created_at = utcnow()
        cycle = None if opp.closed_at is None else round((opp.closed_at - opp.created_at).total_seconds())
        if opp.cycle_seconds != cycle:
            opp.cycle_seconds = cycle
    if (state.transient or state.pending) and opp.team_id is None or state.attrs.owner_id.history.has_changes():
        with db.session.no_autoflush:
            opp.team_id = _department_of(opp.owner_id)


# -- writing -----------------------------------------------------------------------------------------------
_TEXT_DEFAULTS = ("description", "pain_points", "goals", "lost_note")


def create_opportunity(values: dict, *, user, stage=None, check: bool = True) -> Opportunity:
    """Add an opportunity made of ``values`` (column names → values) and flush; the caller commits.

    The process defaults to the default process, the stage to ``stage`` or the process's first open stage
    (its required fields are checked unless ``check`` is false: :class:`.stages.StageError`), the owner to
    ``user``, the currency to the company's, the close date to the end of next month. The first
    :class:`~.models.StageChange` row is written. The audit trail records the creation (session events).
    """
    data = {key: value for key, value in values.items() if key in Opportunity.__table__.columns}
    for column in _TEXT_DEFAULTS:
        if data.get(column) is None:
            data[column] = ""
    data["name"] = (data.get("name") or "").strip()
    user_id = getattr(user, "id", None)
    data.setdefault("owner_id", user_id)
    data.setdefault("created_by_id", user_id)
    if not data.get("currency"):
        data["currency"] = money.company_currency()
    if data.get("amount") is None:
        data["amount"] = Decimal("0")
    if not data.get("close_date"):
        data["close_date"] = default_close_date()
    if stage is None:
        process = (db.session.get(stages.SalesProcess, data["process_id"]) if data.get("process_id")
                   else stages.default_process())
        stage = stages.first_stage(process)
    data["process_id"] = stage.process_id
    data["stage_id"] = stage.id
    data["status"] = stage.kind
    data.setdefault("probability", stage.probability)
    now = utcnow()
    data.setdefault("stage_entered_at", now)
    if stage.kind != "open":
        data.setdefault("closed_at", now)
    opportunity = Opportunity(**data)
    opportunity.stage = stage
    if check:
        # the products and competitors are not there yet: a stage requiring them is checked by the caller
        missing = [f for f in stages.missing_fields(opportunity, stage) if f.code not in ("products", "competitors")]
        if missing:
            stages.check_enter(opportunity, stage, data.get("lost_reason"))
    db.session.add(opportunity)
    db.session.flush()
    db.session.add(StageChange(opportunity_id=opportunity.id, from_stage_id=None, to_stage_id=stage.id,
                               changed_at=now, changed_by_id=user_id))
    db.session.flush()
    return opportunity


def default_close_date(today: date | None = None) -> date:
    """The end of next month."""
    today = today or date.today()
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def weighted(opp: Opportunity) -> Decimal:
    """The weighted amount (amount × probability) in the company currency, to the fen."""
    return (Decimal(opp.amount_company or 0) * Decimal(opp.probability or 0) / Decimal(100)).quantize(Decimal("0.01"))
