"""Leads: the service every path that writes a lead goes through (the form, the quick entry, the import, web
forms, the API, conversion).

* :func:`prepare` fills the derived columns of a values dict: the search keys of :mod:`core.crm.normalise`
  (``search_name``, ``initials``, ``phone_digits``) and the duplicate rules' match keys of
  :mod:`core.crm.dedup_normalise` (``company_key``, ``mobile_key``, ``phone_key``, ``email_key``). Bulk
  writers (a set-based ``INSERT``) call it; ORM saves get the same keys from the mapper events below, as the
  core's customers and contacts do, so no path can store a lead without them.
* :func:`create_lead` adds one lead with the defaults (owner, creator, source, status) and flushes.
* :func:`log_contact` records that somebody contacted a lead (a follow-up): contact times and ``new`` →
  ``working``.
* The picklists ``lead_source`` and ``lead_disqualify_reason`` with their defaults, and the statuses' labels.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from sqlalchemy import event

from core.crm import dedup_normalise, normalise
from core.extensions import db
from core.registry import Picklist
from core.timeutil import utcnow

from .models import SOURCES, STATUSES, Lead

#: picklist names (values administrators edit on Settings → Picklists)
LEAD_SOURCE = "lead_source"
DISQUALIFY_REASON = "lead_disqualify_reason"

STATUS_LABELS = {
    "new": _lp("lead status", "New"),
    "working": _lp("lead status", "Working"),
    "qualified": _lp("lead status", "Qualified"),
    "disqualified": _lp("lead status", "Disqualified"),
    "converted": _lp("lead status", "Converted"),
}
#: statuses of leads still being worked (reminders, visit frequency)
OPEN_STATUSES = ("new", "working", "qualified")
assert tuple(STATUS_LABELS) == STATUSES

_SOURCE_LABELS = {
    "manual": ("手工录入", "Manual entry", "手動輸入"),
    "import": ("导入", "Import", "匯入"),
    "card": ("名片", "Business card", "名片"),
    "call": ("来电", "Phone call", "來電"),
    "event": ("会议活动", "Event", "會議活動"),
    "website": ("网站", "Website", "網站"),
    "wechat": ("微信", "WeChat", "微信"),
    "referral": ("转介绍", "Referral", "轉介紹"),
}
_DISQUALIFY_LABELS = (
    ("no_budget", "无预算", "No budget", "無預算"),
    ("no_need", "无需求", "No need", "無需求"),
    ("unreachable", "联系不上", "Unreachable", "聯絡不上"),
    ("competitor", "竞争对手", "Went to a competitor", "競爭對手"),
    ("duplicate", "重复", "Duplicate", "重複"),
    ("other", "其他", "Other", "其他"),
)


def _defaults(rows) -> tuple:
    return tuple((code, {"zh_CN": zh_cn, "en": en, "zh_TW": zh_tw}) for code, zh_cn, en, zh_tw in rows)


def picklists() -> list[Picklist]:
    """The addon's picklists (``register_picklists``), with Chinese-market defaults."""
    return [
        Picklist(LEAD_SOURCE, _l("Lead source"),
                 _defaults((code, *_SOURCE_LABELS[code]) for code in SOURCES)),
        Picklist(DISQUALIFY_REASON, _l("Lead disqualification reason"), _defaults(_DISQUALIFY_LABELS)),
    ]


# -- keys ---------------------------------------------------------------------------------------------
def keys(name, company, mobile, phone, email) -> dict:
    """The derived columns of a lead made of its typed values."""
    return {
        "search_name": normalise.search_key(name),
        "initials": normalise.initials(name),
        "phone_digits": normalise.phone_digits(mobile or phone),
        "company_key": dedup_normalise.name_key(company),
        "mobile_key": dedup_normalise.phone_key(mobile),
        "phone_key": dedup_normalise.phone_key(phone),
        "email_key": dedup_normalise.email_key(email),
    }


def prepare(values: dict) -> dict:
    """``values`` with the derived columns filled (a new dict; the typed values are kept as they are)."""
    prepared = dict(values)
    prepared.update(keys(values.get("name"), values.get("company"), values.get("mobile"), values.get("phone"),
                         values.get("email")))
    return prepared


@event.listens_for(Lead, "before_insert")
@event.listens_for(Lead, "before_update")
def _lead_keys(_mapper, _connection, lead: Lead) -> None:
    for column, value in keys(lead.name, lead.company, lead.mobile, lead.phone, lead.email).items():
        if getattr(lead, column) != value:
            setattr(lead, column, value)


# -- writing ------------------------------------------------------------------------------------------
_TEXT_DEFAULTS = ("company", "title", "mobile", "phone", "email", "website", "address", "campaign", "description")


def create_lead(values: dict, *, user, source: str | None = None) -> Lead:
    """Add a lead made of ``values`` (column names → values) and flush; the caller commits.

    Validates nothing (the caller did). The owner defaults to ``user`` (``None``: unassigned, e.g. a web form
    submission, until the assignment rules give it one), the team to the owner's department when the owner
    is ``user``, the creator to ``user``, the source to ``source`` or ``values["source"]`` or ``manual``.
    The audit trail records the creation (its session events).
    """
    data = {key: value for key, value in values.items() if key in Lead.__table__.columns}
    for column in _TEXT_DEFAULTS:
        if data.get(column) is None:
            data[column] = ""
    data["name"] = (data.get("name") or "").strip()
    data["source"] = source or data.get("source") or "manual"
    data.setdefault("status", "new")
    user_id = getattr(user, "id", None)
    if "owner_id" not in data:
        data["owner_id"] = user_id
        if user_id is not None and "team_id" not in data:
            data["team_id"] = getattr(user, "department_id", None)
    if data.get("owner_id") is not None and not data.get("assigned_at"):
        data["assigned_at"] = utcnow()
    data.setdefault("created_by_id", user_id)
    lead = Lead(**prepare(data))
    db.session.add(lead)
    db.session.flush()
    return lead


def log_contact(lead: Lead, at: datetime | None = None) -> None:
    """Somebody contacted ``lead`` at ``at`` (a follow-up was logged): the first and last contact times, and a
    new lead is now being worked. Does not flush."""
    at = at or utcnow()
    if lead.first_contacted_at is None or at < lead.first_contacted_at:
        lead.first_contacted_at = at
    if lead.last_contacted_at is None or at > lead.last_contacted_at:
        lead.last_contacted_at = at
    if lead.status == "new":
        lead.status = "working"


def status_label(status: str | None) -> str:
    label = STATUS_LABELS.get(status or "")
    return str(label) if label is not None else (status or "")
