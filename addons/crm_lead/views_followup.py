"""Leads: the follow-up reminders (``/crm_lead/reminders``) and the lead settings (``/crm_lead/settings``:
the visit frequency per status)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from core.crm import lists
from core.extensions import db
from core.security import permission_required

from . import followup
from .forms import VisitFrequencyForm
from .hooks import READ, SETTINGS
from .lead_lists import REMINDERS
from .views import bp
from .views_leads import labels


def _tab_count(params: dict) -> int:
    """How many leads a tab holds, counted up to :data:`followup.COUNT_CAP` + 1 (a bounded index scan)."""
    errors: list = []
    stmt = lists.filtered_select(REMINDERS, current_user, dict(params), errors)
    inner = stmt.with_only_columns(REMINDERS.model.id).limit(followup.COUNT_CAP + 1).subquery()
    return db.session.execute(select(func.count()).select_from(inner)).scalar() or 0


def _tabs(current: dict) -> list[dict]:
    keep = {k: v for k, v in current.items() if k in ("q", "owner", "status")}
    tabs = [{"key": f"days-{days}", "args": {**keep, "days": str(days)},
             "label": _("Not contacted in %(days)d days", days=days)} for days in followup.BUCKETS]
    tabs.append({"key": "overdue", "args": {**keep, "overdue": "1"}, "label": _("Overdue by visit frequency")})
    for tab in tabs:
        tab["count"] = _tab_count(tab["args"])
    return tabs


@bp.route("/reminders")
@permission_required(READ)
def reminders():
    """Open leads the user may see, not in the pool, not contacted for 7/15/30/60 days (tabs) or overdue by
    their status's visit frequency; the longest idle first."""
    args = request.args
    if not args.get("days") and not args.get("overdue"):
        args = {**args.to_dict(), "days": str(followup.BUCKETS[0])}
    page = lists.run(REMINDERS, current_user, args)
    for error in page.errors:
        flash(str(error), "error")
    current = "overdue" if page.params.get("overdue") else f"days-{page.params.get('days', '')}"
    frequency = followup.visit_frequency()
    return render_template(
        "crm_lead/reminders.html", page=page, tabs=_tabs(page.params), current_tab=current, frequency=frequency,
        days_since=followup.days_since, overdue_days=lambda lead: followup.overdue_days(lead, frequency),
        cap=followup.COUNT_CAP, **labels(),
    )


@bp.route("/settings", methods=["GET", "POST"])
@permission_required(SETTINGS)
def settings():
    frequency = followup.visit_frequency()
    form = VisitFrequencyForm(data=frequency if request.method == "GET" else None)
    if form.validate_on_submit():
        followup.save_visit_frequency({f.name: f.data for f in form.statuses()})
        db.session.commit()
        flash(_("Lead settings saved."), "success")
        return redirect(url_for("crm_lead.settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("crm_lead/settings.html", form=form, **labels()), status
