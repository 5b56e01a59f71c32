"""Leads: the blueprint. Each area's pages live in a module of their own, imported at the end."""

from flask import Blueprint

bp = Blueprint("crm_lead", __name__, url_prefix="/crm_lead", template_folder="templates", static_folder="static")

from . import views_assign, views_convert, views_leads, views_reports, views_webform  # noqa: E402, F401
