"""Organisation: departments, data scopes, sharing rules, picklists.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).
"""

from flask import Blueprint

bp = Blueprint("crm_org", __name__)
