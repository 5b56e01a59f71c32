"""Sales: the kanban board (drag a card to move it, same rules as everywhere: :func:`.stages.move`) and the
close-date calendar."""

from __future__ import annotations

import calendar as calendar_module
from datetime import date, timedelta

from flask import abort, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from core.crm.picklists import picklist_choices
from core.crm.visibility import get_visible, visible_to
from core.extensions import db
from core.params import ascii_int
from core.security import permission_required

from . import board, stages
from .funnel import process_of, processes
from .hooks import READ, WRITE
from .models import Opportunity, Stage
from .views import bp


def money(value) -> str:
    """``1,234.56``: the grouping of zh_CN, zh_TW and en alike (Babel per card costs the board ~40 ms)."""
    return f"{value:,.2f}"


def _scope() -> str:
    scope = request.args.get("scope") or "all"
    return scope if scope in board.SCOPES else "all"


@bp.route("/board", endpoint="board")
@permission_required(READ)
def board_page():
    process = process_of(request.args.get("process"))
    scope = _scope()
    return render_template(
        "crm_sales/board.html", process=process, scope=scope, scopes=board.SCOPES, processes=processes(),
        columns=board.build(current_user, process, scope), money=money, days_in_stage=board.days_in_stage,
        reasons=picklist_choices(stages.LOST_REASON), can_move=current_user.can(WRITE),
        stage_label=stages.stage_label, closed_days=board.CLOSED_DAYS, **_card_parts(process),
    )


def _stage_options(process) -> list[tuple[int, str, str]]:
    """The "Move to…" choices, translated once for all the cards."""
    return [(s.id, s.kind, stages.stage_label(s.name)) for s in process.stages if s.active]


def _card_parts(process) -> dict:
    """What every card repeats, made once per page: the translated texts (formatted per card with ``|format``)
    and, per stage, the ``<option>``s of the "Move to…" list without that stage (a hundred cards each listing
    the process's stages cost the board page more than its queries)."""
    options = _stage_options(process)
    option = Markup('<option value="{}" data-kind="{}">{}</option>')
    return {
        "texts": {"closes": _("Closes %(date)s"), "days": _("%(days)d days in this stage"), "move": _("Move to…")},
        "move_options": {sid: Markup("").join(option.format(other, kind, label)
                                              for other, kind, label in options if other != sid)
                         for sid, _kind, _label in options},
    }


@bp.route("/board/stage/<int:stage_id>/cards", endpoint="board_cards")
@permission_required(READ)
def board_cards(stage_id: int):
    """More cards of a column (``?before=<id>``): an HTML fragment."""
    stage = db.session.get(Stage, stage_id)
    if stage is None:
        abort(404)
    before = ascii_int(request.args.get("before"))
    cards, more = board.cards(current_user, stage, _scope(), before_id=before)
    return render_template("crm_sales/_board_cards.html", cards=cards, more=more, stage=stage, money=money,
                           days_in_stage=board.days_in_stage, process=stage.process, stage_label=stages.stage_label,
                           can_move=current_user.can(WRITE), scope=_scope(), **_card_parts(stage.process))


def _error(status: int, message: str, missing=()):
    return jsonify({"ok": False, "error": message,
                    "missing": [{"code": f.code, "label": str(f.label)} for f in missing]}), status


@bp.route("/board/move", methods=["POST"], endpoint="board_move")
@permission_required(WRITE)
def board_move():
    """``{"opportunity_id", "stage_id", "reason", "note"}`` → the move, or why not (JSON)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, _("The request is not valid."))
    opp_id, stage_id = body.get("opportunity_id"), body.get("stage_id")
    reason, note = body.get("reason") or None, body.get("note") or ""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (opp_id, stage_id)) \
            or not isinstance(note, str) or (reason is not None and not isinstance(reason, str)):
        return _error(400, _("The request is not valid."))
    opportunity = get_visible(current_user, Opportunity, opp_id, access="write")
    if opportunity is None:
        return _error(404, _("This opportunity does not exist or you may not change it."))
    stage = db.session.get(Stage, stage_id)
    if stage is None:
        return _error(400, _("Unknown stage."))
    try:
        stages.move(opportunity, stage, current_user, reason=reason, note=note[:2000])
    except stages.StageError as exc:
        db.session.rollback()
        return _error(409, str(exc), exc.missing)
    db.session.commit()
    scope = body.get("scope") if body.get("scope") in board.SCOPES else "all"
    sums = board.aggregates(current_user, opportunity.process, scope)
    return jsonify({"ok": True, "message": _("Moved to “%(stage)s”.", stage=stages.stage_label(stage.name)),
                    "columns": {str(sid): {"count": n, "amount": money(a), "weighted": money(w)}
                                for sid, (n, a, w) in sums.items()}})


# -- the calendar ------------------------------------------------------------------------------------------------
def _month(text: str | None) -> tuple[date, str | None]:
    today = date.today().replace(day=1)
    if not text:
        return today, None
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1), None
    except (ValueError, TypeError):
        return today, _("“%(month)s” is not a month (YYYY-MM).", month=text)


@bp.route("/calendar", endpoint="calendar")
@permission_required(READ)
def calendar_page():
    first, error = _month(request.args.get("month"))
    days = calendar_module.monthrange(first.year, first.month)[1]
    last = first.replace(day=days)
    scope = _scope()
    stmt = (select(Opportunity).where(Opportunity.close_date >= first, Opportunity.close_date <= last)
            .order_by(Opportunity.close_date, Opportunity.id).limit(2000))
    stmt = visible_to(current_user, stmt, Opportunity)
    if scope == "mine":
        stmt = stmt.where(Opportunity.owner_id == current_user.id)
    by_day: dict[int, list] = {}
    for opp in db.session.execute(stmt).unique().scalars():
        by_day.setdefault(opp.close_date.day, []).append(opp)
    weeks = calendar_module.Calendar(firstweekday=0).monthdayscalendar(first.year, first.month)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = last + timedelta(days=1)
    return render_template("crm_sales/calendar.html", first=first, weeks=weeks, by_day=by_day, error=error,
                           previous=previous, following=following, scope=scope, scopes=board.SCOPES, money=money,
                           stage_label=stages.stage_label), (400 if error else 200)
