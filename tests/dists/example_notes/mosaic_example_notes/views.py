"""The addon's pages: a list of notes and a form to add one."""

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from core import permission_required
from core.extensions import db

from .hooks import READ, WRITE
from .models import Note

bp = Blueprint("example_notes", __name__, url_prefix="/notes", template_folder="templates")


class NoteForm(FlaskForm):
    text = StringField(_l("Note"), validators=[DataRequired(), Length(max=500)])


@bp.route("/", methods=["GET", "POST"])
@permission_required(READ)
def index():
    form = NoteForm()
    if form.validate_on_submit():
        if not current_user.can(WRITE):
            flash(_("You may read notes but not write them."), "error")
        else:
            note = Note(text=form.text.data, author_id=current_user.id)
            db.session.add(note)
            db.session.commit()
            current_app.extensions["mosaic"].hook.example_notes_note_added(note=note)
            flash(_("Note saved."), "success")
            return redirect(url_for("example_notes.index"))
    notes = db.session.execute(select(Note).order_by(Note.id.desc()).limit(100)).scalars().all()
    return render_template("example_notes/index.html", form=form, notes=notes)


@bp.route("/api/count")
@permission_required(READ)
def api_count():
    return {"count": db.session.execute(select(db.func.count()).select_from(Note)).scalar()}
