"""The recycle bin's pages: the list of entries a user may see, restore, purge, and the settings."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import delete, select
from sqlalchemy.orm import defer, selectinload
from wtforms import StringField
from wtforms.validators import ValidationError

from core.crm import recycle
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.params import ascii_int
from core.security import permission_required

bp = Blueprint("crm_recycle", __name__)

PAGE_SIZE = 50
#: where a restored record of the core opens
RECORD_PAGES = {
    "customer": ("crm_customers.view", "customer_id"),
    "contact": ("crm_customers.view_contact", "contact_id"),
    "activity": ("crm_activities.activity_view", "activity_id"),
}


class EntryForm(FlaskForm):
    """A restore or purge button: only the CSRF token."""


class RecycleSettingsForm(FlaskForm):
    days = StringField(_l("Keep deleted records for (days)"), default="")

    def validate_days(self, field):
        value = (field.data or "").strip()
        if not 0 < (ascii_int(value) or 0) <= recycle.MAX_DAYS:
            raise ValidationError(_l("Enter a whole number of days from 1 to %(max)d.", max=recycle.MAX_DAYS))


def _hidden_survivors(rows: list) -> set[int]:
    """The ids of the merge entries whose survivor the user may not see: the list does not name it."""
    from core.crm import merge

    survivors: dict[str, set] = {}
    for entry in rows:
        if entry.kind == "merge":
            survivors.setdefault(entry.object, set()).add(_survivor_id(entry))
    seen = {name: merge.visible_survivors(current_user, name, ids) for name, ids in survivors.items()}
    return {e.id for e in rows if e.kind == "merge" and _survivor_id(e) not in seen[e.object]}


def _survivor_id(entry):
    return ((entry.payload or {}).get("merge") or {}).get("survivor_id")


def _record_url(object_name: str, record_id: int) -> str | None:
    page = RECORD_PAGES.get(object_name)
    if page is None:
        return None
    try:
        return url_for(page[0], **{page[1]: record_id})
    except Exception:  # noqa: BLE001 - an endpoint missing (blueprint renamed) only loses the link
        return None


@bp.route("/recycle/")
def index():
    object_name = (request.args.get("object") or "").strip()[:64]
    before = request.args.get("before", "")
    stmt = recycle.visible_entries(current_user, select(RecycleEntry))
    if object_name:
        stmt = stmt.where(RecycleEntry.object == object_name)
    if (before_id := ascii_int(before)) is not None:
        stmt = stmt.where(RecycleEntry.id < before_id)
    rows = db.session.execute(
        # the snapshots can be large: only a merge entry's is read (for the survivor's name), when drawn
        stmt.options(selectinload(RecycleEntry.owner), selectinload(RecycleEntry.deleted_by),
                     defer(RecycleEntry.payload))
        .order_by(RecycleEntry.id.desc()).limit(PAGE_SIZE + 1)
    ).scalars().all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_url = url_for(".index", before=rows[-1].id, object=object_name or None) if more else None
    objects = [(name, recycle.object_label(name)) for name in sorted(recycle._objects_in_bin())]
    return render_template(
        "core/crm/recycle_list.html", entries=rows, next_url=next_url, objects=objects, object_name=object_name,
        object_label=recycle.object_label, action_form=EntryForm(), days=recycle.purge_days(),
        can_manage=current_user.can(recycle.RECYCLE_MANAGE), hidden_survivors=_hidden_survivors(rows),
    )


@bp.route("/recycle/<int:entry_id>/restore", methods=["POST"])
def restore(entry_id: int):
    if not EntryForm().validate_on_submit():
        abort(400)
    try:
        entry = recycle.restore(entry_id, current_user)
    except LookupError:
        abort(404)
    except recycle.RecycleError as refused:
        db.session.rollback()
        flash(str(refused), "error")
        return redirect(url_for(".index"))
    kind, object_name, record_id, label = entry.kind, entry.object, entry.record_id, entry.label
    survivor = (entry.payload.get("merge") or {}).get("survivor_label", "")
    db.session.commit()
    if kind == "merge":
        flash(_("The merge into “%(survivor)s” is undone: “%(name)s” is back.", survivor=survivor, name=label),
              "success")
    else:
        flash(_("“%(name)s” is restored.", name=label), "success")
    target = _record_url(object_name, record_id)
    return redirect(target or url_for(".index"))


@bp.route("/recycle/<int:entry_id>/purge", methods=["POST"])
@permission_required(recycle.RECYCLE_MANAGE)
def purge(entry_id: int):
    if not EntryForm().validate_on_submit():
        abort(400)
    label = db.session.execute(select(RecycleEntry.label).where(RecycleEntry.id == entry_id)).scalar()
    if label is None:
        abort(404)
    db.session.execute(delete(RecycleEntry).where(RecycleEntry.id == entry_id))
    db.session.commit()
    flash(_("“%(name)s” is deleted for good.", name=label), "success")
    return redirect(url_for(".index"))


@bp.route("/admin/recycle", methods=["GET", "POST"])
@permission_required(recycle.RECYCLE_MANAGE)
def settings():
    form = RecycleSettingsForm()
    if request.method == "GET":
        form.days.data = str(recycle.purge_days())
    if form.validate_on_submit():
        recycle.save_purge_days(int(form.days.data.strip()))
        db.session.commit()
        flash(_("Recycle bin settings saved."), "success")
        return redirect(url_for(".settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("core/crm/recycle_settings.html", form=form), status
