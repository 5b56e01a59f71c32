"""Assignment (分配): who gets a lead — by the rules when it is created, by a manager's hand afterwards.

* **Rules** (:class:`~addons.crm_lead.assignment_models.AssignRule`, *Settings → Lead assignment rules*) are
  tried in order; the first active rule whose conditions all hold gives the lead its team and its owner
  inside the team: round-robin (the rule's counter, moved atomically, so two workers never take the same
  turn), least-loaded (fewest open leads: not converted or disqualified, not in the pool) or a fixed user.
  A lead no rule matches gets the **fallback**: left as it is (unassigned), put in the lead pool, or given to
  a default user.
* :func:`assign_new` applies them to a batch of freshly created leads set-based: the conditions are
  evaluated in Python, but the rules, the teams' members and their loads are read once per batch, the
  owners written with one bulk UPDATE and their audit entries with one bulk INSERT
  (:mod:`.assignment_write`), and every new owner gets one notification summarising their leads
  (:mod:`.assignment_notify`).
* :func:`assign` is a manager's manual assignment (permission ``crm_lead.lead.assign``), to users within
  the manager's own visibility only.
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm.attributes import set_committed_value

from core.crm import audit
from core.crm.lists import BulkAction
from core.extensions import db
from core.params import ascii_int
from core.timeutil import utcnow

from .assignment_models import OPEN_LEAD_SQL, AssignRule
from .assignment_notify import EVENT, lead_url, notify_owner, notify_owners
from .assignment_rules import (
    FIELD_LABELS,
    OPERATOR_LABELS,
    PICKLISTS,
    CompiledRule,
    active_rules,
    custom_object,
    field_choices,
    first_match,
    stored_value,
)
from .assignment_write import bulk_insert, bulk_update
from .models import Lead

#: what other modules use from here; the conditions live in .assignment_rules, the notices in .assignment_notify
__all__ = ["ASSIGN_MANAGE", "EVENT", "FIELD_LABELS", "LEAD_ASSIGN", "OPERATOR_LABELS", "PICKLISTS", "AssignError",
           "Outcome", "assign", "assign_new", "assignable_users", "bulk_actions", "custom_object", "field_choices",
           "lead_url", "notify_owner", "notify_owners", "stored_value"]

ASSIGN_MANAGE = "crm_lead.assign.manage"
LEAD_ASSIGN = "crm_lead.lead.assign"
FALLBACK_KEY = "crm_lead.assign.fallback"  # none | pool | user
FALLBACK_USER_KEY = "crm_lead.assign.fallback_user"
FALLBACKS = {"none": _l("Leave the lead unassigned"), "pool": _l("Put the lead in the lead pool"),
             "user": _l("Give the lead to a default user")}
DISTRIBUTION_LABELS = {"round_robin": _l("Round-robin"), "least_loaded": _l("Least loaded (fewest open leads)"),
                       "user": _l("A fixed user")}
CLOSED_STATUSES = ("converted", "disqualified")
WRITE_CHUNK = 900  # ids per SELECT of the old values (SQLite's bound-parameter limit is far above)


class AssignError(ValueError):
    """A manual assignment that is not allowed; the message is translated."""


# -- settings -----------------------------------------------------------------------------------------
def fallback() -> tuple[str, int | None]:
    """``(kind, user id)`` of the fallback for leads no rule matches."""
    from core.models import Setting

    kind = Setting.get(FALLBACK_KEY) or "none"
    raw = (Setting.get(FALLBACK_USER_KEY) or "").strip()
    return (kind if kind in FALLBACKS else "none"), (ascii_int(raw))


def save_fallback(kind: str, user_id: int | None) -> None:
    from core.models import Setting

    Setting.put(FALLBACK_KEY, kind if kind in FALLBACKS else "none")
    Setting.put(FALLBACK_USER_KEY, str(user_id) if user_id else "")


# -- teams and loads ----------------------------------------------------------------------------------
def team_members(team_ids) -> dict[int, list[int]]:
    """``{team id: [active user ids of the team's subtree, ascending]}``: one query for every team."""
    from core.crm.models import Department
    from core.models import User

    team_ids = [t for t in set(team_ids) if t is not None]
    if not team_ids:
        return {}
    paths = dict(db.session.execute(select(Department.id, Department.path).where(Department.id.in_(team_ids))).all())
    if not paths:
        return {}
    rows = db.session.execute(
        select(User.id, Department.path).join(Department, User.department_id == Department.id)
        .where(User.active, or_(*(Department.path.startswith(p) for p in set(paths.values()))))
        .order_by(User.id)
    ).all()
    return {team: [uid for uid, path in rows if path.startswith(team_path)] for team, team_path in paths.items()}


def open_loads(user_ids) -> dict[int, int]:
    """``{user id: open leads}`` (not converted or disqualified, not in the pool): one ``GROUP BY`` answered
    from the partial index of open leads per owner (its predicate written exactly as the index's)."""
    user_ids = sorted(set(user_ids))
    loads = dict.fromkeys(user_ids, 0)
    if user_ids:
        loads.update(db.session.execute(
            select(Lead.owner_id, func.count()).where(Lead.owner_id.in_(user_ids), text(OPEN_LEAD_SQL))
            .group_by(Lead.owner_id)
        ).all())
    return loads


def take_turns(rule_id: int, count: int) -> int:
    """Reserve ``count`` round-robin turns of a rule; return the first. One atomic ``UPDATE … RETURNING``:
    a concurrent batch (another worker) waits for the row and gets the turns after ours."""
    table = AssignRule.__table__
    end = db.session.execute(
        update(table).where(table.c.id == rule_id).values(rr_counter=table.c.rr_counter + count)
        .returning(table.c.rr_counter)
    ).scalar_one()
    return end - count


def _active_user_ids(user_ids) -> set[int]:
    from core.models import User

    ids = {u for u in user_ids if u}
    return set(db.session.execute(select(User.id).where(User.id.in_(ids), User.active)).scalars()) if ids else set()


# -- applying the rules -------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What :func:`assign_new` did: ``{owner id: [lead ids]}``, pooled and untouched lead ids."""

    owners: dict = field(default_factory=dict)
    pooled: list = field(default_factory=list)
    unassigned: list = field(default_factory=list)


def _distribute(rule: CompiledRule, members: list[int], loads: dict[int, int]) -> list[int]:
    """The owners of ``rule.leads`` in order (``members`` is not empty)."""
    n = len(rule.leads)
    if rule.distribution == "least_loaded":
        heap = [(loads.get(uid, 0), uid) for uid in members]
        heapq.heapify(heap)
        owners = []
        for _lead in rule.leads:
            load, uid = heapq.heappop(heap)
            owners.append(uid)
            loads[uid] = load + 1  # a member of two rules' teams carries this batch's leads into the other
            heapq.heappush(heap, (load + 1, uid))
        return owners
    start = take_turns(rule.id, n)
    return [members[(start + i) % len(members)] for i in range(n)]


def plan(leads, rules: list[CompiledRule]) -> tuple[list[tuple], list]:
    """``([(lead, owner id, team id)], unmatched leads)``: the rules' decisions for ``leads``."""
    unmatched = []
    for lead in leads:
        rule = first_match(rules, lead)
        (rule.leads if rule is not None else unmatched).append(lead)
    used = [r for r in rules if r.leads]
    fixed = _active_user_ids(r.user_id for r in used if r.distribution == "user")
    members = team_members(r.team_id for r in used if r.distribution != "user")
    loads = open_loads(uid for r in used if r.distribution == "least_loaded" for uid in members.get(r.team_id, ()))
    decisions = []
    for rule in sorted(used, key=lambda r: r.id):  # round-robin rows locked in one order: no deadlock
        if rule.distribution == "user":
            if rule.user_id in fixed:
                decisions += [(lead, rule.user_id, rule.team_id) for lead in rule.leads]
            else:
                unmatched += rule.leads  # the fixed user left: the fallback takes the lead
            continue
        team = members.get(rule.team_id) or []
        if not team:
            unmatched += rule.leads
            continue
        decisions += list(zip(rule.leads, _distribute(rule, team, loads), [rule.team_id] * len(rule.leads),
                              strict=True))
    return decisions, unmatched


def _write(changes: list[tuple], user_id: int | None) -> None:
    """Write ``[(lead, {column: value})]``: one bulk UPDATE per shape of change, and the audit entries of the
    tracked columns (old values read once, per chunk of ids) with one bulk INSERT
    (:mod:`.assignment_write`); then the session's objects take the new values without becoming dirty."""
    if not changes:
        return
    table = Lead.__table__
    tracked = [f for f in audit.statement_fields(Lead) if any(f in values for _lead, values in changes)]
    # the old values: from the objects' loaded state (just flushed), else read once per chunk of ids
    old: dict[int, tuple] = {}
    missing = []
    for lead, _values in changes:
        state = lead.__dict__
        if all(f in state for f in tracked):
            old[lead.id] = tuple(state[f] for f in tracked)
        else:
            missing.append(lead.id)
    for start in range(0, len(missing), WRITE_CHUNK):
        rows = db.session.execute(select(table.c.id, *(table.c[f] for f in tracked))
                                  .where(table.c.id.in_(missing[start:start + WRITE_CHUNK])))
        old.update((row[0], row[1:]) for row in rows)
    at, batch, obj = utcnow(), str(uuid.uuid4()), audit.audit_object(Lead)
    entries, shapes = [], defaultdict(list)
    for lead, values in changes:
        for field_name, before in zip(tracked, old.get(lead.id, ()), strict=False):
            if field_name in values and audit.as_text(before) != audit.as_text(values[field_name]):
                entries.append({"object": obj, "record_id": lead.id, "field": field_name,
                                "old_value": audit.as_text(before), "new_value": audit.as_text(values[field_name]),
                                "user_id": user_id, "at": at, "action": "update", "batch": batch})
        shapes[tuple(sorted(values))].append({"id": lead.id, **values})
    for rows in shapes.values():
        bulk_update(table, rows)
    bulk_insert(audit.AuditEntry.__table__, entries)
    for lead, values in changes:
        for key, value in values.items():
            set_committed_value(lead, key, value)


def assign_new(leads, *, by_user=None, now=None, notify: bool = True) -> Outcome:
    """Apply the assignment rules to freshly created ``leads`` (``Lead`` objects of this session).

    Sets owner, team and ``assigned_at`` (or puts the lead in the pool, per the fallback), writes them
    with bulk UPDATEs, records them in the audit trail, keeps the objects in step and notifies each new owner
    once. Does not commit.
    """
    leads = [lead for lead in leads if lead is not None]
    outcome = Outcome()
    if not leads:
        return outcome
    db.session.flush()
    now = now or utcnow()
    decisions, unmatched = plan(leads, active_rules())
    kind, default_user = fallback()
    pooled = []
    if kind == "user" and default_user in _active_user_ids([default_user]):
        decisions += [(lead, default_user, None) for lead in unmatched]
    elif kind == "pool":
        pooled = unmatched
    else:
        outcome.unassigned = [lead.id for lead in unmatched]
    # a lead given to a user without a team (fixed user, default user) goes to the user's own department
    departments = _departments({owner for _lead, owner, team in decisions if team is None})
    owned: dict[int, list] = defaultdict(list)
    changes = []
    for lead, owner_id, team_id in decisions:
        team_id = departments.get(owner_id) if team_id is None else team_id
        changes.append((lead, {"owner_id": owner_id, "team_id": team_id, "assigned_at": now, "updated_at": now}))
        owned[owner_id].append(lead)
    changes += [(lead, {"in_pool": True, "pooled_at": now, "updated_at": now}) for lead in pooled]
    _write(changes, by_user.id if by_user is not None else audit.current_user_id())
    if notify:
        notify_owners(owned, by_user=by_user)
    outcome.owners = {owner: [lead.id for lead in owned_leads] for owner, owned_leads in owned.items()}
    outcome.pooled = [lead.id for lead in pooled]
    return outcome


def _departments(user_ids) -> dict[int, int | None]:
    from core.models import User

    ids = [u for u in user_ids if u]
    return dict(db.session.execute(select(User.id, User.department_id).where(User.id.in_(ids))).all()) if ids else {}


# -- manual assignment --------------------------------------------------------------------------------
def assignable_users(by_user) -> list:
    """The active users ``by_user`` may give leads to: everyone with scope ``all`` on leads, else the users
    whose leads they see (themselves, and their department subtree with scope ``department``)."""
    from core.crm.visibility import reach
    from core.models import User

    stmt = select(User).where(User.active).order_by(User.display_name, User.username)
    r = reach(by_user, Lead.__visibility_object__, "write")
    if not r.everything:
        stmt = stmt.where(User.id.in_(r.owner_ids))
    return list(db.session.execute(stmt).scalars())


def assign(leads, owner_id: int, *, by_user, now=None) -> int:
    """Give ``leads`` (already restricted to those ``by_user`` may change) to ``owner_id`` by hand.

    The owner's department becomes the lead's team; a pooled lead leaves the pool. Changes go through the
    ORM (so the audit trail records them); the new owner is notified once. Raises :class:`AssignError` when
    ``by_user`` may not assign or ``owner_id`` is not someone they may give leads to. Does not commit;
    returns how many leads changed hands.
    """
    if by_user is not None and not by_user.can(LEAD_ASSIGN):
        raise AssignError(_("You do not have permission to assign leads."))
    allowed = {u.id: u for u in assignable_users(by_user)} if by_user is not None else None
    from core.models import User

    owner = allowed.get(owner_id) if allowed is not None else db.session.get(User, owner_id)
    if owner is None or not owner.active:
        raise AssignError(_("Pick the new owner among the users whose leads you can see."))
    now = now or utcnow()
    changed = []
    for lead in leads:
        if lead.owner_id == owner.id and not lead.in_pool:
            continue
        lead.owner_id, lead.team_id, lead.assigned_at, lead.in_pool = owner.id, owner.department_id, now, False
        changed.append(lead)
    db.session.flush()
    notify_owner(owner.id, changed, by_user=by_user)
    return len(changed)


def bulk_actions() -> tuple[BulkAction, ...]:
    """The list's bulk actions of this area, for the leads list's ``ListSpec(bulk_actions=...)``: "Assign
    to…" (opens the assignment page with the selected ids) and "Return to the lead pool"."""
    from . import pool

    return (
        BulkAction("assign_to", _l("Assign to…"), LEAD_ASSIGN, apply=lambda records, form: (0, None),
                   redirect=lambda ids: url_for("crm_lead.assign_page", ids=ids)),
        BulkAction("return_to_pool", _l("Return to the lead pool"), LEAD_ASSIGN,
                   apply=lambda records, form: (pool.release(records), None)),
    )
