"""Contracts: web pages."""

from core.views.placeholder import addon_blueprint

from .hooks import READ

bp = addon_blueprint("crm_contract", __name__, READ)
