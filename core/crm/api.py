"""The REST API under /api/v1 and its tokens.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).
"""

from flask import Blueprint

bp = Blueprint("crm_api", __name__, url_prefix="/api/v1")
