"""Notifications' pages: the list (``/notifications/``), marking read, channel preferences, the bell's count.

Also the core plugin of notifications: the bell's template function and the delivery retry job.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from core import notify
from core.extensions import db
from core.hookspecs import hookimpl
from core.notify_models import Notification
from core.params import ascii_int
from core.registry import Job
from core.views.main import _safe_next

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
PAGE_SIZE = 50


@hookimpl
def register_template_context():
    return {"notifications_unread": _bell_count}


def _bell_count() -> int:
    return notify.unread_count(current_user.id) if current_user.is_authenticated else 0


@hookimpl
def register_jobs():
    return [Job(id="core:notification_deliveries", func="core.notify:retry_deliveries", trigger="interval",
                trigger_args={"minutes": 5}, title=_l("Retry failed notification deliveries")),
            Job(id="core:notification_prune", func="core.notify:prune_notifications", trigger="cron",
                trigger_args={"hour": 3, "minute": 41}, title=_l("Remove notifications read long ago"))]


def _user_channels():
    """The channels a user may turn off, with whether they are on for the current user."""
    off = notify.disabled_channels([current_user.id])
    return [(c, (current_user.id, c.name) not in off) for c in notify.channels()
            if c.name != notify.INAPP and notify._available(c)]


@bp.route("/")
def index():
    """The current user's notifications, newest first, 50 a page (keyset on ``id``)."""
    query = select(Notification).where(Notification.user_id == current_user.id)
    unread_only = request.args.get("unread") == "1"
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    before = ascii_int(request.args.get("before"))
    if before:
        query = query.where(Notification.id < before)
    rows = db.session.execute(query.order_by(Notification.id.desc()).limit(PAGE_SIZE + 1)).scalars().all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_template("core/notifications.html", rows=rows, unread_only=unread_only,
                           next_before=rows[-1].id if more else None, channels=_user_channels(),
                           form=FlaskForm(), unread=notify.unread_count(current_user.id))


@bp.route("/count.json")
def count():
    """For polling by the bell: ``{"unread": n}`` (counted up to 100)."""
    response = jsonify(unread=notify.unread_count(current_user.id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:notification_id>/read", methods=["POST"])
def read(notification_id: int):
    """Mark one notification read; with ``open=1`` go on to its link."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    row = db.session.get(Notification, notification_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    notify.mark_read(current_user.id, [notification_id])
    db.session.commit()
    if request.form.get("open") == "1" and row.url:
        return redirect(_safe_next(row.url))
    return redirect(_safe_next(request.form.get("next")) if request.form.get("next") else url_for(".index"))


@bp.route("/read-all", methods=["POST"])
def read_all():
    if not FlaskForm().validate_on_submit():
        abort(400)
    notify.mark_read(current_user.id)
    db.session.commit()
    return redirect(url_for(".index"))


@bp.route("/preferences", methods=["POST"])
def preferences():
    """Turn channels on or off for the current user (a checkbox per channel)."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    chosen = set(request.form.getlist("channel"))
    for channel, _on in _user_channels():
        notify.set_channel_enabled(current_user.id, channel.name, channel.name in chosen)
    db.session.commit()
    flash(_("Your notification settings are saved."), "success")
    return redirect(url_for(".index"))
