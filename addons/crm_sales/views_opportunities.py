"""Sales: the opportunity list and record page (stage path, guidance, what is missing for the next stages, moves
with reasons, the stage history with durations).

The list pages by keyset on ``(owner_id, id)``/``id`` (newest first) within visibility, with a search on the
name's key and filters on status and stage. The form (create/edit) is still to come: opportunities are
created by lead conversion and the REST API for now.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.crm import normalise
from core.crm.normalise import prefix_upper_bound
from core.crm.picklists import picklist_choices
from core.crm.visibility import get_visible_or_404, visible_to
from core.extensions import db
from core.security import permission_required

from . import stages
from .hooks import READ, WRITE
from .models import STATUSES, Opportunity, Stage, StageChange
from .views import bp

PAGE = 50


def money(value) -> str:
    return "" if value is None else f"{value:,.2f}"


@bp.route("/", endpoint="index")
@permission_required(READ)
def index():
    args = request.args
    stmt = select(Opportunity)
    status = args.get("status") or ""
    if status in STATUSES:
        stmt = stmt.where(Opportunity.status == status)
    stage_id = args.get("stage", type=int)
    if stage_id:
        stmt = stmt.where(Opportunity.stage_id == stage_id)
    query = (args.get("q") or "").strip()
    if query:
        key = normalise.search_key(query)
        stmt = stmt.where(Opportunity.search_name >= key, Opportunity.search_name < prefix_upper_bound(key))
    before = args.get("before", type=int)
    if before:
        stmt = stmt.where(Opportunity.id < before)
    stmt = visible_to(current_user, stmt, Opportunity).order_by(Opportunity.id.desc()).limit(PAGE + 1)
    rows = list(db.session.execute(stmt).unique().scalars())
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    stage_choices = [(s.id, stages.stage_label(s.name)) for s in stages.default_process().stages if s.active]
    return render_template("crm_sales/opportunity_list.html", rows=rows, more=more, args=args, money=money,
                           statuses=stages.KIND_LABELS, stage_choices=stage_choices, stage_label=stages.stage_label,
                           next_before=rows[-1].id if rows and more else None)


@bp.route("/<int:opportunity_id>", endpoint="view")
@permission_required(READ)
def view(opportunity_id: int):
    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id)
    return _record(opportunity)


def _record(opportunity, error: str | None = None, missing=(), status: int = 200):
    process = opportunity.process
    path = [(stage, stages.missing_fields(opportunity, stage)) for stage in process.stages if stage.active]
    history = db.session.execute(
        select(StageChange).where(StageChange.opportunity_id == opportunity.id).order_by(StageChange.id)
    ).scalars().all()
    names = {stage.id: stages.stage_label(stage.name) for stage in process.stages}
    return render_template("crm_sales/opportunity_record.html", opp=opportunity, path=path, history=history,
                           names=names, money=money, stage_label=stages.stage_label, error=error,
                           missing=list(missing), reasons=picklist_choices(stages.LOST_REASON),
                           can_move=current_user.can(WRITE)), status


@bp.route("/<int:opportunity_id>/move", methods=["POST"], endpoint="move")
@permission_required(WRITE)
def move(opportunity_id: int):
    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id, access="write")
    stage = db.session.get(Stage, request.form.get("stage_id", type=int) or 0)
    if stage is None:
        abort(400)
    try:
        stages.move(opportunity, stage, current_user, reason=request.form.get("reason") or None,
                    note=(request.form.get("note") or "")[:2000])
    except stages.StageError as exc:
        db.session.rollback()
        opportunity = db.session.get(Opportunity, opportunity_id)
        return _record(opportunity, error=str(exc), missing=exc.missing, status=400)
    db.session.commit()
    flash(_("Moved to “%(stage)s”.", stage=stages.stage_label(stage.name)), "success")
    return redirect(url_for("crm_sales.view", opportunity_id=opportunity.id))


def customer_panel(customer, user):
    """The 360° view's panel: the customer's opportunities the reader may see, open ones first, newest first."""
    stmt = select(Opportunity).where(Opportunity.customer_id == customer.id)
    stmt = visible_to(user, stmt, Opportunity).order_by((Opportunity.status == "open").desc(),
                                                         Opportunity.id.desc()).limit(50)
    rows = list(db.session.execute(stmt).unique().scalars())
    return render_template("crm_sales/_customer_panel.html", rows=rows, money=money, stage_label=stages.stage_label)
