"""The lead pool (线索池): leads nobody works go back to a pool reps claim from.

* **Recycling** — the daily job ``crm_lead:pool_recycle`` (:func:`recycle`) returns every lead still
  ``new`` or ``working`` that nobody has contacted for the days set for its status
  (``COALESCE(last_contacted_at, assigned_at, created_at)``, and at least as long since it was last
  assigned or claimed, so a fresh owner gets the full time): one audit ``INSERT … SELECT`` and one
  ``UPDATE … WHERE`` for every status, idempotent. 0 or empty days: leads of that status never return.
* **Visibility** — a pooled lead keeps its last owner in ``owner_id``; :func:`core.crm.visibility.visible_to`
  does not show it through ownership (``in_pool``). Claimers find it on ``/crm_lead/pool``, which shows
  every pooled lead to everyone with ``crm_lead.pool.claim``: name, company, source, region, status only.
* **Claiming** (:func:`claim`) is one ``UPDATE … WHERE in_pool [AND claims today < cap]``: of two reps
  claiming at once exactly one wins, and one rep's concurrent claims cannot overshoot the daily cap
  (``crm_lead.pool.claim_cap``, per UTC day; 0 or empty: no cap). The cap counts the claims the rep made that
  day, from the audit trail alone, as the customers' (:func:`core.crm.pool.claims_since`): deleted, merged or
  handed-over leads still count, and so does a lead taken back by its last owner; an assignment is no claim.
* **Returning** a lead by hand (:func:`release`, managers with ``crm_lead.lead.assign``) goes through the
  ORM: the audit trail records it like any edit.
* **Closed leads** — converted or disqualified — are never in the pool: converting or disqualifying a pooled
  lead takes it out (:mod:`addons.crm_lead.convert`), :func:`claim` refuses them (in its ``UPDATE``'s
  condition, so a conversion committed meanwhile wins) and :func:`release` leaves them out.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import and_, case, func, literal, or_, select, text, update
from sqlalchemy.orm.util import identity_key

from core.crm import audit, lists
from core.crm.pool import claims_since, record_claim
from core.extensions import db
from core.params import ascii_int
from core.timeutil import utcnow

from .convert import CLOSED_STATUSES
from .models import Lead

log = logging.getLogger(__name__)

POOL_CLAIM = "crm_lead.pool.claim"
#: the statuses whose leads return to the pool when unworked, each with its own number of days
RECYCLED_STATUSES = ("new", "working")
DAYS_KEY = "crm_lead.pool.days.{}"
CAP_KEY = "crm_lead.pool.claim_cap"
MAX_DAYS = 3650
MAX_CAP = 100_000


# -- settings -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolSettings:
    days: dict  # status -> days without contact before the lead returns to the pool (0: never)
    claim_cap: int  # leads one rep may claim per (UTC) day; 0: no cap


def _int_setting(key: str) -> int:
    from core.models import Setting

    value = (Setting.get(key) or "").strip()
    return ascii_int(value) or 0


def pool_settings() -> PoolSettings:
    return PoolSettings(days={s: _int_setting(DAYS_KEY.format(s)) for s in RECYCLED_STATUSES},
                        claim_cap=_int_setting(CAP_KEY))


def save_settings(days: dict, claim_cap: int | None) -> None:
    """Store the settings (``None``/0 days: never recycled; ``None``/0 cap: no cap); the caller commits."""
    from core.models import Setting

    for status in RECYCLED_STATUSES:
        Setting.put(DAYS_KEY.format(status), str(int(days.get(status) or 0)))
    Setting.put(CAP_KEY, str(int(claim_cap or 0)))


# -- recycling ----------------------------------------------------------------------------------------
def due_condition(now: datetime, settings: PoolSettings | None = None):
    """The leads :func:`recycle` returns to the pool at ``now``, as one SQL condition (``None``: none)."""
    settings = settings or pool_settings()
    cutoffs = {s: now - timedelta(days=d) for s, d in settings.days.items() if d and d > 0}
    if not cutoffs:
        return None
    cutoff = case(*((Lead.status == s, literal(t)) for s, t in cutoffs.items()))
    return and_(
        Lead.status.in_(list(cutoffs)),
        ~Lead.in_pool,
        func.coalesce(Lead.last_contacted_at, Lead.assigned_at, Lead.created_at) <= cutoff,
        or_(Lead.assigned_at.is_(None), Lead.assigned_at <= cutoff),
    )


def recycle(now: datetime | None = None) -> dict[str, int]:
    """Return the unworked leads to the pool: ``{status: leads returned}``. Commits.

    Set-based: the audit entries of ``in_pool`` with one ``INSERT … SELECT`` (read before the change), then
    one ``UPDATE … WHERE`` for every status. Exactly N days without contact counts; a second run returns
    nothing new. Two runs at once: on PostgreSQL the leads table is locked first (``SHARE ROW EXCLUSIVE``,
    as the customers' pool job does), so a second run waits for the first to commit and then reads the leads
    as it left them — no lead gets two audit entries, and claims or edits made meanwhile wait for the job's
    few seconds instead of slipping between its ``INSERT`` and its ``UPDATE``; SQLite serialises writers.
    """
    now = now or utcnow()
    counts = dict.fromkeys(RECYCLED_STATUSES, 0)
    due = due_condition(now)
    if due is not None:
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text(f"LOCK TABLE {Lead.__tablename__} IN SHARE ROW EXCLUSIVE MODE"))
        with audit.acting_as(None):
            audit.record_set_change(Lead, due, {"in_pool": True})
        result = db.session.execute(
            update(Lead).where(due).values(in_pool=True, pooled_at=now, updated_at=now)
            .returning(Lead.status).execution_options(synchronize_session=False)
        )
        counts.update(Counter(result.scalars()))
    db.session.commit()
    return counts


def recycle_job() -> str:
    """The scheduled job ``crm_lead:pool_recycle``."""
    counts = recycle()
    log.info("lead pool: recycled %s", counts)
    return ", ".join(f"{s}: {n}" for s, n in counts.items()) + f" (total {sum(counts.values())})"


# -- claiming and releasing ---------------------------------------------------------------------------
def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def claimed_today(user_id: int, now: datetime | None = None) -> int:
    """How many leads ``user_id`` claimed from the pool today (UTC), whoever owns them now."""
    now = now or utcnow()
    return db.session.execute(select(claims_since(Lead, user_id, _day_start(now)))).scalar() or 0


def claim(user, lead_id: int, now: datetime | None = None) -> tuple[bool, str | None]:
    """Give the pooled lead ``lead_id`` to ``user``: ``(True, None)`` or ``(False, translated message)``.

    One ``UPDATE … WHERE id = :id AND in_pool AND status NOT IN ('converted', 'disqualified') [AND claims
    today < cap]``. The caller commits.
    """
    from core.models import User

    now = now or utcnow()
    cap = pool_settings().claim_cap
    table = Lead.__table__
    row = db.session.execute(
        select(table.c.owner_id, table.c.team_id, table.c.status).where(table.c.id == lead_id, table.c.in_pool)
    ).first()
    if row is None:
        return False, _("This lead is no longer in the pool: someone else claimed it first.")
    if row.status in CLOSED_STATUSES:
        return False, _closed_message()
    conditions = [table.c.id == lead_id, table.c.in_pool, table.c.status.notin_(CLOSED_STATUSES)]
    if cap:
        # PostgreSQL: serialise one rep's claims on their user row, so the count below is current
        db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
        conditions.append(claims_since(Lead, user.id, _day_start(now)) < cap)
    won = db.session.execute(
        update(table).where(and_(*conditions)).values(
            owner_id=user.id, team_id=user.department_id, in_pool=False, claimed_at=now, assigned_at=now,
            updated_at=now)
    ).rowcount == 1
    if won:
        # by the claimer at the claim's time, in a claim batch: the cap counts these entries — the in_pool one
        # is written even when the claimer was the last owner (see core.crm.pool.claims_since)
        record_claim(Lead, lead_id, {"owner_id": (row.owner_id, user.id),
                                     "team_id": (row.team_id, user.department_id),
                                     "in_pool": (True, False)}, user_id=user.id, at=now)
        lead = db.session.identity_map.get(identity_key(Lead, lead_id))
        if lead is not None:  # the session may hold the lead as it was before the UPDATE
            db.session.expire(lead)
        return True, None
    # nothing updated: converted or disqualified meanwhile; else the cap refused it only if the lead is still
    # pooled (else another claim was first)
    now_row = db.session.execute(select(table.c.in_pool, table.c.status).where(table.c.id == lead_id)).first()
    if now_row is not None and now_row.status in CLOSED_STATUSES:
        return False, _closed_message()
    still_pooled = now_row is not None and bool(now_row.in_pool)
    if still_pooled and cap:
        return False, ngettext("You have reached your limit of %(num)d lead claimed from the pool today.",
                               "You have reached your limit of %(num)d leads claimed from the pool today.", cap)
    return False, _("This lead is no longer in the pool: someone else claimed it first.")


def _closed_message() -> str:
    return _("A converted or disqualified lead cannot be claimed from the pool.")


def release(leads, now: datetime | None = None) -> int:
    """Put ``leads`` back into the pool by hand (through the ORM: audited); how many went. No commit.

    Converted and disqualified leads do not go (nobody may claim them): they are not counted."""
    now = now or utcnow()
    changed = 0
    for lead in leads:
        if not lead.in_pool and lead.status not in CLOSED_STATUSES:
            lead.in_pool, lead.pooled_at = True, now
            changed += 1
    db.session.flush()
    return changed


# -- the pool list ------------------------------------------------------------------------------------
POOL = lists.ListSpec(
    model=Lead,
    # every claimer sees every pooled lead (the page shows only what a claimer may know)
    base=lambda _user: select(Lead).where(Lead.in_pool, Lead.status.notin_(CLOSED_STATUSES)),
    # newest first: a range scan of the (in_pool, pooled_at, id) index whatever the size of the pool
    sorts={"pooled": Lead.pooled_at, "name": Lead.search_name},
    default_sort="-pooled",
    filters={"source": Lead.source, "region": Lead.region, "industry": Lead.industry, "status": Lead.status},
    search_columns=(Lead.search_name, Lead.initials),
    object_name="crm_lead.pool",
)
