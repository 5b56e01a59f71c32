"""Leads: pages of the reports area — the reports page, its CSV exports, and the dashboard widgets' bodies
(registered in :mod:`.hooks_reports`). The numbers come from :mod:`.reports`."""

from __future__ import annotations

import csv
import io

from flask import Response, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.routing import BuildError

from core import charts
from core.extensions import db
from core.security import permission_required

from . import reports
from .hooks_reports import REPORT_READ
from .leads import OPEN_STATUSES, status_label
from .models import Lead
from .views import bp

#: a cell starting like a formula is written as text, so that a spreadsheet never runs it
_FORMULA_START = ("=", "+", "-", "@")
FOLLOW_UP_ROWS = 8


def _params(user):
    """``(period, scope, error)`` of the request's query string; on bad input the defaults and a message."""
    args = request.args
    scope = args.get("scope") or reports.default_scope(user)
    try:
        period = reports.resolve_period(args.get("period") or "this_month", args.get("start"), args.get("end"))
        if scope not in reports.available_scopes(user):
            raise reports.ReportError(_("Unknown scope “%(scope)s”.", scope=scope))
    except reports.ReportError as exc:
        return None, scope, str(exc)
    return period, scope, None


@bp.route("/reports", endpoint="reports")
@permission_required(REPORT_READ)
def reports_page():
    period, scope, error = _params(current_user)
    tables = reports.build(current_user, period, scope) if period else []
    return render_template(
        "crm_lead/reports.html", tables=tables, period=period, scope=scope, error=error,
        periods=reports.PERIODS, scopes={k: reports.SCOPES[k] for k in reports.available_scopes(current_user)},
        args=request.args, format_cell=reports.format_cell,
        csv_args={key: request.args[key] for key in ("period", "start", "end") if request.args.get(key)} | {"scope": scope},
    ), (400 if error else 200)


def _csv_text(value):
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


@bp.route("/reports/<table>.csv")
@permission_required(REPORT_READ)
def reports_csv(table: str):
    period, scope, error = _params(current_user)
    if error is None and table not in reports.TABLES:
        error = _("Unknown report table “%(table)s”.", table=table)
    if error:
        return Response(error, status=400, mimetype="text/plain")
    (result,) = reports.build(current_user, period, scope, only=table)
    buffer = io.StringIO()
    buffer.write("\ufeff")  # a BOM: Excel then reads Chinese correctly
    writer = csv.writer(buffer, lineterminator="\r\n")
    headers = [_("%(column)s (hours)", column=c.label) if c.kind == "duration" else str(c.label)
               for c in result.columns]
    writer.writerow(headers)
    for row in [*result.rows, *([result.total] if result.total else [])]:
        writer.writerow([_csv_text(reports.csv_cell(row.get(c.key), c.kind)) for c in result.columns])
    name = f"leads-{table}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(buffer.getvalue().encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- dashboard widgets (core.registry.DashboardWidget.render) -------------------------------------------
def widget_by_source(user):
    """This month's leads by source within the widest scope the reader has."""
    period = reports.resolve_period("this_month")
    table = reports.by_source(user, period, reports.default_scope(user))
    chart = charts.BarChart(title=_("Leads by source this month"), labels=[r["source"] for r in table.rows],
                            values=[r["total"] for r in table.rows], height=220)
    return render_template("crm_lead/report_widget_chart.html", chart=chart, total=table.total["total"])


def widget_conversion(user):
    """The conversion rate of the leads created in each of the last six months."""
    period = reports.months_back(6)
    months = reports.conversion_by_month(user, period, reports.default_scope(user))
    chart = charts.LineChart(title=_("Conversion rate of the leads created each month"),
                             labels=[m for m, _n, _c in months],
                             series=[(_("Conversion rate"), [c / n if n else None for _m, n, c in months])],
                             fmt=charts.fmt_percent, top_value=1.0, height=200)
    created, converted = sum(n for _m, n, _c in months), sum(c for _m, _n, c in months)
    return render_template("crm_lead/report_widget_chart.html", chart=chart, created=created, converted=converted,
                           rate=reports.format_cell(converted / created if created else None, "percent"))


def _lead_url(lead_id: int) -> str | None:
    try:
        return url_for("crm_lead.view", lead_id=lead_id)
    except BuildError:  # the record page belongs to the leads area
        return None


def widget_follow_up(user):
    """The reader's own open leads, the longest without contact (never contacted) first."""
    from core.crm.visibility import visible_to

    stmt = visible_to(user, select(Lead.id, Lead.name, Lead.company, Lead.status, Lead.last_contacted_at), Lead)
    rows = db.session.execute(
        stmt.where(Lead.owner_id == user.id, Lead.status.in_(OPEN_STATUSES), ~Lead.in_pool)
        .order_by(Lead.last_contacted_at.asc().nulls_first(), Lead.id).limit(FOLLOW_UP_ROWS)
    ).all()
    items = [{"id": r.id, "name": r.name, "company": r.company, "status": status_label(r.status),
              "last": r.last_contacted_at, "url": _lead_url(r.id)} for r in rows]
    return render_template("crm_lead/report_widget_follow_up.html", items=items)
