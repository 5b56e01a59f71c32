"""The picklist pages: every declared picklist, its values, their labels, order and state (``crm_org``)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from core.crm.models import PicklistValue
from core.crm.org import PICKLISTS_MANAGE, bp
from core.crm.org_forms import LABEL_LANGUAGES, ActionForm, MoveForm, PicklistLabelsForm, PicklistValueForm
from core.crm.picklists import (
    all_picklists,
    ensure_default_picklists,
    forget_cache,
    get_picklist,
    usage_count,
)
from core.extensions import db
from core.security import permission_required


def _picklist_or_404(name: str):
    picklist = get_picklist(name)
    if picklist is None:
        abort(404)
    return picklist


def _value_or_404(name: str, value_id: int) -> PicklistValue:
    _picklist_or_404(name)
    row = db.session.get(PicklistValue, value_id)
    if row is None or row.picklist != name:
        abort(404)
    return row


def _rows(name: str) -> list[PicklistValue]:
    return list(
        db.session.execute(
            select(PicklistValue).where(PicklistValue.picklist == name).order_by(PicklistValue.sort, PicklistValue.id)
        ).scalars()
    )


@bp.route("/picklists")
@permission_required(PICKLISTS_MANAGE)
def picklists():
    if ensure_default_picklists():  # an instance created before a picklist was declared
        db.session.commit()
    counts = dict(
        db.session.execute(
            select(PicklistValue.picklist, func.count()).where(PicklistValue.active.is_(True)).group_by(PicklistValue.picklist)
        ).all()
    )
    return render_template("core/crm/org_picklists.html", picklists=all_picklists(), counts=counts)


@bp.route("/picklists/<name>", methods=["GET", "POST"])
@permission_required(PICKLISTS_MANAGE)
def picklist(name: str):
    """The values of one picklist; POST adds a value."""
    pl = _picklist_or_404(name)
    form = PicklistValueForm()
    if form.validate_on_submit():
        code = form.code.data.strip()
        clash = db.session.execute(
            select(PicklistValue.id).where(PicklistValue.picklist == name, PicklistValue.code == code)
        ).scalar()
        if clash is not None:
            form.code.errors.append(_("This code is taken."))
        else:
            top = db.session.execute(select(func.max(PicklistValue.sort)).where(PicklistValue.picklist == name)).scalar()
            db.session.add(
                PicklistValue(picklist=name, code=code, labels=form.labels(), sort=(top or 0) + 10, active=True)
            )
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("crm_org.picklist", name=name))
    return (
        render_template(
            "core/crm/org_picklist.html",
            picklist=pl,
            rows=_rows(name),
            form=form,
            label_languages=LABEL_LANGUAGES,
            action_form=ActionForm(),
        ),
        400 if form.errors else 200,
    )


@bp.route("/picklists/<name>/<int:value_id>", methods=["POST"])
@permission_required(PICKLISTS_MANAGE)
def save_picklist_value(name: str, value_id: int):
    row = _value_or_404(name, value_id)
    form = PicklistLabelsForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("crm_org.picklist", name=name))
    row.labels = form.labels()
    db.session.commit()
    forget_cache()
    flash(_("Saved."), "success")
    return redirect(url_for("crm_org.picklist", name=name))


@bp.route("/picklists/<name>/<int:value_id>/move", methods=["POST"])
@permission_required(PICKLISTS_MANAGE)
def move_picklist_value(name: str, value_id: int):
    row = _value_or_404(name, value_id)
    form = MoveForm()
    if not form.validate_on_submit():
        abort(400)
    rows = _rows(name)
    index = rows.index(row)
    other = index - 1 if form.direction.data == "up" else index + 1
    if 0 <= other < len(rows):
        rows[index], rows[other] = rows[other], rows[index]
    for position, value in enumerate(rows, start=1):
        value.sort = position * 10
    db.session.commit()
    forget_cache()
    return redirect(url_for("crm_org.picklist", name=name))


@bp.route("/picklists/<name>/<int:value_id>/toggle", methods=["POST"])
@permission_required(PICKLISTS_MANAGE)
def toggle_picklist_value(name: str, value_id: int):
    row = _value_or_404(name, value_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    row.active = not row.active
    db.session.commit()
    forget_cache()
    if row.active:
        flash(_("“%(code)s” is active again.", code=row.code), "success")
    else:
        flash(_("“%(code)s” is deactivated: records keep it, forms no longer offer it.", code=row.code), "success")
    return redirect(url_for("crm_org.picklist", name=name))


@bp.route("/picklists/<name>/<int:value_id>/delete", methods=["POST"])
@permission_required(PICKLISTS_MANAGE)
def delete_picklist_value(name: str, value_id: int):
    row = _value_or_404(name, value_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    used = usage_count(name, row.code)
    if used is None:
        flash(_("“%(code)s” may be in use by an app: deactivate it instead.", code=row.code), "error")
    elif used:
        flash(
            _("“%(code)s” is used by %(count)d records or sharing rules: deactivate it instead.", code=row.code, count=used),
            "error",
        )
    else:
        db.session.delete(row)
        db.session.commit()
        forget_cache()
        flash(_("“%(code)s” was deleted.", code=row.code), "success")
    return redirect(url_for("crm_org.picklist", name=name))
