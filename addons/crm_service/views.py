"""Service: web pages."""

from core.views.placeholder import addon_blueprint

from .hooks import READ

bp = addon_blueprint("crm_service", __name__, READ)
