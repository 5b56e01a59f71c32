"""Sales: the opportunity pages (list, form, record page, stage moves) and the sales process settings."""

from flask import redirect, url_for

from core.security import permission_required

from .hooks import READ
from .views import bp


@bp.route("/", endpoint="index")
@permission_required(READ)
def index():  # placeholder until the opportunity list lands
    return redirect(url_for("core.index"))


@bp.route("/<int:opportunity_id>", endpoint="view")
@permission_required(READ)
def view(opportunity_id: int):  # placeholder until the record page lands
    return redirect(url_for("core.index"))
