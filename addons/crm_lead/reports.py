"""Leads: the reports (线索报表) — leads by source and month, conversion per rep and team, assignment and
follow-up statistics with the time to first contact, disqualification reasons.

Every table counts the leads **created in the period** (a cohort: the conversion rate of March is what
became of March's leads) within a **scope** — me, my team, my department subtree, the company — and always
within what the reader may see (:func:`core.crm.visibility.visible_to`): a rep choosing "company" still
counts only their own leads. The page costs four ``GROUP BY`` scans of the period's leads (by source and month;
per owner and team; the medians; the reasons); Python only pivots and sums the few aggregated rows, never
the leads themselves, so a report over a million leads costs what the database's aggregation costs.

The period and the SQL that differs between SQLite and PostgreSQL are in :mod:`.report_periods`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import g, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, false, func, select

from core.crm.models import Department
from core.crm.picklists import picklist_label
from core.crm.visibility import scope_of, visible_to
from core.extensions import db
from core.models import User

from .leads import DISQUALIFY_REASON, LEAD_SOURCE
from .models import Lead
from .report_periods import (  # noqa: F401 - the reports' API: views and tests use them from here
    MAX_MONTHS,
    PERIODS,
    Period,
    ReportError,
    month_bucket,
    months_back,
    resolve_period,
    seconds_between,
)

SCOPES = {
    "me": _l("My leads"),
    "team": _l("My team"),
    "subtree": _l("My department and below"),
    "company": _l("The whole company"),
}
# -- the scope ----------------------------------------------------------------------------------------
def default_scope(user) -> str:
    """The widest scope the reader's data scope on leads makes meaningful."""
    scope = scope_of(user, Lead.__visibility_object__)
    if scope == "all":
        return "company"
    if scope == "department" and user.department_id:
        return "subtree"
    return "me"


def available_scopes(user) -> list[str]:
    return [key for key in SCOPES if key in ("me", "company") or user.department_id]


def _owners_of(user, scope: str):
    """A select of the user ids whose leads ``scope`` covers; ``None`` for the company."""
    if scope == "me":
        return None
    if scope == "team":
        return select(User.id).where(User.department_id == user.department_id)
    path = db.session.execute(select(Department.path).where(Department.id == user.department_id)).scalar()
    return (select(User.id).join(Department, User.department_id == Department.id)
            .where(Department.path.startswith(path or "/nowhere/")))


def leads_in(user, period: Period, scope: str, *columns):
    """``SELECT columns FROM leads`` created in ``period`` within ``scope`` and what ``user`` may see."""
    if scope not in SCOPES:
        raise ReportError(_("Unknown scope “%(scope)s”.", scope=scope))
    stmt = select(*columns).select_from(Lead).where(Lead.created_at >= period.start, Lead.created_at < period.end)
    stmt = visible_to(user, stmt, Lead)
    if scope == "me":
        stmt = stmt.where(Lead.owner_id == user.id)
    elif scope in ("team", "subtree"):
        if not user.department_id:
            return stmt.where(false())
        cache = g.setdefault("_crm_lead_report_owners", {}) if has_request_context() else {}
        owners = cache.get((user.id, scope))
        if owners is None:  # the report's tables ask several times in one request
            owners = cache[(user.id, scope)] = list(db.session.execute(_owners_of(user, scope)).scalars())
        stmt = stmt.where(Lead.owner_id.in_(owners))
    return stmt


# -- tables -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A table column: ``kind`` is ``text``, ``count``, ``percent`` (a ratio) or ``duration`` (seconds)."""

    key: str
    label: Any
    kind: str = "count"


@dataclass
class Table:
    key: str
    title: Any
    columns: list
    rows: list = field(default_factory=list)  # dicts by column key
    total: dict | None = None
    chart: Any = None


def _ratio(part, whole):
    return (part or 0) / whole if whole else None


def _user_labels(ids) -> dict:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(ids))).all()
    return {uid: display or username for uid, display, username in rows}


def _team_labels(ids) -> dict:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(db.session.execute(select(Department.id, Department.name).where(Department.id.in_(ids))).all())


def by_source(user, period: Period, scope: str) -> Table:
    """(a) Leads created per source and month."""
    from core import charts

    month = month_bucket(Lead.created_at, period.offset_minutes).label("month")
    counts = db.session.execute(
        leads_in(user, period, scope, Lead.source, month, func.count().label("n")).group_by(Lead.source, month)
    ).all()
    months = period.months()
    grid: dict[str, dict[str, int]] = {}
    for source, bucket, n in counts:  # sources × months aggregated rows, not leads
        grid.setdefault(source, {})[bucket] = n
    columns = [Column("source", _l("Source"), "text"), *[Column(m, m) for m in months], Column("total", _l("Total"))]
    rows = []
    for source in sorted(grid, key=lambda s: -sum(grid[s].values())):
        row = {"source": picklist_label(LEAD_SOURCE, source), **{m: grid[source].get(m, 0) for m in months}}
        row["total"] = sum(grid[source].values())
        rows.append(row)
    total = {"source": _("Total"), **{m: sum(r[m] for r in rows) for m in months}, "total": sum(r["total"] for r in rows)}
    chart = charts.StackedBarChart(title=_("Leads by source and month"), categories=months,
                                   series=[(r["source"], [r[m] for m in months]) for r in rows])
    return Table("sources", _l("Leads by source"), columns, rows, total, chart)


def _delay():
    """Seconds from assignment (or creation) to the first contact, never negative (a lead contacted before
    it was reassigned counts as contacted at once)."""
    raw = seconds_between(Lead.first_contacted_at, func.coalesce(Lead.assigned_at, Lead.created_at))
    return case((raw < 0, 0.0), else_=raw)


@dataclass
class Stats:
    """Per ``(owner, team)``: leads, converted, assigned, contacted and the sum of the delays to first contact
    — one scan feeds the conversion tables and the follow-up table (``rows``); plus the medians."""

    rows: list
    medians: dict  # owner id -> median delay; key "all" -> the overall median


def stats(user, period: Period, scope: str, medians: bool = True) -> Stats:
    delay = case((Lead.first_contacted_at.is_not(None), _delay()))
    converted = func.sum(case((Lead.status == "converted", 1), else_=0))
    rows = db.session.execute(
        leads_in(user, period, scope, Lead.owner_id, Lead.team_id, func.count(), converted,
                 func.count(Lead.assigned_at), func.count(Lead.first_contacted_at), func.sum(delay))
        .group_by(Lead.owner_id, Lead.team_id)
    ).all()
    return Stats([tuple(r) for r in rows], _medians(user, period, scope) if medians else {"all": None})


def _medians(user, period, scope) -> dict:
    """The median delay per owner and overall, in one scan: window functions (SQLite ≥ 3.25, PostgreSQL)
    number the delays per owner and over all; the middle one or two are averaged."""
    ranked = leads_in(
        user, period, scope, Lead.owner_id.label("owner_id"), _delay().label("delay"),
        func.row_number().over(partition_by=Lead.owner_id, order_by=_delay()).label("rn"),
        func.count().over(partition_by=Lead.owner_id).label("n"),
        func.row_number().over(order_by=_delay()).label("rn_all"),
        func.count().over().label("n_all"),
    ).where(Lead.first_contacted_at.is_not(None)).subquery()
    c = ranked.c
    middle = c.rn.in_([(c.n + 1) // 2, (c.n + 2) // 2])
    middle_all = c.rn_all.in_([(c.n_all + 1) // 2, (c.n_all + 2) // 2])
    result = db.session.execute(
        select(c.owner_id, func.avg(case((middle, c.delay))), func.sum(case((middle_all, c.delay))),
               func.count(case((middle_all, 1)))).group_by(c.owner_id)
    ).all()
    medians = {owner: median for owner, median, _s, _n in result}
    found = sum(n for *_rest, n in result)
    medians["all"] = sum(float(s or 0) for _o, _m, s, _n in result) / found if found else None
    return medians


def _sum_by(rows, index: int) -> dict:
    """Sum the ``(owner, team, n, converted, assigned, contacted, delay_sum)`` rows by column ``index``."""
    out: dict = {}
    for row in rows:
        acc = out.setdefault(row[index], [0, 0, 0, 0, 0.0])
        for k, value in enumerate(row[2:]):
            acc[k] += float(value or 0) if k == 4 else int(value or 0)
    return out


def _conversion_rows(sums: dict, labels: dict, label_key: str, missing) -> list[dict]:
    rows = [{label_key: labels.get(key, str(key)) if key is not None else missing, "created": n, "converted": c,
             "rate": _ratio(c, n)} for key, (n, c, *_rest) in sums.items()]
    return sorted(rows, key=lambda r: (r[label_key] == missing, str(r[label_key])))


def conversion(user, period: Period, scope: str, data: Stats | None = None) -> tuple[Table, Table]:
    """(b) Leads created in the period, how many were converted and the rate, per rep and per team."""
    from core import charts

    data = data or stats(user, period, scope, medians=False)
    by_owner, by_team = _sum_by(data.rows, 0), _sum_by(data.rows, 1)
    cols = [Column("created", _l("Leads created")), Column("converted", _l("Converted")),
            Column("rate", _l("Conversion rate"), "percent")]
    reps = _conversion_rows(by_owner, _user_labels(by_owner), "rep", _("Unassigned"))
    teams = _conversion_rows(by_team, _team_labels(by_team), "team", _("No team"))
    created, converted = sum(r["created"] for r in reps), sum(r["converted"] for r in reps)
    total = {"created": created, "converted": converted, "rate": _ratio(converted, created)}
    team_chart = charts.BarChart(title=_("Conversion rate per team"), labels=[r["team"] for r in teams],
                                 values=[r["rate"] or 0 for r in teams], fmt=charts.fmt_percent)
    return (
        Table("conversion_reps", _l("Conversion per rep"), [Column("rep", _l("Rep"), "text"), *cols], reps,
              {"rep": _("Total"), **total}),
        Table("conversion_teams", _l("Conversion per team"), [Column("team", _l("Team"), "text"), *cols], teams,
              {"team": _("Total"), **total}, team_chart),
    )


def follow_up(user, period: Period, scope: str, data: Stats | None = None) -> Table:
    """(c) Per rep: leads, assigned, contacted, not yet contacted, average and median time to first contact."""
    data = data or stats(user, period, scope)
    by_owner = _sum_by(data.rows, 0)
    labels = _user_labels(by_owner)

    def row(label, n, _converted, assigned, contacted, delay_sum, median):
        return {"rep": label, "leads": n, "assigned": assigned, "contacted": contacted,
                "not_contacted": n - contacted, "average": delay_sum / contacted if contacted else None,
                "median": median}

    rows = [row(labels.get(owner, str(owner)) if owner is not None else _("Unassigned"), *sums,
                data.medians.get(owner)) for owner, sums in by_owner.items()]
    rows.sort(key=lambda r: str(r["rep"]))
    overall = [sum(values) for values in zip(*by_owner.values(), strict=True)] if by_owner else None
    total = row(_("Total"), *overall, data.medians["all"]) if overall else None
    columns = [
        Column("rep", _l("Rep"), "text"), Column("leads", _l("Leads created")), Column("assigned", _l("Assigned")),
        Column("contacted", _l("Contacted")), Column("not_contacted", _l("Not yet contacted")),
        Column("average", _l("Average time to first contact"), "duration"),
        Column("median", _l("Median time to first contact"), "duration"),
    ]
    return Table("follow_up", _l("Assignment and follow-up"), columns, rows, total)


def disqualification(user, period: Period, scope: str) -> Table:
    """(d) The reasons the period's leads were disqualified for."""
    from core import charts

    result = db.session.execute(
        leads_in(user, period, scope, Lead.disqualify_reason, func.count())
        .where(Lead.status == "disqualified").group_by(Lead.disqualify_reason).order_by(func.count().desc())
    ).all()
    total = sum(n for _r, n in result)
    rows = [{"reason": picklist_label(DISQUALIFY_REASON, reason) or _("No reason given"), "leads": n,
             "share": _ratio(n, total)} for reason, n in result]
    columns = [Column("reason", _l("Reason"), "text"), Column("leads", _l("Number of leads")),
               Column("share", _l("Share"), "percent")]
    chart = charts.PieChart(title=_("Disqualification reasons"), slices=[(r["reason"], r["leads"]) for r in rows])
    return Table("disqualification", _l("Disqualification reasons"), columns, rows,
                 {"reason": _("Total"), "leads": total, "share": 1.0 if total else None}, chart)


def conversion_by_month(user, period: Period, scope: str) -> list[tuple[str, int, int]]:
    """``[(month, created, converted)]`` for every month of the period (the dashboard's trend)."""
    month = month_bucket(Lead.created_at, period.offset_minutes).label("month")
    converted = func.sum(case((Lead.status == "converted", 1), else_=0))
    found = {m: (n, int(c or 0)) for m, n, c in db.session.execute(
        leads_in(user, period, scope, month, func.count(), converted).group_by(month)).all()}
    return [(m, *found.get(m, (0, 0))) for m in period.months()]


TABLES = ("sources", "conversion_reps", "conversion_teams", "follow_up", "disqualification")


def build(user, period: Period, scope: str, only: str | None = None) -> list[Table]:
    """Every table of the report (or only the one named ``only``), in page order."""
    if only is not None and only not in TABLES:
        raise ReportError(_("Unknown report table “%(table)s”.", table=only))
    tables: list[Table] = []
    if only in (None, "sources"):
        tables.append(by_source(user, period, scope))
    data = None
    if only in (None, "conversion_reps", "conversion_teams", "follow_up"):
        data = stats(user, period, scope, medians=only in (None, "follow_up"))
    if only in (None, "conversion_reps", "conversion_teams"):
        tables.extend(t for t in conversion(user, period, scope, data) if only in (None, t.key))
    if only in (None, "follow_up"):
        tables.append(follow_up(user, period, scope, data))
    if only in (None, "disqualification"):
        tables.append(disqualification(user, period, scope))
    return tables


# -- formatting ---------------------------------------------------------------------------------------
def format_duration(seconds) -> str:
    """A delay for people: minutes under an hour, hours under two days, days beyond."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 3600:
        return _("%(n)d min", n=round(seconds / 60))
    if seconds < 48 * 3600:
        return _("%(n).1f h", n=seconds / 3600)
    return _("%(n).1f d", n=seconds / 86400)


def format_cell(value, kind: str) -> str:
    if kind == "percent":
        return "—" if value is None else f"{value * 100:.1f}%"
    if kind == "duration":
        return format_duration(value)
    if kind == "count":
        return f"{int(value or 0):,}"
    return "" if value is None else str(value)


def csv_cell(value, kind: str):
    """A cell of the CSV file: numbers stay numbers (durations in hours), ratios are percentages."""
    if value is None:
        return ""
    if kind == "percent":
        return f"{value * 100:.1f}%"
    if kind == "duration":
        return f"{float(value) / 3600:.2f}"
    return value
