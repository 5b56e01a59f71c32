"""Activities, agenda, team calendar and reminders; products, currencies and exchange rates.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).
"""

from flask import Blueprint

bp = Blueprint("crm_activities", __name__)
