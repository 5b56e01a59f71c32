"""Sales: the target grid (销售目标), the reps' monthly forecasts (销售预测) and the achievement table (目标达成)
with its CSV download. The numbers come from :mod:`.targets`."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.crm.models import Department, Product
from core.crm.visibility import reach
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.security import permission_required

from . import targets
from .hooks import READ
from .models import Forecast, Opportunity
from .views import bp

_FORMULA_START = ("=", "+", "-", "@")
FORECAST_MONTHS = 6


def money(value) -> str:
    return "" if value is None else format_decimal(value, format="#,##0.00")


def _safe(text: str) -> str:
    """A CSV cell never starts like a spreadsheet formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# -- the achievement table -------------------------------------------------------------------------------------
@bp.route("/targets/achievement", endpoint="achievement")
@permission_required(READ)
def achievement_page():
    error, rows, products = None, [], []
    period_text = request.args.get("period") or str(date.today().year)
    try:
        period = targets.parse_period(period_text)
        rows = targets.achievement(current_user, period, request.args.get("department_id"))
        products = targets.product_rows(current_user, period, _order_owners(rows))
    except targets.ReportError as exc:
        error, period = str(exc), targets.parse_period(str(date.today().year))
    if request.args.get("format") == "csv" and not error:
        return _csv(rows, products, period)
    return render_template("crm_sales/achievement.html", rows=rows, products=products, period=period,
                           period_text=period_text, error=error, money=money,
                           department_id=request.args.get("department_id", ""))


def _order_owners(rows) -> list[int] | None:
    """Product rows count the orders of the reps in the table; ``None`` (every order) for a reader who sees
    everything and looks at the top of the tree."""
    r = reach(current_user, Opportunity.__visibility_object__)
    if r.everything and rows and rows[0].kind == "company":
        return None
    return [row.id for row in rows if row.kind == "rep"]


def _csv(rows, products, period) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Level"), _("Name"), _("Target"), _("Commit"), _("Won"), _("Achievement rate")])
    for row in rows:
        writer.writerow([row.depth, _safe(row.name), "" if row.target is None else row.target, row.commit, row.won,
                         "" if row.percent is None else row.percent])
    for product in products:
        writer.writerow([_("Product"), _safe(product.name), "" if product.target is None else product.target, "",
                         product.won, "" if product.percent is None else product.percent])
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=achievement-{period.key}.csv"})


# -- the target grid ---------------------------------------------------------------------------------------------
def _grid_subjects(subject: str, node: Department | None) -> list[tuple[int, str]]:
    """The grid's rows: the reps of the node's subtree, the nodes of its subtree, or the active products."""
    if subject == "product":
        return [(p.id, p.name) for p in db.session.scalars(select(Product).where(Product.active.is_(True))
                                                           .order_by(Product.name))]
    if node is None:
        return []
    if subject == "department":
        nodes = db.session.scalars(select(Department).where(Department.path.startswith(node.path))
                                   .order_by(Department.path)).all()
        return [(n.id, "\u3000" * max(0, n.path.count("/") - node.path.count("/")) + n.name) for n in nodes]
    people = db.session.scalars(select(User).join(Department, User.department_id == Department.id)
                                .where(Department.path.startswith(node.path))).all()
    return sorted(((p.id, p.label) for p in people), key=lambda item: item[1].casefold())


def _grid_params():
    args = request.values
    subject = args.get("subject") if args.get("subject") in ("user", "department", "product") else "user"
    kind = args.get("kind") if args.get("kind") in ("month", "quarter", "year") else "month"
    try:
        year = int(args.get("year") or date.today().year)
    except ValueError:
        year = date.today().year
    year = min(max(year, 1900), 2999)
    node = None
    if (department_id := ascii_int(args.get("department_id"))) is not None:
        node = db.session.get(Department, department_id)
    if node is None and current_user.department_id:
        node = db.session.get(Department, current_user.department_id)
    if node is None and current_user.is_admin:
        node = db.session.scalar(select(Department).where(Department.parent_id.is_(None)).order_by(Department.id))
    return subject, kind, year, node


@bp.route("/targets", methods=["GET", "POST"], endpoint="targets")
@permission_required(READ)
def targets_page():
    subject, kind, year, node = _grid_params()
    periods = targets.grid_periods(year, kind)
    subjects = _grid_subjects(subject, node)
    can_edit = current_user.is_admin or current_user.can(targets.TARGET_MANAGE)
    if not can_edit:
        subjects = [(sid, name) for sid, name in subjects if subject == "user" and sid == current_user.id]
    values = {key: str(v) for key, v in targets.targets_of(subject, [s for s, _n in subjects], periods).items()}
    # quarters and years not set themselves show the sum of their months / quarters as a placeholder
    sums = {}
    if kind != "month":
        for period in periods:
            for sid, (amount, derived) in targets.effective_targets(subject, [s for s, _n in subjects],
                                                                    period).items():
                if derived:
                    sums[(sid, period.key)] = "Σ " + money(amount)
    if request.method == "POST":
        if not can_edit:
            abort(403)
        cells = _posted_cells(subject, periods)
        try:
            changed = targets.save_grid(current_user, subject, cells)
        except (targets.GridError, targets.ReportError) as exc:
            db.session.rollback()
            flash(str(exc), "error")
            values.update({key: raw for key, (raw, _label) in cells.items()})
        else:
            flash(_("Targets saved (%(count)d changed).", count=changed), "success")
            return redirect(url_for("crm_sales.targets", subject=subject, kind=kind, year=year,
                                    department_id=node.id if node else None))
    departments = db.session.scalars(select(Department).order_by(Department.path)).all()
    return render_template("crm_sales/target_grid.html", subject=subject, kind=kind, year=year, node=node,
                           periods=periods, subjects=subjects, values=values, sums=sums, can_edit=can_edit,
                           departments=departments)


def _posted_cells(subject, periods) -> dict:
    """``{(subject_id, period key): (raw, label)}`` of the posted ``cell-<id>-<period>`` inputs (any id the
    form sends, so a forged id is checked by :func:`targets.save_grid` like the others)."""
    cells = {}
    valid = {p.key for p in periods}
    for name, raw in request.form.items():
        prefix, _sep, rest = name.partition("-")
        sid, _sep, period_key = rest.partition("-")
        subject_id = ascii_int(sid)
        if prefix != "cell" or subject_id is None or period_key not in valid:
            continue
        cells[(subject_id, period_key)] = (raw, _cell_label(subject, subject_id, period_key))
    return cells


def _cell_label(subject, sid, period_key) -> str:
    if subject == "user":
        person = db.session.get(User, sid)
        name = person.label if person else f"#{sid}"
    else:
        model = Department if subject == "department" else Product
        record = db.session.get(model, sid)
        name = record.name if record else f"#{sid}"
    return f"{name} · {period_key}"


# -- forecasts ----------------------------------------------------------------------------------------------------
def _forecast_months() -> list[date]:
    month = date.today().replace(day=1)
    out = []
    for _i in range(FORECAST_MONTHS):
        out.append(month)
        month = targets.next_month(month)
    return out


@bp.route("/targets/forecast", methods=["GET", "POST"], endpoint="forecast")
@permission_required(READ)
def forecast_page():
    """A rep commits each of the next months; a month stays editable until it is over. Managers also see
    the commitments of the reps they may see."""
    months = _forecast_months()
    mine = {f.month: f for f in db.session.scalars(select(Forecast).where(Forecast.user_id == current_user.id,
                                                                          Forecast.month >= months[0]))}
    if request.method == "POST":
        error = _save_forecasts(months, mine)
        if error:
            db.session.rollback()
            flash(error, "error")
        else:
            db.session.commit()
            flash(_("Forecast saved."), "success")
            return redirect(url_for("crm_sales.forecast"))
    team = []
    r = reach(current_user, Opportunity.__visibility_object__)
    if r.everything or len(r.owner_ids) > 1:
        stmt = (select(Forecast, User).join(User, Forecast.user_id == User.id)
                .where(Forecast.month >= months[0], Forecast.month <= months[-1]).order_by(User.id, Forecast.month))
        if not r.everything:
            stmt = stmt.where(Forecast.user_id.in_(r.owner_ids))
        team = db.session.execute(stmt).all()
    return render_template("crm_sales/forecast.html", months=months, mine=mine, team=team, money=money)


def _save_forecasts(months, mine) -> str | None:
    """Validate every posted month first; ``None`` when saved, else the message naming the bad cell."""
    parsed = []
    for month in months:
        key = month.strftime("%Y-%m")
        raw_commit, raw_best = request.form.get(f"commit-{key}", ""), request.form.get(f"best-{key}", "")
        try:
            commit = targets.parse_amount(raw_commit, _("Commit %(month)s", month=key))
            best = targets.parse_amount(raw_best, _("Best case %(month)s", month=key))
        except targets.GridError as exc:
            return str(exc)
        parsed.append((month, commit, best, request.form.get(f"note-{key}", "").strip()[:2000]))
    # a forged month (already over, or too far) is simply not among ``months``: nothing else is accepted
    for month, commit, best, note in parsed:
        row = mine.get(month)
        if commit is None and best is None and not note:
            if row is not None:
                db.session.delete(row)
            continue
        if row is None:
            row = Forecast(user_id=current_user.id, month=month)
            db.session.add(row)
        row.commit_amount, row.best_case, row.note = commit or Decimal("0.00"), best, note
    return None
