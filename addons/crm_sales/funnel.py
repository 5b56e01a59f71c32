"""The sales funnel and pipeline (销售漏斗), win rate, sales cycle, stage durations and rankings.

Every figure aggregates in SQL (``GROUP BY``) the opportunities of a **scope** — the whole company, a node of
the organisation (branch, department or team: its whole subtree) or one rep — whose **close date** falls in a
**period**, always within what the reader may see (:func:`core.crm.visibility.visible_to`): a rep asking for
the company gets their own opportunities. Python only sums the few aggregated rows.

Money is exact to the fen on both backends: amounts are summed as integer fen (SQLite stores ``Numeric`` as a
binary float, whose sums drift), and the weighted amount — Σ amount × probability / 100 — is summed per
(stage, probability) in SQL and multiplied with ``Decimal`` here, rounded half-up once per figure.

The period, its errors and the SQL differing between SQLite and PostgreSQL come from the leads' reports
(:mod:`addons.crm_lead.report_periods`; crm_sales depends on crm_lead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import g, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, cast, func, select

from addons.crm_lead.report_periods import PERIODS, Period, ReportError, next_month, resolve_period
from core.crm.models import Department
from core.crm.visibility import reach, visible_to
from core.extensions import db
from core.models import User

from . import stages
from .models import FunnelMonth, Opportunity, SalesProcess, Stage, StageChange

__all__ = ["PERIODS", "Period", "ReportError", "Scope", "resolve_period", "resolve_scope", "pipeline",
           "summary", "stage_durations", "rankings"]

FEN = Decimal("0.01")
CLOSED_LOST = ("lost", "abandoned")


def fen_sum(column):
    """``SUM(column)`` in fen, exact on both backends: PostgreSQL sums ``numeric`` exactly (and fast), SQLite
    stores it as a binary float, so there every amount is rounded to integer fen before the sum."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.coalesce(func.sum(column), 0) * 100
    return func.coalesce(func.sum(cast(func.round(column * 100), BigInteger)), 0)


def yuan(fen) -> Decimal:
    return (Decimal(int(fen or 0)) / 100).quantize(FEN)


# -- the scope -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """``kind``: ``company``, ``department`` (a node and its subtree) or ``user``; ``id`` of the node/user."""

    kind: str
    id: int | None = None
    label: str = ""

    @property
    def key(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


def resolve_scope(text: str | None, user) -> Scope:
    """``company``, ``department:<id>`` or ``user:<id>`` (default: the reader's widest sensible scope)."""
    text = (text or "").strip() or default_scope_key(user)
    kind, _sep, raw = text.partition(":")
    if kind == "company" and not raw:
        return Scope("company", None, _("The whole company"))
    try:
        ident = int(raw)
    except ValueError:
        raise ReportError(_("Unknown scope “%(scope)s”.", scope=text)) from None
    if kind == "department":
        node = db.session.get(Department, ident)
        if node is not None:
            return Scope("department", node.id, node.name)
    elif kind == "user":
        person = db.session.get(User, ident)
        if person is not None:
            return Scope("user", person.id, person.label)
    raise ReportError(_("Unknown scope “%(scope)s”.", scope=text))


def default_scope_key(user) -> str:
    from core.crm.visibility import scope_of

    scope = scope_of(user, Opportunity.__visibility_object__)
    if scope == "all":
        return "company"
    if scope == "department" and user.department_id:
        return f"department:{user.department_id}"
    return f"user:{user.id}"


def scope_choices(user) -> list[tuple[str, str]]:
    """The scopes the picker offers: the company, the org nodes the reader may see, the reader."""
    choices = [("company", str(_l("The whole company")))]
    nodes = db.session.scalars(select(Department).order_by(Department.path)).all()
    for node in nodes:
        depth = max(0, node.path.count("/") - 2)
        choices.append((f"department:{node.id}", "  " * depth + node.name))
    choices.append((f"user:{user.id}", _("Only me")))
    return choices


def _owners(scope: Scope):
    """A select of the owner ids a department scope covers (its subtree's users)."""
    path = db.session.scalar(select(Department.path).where(Department.id == scope.id)) or "/nowhere/"
    return (select(User.id).join(Department, User.department_id == Department.id)
            .where(Department.path.startswith(path)))


def scoped(stmt, user, scope: Scope, period: Period | None, model=Opportunity):
    """``stmt`` restricted to the visible opportunities of ``scope`` closing in ``period``."""
    if period is not None:
        stmt = stmt.where(Opportunity.close_date >= period.first, Opportunity.close_date <= period.last)
    stmt = visible_to(user, stmt, Opportunity)
    if scope.kind == "user":
        stmt = stmt.where(Opportunity.owner_id == scope.id)
    elif scope.kind == "department":
        owners = list(db.session.scalars(_owners(scope)))
        stmt = stmt.where(Opportunity.owner_id.in_(owners))
    return stmt


# -- the one aggregation ------------------------------------------------------------------------------------
def aggregate(user, scope: Scope, period: Period, process: SalesProcess) -> list[tuple]:
    """``(owner_id, team_id, stage_id, probability, count, fen, cycle seconds, cycles)`` of the scope's
    opportunities in the period: the pipeline, the win rate, the average cycle and both rankings are sums of
    these few rows (cached for the request).

    The whole months of the period are read from the monthly roll-up ``crm_sales_funnel_month`` (kept by the
    database's triggers, migration crm_sales_0009) whenever the reader's visibility is by owner alone — the
    roll-up knows owners, not the other columns a sharing rule may name; the days before the first and after
    the last whole month, and every period of a reader with sharing rules, group the opportunities themselves
    (one index range scan on the covering indexes of crm_sales_0006/0008)."""
    key = ("crm_sales_funnel", user.id, scope.key, period.first, period.last, process.id)
    cache = g.setdefault("_crm_sales_funnel", {}) if has_request_context() else {}
    if key not in cache:
        stage_ids = [s.id for s in process.stages]
        months = whole_months(period.first, period.last)
        owners = _rollup_owners(user)
        if months is None or owners is False:
            rows = _grouped(user, scope, period.first, period.last, stage_ids)
        else:
            start, end = months
            rows = _rolled_up(owners, scope, start, end, stage_ids)
            if period.first < start:
                rows += _grouped(user, scope, period.first, start - timedelta(days=1), stage_ids)
            if end <= period.last:
                rows += _grouped(user, scope, end, period.last, stage_ids)
        cache[key] = _merged(rows)
    return cache[key]


def whole_months(first: date, last: date) -> tuple[date, date] | None:
    """``(start, end)``: the first day of the first whole month in ``[first, last]`` and the first day after the
    last one; ``None`` when the period holds no whole month."""
    start = first if first.day == 1 else next_month(first)
    end = next_month(last)
    if end - timedelta(days=1) != last:
        end = last.replace(day=1)
    return (start, end) if start < end else None


def _rollup_owners(user):
    """The owners whose opportunities ``user`` sees: ``None`` for everybody's, ``False`` when visibility is not
    by owner alone (a sharing rule applies: the roll-up cannot answer)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ()
    r = reach(user, Opportunity.__visibility_object__)
    if r.everything:
        return None
    return False if r.shares else r.owner_ids


def _grouped(user, scope: Scope, first: date, last: date, stage_ids: list[int]) -> list[tuple]:
    """The aggregation over the opportunities themselves, closing in ``[first, last]``."""
    stmt = (select(Opportunity.owner_id, Opportunity.team_id, Opportunity.stage_id, Opportunity.probability,
                   func.count(), fen_sum(Opportunity.amount_company), func.sum(Opportunity.cycle_seconds),
                   func.count(Opportunity.cycle_seconds))
            .where(Opportunity.stage_id.in_(stage_ids),
                   Opportunity.close_date >= first, Opportunity.close_date <= last)
            .group_by(Opportunity.owner_id, Opportunity.team_id, Opportunity.stage_id, Opportunity.probability))
    return [tuple(row) for row in db.session.execute(scoped(stmt, user, scope, None))]


def _rolled_up(owners, scope: Scope, start: date, end: date, stage_ids: list[int]) -> list[tuple]:
    """The same rows from the roll-up, for the whole months ``[start, end)``; ``owners``: who the reader sees
    (``None``: everybody)."""
    f = FunnelMonth
    stmt = (select(f.owner_key, f.team_key, f.stage_id, f.probability, func.sum(f.n), func.sum(f.fen),
                   func.sum(f.cycle_seconds), func.sum(f.cycles))
            .where(f.month >= start, f.month < end, f.stage_id.in_(stage_ids))
            .group_by(f.owner_key, f.team_key, f.stage_id, f.probability))
    if owners is not None:
        stmt = stmt.where(f.owner_key.in_(owners))
    if scope.kind == "user":
        stmt = stmt.where(f.owner_key == scope.id)
    elif scope.kind == "department":
        stmt = stmt.where(f.owner_key.in_(list(db.session.scalars(_owners(scope)))))
    return [(owner or None, team or None, *rest) for owner, team, *rest in db.session.execute(stmt)]


def _merged(rows: list[tuple]) -> list[tuple]:
    """Sum rows of the same (owner, team, stage, probability) and drop the empty ones, as plain ints."""
    sums: dict[tuple, list[int]] = {}
    for owner, team, stage_id, probability, count, fen, seconds, cycles in rows:
        entry = sums.setdefault((owner, team, stage_id, probability), [0, 0, 0, 0])
        entry[0] += int(count or 0)
        entry[1] += int(fen or 0)
        entry[2] += int(seconds or 0)
        entry[3] += int(cycles or 0)
    return [(*k, *v) for k, v in sums.items() if v[0]]


# -- the pipeline and the funnel ----------------------------------------------------------------------------
@dataclass
class StageRow:
    stage: Stage
    count: int = 0
    amount: Decimal = Decimal("0.00")
    weighted: Decimal = Decimal("0.00")

    @property
    def label(self) -> str:
        return stages.stage_label(self.stage.name)


@dataclass
class Pipeline:
    process: SalesProcess
    rows: list[StageRow] = field(default_factory=list)

    @property
    def open_rows(self) -> list[StageRow]:
        return [row for row in self.rows if row.stage.kind == "open"]

    def total(self, rows=None) -> StageRow:
        rows = self.rows if rows is None else rows
        total = StageRow(stage=None)  # type: ignore[arg-type]
        total.count = sum(r.count for r in rows)
        total.amount = sum((r.amount for r in rows), Decimal("0.00"))
        total.weighted = sum((r.weighted for r in rows), Decimal("0.00"))
        return total


def pipeline(user, scope: Scope, period: Period, process: SalesProcess) -> Pipeline:
    """Count, amount and weighted amount per stage of ``process`` (every stage, in order)."""
    by_stage: dict[int, list] = {}
    for _owner, _team, stage_id, probability, count, fen, *_cycle in aggregate(user, scope, period, process):
        entry = by_stage.setdefault(stage_id, [0, 0, Decimal(0)])
        entry[0] += count
        entry[1] += int(fen or 0)
        entry[2] += Decimal(int(fen or 0)) * Decimal(int(probability or 0))  # fen × percent
    result = Pipeline(process=process)
    for stage in process.stages:
        count, fen, weighted = by_stage.get(stage.id, (0, 0, Decimal(0)))
        if not stage.active and not count:
            continue
        result.rows.append(StageRow(stage=stage, count=count, amount=yuan(fen),
                                    weighted=(weighted / 10000).quantize(FEN, rounding=ROUND_HALF_UP)))
    return result


# -- win rate and cycle -------------------------------------------------------------------------------------
@dataclass
class Summary:
    won_count: int = 0
    won_amount: Decimal = Decimal("0.00")
    lost_count: int = 0
    lost_amount: Decimal = Decimal("0.00")
    open_count: int = 0
    open_amount: Decimal = Decimal("0.00")
    #: average days from creation to winning
    cycle_days: float | None = None

    @property
    def win_rate(self) -> float | None:
        closed = self.won_count + self.lost_count
        return self.won_count / closed if closed else None

    @property
    def win_rate_amount(self) -> float | None:
        closed = self.won_amount + self.lost_amount
        return float(self.won_amount / closed) if closed else None


def summary(user, scope: Scope, period: Period, process: SalesProcess | None = None) -> Summary:
    process = process or stages.default_process()
    kinds = {s.id: s.kind for s in process.stages}
    out = Summary()
    fen = {"won": 0, "lost": 0, "open": 0}
    cycle_seconds = cycles = 0
    for _owner, _team, stage_id, _probability, count, amount, seconds, closed in aggregate(user, scope, period,
                                                                                           process):
        kind = kinds.get(stage_id, "open")
        bucket = "lost" if kind in CLOSED_LOST else kind
        setattr(out, f"{bucket}_count", getattr(out, f"{bucket}_count") + count)
        fen[bucket] += int(amount or 0)
        if kind == "won":
            cycle_seconds, cycles = cycle_seconds + int(seconds or 0), cycles + int(closed or 0)
    out.won_amount, out.lost_amount, out.open_amount = yuan(fen["won"]), yuan(fen["lost"]), yuan(fen["open"])
    # the sales cycle: the won opportunities' stored ``cycle_seconds`` (closed_at − created_at), averaged
    out.cycle_days = cycle_seconds / cycles / 86400 if cycles else None
    return out


def stage_durations(user, scope: Scope, period: Period, process: SalesProcess) -> list[tuple[Stage, int, float]]:
    """Per stage of ``process``: how many opportunities left it in the period and their average days in it."""
    stmt = (select(StageChange.from_stage_id, func.count(), func.avg(StageChange.seconds_in_previous))
            .join(Opportunity, Opportunity.id == StageChange.opportunity_id)
            .where(StageChange.from_stage_id.is_not(None), Opportunity.process_id == process.id,
                   StageChange.changed_at >= period.start, StageChange.changed_at < period.end)
            .group_by(StageChange.from_stage_id))
    stats = {sid: (n, float(avg or 0) / 86400) for sid, n, avg in db.session.execute(scoped(stmt, user, scope, None))}
    return [(stage, *stats[stage.id]) for stage in process.stages if stage.id in stats]


# -- rankings ------------------------------------------------------------------------------------------------
@dataclass
class Rank:
    id: int | None
    label: str
    won_amount: Decimal = Decimal("0.00")
    won_count: int = 0
    closed_count: int = 0
    open_amount: Decimal = Decimal("0.00")

    @property
    def win_rate(self) -> float | None:
        return self.won_count / self.closed_count if self.closed_count else None


def rankings(user, scope: Scope, period: Period, by: str = "owner", limit: int = 20,
             process: SalesProcess | None = None) -> list[Rank]:
    """Reps (``by="owner"``) or teams (``by="team"``) by won amount, then won count."""
    process = process or stages.default_process()
    kinds = {s.id: s.kind for s in process.stages}
    sums: dict = {}
    for owner, team, stage_id, _probability, count, fen, *_cycle in aggregate(user, scope, period, process):
        ident = owner if by == "owner" else team
        entry = sums.setdefault(ident, [0, 0, 0, 0])  # won fen, won count, closed count, open fen
        kind = kinds.get(stage_id, "open")
        if kind == "won":
            entry[0] += int(fen or 0)
            entry[1] += count
        if kind == "open":
            entry[3] += int(fen or 0)
        else:
            entry[2] += count
    model = User if by == "owner" else Department
    ids = [i for i in sums if i is not None]
    names = {}
    if ids:
        for record in db.session.scalars(select(model).where(model.id.in_(ids))):
            names[record.id] = record.label if by == "owner" else record.name
    ranks = [Rank(id=ident, label=names.get(ident, _("Nobody") if ident is None else str(ident)),
                  won_amount=yuan(won_fen), won_count=won_n, closed_count=closed_n, open_amount=yuan(open_fen))
             for ident, (won_fen, won_n, closed_n, open_fen) in sums.items()]
    ranks.sort(key=lambda r: (-r.won_amount, -r.won_count, r.label))
    return ranks[:limit]


def processes() -> list[SalesProcess]:
    return list(db.session.scalars(select(SalesProcess).where(SalesProcess.active.is_(True))
                                   .order_by(SalesProcess.sequence, SalesProcess.id)))


def process_of(process_id) -> SalesProcess:
    """The process asked for (an active one), else the default."""
    try:
        ident = int(process_id) if process_id else None
    except (TypeError, ValueError):
        ident = None
    process = db.session.get(SalesProcess, ident) if ident else None
    if process is None or not process.active:
        process = stages.default_process()
    return process

