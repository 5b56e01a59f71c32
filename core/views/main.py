"""The home page and the language switch."""

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user

from core.app import public
from core.extensions import db
from core.forms import LanguageForm
from core.i18n import LANGUAGES

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    runtime = current_app.extensions["mosaic"]
    enabled = [runtime.addons[name] for name in runtime.addons if runtime.is_enabled(name)]
    return render_template("core/index.html", enabled=enabled)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.index")


@bp.route("/language", methods=["POST"])
@public
def set_language():
    form = LanguageForm()
    if form.validate_on_submit() and form.language.data in LANGUAGES:
        session["language"] = form.language.data
        if current_user.is_authenticated:
            current_user.language = form.language.data
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
