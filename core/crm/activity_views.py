"""Activity pages: the list, create/edit, the activity page with its comments, and "mark done"."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone, to_user_timezone, to_utc
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.crm.activities import KIND_LABELS, STATUS_LABELS, activity_saved, bp
from core.crm.activity_forms import ActivityForm, CommentForm, CompleteForm
from core.crm.models import Activity, ActivityComment, Contact, Customer
from core.crm.visibility import get_visible_or_404, visible_to
from core.extensions import db
from core.params import ascii_int
from core.security import is_local_path
from core.timeutil import utcnow

PAGE_SIZE = 50
SHOW_CHOICES = ("all", "overdue", "today", "planned", "done")


def local_today():
    """Today's date in the user's time zone."""
    return to_user_timezone(utcnow()).date()


def local_day_start_utc(day) -> datetime:
    """The UTC instant at which local ``day`` begins (naive, as stored)."""
    return to_utc(get_timezone().localize(datetime.combine(day, time())))


def to_local_naive(value: datetime | None) -> datetime | None:
    return to_user_timezone(value).replace(tzinfo=None) if value is not None else None


def with_people(stmt):
    return stmt.options(
        selectinload(Activity.owner), selectinload(Activity.customer), selectinload(Activity.contact)
    )


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return ascii_int(value)


def filtered_activities(user, args) -> tuple:
    """``(select, show, mine, customer_id)``: the activities list's filters of ``args`` (``show``, ``mine``,
    ``customer_id``) on the activities ``user`` may see, without order or paging (the list, the export)."""
    show = args.get("show", "all")
    if show not in SHOW_CHOICES:
        show = "all"
    mine = args.get("mine") == "1"
    raw = args.get("customer_id", "")
    customer_id = ascii_int(raw)
    stmt = select(Activity)
    if mine:
        stmt = stmt.where(Activity.owner_id == user.id)
    if customer_id is not None:
        stmt = stmt.where(Activity.customer_id == customer_id)
    now = utcnow()
    if show == "overdue":
        stmt = stmt.where(Activity.status == "planned", Activity.due_at < now)
    elif show == "today":
        start = local_day_start_utc(local_today())
        stmt = stmt.where(Activity.due_at >= start, Activity.due_at < start + timedelta(days=1))
    elif show in ("planned", "done"):
        stmt = stmt.where(Activity.status == show)
    return visible_to(user, stmt, Activity), show, mine, customer_id


@bp.route("/activities/")
def activity_list():
    stmt, show, mine, customer_id = filtered_activities(current_user, request.args)
    before = _int_arg("before")
    now = utcnow()
    if before is not None:
        stmt = stmt.where(Activity.id < before)
    stmt = with_people(stmt.order_by(Activity.id.desc()).limit(PAGE_SIZE + 1))
    rows = db.session.execute(stmt).scalars().all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    args = {"show": show, "mine": "1" if mine else None, "customer_id": customer_id}
    next_url = url_for(".activity_list", before=rows[-1].id, **args) if more else None
    return render_template(
        "core/crm/activity_list.html", activities=rows, show=show, mine=mine, customer_id=customer_id,
        next_url=next_url, show_choices=SHOW_CHOICES, now=now, kinds=KIND_LABELS, states=STATUS_LABELS,
    )


def _links(customer_id, contact_id):
    """The customer and contact an activity is for; each must be visible to the user (404 otherwise)."""
    customer = get_visible_or_404(current_user, Customer, customer_id) if customer_id else None
    contact = get_visible_or_404(current_user, Contact, contact_id) if contact_id else None
    if contact is not None:
        if customer is not None and contact.customer_id != customer.id:
            abort(404)
        if customer is None:
            customer = db.session.get(Customer, contact.customer_id)
    return customer, contact


def _apply(form: ActivityForm, activity: Activity) -> None:
    """Copy the form into ``activity`` (times entered in the user's zone, stored in UTC)."""
    was_done = activity.status == "done"
    activity.kind = form.kind.data
    activity.subject = form.subject.data.strip()
    activity.notes = form.notes.data or ""
    activity.status = form.status.data
    activity.due_at = to_utc(form.due_at.data) if form.due_at.data else None
    activity.next_follow_up = form.next_follow_up.data
    if activity.status == "done":
        if form.done_at.data:
            activity.done_at = to_utc(form.done_at.data)
        elif not was_done or activity.done_at is None:
            activity.done_at = utcnow()
    else:
        activity.done_at = None


@bp.route("/activities/new", methods=["GET", "POST"])
def activity_new():
    form = ActivityForm()
    if request.method == "GET":
        form.customer_id.data = request.args.get("customer_id", "")
        form.contact_id.data = request.args.get("contact_id", "")
        form.related_object.data = request.args.get("related_object", "")
        form.related_id.data = request.args.get("related_id", "")
        if request.args.get("kind") in KIND_LABELS:
            form.kind.data = request.args["kind"]
    customer, contact = _links(form.customer_id.data, form.contact_id.data)
    if form.validate_on_submit():
        if form.related_object.data:
            # a record of another addon: its addon must vouch that it exists and is visible (else 404)
            related_id = ascii_int(form.related_id.data)
            ref = current_app.extensions["mosaic"].hook.resolve_record(
                object_name=form.related_object.data, record_id=related_id, user=current_user
            ) if related_id is not None else None
            if ref is None:
                abort(404)
        activity = Activity(
            owner_id=current_user.id,
            customer_id=customer.id if customer else None,
            contact_id=contact.id if contact else None,
            related_object=form.related_object.data or None,
            related_id=ascii_int(form.related_id.data) if form.related_object.data else None,
        )
        _apply(form, activity)
        db.session.add(activity)
        activity_saved(activity)
        db.session.commit()
        flash(_("Activity “%(subject)s” saved.", subject=activity.subject), "success")
        return redirect(url_for(".activity_view", activity_id=activity.id))
    return render_template("core/crm/activity_form.html", form=form, activity=None, customer=customer, contact=contact)


@bp.route("/activities/<int:activity_id>/edit", methods=["GET", "POST"])
def activity_edit(activity_id: int):
    activity = get_visible_or_404(current_user, Activity, activity_id, access="write")
    # on POST the form holds only what was submitted (an absent field must not fall back to the stored UTC value)
    form = ActivityForm(obj=activity if request.method == "GET" else None)
    if request.method == "GET":
        form.due_at.data = to_local_naive(activity.due_at)
        form.done_at.data = to_local_naive(activity.done_at)
    if form.validate_on_submit():
        _apply(form, activity)
        activity_saved(activity)
        db.session.commit()
        flash(_("Activity “%(subject)s” saved.", subject=activity.subject), "success")
        return redirect(url_for(".activity_view", activity_id=activity.id))
    return render_template(
        "core/crm/activity_form.html", form=form, activity=activity, customer=activity.customer,
        contact=activity.contact,
    )


@bp.route("/activities/<int:activity_id>")
def activity_view(activity_id: int, comment_form: CommentForm | None = None):
    activity = get_visible_or_404(current_user, Activity, activity_id)
    comments = db.session.execute(
        select(ActivityComment).options(selectinload(ActivityComment.author))
        .where(ActivityComment.activity_id == activity.id).order_by(ActivityComment.id)
    ).scalars().all()
    can_write = visible_to(current_user, select(Activity.id).where(Activity.id == activity.id), Activity, "write")
    return render_template(
        "core/crm/activity_view.html", activity=activity, comments=comments,
        comment_form=comment_form or CommentForm(formdata=None), complete_form=CompleteForm(),
        can_write=db.session.execute(can_write).first() is not None, kinds=KIND_LABELS, states=STATUS_LABELS,
        now=utcnow(),
    )


@bp.route("/activities/<int:activity_id>/done", methods=["POST"])
def activity_done(activity_id: int):
    activity = get_visible_or_404(current_user, Activity, activity_id, access="write")
    form = CompleteForm()
    if not form.validate_on_submit():
        abort(400)
    if activity.status != "planned":
        flash(_("This activity is not planned any more; nothing was changed."), "error")
    else:
        activity.status = "done"
        activity.done_at = utcnow()
        activity_saved(activity)
        db.session.commit()
        flash(_("Marked “%(subject)s” as done.", subject=activity.subject), "success")
    target = request.form.get("next", "")
    if is_local_path(target):
        return redirect(target)
    return redirect(url_for(".activity_view", activity_id=activity.id))


@bp.route("/activities/<int:activity_id>/comments", methods=["POST"])
def activity_comment(activity_id: int):
    activity = get_visible_or_404(current_user, Activity, activity_id)
    form = CommentForm()
    if not form.validate_on_submit():
        return activity_view(activity_id, comment_form=form), 400
    db.session.add(ActivityComment(activity_id=activity.id, author_id=current_user.id, body=form.body.data.strip()))
    db.session.commit()
    flash(_("Comment added."), "success")
    return redirect(url_for(".activity_view", activity_id=activity.id) + "#comments")


@bp.route("/activities/<int:activity_id>/delete", methods=["POST"])
def activity_delete(activity_id: int):
    """Move an activity (with its comments) to the recycle bin (core.crm.recycle); whoever may change it may."""
    from core.crm import recycle

    activity = get_visible_or_404(current_user, Activity, activity_id, access="write")
    if not CompleteForm().validate_on_submit():
        abort(400)
    subject = activity.subject
    try:
        recycle.trash([activity])
    except recycle.RecordsGone as exc:  # deleted by another request at the same moment
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".activity_list"))
    except recycle.RecordsInUse:
        db.session.rollback()
        flash(_("“%(name)s” cannot be deleted: other records still refer to it.", name=subject), "error")
        return redirect(url_for(".activity_view", activity_id=activity_id))
    db.session.commit()
    flash(_("Activity “%(subject)s” deleted.", subject=subject), "success")
    return redirect(url_for(".activity_list"))
