"""Record visibility: the one function every query of owned records goes through.

A user sees a record of an object (``customer``, ``contact``, ``activity``, an addon's ``crm_lead.lead``...)
when any of these holds:

* one of the user's roles is an administrator role, or has scope ``all`` for the object;
* the record's owner is the user (scope ``own``, the default), or a user of the user's department subtree
  (scope ``department``: a manager sees the records of everyone below them);
* a sharing rule of the object matches the record (``field == value``) and is granted to a department
  that contains the user (the rule's department subtree).

A model with an ``in_pool`` attribute — a boolean column, or an SQL expression such as the customers'
``EXISTS`` of a public-pool entry (公海, :mod:`core.crm.pool`) — keeps the last owner in ``owner_id`` while a
record is pooled, but a pooled record is **not** visible through ownership (``own`` / ``department``
scope): the owner conditions require ``NOT in_pool``. Scope ``all`` and
administrators still see pooled records, and so do sharing rules — they open records by a field value
(region, industry...), not by owner, so a service team keeps reading its region's customers while they
wait in the pool. Reps find pooled records on the pool page (``/pool/``), not through this function.

Lists, search, the 360° view, the API, exports and reports all call :func:`visible_to`; a record fetched by
id goes through :func:`get_visible_or_404` — so a guessed id answers 404 like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g, has_request_context
from sqlalchemy import and_, false, or_, select

from core.extensions import db
from core.params import is_id

SCOPE_RANK = {"own": 0, "department": 1, "all": 2}


@dataclass(frozen=True)
class Reach:
    """What one user may see of one object: every record, or the records of some owners plus shares."""

    everything: bool
    owner_ids: tuple[int, ...] = ()
    shares: tuple[tuple[str, str], ...] = ()  # (field, value)


def _department_path(department_id: int | None) -> str | None:
    from core.crm.models import Department

    if department_id is None:
        return None
    return db.session.execute(select(Department.path).where(Department.id == department_id)).scalar()


def _subtree_user_ids(path: str) -> list[int]:
    from core.crm.models import Department
    from core.models import User

    return list(
        db.session.execute(
            select(User.id).join(Department, User.department_id == Department.id).where(Department.path.startswith(path))
        ).scalars()
    )


def scope_of(user, object_name: str) -> str:
    """The widest scope the user's roles give on ``object_name``."""
    from core.crm.models import RoleScope

    if user.is_admin:
        return "all"
    role_ids = [role.id for role in user.roles]
    if not role_ids:
        return "own"
    scopes = db.session.execute(
        select(RoleScope.scope).where(RoleScope.role_id.in_(role_ids), RoleScope.object == object_name)
    ).scalars()
    return max(scopes, key=lambda s: SCOPE_RANK.get(s, 0), default="own")


def reach(user, object_name: str, access: str = "read") -> Reach:
    """Compute (once per request) what ``user`` may see of ``object_name``."""
    cache = g.setdefault("_mosaic_reach", {}) if has_request_context() else {}
    key = (user.id, object_name, access)
    if key in cache:
        return cache[key]
    from core.crm.models import Department, SharingRule

    scope = scope_of(user, object_name)
    if scope == "all":
        result = Reach(everything=True)
    else:
        path = _department_path(user.department_id)
        owners = {user.id}
        if scope == "department" and path:
            owners.update(_subtree_user_ids(path))
        shares: list[tuple[str, str]] = []
        if path:
            # a rule granted to department D applies to every user whose department lies in D's subtree
            accesses = ("write",) if access == "write" else ("read", "write")
            rows = db.session.execute(
                select(SharingRule.field, SharingRule.value, Department.path)
                .join(Department, SharingRule.department_id == Department.id)
                .where(SharingRule.object == object_name, SharingRule.access.in_(accesses))
            ).all()
            shares = sorted({(f, v) for f, v, rule_path in rows if path.startswith(rule_path)})
        result = Reach(everything=False, owner_ids=tuple(sorted(owners)), shares=tuple(shares))
    cache[key] = result
    return result


def visible_to(user, stmt, model, access: str = "read"):
    """Restrict ``stmt`` (a select over ``model``) to the records ``user`` may see (or change)."""
    object_name = model.__visibility_object__
    if user is None or not getattr(user, "is_authenticated", False):
        return stmt.where(false())
    r = reach(user, object_name, access)
    if r.everything:
        return stmt
    owner_col = model.owner_id
    owned = owner_col == r.owner_ids[0] if len(r.owner_ids) == 1 else owner_col.in_(r.owner_ids)
    in_pool = getattr(model, "in_pool", None)
    if in_pool is not None:
        owned = and_(owned, ~in_pool)  # a pooled record is nobody's through ownership (a column or an EXISTS)
    conditions = [owned]
    for field, value in r.shares:
        column = getattr(model, field, None)
        if column is not None:
            conditions.append(column == value)
    return stmt.where(or_(*conditions) if len(conditions) > 1 else conditions[0])


def owner_partition(user, model, access: str = "read") -> tuple[int, ...] | None:
    """The owners whose records make up everything ``user`` may see of ``model``, when visibility is by
    owner alone (no ``all`` scope, no sharing rule applies); ``None`` otherwise.

    Lists use it to page through a manager's team as one ordered index range scan per owner
    (:func:`core.crm.lists.run`) instead of sorting the whole team's records.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    r = reach(user, model.__visibility_object__, access)
    if r.everything or r.shares:
        return None
    return r.owner_ids


def get_visible(user, model, record_id, access: str = "read"):
    """The record with ``record_id`` if ``user`` may see it, else ``None`` (missing and hidden alike; an id no
    id column can hold — beyond PostgreSQL's integer — is missing too, not a query that fails)."""
    try:
        record_id = int(record_id)
    except (TypeError, ValueError):
        return None
    if not is_id(record_id):
        return None
    stmt = visible_to(user, select(model).where(model.id == record_id), model, access)
    return db.session.execute(stmt).scalars().first()


def get_visible_or_404(user, model, record_id, access: str = "read"):
    record = get_visible(user, model, record_id, access)
    if record is None:
        abort(404)
    return record


def update_department_paths() -> None:
    """Recompute every department's materialised path (after a move in the tree); set-based per level."""
    from core.crm.models import Department

    rows = db.session.execute(select(Department.id, Department.parent_id)).all()
    children: dict[int | None, list[int]] = {}
    for dept_id, parent_id in rows:
        children.setdefault(parent_id, []).append(dept_id)
    paths: dict[int, str] = {}
    stack = [(dept_id, f"/{dept_id}/") for dept_id in children.get(None, [])]
    while stack:
        dept_id, path = stack.pop()
        if dept_id in paths:
            continue  # a cycle; the form refuses those, this only guards the loop
        paths[dept_id] = path
        stack.extend((child, f"{path}{child}/") for child in children.get(dept_id, []))
    for dept in db.session.execute(select(Department)).scalars():
        dept.path = paths.get(dept.id, f"/{dept.id}/")
