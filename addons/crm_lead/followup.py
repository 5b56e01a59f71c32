"""Follow-up (跟进) of leads: the visit frequency per status, the "not contacted for N days" conditions of the
reminders and the list, and contact times kept up to date by activities.

**When a lead was last touched** is ``Lead.touched_at`` = ``COALESCE(last_contacted_at, created_at)``: a lead
never contacted counts from its creation. The expression is indexed per owner and overall (crm_lead_0005),
so "not contacted for 30 days" is an index range scan ordered by that time, for a rep, a manager (one range
per team member, :func:`core.crm.lists.run`) and an administrator alike.

**Visit frequency** (拜访频率): the administrator says how often a lead of each open status must be
contacted (new: 3 days, working: 7, qualified: 14), stored as the setting ``crm_lead.visit_frequency``
(JSON). A lead is *overdue* when it was last touched longer ago than its status's frequency.

**Activities** linked to a lead (``related_object="lead"``) — logged on the lead's page or created on the
core's activity pages — count as contacts once done (calls, visits, meetings, e-mails, SMS): a session event
sets the lead's first and last contact times and moves a new lead to *working*, in the same flush (so the
audit trail records the status change).
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import and_, event, false, or_

from core.crm.activities import CONTACT_KINDS
from core.crm.models import Activity
from core.extensions import db
from core.timeutil import utcnow

from .leads import OPEN_STATUSES, log_contact
from .models import Lead

FREQUENCY_KEY = "crm_lead.visit_frequency"
DEFAULT_FREQUENCY = {"new": 3, "working": 7, "qualified": 14}
MAX_DAYS = 3650
#: the reminder tabs: not contacted in 7, 15, 30, 60 days
BUCKETS = (7, 15, 30, 60)
#: the tabs show "999+" beyond this many leads (a count never scans more than this many index entries)
COUNT_CAP = 999
#: object name of leads on activities
OBJECT = "lead"


# -- visit frequency ----------------------------------------------------------------------------------
def visit_frequency() -> dict[str, int]:
    """``{status: days}`` of the open statuses that have a frequency (a status without one is never
    overdue)."""
    from core.models import Setting

    raw = Setting.get(FREQUENCY_KEY)
    if raw is None:
        return dict(DEFAULT_FREQUENCY)
    try:
        stored = json.loads(raw)
    except (TypeError, ValueError):
        return dict(DEFAULT_FREQUENCY)
    out = {}
    for status in OPEN_STATUSES:
        value = stored.get(status) if isinstance(stored, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DAYS:
            out[status] = value
    return out


def save_visit_frequency(values: dict) -> None:
    """Store ``{status: days or None}`` (the caller validated and commits)."""
    from core.models import Setting

    clean = {status: int(values[status]) for status in OPEN_STATUSES if values.get(status)}
    Setting.put(FREQUENCY_KEY, json.dumps(clean, sort_keys=True))


# -- conditions ---------------------------------------------------------------------------------------
def open_condition():
    """Leads still being worked: not converted or disqualified, not waiting in the lead pool."""
    return and_(Lead.status.in_(OPEN_STATUSES), Lead.in_pool == false())


def parse_days(text) -> int:
    """A number of days typed in a URL (1 to 3650); ``ValueError`` otherwise."""
    days = int(str(text).strip())
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(text)
    return days


def idle_condition(days: int, now=None):
    """Not contacted (nor created) in the last ``days`` days."""
    return Lead.touched_at < (now or utcnow()) - timedelta(days=days)


def not_contacted(text, _user=None):
    """The reminder tabs' condition (``days=30``): open leads idle for that many days."""
    return and_(open_condition(), idle_condition(parse_days(text)))


def overdue_condition(frequency: dict | None = None, now=None):
    """Open leads last touched longer ago than their status's visit frequency (``false`` without any)."""
    frequency = visit_frequency() if frequency is None else frequency
    if not frequency:
        return false()
    now = now or utcnow()
    per_status = [and_(Lead.status == status, Lead.touched_at < now - timedelta(days=days))
                  for status, days in sorted(frequency.items())]
    # the shortest frequency bounds the range scan of the (owner_id, touched) index
    bound = Lead.touched_at < now - timedelta(days=min(frequency.values()))
    return and_(Lead.in_pool == false(), bound, or_(*per_status))


def overdue(text, _user=None):
    """The "overdue by visit frequency" tab's condition (``overdue=1``)."""
    if str(text).strip() not in ("1", "true", "yes"):
        raise ValueError(text)
    return overdue_condition()


def days_since(lead, now=None) -> int:
    """Whole days since the lead was last touched."""
    touched = lead.last_contacted_at or lead.created_at
    return max(0, ((now or utcnow()) - touched).days) if touched else 0


def overdue_days(lead, frequency: dict, now=None) -> int | None:
    """Days past the lead's visit frequency, ``None`` when it is not overdue (or its status has none)."""
    days = frequency.get(lead.status)
    if not days or lead.in_pool:
        return None
    late = days_since(lead, now) - days
    return late if late >= 0 else None


# -- activities count as contacts ---------------------------------------------------------------------
def _contact_activities(session):
    for obj in list(session.new) + list(session.dirty):
        if (isinstance(obj, Activity) and obj.related_object == OBJECT and obj.related_id is not None
                and obj.status == "done" and obj.kind in CONTACT_KINDS):
            yield obj


def _touch_leads(session, _flush_context, _instances) -> None:
    """Before a flush (and before the audit trail's own listener: registered first): done contact activities
    on leads update the leads' contact times and status."""
    with session.no_autoflush:
        for activity in _contact_activities(session):
            lead = session.get(Lead, activity.related_id)
            if lead is not None:
                log_contact(lead, activity.done_at or utcnow())


if not event.contains(db.session, "before_flush", _touch_leads):
    event.listen(db.session, "before_flush", _touch_leads, insert=True)
