"""ERP bridge: web pages."""

from core.views.placeholder import addon_blueprint

from .hooks import READ

bp = addon_blueprint("erp_bridge", __name__, READ)
