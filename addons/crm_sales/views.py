"""Sales: the blueprint. Each area's pages live in a module of their own, imported at the end."""

from flask import Blueprint

bp = Blueprint("crm_sales", __name__, url_prefix="/crm_sales", template_folder="templates", static_folder="static")

from . import (  # noqa: E402, F401
    views_board,
    views_data,
    views_expenses,
    views_opportunities,
    views_processes,
    views_quotes,
    views_reports,
    views_targets,
)
