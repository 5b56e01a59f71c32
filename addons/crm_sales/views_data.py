"""Sales: opportunities in the data tools — deleting one (record page) or several (the list's bulk action) to
the recycle bin, and the list's "Merge" bulk action (the core's merge page ``/merge/opportunity``).

Deleting needs ``crm_sales.opportunity.delete`` and write access to every opportunity named (one hidden or
read-only: 404, nothing deleted). The opportunities go to the recycle bin in one entry with their products,
competitors, stage history (``ON DELETE CASCADE``) and expenses; their quotes and orders are only unlinked
(:func:`.data_links.dependents`). Restoring the entry brings everything back — the funnel is the same as
before.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select

from core.crm import recycle
from core.crm.visibility import get_visible_or_404, visible_to
from core.extensions import db
from core.security import permission_required

from .hooks import DELETE, READ, WRITE
from .models import Expense, Opportunity, Order, Quote
from .views import bp

MAX_BULK = 500


class ConfirmForm(FlaskForm):
    """Only the CSRF token."""


def _writable(ids: list[int]) -> list[Opportunity]:
    """The opportunities ``ids`` names, all writable by the user — else 404 (a forged or stale id)."""
    if not ids:
        return []
    stmt = visible_to(current_user, select(Opportunity).where(Opportunity.id.in_(ids)), Opportunity, access="write")
    found = list(db.session.execute(stmt).unique().scalars())
    if len(found) != len(set(ids)):
        abort(404)
    return found


def _ids() -> list[int]:
    values = request.form.getlist("ids") or request.args.getlist("ids")
    if any(not (v or "").strip().isdigit() or len(v.strip()) > 12 for v in values):
        abort(400)
    return list(dict.fromkeys(int(v) for v in values))


def _trash(opportunities: list[Opportunity]) -> bool:
    try:
        recycle.trash(opportunities, user=current_user)
    except recycle.RecordsGone as exc:  # deleted by another request at the same moment
        db.session.rollback()
        flash(str(exc), "error")
        return False
    except recycle.RecordsInUse:
        db.session.rollback()
        flash(_("Records of another app still refer to these opportunities; nothing was deleted."), "error")
        return False
    db.session.commit()
    return True


@bp.route("/<int:opportunity_id>/delete", methods=["GET", "POST"], endpoint="delete")
@permission_required(DELETE)
def delete(opportunity_id: int):
    opportunity = get_visible_or_404(current_user, Opportunity, opportunity_id, access="write")
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        name = opportunity.name
        if _trash([opportunity]):
            flash(_("Opportunity “%(name)s” moved to the recycle bin. You can restore it from there.", name=name),
                  "success")
            return redirect(url_for("crm_sales.index"))
        return redirect(url_for("crm_sales.view", opportunity_id=opportunity_id))

    def count(model):
        return db.session.scalar(select(func.count()).select_from(model).where(model.opportunity_id == opportunity.id))

    return render_template("crm_sales/opportunity_delete.html", opp=opportunity, form=form,
                           expenses=count(Expense), quotes=count(Quote), orders=count(Order))


@bp.route("/bulk", methods=["POST"], endpoint="bulk")
@permission_required(READ)
def bulk():
    """The list's bulk actions on the ticked opportunities: ``merge`` (to the merge page) or ``delete``."""
    action = request.form.get("action") or ""
    ids = _ids()
    back = url_for("crm_sales.index")
    if action == "merge":
        if not (current_user.can(WRITE) and current_user.can(DELETE)):
            abort(403)
        if len(ids) < 2:
            flash(_("Select at least two opportunities to merge."), "error")
            return redirect(back)
        _writable(ids)
        return redirect(url_for("crm_merge.page", object_name="opportunity", ids=ids))
    if action == "delete":
        if not current_user.can(DELETE):
            abort(403)
        if not ConfirmForm().validate_on_submit():
            abort(400)
        every = request.form.get("scope") == "all"
        if every:  # every opportunity of the filtered list (all its pages) the user may change
            from .data_links import bad_filter
            from .views_opportunities import filtered

            back = url_for("crm_sales.index", **{k: v for k in request.form  # the list's filters, custom ones too
                                                 if (k in ("q", "status", "stage", "owner") or k.startswith("cf."))
                                                 and (v := request.form.get(k))})
            bad = bad_filter(request.form)
            if bad:  # the list ignores it: deleting "the list" would delete more than it shows
                flash(_("Nothing was changed: the filter “%(name)s” is not valid for this list.", name=bad), "error")
                return redirect(back)
            stmt = visible_to(current_user, filtered(request.form), Opportunity, access="write")
            records = list(db.session.execute(stmt.order_by(Opportunity.id.desc()).limit(MAX_BULK + 1))
                           .unique().scalars())
            ids = [r.id for r in records]
        if not ids:
            flash(_("Select the opportunities to delete."), "error")
            return redirect(back)
        if len(ids) > MAX_BULK:
            flash(_("At most %(max)d opportunities can be deleted at once.", max=MAX_BULK), "error")
            return redirect(back)
        if not every:
            records = _writable(ids)
        if _trash(records):
            flash(ngettext("%(num)d opportunity moved to the recycle bin. You can restore it from there.",
                           "%(num)d opportunities moved to the recycle bin. You can restore them from there.",
                           len(records)), "success")
        return redirect(back)
    abort(400)
