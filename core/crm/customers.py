"""Customers, contacts, the 360° view, lists and search.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).
"""

from flask import Blueprint

bp = Blueprint("crm_customers", __name__)
