"""Sales: the funnel page (漏斗: pipeline, win rate, cycle, stage durations, rankings), its CSV downloads and
the dashboard widget. The numbers come from :mod:`.funnel`."""

from __future__ import annotations

import csv
import io

from flask import Response, render_template, request
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user

from core import charts
from core.security import permission_required

from . import funnel, stages
from .hooks_reports import REPORT_READ
from .views import bp

_FORMULA_START = ("=", "+", "-", "@")
TABLES = ("pipeline", "reps", "teams")


def _params(user):
    """``(scope, period, process, error)`` of the query string; on bad input the defaults and a message."""
    args = request.args
    error = None
    try:
        scope = funnel.resolve_scope(args.get("scope"), user)
    except funnel.ReportError as exc:
        error, scope = str(exc), funnel.resolve_scope(None, user)
    try:
        period = funnel.resolve_period(args.get("period") or "this_quarter", args.get("start"), args.get("end"))
    except funnel.ReportError as exc:
        error, period = str(exc), funnel.resolve_period("this_quarter")
    return scope, period, funnel.process_of(args.get("process")), error


def money(value) -> str:
    return format_decimal(value, format="#,##0.00")


def percent(value) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


@bp.route("/funnel", endpoint="funnel")
@permission_required(REPORT_READ)
def funnel_page():
    scope, period, process, error = _params(current_user)
    pipe = funnel.pipeline(current_user, scope, period, process)
    chart = charts.FunnelChart(title=_("Sales funnel"), stages=[(row.label, row.amount) for row in pipe.open_rows],
                               fmt=money)
    return render_template(
        "crm_sales/funnel.html", scope=scope, period=period, process=process, error=error, pipe=pipe, chart=chart,
        summary=funnel.summary(current_user, scope, period, process),
        durations=funnel.stage_durations(current_user, scope, period, process),
        reps=funnel.rankings(current_user, scope, period, "owner", process=process),
        teams=funnel.rankings(current_user, scope, period, "team", process=process),
        scopes=funnel.scope_choices(current_user), periods=funnel.PERIODS, processes=funnel.processes(),
        args=request.args, money=money, percent=percent, stage_label=stages.stage_label,
    ), (400 if error else 200)


def _csv_text(value):
    text = str(value)
    if text[:1] in _FORMULA_START:
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


@bp.route("/funnel/<table>.csv", endpoint="funnel_csv")
@permission_required(REPORT_READ)
def funnel_csv(table: str):
    scope, period, process, error = _params(current_user)
    if error is None and table not in TABLES:
        error = _("Unknown report table “%(table)s”.", table=table)
    if error:
        return Response(error, status=400, mimetype="text/plain")
    buffer = io.StringIO()
    buffer.write("\ufeff")  # a BOM: Excel then reads Chinese correctly
    writer = csv.writer(buffer, lineterminator="\r\n")
    if table == "pipeline":
        pipe = funnel.pipeline(current_user, scope, period, process)
        writer.writerow([_("Stage"), _("Probability"), _("Opportunities"), _("Amount"), _("Weighted amount")])
        for row in pipe.rows:
            writer.writerow([_csv_text(row.label), row.stage.probability, row.count, row.amount, row.weighted])
        total = pipe.total()
        writer.writerow([_("Total"), "", total.count, total.amount, total.weighted])
    else:
        ranks = funnel.rankings(current_user, scope, period, "owner" if table == "reps" else "team", limit=1000,
                                 process=process)
        writer.writerow([_("Rep") if table == "reps" else _("Team"), _("Won amount"), _("Won"), _("Closed"),
                         _("Win rate"), _("Open pipeline")])
        for rank in ranks:
            writer.writerow([_csv_text(rank.label), rank.won_amount, rank.won_count, rank.closed_count,
                             percent(rank.win_rate), rank.open_amount])
    name = f"sales-{table}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(buffer.getvalue().encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def widget_pipeline(user):
    """The reader's open pipeline closing this quarter, as a funnel."""
    scope = funnel.resolve_scope(None, user)
    period = funnel.resolve_period("this_quarter")
    pipe = funnel.pipeline(user, scope, period, funnel.process_of(None))
    chart = charts.FunnelChart(title=_("Pipeline closing this quarter"),
                               stages=[(row.label, row.amount) for row in pipe.open_rows], fmt=money, height=220)
    total = pipe.total(pipe.open_rows)
    return render_template("crm_sales/widget_pipeline.html", chart=chart, total=total, money=money)
