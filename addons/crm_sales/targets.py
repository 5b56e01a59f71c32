"""Sales targets (销售目标), the grid that edits them, and the achievement table (目标达成).

A :class:`~.models.Target` row is one amount (company currency, ``Decimal``) for one subject — a rep
(``user``), an org node (``department``) or a product — and one period: a year, a quarter or a month,
``period_start`` being its first day. Saving the grid validates every cell before writing any (a bad cell is
named in the message and nothing is saved), then upserts on the unique key (subject, id, kind, start).

The achievement table aggregates in SQL: one ``GROUP BY owner_id`` for the won amounts of the period, one for
the targets and one for the forecasts; Python rolls them up over the department tree (a few hundred rows).
A department's *won* is the sum over the reps whose department lies in its subtree (the owner's department,
which is what ``team_id`` records on every opportunity). Money is summed in integer fen (exact on SQLite too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from addons.crm_lead.report_periods import ReportError, next_month, resolve_period
from core.crm import money
from core.crm.models import Department, Product
from core.crm.visibility import reach, scope_of
from core.extensions import db
from core.models import User
from core.params import ascii_int

from .funnel import fen_sum, yuan
from .hooks_targets import TARGET_MANAGE
from .models import Forecast, Opportunity, Order, OrderLine, Target

FEN = Decimal("0.01")
_PERIOD = re.compile(r"^(\d{4})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])))?$")


# -- periods ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetPeriod:
    """``kind`` (year/quarter/month), first and last day, and the report period (UTC bounds) of them."""

    key: str
    kind: str
    first: date
    last: date

    @property
    def bounds(self):
        return resolve_period("custom", self.first.isoformat(), self.last.isoformat())

    def months(self) -> list[date]:
        out, day = [], self.first
        while day <= self.last:
            out.append(day)
            day = next_month(day)
        return out


def parse_period(text: str | None) -> TargetPeriod:
    """``2026``, ``2026-Q4`` or ``2026-11``; anything else raises :class:`ReportError` with a message."""
    match = _PERIOD.match((text or "").strip())
    if not match or not 1900 <= int(match.group(1)) <= 2999:
        raise ReportError(_("Unknown period “%(period)s”: use 2026, 2026-Q4 or 2026-11.", period=text or ""))
    year, month, quarter = int(match.group(1)), match.group(2), match.group(3)
    if month:
        first = date(year, int(month), 1)
        return TargetPeriod(f"{year}-{month}", "month", first, next_month(first) - timedelta(days=1))
    if quarter:
        first = date(year, 3 * (int(quarter) - 1) + 1, 1)
        last = next_month(next_month(next_month(first))) - timedelta(days=1)
        return TargetPeriod(f"{year}-Q{quarter}", "quarter", first, last)
    return TargetPeriod(str(year), "year", date(year, 1, 1), date(year, 12, 31))


def grid_periods(year: int, kind: str) -> list[TargetPeriod]:
    """The columns of the grid: the 12 months, the 4 quarters or the year of ``year``."""
    if kind == "month":
        return [parse_period(f"{year}-{m:02d}") for m in range(1, 13)]
    if kind == "quarter":
        return [parse_period(f"{year}-Q{q}") for q in range(1, 5)]
    return [parse_period(str(year))]


# -- who may set what ------------------------------------------------------------------------------------------
def _path(department_id) -> str | None:
    if not department_id:
        return None
    return db.session.scalar(select(Department.path).where(Department.id == department_id))


def manages(user, subject: str, subject_id: int) -> bool:
    """Admins set any target; a manager (``crm_sales.target.manage``) those of their department's subtree:
    its nodes and the reps in it. Product targets are company-wide: admins only, or a manager of the root."""
    if user.is_admin:
        return True
    if not user.can(TARGET_MANAGE):
        return False
    own = _path(user.department_id)
    if not own:
        return False
    if subject == "department":
        path = _path(subject_id)
    elif subject == "user":
        person = db.session.get(User, subject_id)
        path = _path(person.department_id) if person else None
    else:
        return own.count("/") <= 2  # the manager of the top node
    return bool(path) and path.startswith(own)


# -- saving the grid -------------------------------------------------------------------------------------------
class GridError(ValueError):
    """A cell of the grid is not valid: ``str(exc)`` names it (translated)."""


def parse_amount(raw: str, cell: str) -> Decimal | None:
    """A blank cell is ``None`` (no target); otherwise a number ≥ 0 with at most two decimals."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = money.parse_amount(text)  # a comma separates thousands only: "1,5" is no 15
    except money.AmountGroupingError as exc:
        raise GridError(_("%(cell)s: %(reason)s", cell=cell, reason=str(exc))) from None
    except ValueError:
        raise GridError(_("%(cell)s: “%(value)s” is not a number.", cell=cell, value=raw)) from None
    if not value.is_finite() or value < 0:
        raise GridError(_("%(cell)s: a target must be a number of 0 or more.", cell=cell))
    if value != value.quantize(FEN):
        raise GridError(_("%(cell)s: a target has at most two decimals.", cell=cell))
    if money.amount_too_large(value):
        raise GridError(_("%(cell)s: %(reason)s", cell=cell, reason=money.too_large_message(text)))
    return value.quantize(FEN)


def save_grid(user, subject: str, cells: dict[tuple[int, str], tuple[str, str]]) -> int:
    """Validate then upsert ``{(subject_id, period key): (raw text, cell label)}``; returns how many rows changed.

    Every cell is checked first (number, permission); the first bad one raises :class:`GridError` and nothing
    is written. A blank cell deletes the target of that cell."""
    parsed = []
    for (subject_id, period_key), (raw, label) in sorted(cells.items()):
        if not manages(user, subject, subject_id):
            raise GridError(_("%(cell)s: you may not set this target.", cell=label))
        parsed.append((subject_id, parse_period(period_key), parse_amount(raw, label)))
    changed = 0
    for subject_id, period, amount in parsed:
        row = db.session.scalar(select(Target).where(
            Target.subject == subject, Target.subject_id == subject_id, Target.period_kind == period.kind,
            Target.period_start == period.first))
        if amount is None:
            if row is not None:
                db.session.delete(row)
                changed += 1
            continue
        if row is None:
            row = Target(subject=subject, subject_id=subject_id, period_kind=period.kind, period_start=period.first)
            db.session.add(row)
        elif row.amount == amount:
            continue
        row.amount, row.updated_by_id = amount, user.id
        changed += 1
    db.session.commit()
    return changed


def targets_of(subject: str, ids, periods: list[TargetPeriod]) -> dict[tuple[int, str], Decimal]:
    """``{(subject_id, period key): amount}`` of the grid's cells."""
    if not ids or not periods:
        return {}
    keys = {(p.kind, p.first): p.key for p in periods}
    rows = db.session.execute(select(Target.subject_id, Target.period_kind, Target.period_start, Target.amount)
                              .where(Target.subject == subject, Target.subject_id.in_(list(ids)),
                                     Target.period_kind == periods[0].kind,
                                     Target.period_start.in_([p.first for p in periods]))).all()
    return {(sid, keys[(kind, start)]): Decimal(amount).quantize(FEN) for sid, kind, start, amount in rows
            if (kind, start) in keys}


def effective_targets(subject: str, ids, period: TargetPeriod) -> dict[int, tuple[Decimal, bool]]:
    """``{subject_id: (amount, derived)}``: the target set for ``period`` itself, else — for a quarter or a
    year — the sum of the finer targets inside it (``derived`` is then true): a quarter sums its months, a year
    sums its quarters, each quarter set or summed from its months. Months without a target count as nothing;
    a subject without any target in the period is absent. One query over the period's rows."""
    ids = [int(i) for i in ids or ()]
    if not ids:
        return {}
    rows = db.session.execute(select(Target.subject_id, Target.period_kind, Target.period_start, Target.amount)
                              .where(Target.subject == subject, Target.subject_id.in_(ids),
                                     Target.period_start >= period.first, Target.period_start <= period.last)).all()
    found: dict[int, dict[tuple[str, date], Decimal]] = {}
    for sid, kind, start, amount in rows:
        found.setdefault(sid, {})[(kind, start)] = Decimal(amount).quantize(FEN)
    out: dict[int, tuple[Decimal, bool]] = {}
    for sid, cells in found.items():
        if (period.kind, period.first) in cells:
            out[sid] = (cells[(period.kind, period.first)], False)
            continue
        if period.kind == "month":
            continue
        quarters = ([period] if period.kind == "quarter" else
                    [parse_period(f"{period.first.year}-Q{q}") for q in range(1, 5)])
        total, seen = Decimal("0.00"), False
        for quarter in quarters:
            if ("quarter", quarter.first) in cells:
                total, seen = total + cells[("quarter", quarter.first)], True
                continue
            for month in quarter.months():
                if ("month", month) in cells:
                    total, seen = total + cells[("month", month)], True
        if seen:
            out[sid] = (total, True)
    return out


# -- the achievement table -------------------------------------------------------------------------------------
@dataclass
class Row:
    kind: str  # company/branch/department/team (a node) or rep
    id: int
    name: str
    depth: int
    parent: str | None
    target: Decimal | None = None
    #: the target is not set for the period itself: summed from its months/quarters, or from the rows below
    target_derived: bool = False
    commit_fen: int = 0
    won_fen: int = 0
    children: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{'user' if self.kind == 'rep' else 'department'}:{self.id}"

    @property
    def commit(self) -> Decimal:
        return yuan(self.commit_fen)

    @property
    def won(self) -> Decimal:
        return yuan(self.won_fen)

    @property
    def percent(self) -> Decimal | None:
        """won / target in %, one decimal, half-up; ``None`` without a (positive) target."""
        if not self.target:
            return None
        return (self.won * 100 / self.target).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _sees_department(user) -> bool:
    """Whether the reader's data scope on opportunities covers their department subtree (a manager)."""
    return scope_of(user, Opportunity.__visibility_object__) in ("department", "all")


def _root_for(user, department_id) -> Department | None:
    """The node the table starts at: the requested one if the reader may see it, else their own."""
    r = reach(user, Opportunity.__visibility_object__)
    wanted_id = ascii_int(department_id)
    wanted = db.session.get(Department, wanted_id) if wanted_id is not None else None
    if department_id and wanted is None:
        raise ReportError(_("Unknown department."))
    own = db.session.get(Department, user.department_id) if user.department_id else None
    if wanted is not None:
        if r.everything or (own is not None and wanted.path.startswith(own.path) and _sees_department(user)):
            return wanted
        raise ReportError(_("You may not see the achievement of this department."))
    if own is None and r.everything:
        return db.session.scalar(select(Department).where(Department.parent_id.is_(None)).order_by(Department.id))
    return own


def achievement(user, period: TargetPeriod, department_id=None) -> list[Row]:
    """The rows, depth-first: nodes from the root with their reps; a rep who sees only their own records gets
    their own row alone."""
    r = reach(user, Opportunity.__visibility_object__)
    if not r.everything and not _sees_department(user):
        rows = [Row("rep", user.id, user.label, 0, None)]
    else:
        root = _root_for(user, department_id)
        rows = _tree(root) if root is not None else [Row("rep", user.id, user.label, 0, None)]
    _fill(rows, period)
    return rows


def _tree(root: Department) -> list[Row]:
    nodes = db.session.scalars(select(Department).where(Department.path.startswith(root.path))).all()
    children: dict[int | None, list[Department]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node)
    people: dict[int, list[User]] = {}
    for person in db.session.scalars(select(User).where(User.department_id.in_([n.id for n in nodes]))):
        people.setdefault(person.department_id, []).append(person)
    out: list[Row] = []

    def visit(node, depth, parent):
        row = Row(node.kind, node.id, node.name, depth, parent)
        out.append(row)
        for person in sorted(people.get(node.id, []), key=lambda p: (p.label.casefold(), p.id)):
            rep = Row("rep", person.id, person.label, depth + 1, row.key)
            row.children.append(rep)
            out.append(rep)
        for child in sorted(children.get(node.id, []), key=lambda d: (d.name.casefold(), d.id)):
            row.children.append(visit(child, depth + 1, row.key))
        return row

    visit(root, 0, None)
    return out


def _fill(rows: list[Row], period: TargetPeriod) -> None:
    reps = {row.id: row for row in rows if row.kind == "rep"}
    nodes = {row.id: row for row in rows if row.kind != "rep"}
    bounds = period.bounds
    owner_ids = list(reps)
    won = db.session.execute(
        select(Opportunity.owner_id, fen_sum(Opportunity.amount_company))
        .where(Opportunity.status == "won", Opportunity.closed_at >= bounds.start, Opportunity.closed_at < bounds.end,
               Opportunity.owner_id.in_(owner_ids))
        .group_by(Opportunity.owner_id)).all()
    for owner_id, fen in won:
        reps[owner_id].won_fen = int(fen or 0)
    commits = db.session.execute(
        select(Forecast.user_id, fen_sum(Forecast.commit_amount))
        .where(Forecast.month >= period.first, Forecast.month <= period.last, Forecast.user_id.in_(owner_ids))
        .group_by(Forecast.user_id)).all()
    for user_id, fen in commits:
        reps[user_id].commit_fen = int(fen or 0)
    for subject, table in (("user", reps), ("department", nodes)):
        for sid, (amount, derived) in effective_targets(subject, list(table), period).items():
            table[sid].target, table[sid].target_derived = amount, derived

    def roll(row: Row) -> None:
        below = row.children
        for child in below:
            roll(child)
            row.won_fen += child.won_fen
            row.commit_fen += child.commit_fen
        # a node without a target of its own has the sum of the targets below it
        if row.kind != "rep" and row.target is None and any(child.target is not None for child in below):
            row.target = sum((child.target for child in below if child.target is not None), Decimal("0.00"))
            row.target_derived = True

    for row in rows:
        if row.parent is None:
            roll(row)


@dataclass
class ProductRow:
    id: int
    name: str
    target: Decimal | None
    won_fen: int

    @property
    def won(self) -> Decimal:
        return yuan(self.won_fen)

    @property
    def percent(self) -> Decimal | None:
        if not self.target:
            return None
        return (self.won * 100 / self.target).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def product_rows(user, period: TargetPeriod, owner_ids: list[int] | None) -> list[ProductRow]:
    """Per product: its target vs the order lines of that product on orders dated in the period (the orders
    of ``owner_ids``, or all orders for ``None``); cancelled orders do not count. Lines count in the company
    currency: summed in SQL for orders in it, converted one by one at their order's own rate
    (``total_company / total``, the rate the order was accepted at) for orders in another currency."""
    company = money.company_currency()
    base = (select(OrderLine.product_id).join(Order, OrderLine.order_id == Order.id)
            .where(OrderLine.product_id.is_not(None), Order.order_date >= period.first,
                   Order.order_date <= period.last, Order.status != "cancelled"))
    if owner_ids is not None:
        base = base.where(Order.owner_id.in_(owner_ids or [0]))
    stmt = (base.add_columns(fen_sum(OrderLine.amount)).where(Order.currency == company)
            .group_by(OrderLine.product_id))
    won = {pid: int(fen or 0) for pid, fen in db.session.execute(stmt)}
    foreign = base.add_columns(OrderLine.amount, Order.total, Order.total_company).where(Order.currency != company)
    for pid, amount, total, total_company in db.session.execute(foreign):
        amount = Decimal(str(amount or 0))
        if total:
            amount = amount * Decimal(str(total_company or 0)) / Decimal(str(total))
        won[pid] = won.get(pid, 0) + int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    product_ids = db.session.scalars(select(Target.subject_id).where(
        Target.subject == "product", Target.period_start >= period.first, Target.period_start <= period.last)
        .distinct()).all()
    targets = {sid: amount for sid, (amount, _derived) in effective_targets("product", product_ids, period).items()}
    ids = set(won) | set(targets)
    if not ids:
        return []
    names = dict(db.session.execute(select(Product.id, Product.name).where(Product.id.in_(ids))).all())
    return sorted((ProductRow(pid, names.get(pid, f"#{pid}"), targets.get(pid), won.get(pid, 0)) for pid in ids),
                  key=lambda p: p.name.casefold())


def total_fen(rows) -> int:
    return sum(row.won_fen for row in rows)


__all__ = ["TARGET_MANAGE", "GridError", "ReportError", "TargetPeriod", "Row", "ProductRow", "parse_period",
           "grid_periods", "manages", "parse_amount", "save_grid", "targets_of", "effective_targets", "achievement",
           "product_rows"]
