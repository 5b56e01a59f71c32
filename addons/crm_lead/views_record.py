"""Leads: the record page (``/crm_lead/<id>``) with its activities, follow-up logging, history and deletion.

Other areas add to the page through template partials they own (``_record_actions_convert.html``,
``_record_actions_assign.html``, ``_record_panels_convert.html``), included when present.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import to_utc
from flask_login import current_user
from sqlalchemy import select

from core.crm import audit, custom_fields, recycle
from core.crm.customer_forms import ActionForm
from core.crm.labels import ACTIVITY_KIND_LABELS, ACTIVITY_STATE_LABELS
from core.crm.models import Activity
from core.crm.visibility import get_visible, get_visible_or_404, visible_to
from core.extensions import db
from core.security import permission_required
from core.timeutil import utcnow

from . import followup
from .forms import FollowUpForm
from .hooks import DELETE, READ, WRITE
from .leads import DISQUALIFY_REASON, LEAD_SOURCE, log_contact, status_label
from .models import Lead
from .views import bp
from .views_leads import labels

ACTIVITY_LIMIT = 50


def lead_activities(lead: Lead, user, limit: int = ACTIVITY_LIMIT) -> list[Activity]:
    """The lead's activities the user may see, newest first (index ``ix_core_activity_related``)."""
    stmt = (select(Activity).where(Activity.related_object == followup.OBJECT, Activity.related_id == lead.id)
            .order_by(Activity.id.desc()).limit(limit))
    return list(db.session.execute(visible_to(user, stmt, Activity)).scalars())


def lead_history(lead: Lead, user) -> list[dict]:
    """The audit trail of the lead as the page shows it: owner and team by name, statuses and picklist
    codes by label (the core describes its own objects' fields only)."""
    from core.crm.models import Department
    from core.crm.picklists import picklist_label
    from core.models import User

    history = audit.describe(Lead, audit.history(Lead, lead.id), user)
    ids = {"owner_id": set(), "team_id": set()}
    for h in history:
        if h["entry"].field in ids:
            ids[h["entry"].field].update(int(v) for v in (h["entry"].old_value, h["entry"].new_value)
                                         if v and v.isdigit())
    names = {
        "owner_id": {str(u.id): u.label for u in db.session.execute(
            select(User).where(User.id.in_(ids["owner_id"]))).scalars()} if ids["owner_id"] else {},
        "team_id": {str(d.id): d.name for d in db.session.execute(
            select(Department).where(Department.id.in_(ids["team_id"]))).scalars()} if ids["team_id"] else {},
    }
    picklists = {"source": LEAD_SOURCE, "region": "region", "industry": "industry",
                 "disqualify_reason": DISQUALIFY_REASON}
    yes_no = {"true": _("Yes"), "false": _("No")}
    for h in history:
        field = h["entry"].field
        for side in ("old", "new"):
            raw = getattr(h["entry"], f"{side}_value")
            if raw is None:
                continue
            if field in names:
                h[side] = names[field].get(raw, h[side])
            elif field in picklists:
                h[side] = picklist_label(picklists[field], raw)
            elif field == "status":
                h[side] = status_label(raw)
            elif field == "in_pool":
                h[side] = yes_no.get(raw, raw)
    return history


def _page(lead: Lead, follow_up_form=None, status: int = 200):
    writable = get_visible(current_user, Lead, lead.id, access="write") is not None
    frequency = followup.visit_frequency()
    return render_template(
        "crm_lead/record.html",
        lead=lead,
        writable=writable,
        activities=lead_activities(lead, current_user),
        follow_up_form=follow_up_form or FollowUpForm(),
        action_form=ActionForm(),
        history=lead_history(lead, current_user),
        custom_values=custom_fields.record_display(lead),
        days_idle=followup.days_since(lead),
        overdue_days=followup.overdue_days(lead, frequency) if lead.status in frequency else None,
        activity_kinds=ACTIVITY_KIND_LABELS,
        activity_states=ACTIVITY_STATE_LABELS,
        **labels(),
    ), status


@bp.route("/<int:lead_id>")
@permission_required(READ)
def view(lead_id: int):
    return _page(get_visible_or_404(current_user, Lead, lead_id))


@bp.route("/<int:lead_id>/follow-up", methods=["POST"])
@permission_required(WRITE)
def follow_up(lead_id: int):
    """Log a follow-up: a done contact activity on the lead; the lead's contact times follow, and a new lead
    is now being worked."""
    lead = get_visible_or_404(current_user, Lead, lead_id, access="write")
    form = FollowUpForm()
    if not form.validate_on_submit():
        return _page(lead, form, 400)
    done_at = to_utc(form.done_at.data) if form.done_at.data else utcnow()
    if done_at > utcnow():
        form.done_at.errors = [*form.done_at.errors, _("A follow-up that is done cannot be in the future.")]
        return _page(lead, form, 400)
    kind = form.kind.data
    subject = (form.subject.data or "").strip() or _("%(kind)s with %(name)s", kind=ACTIVITY_KIND_LABELS[kind],
                                                         name=lead.name)
    db.session.add(Activity(kind=kind, subject=subject[:255], notes=(form.notes.data or "").strip(), status="done",
                            done_at=done_at, owner_id=current_user.id, related_object=followup.OBJECT,
                            related_id=lead.id))
    log_contact(lead, done_at)
    db.session.commit()
    flash(_("Follow-up logged."), "success")
    return redirect(url_for("crm_lead.view", lead_id=lead.id))


@bp.route("/<int:lead_id>/delete", methods=["POST"])
@permission_required(DELETE)
def delete(lead_id: int):
    """Move the lead to the recycle bin (restorable there); its activities stay, unlinked while it is there, and
    are linked again when it is restored (under a new number if its own was taken meanwhile)."""
    lead = get_visible_or_404(current_user, Lead, lead_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    name = lead.name
    try:
        recycle.trash([lead])
    except recycle.RecordsGone as exc:  # deleted by another request at the same moment
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("crm_lead.index"))
    except recycle.RecordsInUse:
        db.session.rollback()
        flash(_("“%(name)s” cannot be deleted: other records still refer to it.", name=name), "error")
        return redirect(url_for("crm_lead.view", lead_id=lead_id))
    db.session.commit()
    flash(_("Lead “%(name)s” moved to the recycle bin.", name=name), "success")
    return redirect(url_for("crm_lead.index"))
