"""The addon's pages: a list of notes and a form to add one."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from core import permission_required
from core.crm import custom_field_forms, custom_fields
from core.extensions import db

from .hooks import READ, WRITE
from .models import Note

bp = Blueprint("example_notes", __name__, url_prefix="/notes", template_folder="templates")


class NoteForm(FlaskForm):
    text = StringField(_l("Note"), validators=[DataRequired(), Length(max=500)])


@bp.route("/", methods=["GET", "POST"])
@permission_required(READ)
def index():
    # the custom fields an administrator defined for notes (Settings → Custom fields)
    form = custom_field_forms.extend_form(NoteForm, "example_notes.note")()
    if form.validate_on_submit():
        if not current_user.can(WRITE):
            flash(_("You may read notes but not write them."), "error")
        else:
            note = Note(text=form.text.data, author_id=current_user.id)
            custom_field_forms.apply(form, note, current_user)
            db.session.add(note)
            db.session.commit()
            current_app.extensions["mosaic"].hook.example_notes_note_added(note=note)
            flash(_("Note saved."), "success")
            return redirect(url_for("example_notes.index"))
    notes = db.session.execute(select(Note).order_by(Note.id.desc()).limit(100)).scalars().all()
    return render_template("example_notes/index.html", form=form, notes=notes, delete_form=DeleteForm(),
                           custom_values=custom_fields.record_display), 400 if form.errors else 200


@bp.route("/api/count")
@permission_required(READ)
def api_count():
    return {"count": db.session.execute(select(db.func.count()).select_from(Note)).scalar()}


class DeleteForm(FlaskForm):
    """A delete button: only the CSRF token."""


@bp.route("/<int:note_id>/delete", methods=["POST"])
@permission_required(WRITE)
def delete(note_id: int):
    """Notes go to the recycle bin like the core's records (core.crm.recycle.trash); restore them there."""
    from core.crm import recycle

    note = db.session.get(Note, note_id)
    if note is None:
        abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400)
    recycle.trash([note])
    db.session.commit()
    flash(_("The note is in the recycle bin."), "success")
    return redirect(url_for("example_notes.index"))
