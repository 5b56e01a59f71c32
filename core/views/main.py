"""The home page (the apps and the dashboard widgets of ``register_dashboard_widgets``) and the language switch."""

import logging
import time

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from core.app import public
from core.extensions import db
from core.forms import LanguageForm
from core.i18n import LANGUAGES, current_language
from core.plugins import flatten
from core.security import is_local_path

bp = Blueprint("main", __name__)
log = logging.getLogger(__name__)
#: rendered widgets kept (``DashboardWidget.cache_seconds``) before the cache is emptied
CACHE_MAX = 5000


@bp.route("/")
def index():
    runtime = current_app.extensions["mosaic"]
    enabled = [runtime.addons[name] for name in runtime.addons if runtime.is_enabled(name)]
    return render_template("core/index.html", enabled=enabled, widgets=dashboard_widgets(current_user))


def dashboard_widgets(user) -> list[tuple]:
    """``(widget, html)`` of every enabled addon's dashboard widget ``user`` may see, in order.

    A widget that fails is logged and drawn as a notice: the home page is everyone's landing page and must
    not break because of one addon.
    """
    widgets = flatten(current_app.extensions["mosaic"].hook.register_dashboard_widgets())
    cache = current_app.extensions.setdefault("mosaic_dashboard_cache", {})
    now = time.monotonic()
    out = []
    for widget in sorted(widgets, key=lambda w: (w.order, w.key)):
        if not user.can(widget.permission):
            continue
        key = (widget.key, user.id, current_language())
        cached = cache.get(key) if widget.cache_seconds else None
        if cached is not None and cached[0] > now:
            out.append((widget, cached[1]))
            continue
        try:
            html = Markup(widget.render(user))
        except Exception:  # noqa: BLE001 - any addon error; logged with its traceback
            log.exception("dashboard widget %s failed", widget.key)
            db.session.rollback()
            out.append((widget, Markup('<p class="error">%s</p>') % _("This widget could not be drawn.")))
            continue
        if widget.cache_seconds:
            if len(cache) > CACHE_MAX:
                cache.clear()
            cache[key] = (now + widget.cache_seconds, html)
        out.append((widget, html))
    return out


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path of this site (:func:`core.security.is_local_path`), else the home page."""
    return target if is_local_path(target) else url_for("main.index")


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
