"""The personal agenda (today, overdue, the next 7 days) and the team calendar (day, week, month).

Days are the user's local days (``BABEL_DEFAULT_TIMEZONE`` for now); their bounds are converted to UTC
before querying, so an activity at 00:30 Beijing time falls on its Beijing date. Weeks start on Monday.
"""

from __future__ import annotations

import calendar as pycalendar
from datetime import date, timedelta

from babel.dates import format_skeleton
from flask import flash, render_template, request, url_for
from flask_babel import format_date, get_locale, to_user_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from core.crm.activities import KIND_LABELS, bp
from core.crm.activity_views import CompleteForm, local_day_start_utc, local_today, with_people
from core.crm.models import Activity
from core.crm.visibility import visible_to
from core.extensions import db
from core.timeutil import utcnow

SECTION_LIMIT = 100
CALENDAR_LIMIT = 1000
VIEWS = {"day": _l("Day"), "week": _l("Week"), "month": _l("Month")}


def _mine(stmt):
    return stmt.where(Activity.owner_id == current_user.id, Activity.status == "planned")


@bp.route("/agenda")
def agenda():
    today = local_today()
    start = local_day_start_utc(today)
    tomorrow = local_day_start_utc(today + timedelta(days=1))
    week_end = local_day_start_utc(today + timedelta(days=8))
    base = with_people(_mine(select(Activity)))

    def section(*conditions):
        stmt = base.where(*conditions).order_by(Activity.due_at, Activity.id).limit(SECTION_LIMIT)
        return db.session.execute(stmt).scalars().all()

    sections = [
        ("overdue", _("Overdue"), section(Activity.due_at < start)),
        ("today", _("Today"), section(Activity.due_at >= start, Activity.due_at < tomorrow)),
        ("week", _("Next 7 days"), section(Activity.due_at >= tomorrow, Activity.due_at < week_end)),
        ("undated", _("Without a date"), section(Activity.due_at.is_(None))),
    ]
    return render_template(
        "core/crm/agenda.html", sections=sections, today=today, now=utcnow(), kinds=KIND_LABELS,
        complete_form=CompleteForm(),
    )


def calendar_range(view: str, day: date) -> tuple[date, date, date, date]:
    """``(first, last_exclusive, prev_day, next_day)`` of the grid showing ``day`` in ``view``."""
    if view == "day":
        return day, day + timedelta(days=1), day - timedelta(days=1), day + timedelta(days=1)
    if view == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=7), day - timedelta(days=7), day + timedelta(days=7)
    month_first = day.replace(day=1)
    month_days = pycalendar.monthrange(day.year, day.month)[1]
    first = month_first - timedelta(days=month_first.weekday())
    last = month_first + timedelta(days=month_days)
    last += timedelta(days=(7 - last.weekday()) % 7)
    prev_month = (month_first - timedelta(days=1)).replace(day=1)
    return first, last, prev_month, month_first + timedelta(days=month_days)


def _grid(view: str, day: date) -> tuple:
    """:func:`calendar_range` and the UTC bounds of the grid; ``OverflowError`` (or ``ValueError``) when the grid
    or its neighbours leave the calendar — the first days of year 1, the last of year 9999."""
    first, last, prev_day, next_day = calendar_range(view, day)
    return first, last, prev_day, next_day, local_day_start_utc(first), local_day_start_utc(last)


@bp.route("/calendar")
def calendar():
    view = request.args.get("view", "week")
    if view not in VIEWS:
        flash(_("Unknown calendar view; showing the week."), "error")
        view = "week"
    today = local_today()
    raw = request.args.get("date", "")
    try:
        day = date.fromisoformat(raw) if raw else today
        grid = _grid(view, day)
    except (ValueError, OverflowError):
        flash(_("“%(value)s” is not a date (use YYYY-MM-DD); showing today.", value=raw), "error")
        day = today
        grid = _grid(view, day)
    first, last, prev_day, next_day, start, end = grid
    stmt = (
        select(Activity)
        .where(
            Activity.status == "planned",
            Activity.due_at >= start,
            Activity.due_at < end,
        )
        .order_by(Activity.due_at, Activity.id)
        .limit(CALENDAR_LIMIT + 1)
    )
    rows = db.session.execute(with_people(visible_to(current_user, stmt, Activity))).scalars().all()
    truncated = len(rows) > CALENDAR_LIMIT
    by_day: dict[date, list] = {}
    for activity in rows[:CALENDAR_LIMIT]:
        local = to_user_timezone(activity.due_at)
        by_day.setdefault(local.date(), []).append((local, activity))
    days = [first + timedelta(days=i) for i in range((last - first).days)]
    weeks = [days[i:i + 7] for i in range(0, len(days), 7)]
    if view == "day":
        title = format_date(day, "full")
    elif view == "week":
        title = _("%(first)s – %(last)s", first=format_date(first, "medium"),
                  last=format_date(last - timedelta(days=1), "medium"))
    else:
        title = format_skeleton("yMMMM", day, locale=get_locale())
    return render_template(
        "core/crm/calendar.html", view=view, views=VIEWS, day=day, today=today, days=days, weeks=weeks,
        by_day=by_day, title=title, truncated=truncated, kinds=KIND_LABELS,
        prev_url=url_for(".calendar", view=view, date=prev_day.isoformat()),
        next_url=url_for(".calendar", view=view, date=next_day.isoformat()),
        today_url=url_for(".calendar", view=view, date=today.isoformat()),
        weekday_names=[format_date(first + timedelta(days=i), "EEE") for i in range(7)],
    )
