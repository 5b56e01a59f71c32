"""The blueprint an addon starts with: a home page that says what the app is for.

The built-in addons use it until their own features arrive; a third-party addon may use it too.
"""

from flask import Blueprint, current_app, render_template

from core.security import permission_required


def addon_blueprint(name: str, import_name: str, permission: str | None = None) -> Blueprint:
    """A blueprint called ``name`` (the addon's name) with an ``index`` page under ``/<name>/``."""
    bp = Blueprint(name, import_name, url_prefix=f"/{name}", template_folder="templates", static_folder="static")

    def index():
        info = current_app.extensions["mosaic"].addons[name]
        return render_template("core/addon_home.html", addon=info.manifest)

    view = permission_required(permission)(index) if permission else index
    bp.add_url_rule("/", "index", view)
    return bp
